"""Tests of ffmpeg decoding: formats, resampling, downmix, cutting by time, frames and errors.

All media is generated in a temporary folder: a 4 s track of near-silence with 1 kHz tone bursts
at known times, and a 30 fps video whose frames are all white at known times. A tone burst or a
white frame must land at the sample or frame index its time predicts after decoding and cutting.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np
import pytest

from hotspot_erc.features import decode
from hotspot_erc.features.decode import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    SAMPLE_RATE,
    MediaError,
    MediaInfo,
    VideoFrames,
    cut_audio,
    load_audio,
    probe,
    read_frames,
)
from hotspot_erc.features.synth_media import write_video, write_wav

if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
    pytest.skip("ffmpeg is not installed", allow_module_level=True)

DURATION = 4.0
BURSTS = (1.25, 3.25)  # seconds at which a 50 ms 1 kHz tone starts
VIDEO_FPS = 30
WIDTH, HEIGHT = 160, 120
WHITE = (1.2, 3.2)  # seconds at which the video shows two all-white frames (1/15 s)
BACKGROUND = 60
RED = (220, 30, 30)


def _tone_track(sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Near-silence with 50 ms bursts of a 1 kHz tone at BURSTS, float32 mono."""
    time = np.arange(int(DURATION * sample_rate)) / sample_rate
    track = np.zeros_like(time)
    for start in BURSTS:
        inside = (time >= start) & (time < start + 0.05)
        track[inside] = 0.5 * np.sin(2 * np.pi * 1000 * (time[inside] - start))
    return track.astype(np.float32)


def _onset(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Seconds of the first sample louder than 0.1 (the start of the first tone burst)."""
    loud = np.flatnonzero(np.abs(samples) > 0.1)
    assert loud.size, "no tone burst found"
    return loud[0] / sample_rate


def _video_frames() -> np.ndarray:
    """(120, HEIGHT, WIDTH, 3) dark frames with a moving red bar, all white at WHITE (+1/30 s)."""
    count = int(DURATION * VIDEO_FPS)
    frames = np.full((count, HEIGHT, WIDTH, 3), BACKGROUND, dtype=np.uint8)
    for index in range(count):
        left = index * WIDTH // count
        frames[index, :, left:left + 10] = RED
    for time in WHITE:
        first = int(round(time * VIDEO_FPS))
        frames[first:first + 2] = 255
    return frames


def _white_indices(video: VideoFrames) -> np.ndarray:
    return np.flatnonzero(video.frames.reshape(len(video), -1).mean(axis=1) > 230)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    """Paths of the generated files by name, plus the written frames under 'frames'."""
    folder = tmp_path_factory.mktemp("media")
    tone = _tone_track()
    paths = {"wav": write_wav(folder / "tone.wav", tone)}
    for extension, options in (("flac", []), ("mp3", ["-b:a", "128k"])):
        paths[extension] = folder / f"tone.{extension}"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(paths["wav"]),
                        *options, str(paths[extension])], check=True, capture_output=True)
    frames = _video_frames()
    for extension in ("mp4", "avi", "flv"):
        paths[extension] = write_video(folder / f"clip.{extension}", frames, VIDEO_FPS,
                                       audio=tone)
    # Stereo at 44.1 kHz with a different tone per channel: the downmix must be their mean.
    import soundfile

    time = np.arange(int(1.5 * 44_100)) / 44_100
    stereo = np.stack([0.4 * np.sin(2 * np.pi * 300 * time),
                       0.2 * np.sin(2 * np.pi * 700 * time)], axis=1)
    paths["stereo"] = folder / "stereo44k.wav"
    soundfile.write(paths["stereo"], stereo, 44_100, subtype="FLOAT")
    paths["frames"] = frames
    return paths


# Tolerances in seconds, per format. AAC (mp4) pads the last frame; mp3 inside flv carries no
# gapless header, so its decoder delay (1105 samples at 22.05 kHz, 50 ms) shifts the track.
LENGTH_TOLERANCE = {"wav": 0.001, "flac": 0.001, "mp3": 0.001, "avi": 0.001, "mp4": 0.07,
                    "flv": 0.08}
ONSET_TOLERANCE = {"wav": 0.001, "flac": 0.001, "mp3": 0.002, "avi": 0.001, "mp4": 0.002,
                   "flv": 0.055}


@pytest.mark.parametrize("extension", ["wav", "flac", "mp3", "mp4", "avi", "flv"])
def test_load_audio_decodes_every_format_at_16k_mono(media, extension):
    samples = load_audio(media[extension])
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) / SAMPLE_RATE - DURATION) <= LENGTH_TOLERANCE[extension]
    assert np.abs(samples).max() <= 1.0
    assert _onset(samples) == pytest.approx(BURSTS[0], abs=ONSET_TOLERANCE[extension])


@pytest.mark.parametrize("extension", ["wav", "flac", "mp3", "mp4", "avi", "flv"])
def test_audio_segment_puts_the_burst_at_its_offset_from_start(media, extension):
    # The second burst, at 3.25 s, lies 0.25 s into a segment starting at 3.0 s.
    segment = load_audio(media[extension], start=3.0, end=3.5)
    assert len(segment) == pytest.approx(0.5 * SAMPLE_RATE, abs=0.001 * SAMPLE_RATE)
    assert _onset(segment) == pytest.approx(BURSTS[1] - 3.0, abs=ONSET_TOLERANCE[extension])


def test_stereo_44k_is_resampled_and_downmixed_to_the_channel_mean(media):
    mono = load_audio(media["stereo"])
    assert abs(len(mono) - 1.5 * SAMPLE_RATE) <= 0.002 * SAMPLE_RATE
    time = np.arange(len(mono)) / SAMPLE_RATE
    mean = 0.5 * (0.4 * np.sin(2 * np.pi * 300 * time) + 0.2 * np.sin(2 * np.pi * 700 * time))
    # Edges excluded: the resampling filter rings there.
    np.testing.assert_allclose(mono[200:-200], mean[200:-200], atol=1e-3)
    assert np.abs(mono).max() <= 0.31  # the mean never exceeds (0.4 + 0.2) / 2


def test_other_sample_rate(media):
    samples = load_audio(media["wav"], sample_rate=8000)
    assert len(samples) == int(DURATION * 8000)
    assert _onset(samples, 8000) == pytest.approx(BURSTS[0], abs=0.002)


def test_start_only_and_end_only(media):
    tail = load_audio(media["wav"], start=3.0)
    assert len(tail) == int((DURATION - 3.0) * SAMPLE_RATE)
    assert _onset(tail) == pytest.approx(0.25, abs=0.001)
    head = load_audio(media["wav"], end=1.0)
    assert len(head) == SAMPLE_RATE
    assert np.abs(head).max() < 0.01  # the first burst starts after 1 s


def test_cut_audio_matches_decoding_the_segment(media):
    whole = load_audio(media["wav"])
    cut = cut_audio(whole, SAMPLE_RATE, 1.0, 1.5)
    decoded = load_audio(media["wav"], start=1.0, end=1.5)
    assert len(cut) == len(decoded) == 8000
    np.testing.assert_allclose(cut, decoded, atol=1e-6)
    assert _onset(cut) == pytest.approx(0.25, abs=2 / SAMPLE_RATE)


def test_cut_audio_indices_and_clamping():
    samples = np.arange(100, dtype=np.float32)  # 10 Hz: sample i lies at i / 10 s
    np.testing.assert_array_equal(cut_audio(samples, 10, 0.5, 1.0), samples[5:10])
    np.testing.assert_array_equal(cut_audio(samples, 10, 9.0, 20.0), samples[90:])
    np.testing.assert_array_equal(cut_audio(samples, 10, -1.0, 0.3), samples[:3])
    assert cut_audio(samples, 10, 12.0, 13.0).shape == (0,)
    assert cut_audio(samples, 10, 2.0, 1.0).shape == (0,)
    assert cut_audio(samples, 10, 0.5, 1.0).dtype == np.float32


def test_probe_video_with_audio(media):
    info = probe(media["mp4"])
    assert isinstance(info, MediaInfo)
    assert info.path == str(media["mp4"])
    assert info.has_audio and info.has_video
    assert info.duration == pytest.approx(DURATION, abs=0.1)
    assert info.fps == pytest.approx(VIDEO_FPS)
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert info.audio_rate == SAMPLE_RATE


def test_probe_audio_only(media):
    info = probe(media["stereo"])
    assert info.has_audio and not info.has_video
    assert info.fps is None and info.width is None and info.height is None
    assert info.audio_rate == 44_100
    assert info.duration == pytest.approx(1.5, abs=0.01)


@pytest.mark.parametrize("fps", [15, 10, 30])
def test_frame_count_and_times(media, fps):
    video = read_frames(media["mp4"], fps=fps)
    assert len(video) == int(DURATION * fps)
    assert video.frames.shape == (len(video), HEIGHT, WIDTH, 3)
    assert video.frames.dtype == np.uint8
    assert video.fps == fps
    np.testing.assert_allclose(video.times, np.arange(len(video)) / fps)


def test_frames_at_the_written_rate_match_the_written_frames(media):
    video = read_frames(media["mp4"], fps=VIDEO_FPS)
    written = media["frames"]
    assert len(video) == len(written)
    error = np.abs(video.frames.astype(np.int16) - written).mean(axis=(1, 2, 3))
    assert error.max() < 4  # H.264 is lossy, but these flat frames survive almost exactly
    # Channels come back in RGB order: the bar's centre is red, not blue.
    red, _, blue = video.frames[0, HEIGHT // 2, 5].astype(int)
    assert red > 180 and blue < 70


@pytest.mark.parametrize("extension", ["mp4", "avi", "flv"])
def test_white_frame_lands_at_its_time_at_15_fps(media, extension):
    video = read_frames(media[extension], fps=15)
    white = _white_indices(video)
    assert white.size >= 2
    for time in WHITE:
        assert np.min(np.abs(white - round(time * 15))) <= 1
    # Every white frame is near one of the two marked times, none elsewhere.
    assert all(min(abs(index - round(t * 15)) for t in WHITE) <= 1 for index in white)


@pytest.mark.parametrize("start, end", [(1.0, 2.0), (3.0, 3.6)])
def test_segment_times_and_marker_offset(media, start, end):
    video = read_frames(media["mp4"], fps=15, start=start, end=end)
    assert len(video) == round((end - start) * 15)
    np.testing.assert_allclose(video.times, start + np.arange(len(video)) / 15)
    marker = next(t for t in WHITE if start <= t < end)
    white = _white_indices(video)
    assert white.size and abs(white[0] - round((marker - start) * 15)) <= 1
    # The segment shows the same pictures as the whole decode at the same times.
    whole = read_frames(media["mp4"], fps=15)
    first = int(round(start * 15))
    difference = np.abs(video.frames.astype(np.int16)
                        - whole.frames[first:first + len(video)]).mean()
    assert difference < 2


def test_start_only_reads_to_the_end(media):
    video = read_frames(media["mp4"], fps=15, start=3.0)
    assert len(video) == 15
    assert video.times[0] == pytest.approx(3.0)


@pytest.mark.parametrize("width, height, expected", [
    (80, None, (60, 80)),     # height follows the 4:3 aspect ratio
    (None, 60, (60, 80)),     # width follows it
    (100, 50, (50, 100)),     # both given: exactly that size
    (64, None, (48, 64)),
])
def test_resizing(media, width, height, expected):
    video = read_frames(media["mp4"], fps=15, start=1.0, end=1.4, width=width, height=height)
    assert video.frames.shape[1:3] == expected
    # The white frame at 1.2 s is still white after scaling.
    assert _white_indices(video).size >= 1


def test_fps_must_be_positive(media):
    with pytest.raises(ValueError, match="fps"):
        read_frames(media["mp4"], fps=0)


def _assert_names(error: MediaError, path, *reason_words: str) -> None:
    message = str(error)
    assert error.path == str(path)
    assert message.startswith(str(path))
    for word in reason_words:
        assert word in message.lower(), message
    # One line from us, not ffmpeg's whole log or a Python traceback.
    assert "\n" not in message and "Traceback" not in message
    assert len(message) < 300 + len(str(path))


@pytest.fixture(scope="module")
def broken(tmp_path_factory, media) -> dict:
    folder = tmp_path_factory.mktemp("broken")
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    noise = folder / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).bytes(5000))
    truncated = folder / "truncated.mp4"
    data = media["mp4"].read_bytes()
    truncated.write_bytes(data[:len(data) // 2])  # the index (moov atom) is at the end
    return {"missing": folder / "missing.wav", "empty": empty, "noise": noise,
            "truncated": truncated}


@pytest.mark.parametrize("name, words", [
    ("missing", ["no such file"]), ("empty", ["empty file"]),
    ("noise", ["cannot decode"]), ("truncated", ["cannot decode"])])
@pytest.mark.parametrize("reader", [load_audio, read_frames, probe])
def test_unreadable_files_raise_media_error(broken, name, words, reader):
    path = broken[name]
    with pytest.raises(MediaError) as caught:
        reader(path)
    _assert_names(caught.value, path, *words)


@pytest.mark.parametrize("width, height", [(None, None), (32, 24)])
def test_audio_file_asked_for_video(media, width, height):
    with pytest.raises(MediaError) as caught:
        read_frames(media["wav"], width=width, height=height)
    _assert_names(caught.value, media["wav"], "no video stream")


@pytest.mark.parametrize("reader", [load_audio, read_frames])
@pytest.mark.parametrize("start, end", [(5.0, 6.0), (5.0, None)])
def test_segment_past_the_end(media, reader, start, end):
    with pytest.raises(MediaError) as caught:
        reader(media["mp4"], start=start, end=end)
    _assert_names(caught.value, media["mp4"], "past the end", "5.000 s")
    assert "None" not in str(caught.value)


@pytest.mark.parametrize("reader", [load_audio, read_frames])
@pytest.mark.parametrize("start, end, words", [
    (2.0, 2.0, ["not after"]), (2.0, 1.0, ["not after"]), (-1.0, None, ["start=-1.0", ">= 0"]),
    (None, -0.5, ["end=-0.5"]), (float("nan"), 1.0, ["start=nan", "finite"]),
    (0.0, float("inf"), ["end=inf", "finite"])])
def test_bad_times(media, reader, start, end, words):
    with pytest.raises(MediaError) as caught:
        reader(media["wav"], start=start, end=end)
    _assert_names(caught.value, media["wav"], *words)


def _restated(path, offset_in_fmt: int, layout: str, value: int):
    """``path`` (a wav) with one field of its fmt chunk overwritten (offsets into the chunk's
    data: 2 is the channel count, 4 the sample rate)."""
    data = bytearray(path.read_bytes())
    struct.pack_into(layout, data, data.index(b"fmt ") + 8 + offset_in_fmt, value)
    path.write_bytes(bytes(data))
    return path


def _ffmpeg_must_not_run(command, path, what):
    raise AssertionError(f"ffmpeg ran on {path}: the header alone should have been refused")


@pytest.mark.parametrize("reader", [load_audio, probe])
@pytest.mark.parametrize("rate", [2 ** 31, 2 ** 31 - 1, 4_000_000, 1, 0])
def test_a_wav_header_with_an_absurd_sample_rate_is_named(tmp_path, monkeypatch, reader, rate):
    path = _restated(write_wav(tmp_path / "speech.wav", _tone_track()), 4, "<I", rate)
    # Refused from the header: nothing of the size the stated rate implies is ever decoded.
    monkeypatch.setattr(decode, "_run", _ffmpeg_must_not_run)
    with pytest.raises(MediaError) as caught:
        reader(path)
    _assert_names(caught.value, path, "wav header", f"sample rate {rate} hz",
                  f"expected {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} hz")
    assert "utterance" not in str(caught.value) and "past the end" not in str(caught.value)


def test_a_wav_header_without_channels_is_named(tmp_path):
    path = _restated(write_wav(tmp_path / "speech.wav", _tone_track()), 2, "<H", 0)
    with pytest.raises(MediaError) as caught:
        load_audio(path)
    _assert_names(caught.value, path, "wav header", "0 channels")


@pytest.mark.parametrize("rate", [1, 1_000_000])
def test_a_flac_header_with_an_absurd_sample_rate_is_named(tmp_path, rate):
    import soundfile

    path = tmp_path / "speech.flac"
    soundfile.write(path, _tone_track(), SAMPLE_RATE)
    data = bytearray(path.read_bytes())
    # STREAMINFO starts at byte 8; its bytes 10-12 hold the 20-bit rate, then the channels.
    data[18], data[19] = rate >> 12, (rate >> 4) & 0xFF
    data[20] = ((rate & 0x0F) << 4) | (data[20] & 0x0F)
    path.write_bytes(bytes(data))
    with pytest.raises(MediaError) as caught:
        load_audio(path)
    _assert_names(caught.value, path, "flac header", f"sample rate {rate} hz")


@pytest.mark.parametrize("rate", [MIN_SAMPLE_RATE, 8000, 96_000, MAX_SAMPLE_RATE])
def test_plausible_sample_rates_pass_the_header_check(tmp_path, rate):
    seconds = 0.5
    samples = load_audio(write_wav(tmp_path / "tone.wav", _tone_track(rate)[:int(seconds * rate)],
                                   rate))
    assert abs(len(samples) - seconds * SAMPLE_RATE) <= 2


def test_an_empty_recording_is_not_blamed_on_a_segment(tmp_path):
    path = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(MediaError) as caught:
        load_audio(path)
    _assert_names(caught.value, path, "no audio samples", "empty")
    assert "past the end" not in str(caught.value)


def test_media_error_is_a_runtime_error_with_path_and_reason():
    error = MediaError("a/b.wav", "no such file")
    assert isinstance(error, RuntimeError)
    assert (error.path, error.reason, str(error)) == ("a/b.wav", "no such file",
                                                      "a/b.wav: no such file")


@pytest.mark.real_data
def test_real_ravdess_flac_at_48k_and_crema_flv(shared_data):
    flac = sorted((shared_data / "ravdess" / "Actor_01").glob("*.flac"))[0]
    info = probe(flac)
    samples = load_audio(flac)
    assert info.audio_rate == 48_000 and not info.has_video
    assert len(samples) / SAMPLE_RATE == pytest.approx(info.duration, abs=0.01)
    assert np.sqrt(np.mean(samples ** 2)) > 0.001  # speech, not silence
    flv = shared_data / "crema-d" / "VideoFlash" / "1001_DFA_ANG_XX.flv"
    video = read_frames(flv, fps=5, end=1.0, width=160)
    assert video.frames.shape == (5, 120, 160, 3)
    assert video.frames.std() > 10  # a picture, not a flat frame


@pytest.mark.parametrize("name", ["mp4", "flv", "stereo", "mp3", "flac"])
def test_without_system_ffmpeg_the_wheels_stand_in(media, name, monkeypatch):
    """No ffmpeg or ffprobe on PATH (a machine without root): probing goes through PyAV and
    decoding through imageio-ffmpeg's binary, with the same results."""
    pytest.importorskip("av")
    pytest.importorskip("imageio_ffmpeg")
    from hotspot_erc.features import decode

    system_info = probe(media[name])
    system_audio = load_audio(media[name])
    real_which = decode.shutil.which
    monkeypatch.setattr(decode.shutil, "which",
                        lambda tool: None if tool in ("ffmpeg", "ffprobe") else real_which(tool))
    assert decode._tool("ffmpeg") != real_which("ffmpeg")
    info = probe(media[name])
    assert (info.has_audio, info.has_video, info.width, info.height, info.audio_rate) == (
        system_info.has_audio, system_info.has_video, system_info.width, system_info.height,
        system_info.audio_rate)
    # Containers state a duration; ffprobe and PyAV may read it with or without the audio
    # codec's padding (mp4: 4.104 against 4.0 s).
    assert info.duration == pytest.approx(system_info.duration, abs=0.15)
    assert (info.fps is None) == (system_info.fps is None)
    if info.fps is not None:
        assert info.fps == pytest.approx(system_info.fps, rel=1e-3)
    audio = load_audio(media[name])
    # Another FFmpeg release may trim an encoder's priming samples (mp3: 512 at 16 kHz) that
    # the system's keeps: compare the tracks at their best alignment.
    assert abs(len(audio) - len(system_audio)) <= 0.05 * SAMPLE_RATE
    from scipy.signal import correlate

    match = correlate(audio, system_audio, mode="full", method="fft")
    best = match.max() / (np.linalg.norm(audio) * np.linalg.norm(system_audio))
    assert best > 0.99
    if info.has_video:
        np.testing.assert_allclose(read_frames(media[name], fps=VIDEO_FPS).frames.mean(),
                                   media["frames"].mean(), atol=3)


def test_a_file_no_tool_can_read_is_a_media_error_either_way(tmp_path, monkeypatch):
    pytest.importorskip("av")
    from hotspot_erc.features import decode

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01not a container" * 100)
    monkeypatch.setattr(decode.shutil, "which", lambda tool: None)
    with pytest.raises(MediaError, match="junk.mp4"):
        probe(junk)
