"""Tests of the offline media generator: espeak-ng speech, the animated face and file writers."""

from __future__ import annotations

import shutil
import wave

import numpy as np
import pytest

from hotspot_erc.features.decode import SAMPLE_RATE, MediaError, load_audio, probe, read_frames
from hotspot_erc.features.synth_media import (
    face_frames,
    silence,
    speak,
    write_video,
    write_wav,
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed")
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")

SENTENCE = "Hello, how are you today?"
BACKGROUND = np.array([96, 104, 112], dtype=np.uint8)  # face_frames' plain background


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


@pytest.fixture(scope="module")
def sentence() -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    return speak(SENTENCE)


def test_speak_returns_16k_float32_speech(sentence):
    assert sentence.dtype == np.float32 and sentence.ndim == 1
    assert 0.8 < len(sentence) / SAMPLE_RATE < 4.0  # five words at 170 words per minute
    assert np.abs(sentence).max() <= 1.0
    assert _rms(sentence) > 0.02
    # Speech energy lies in the voice band, not in hum or hiss.
    power = np.abs(np.fft.rfft(sentence)) ** 2
    hertz = np.fft.rfftfreq(len(sentence), 1 / SAMPLE_RATE)
    voice_band = power[(hertz >= 80) & (hertz <= 4000)].sum() / power.sum()
    assert voice_band > 0.8
    # Voiced stretches and pauses: loudness varies strongly over 20 ms frames.
    frames = sentence[:len(sentence) // 320 * 320].reshape(-1, 320)
    frame_rms = np.sqrt(np.mean(frames ** 2, axis=1))
    assert frame_rms.max() > 10 * np.percentile(frame_rms, 10)


@needs_espeak
def test_louder_amplitude_gives_higher_rms():
    quiet, normal, loud = (_rms(speak(SENTENCE, amplitude=a)) for a in (30, 100, 150))
    assert quiet < normal < loud
    assert normal / quiet > 2.5  # espeak's amplitude scales the waveform roughly linearly


@needs_espeak
def test_sample_rate_and_text_length(sentence):
    half = speak(SENTENCE, sample_rate=8000)
    assert len(half) / len(sentence) == pytest.approx(0.5, abs=0.01)
    longer = speak(SENTENCE + " I hope the weather stays fine for the whole weekend.")
    assert len(longer) > 1.5 * len(sentence)


@needs_espeak
def test_speak_unknown_voice_raises_media_error():
    with pytest.raises(MediaError, match="voice"):
        speak("hello", voice="xx-nonexistent")


def test_silence():
    quiet = silence(0.25)
    assert quiet.shape == (4000,) and quiet.dtype == np.float32 and not quiet.any()
    assert silence(1.0, sample_rate=8000).shape == (8000,)


def test_write_wav_round_trips_as_16bit_pcm_and_clips(tmp_path):
    samples = np.array([0.0, 0.5, -0.5, 1.5, -2.0, 0.25], dtype=np.float32)
    path = write_wav(tmp_path / "sub" / "x.wav", samples, sample_rate=8000)
    assert path == tmp_path / "sub" / "x.wav"
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.wav"]  # no temporary left
    with wave.open(str(path)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2,
                                                                                         8000)
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(pcm, [0, 16383, -16383, 32767, -32767, 8191])


@needs_ffmpeg
def test_write_wav_decodes_back(tmp_path, sentence):
    path = write_wav(tmp_path / "s.wav", sentence)
    np.testing.assert_allclose(load_audio(path), sentence, atol=1 / 16000)


def test_face_frames_shape_and_determinism():
    frames = face_frames(1.0, fps=10, size=(160, 120))
    assert frames.shape == (10, 120, 160, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames, face_frames(1.0, fps=10, size=(160, 120)))
    assert face_frames(2.0, fps=15, size=(64, 48)).shape == (30, 48, 64, 3)


def _face_pixels(frame: np.ndarray) -> int:
    return int(np.any(frame != BACKGROUND, axis=-1).sum())


def test_blank_intervals_show_only_the_background():
    fps = 10
    frames = face_frames(2.0, fps=fps, size=(160, 120), blank=[(0.5, 1.0)])
    for index, frame in enumerate(frames):
        if 0.5 <= index / fps < 1.0:
            assert (frame == BACKGROUND).all(), index
        else:
            # The head covers a large part of the picture.
            assert _face_pixels(frame) > 0.2 * 160 * 120, index


def test_bursts_move_the_head_much_more_than_the_drift():
    fps = 15
    frames = face_frames(3.0, fps=fps, size=(160, 120), bursts=[1.0], burst_seconds=0.4)
    motion = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    # motion[i] is the change from frame i to frame i + 1.
    burst = [i for i in range(len(motion)) if 1.0 <= (i + 1) / fps < 1.4]
    calm = [i for i in range(len(motion)) if (i + 1) / fps < 0.9 or i / fps > 1.5]
    assert np.mean(motion[burst]) > 5 * np.mean(motion[calm])
    different_seed = face_frames(3.0, fps=fps, size=(160, 120), bursts=[1.0],
                                 burst_seconds=0.4, seed=1)
    assert not np.array_equal(frames, different_seed)
    np.testing.assert_array_equal(frames[:15], different_seed[:15])  # before the burst


@pytest.fixture(scope="module")
def clip_frames() -> np.ndarray:
    """2 s at 15 fps, 160x120, face absent during [1.0, 1.4) s (frames 15..20)."""
    return face_frames(2.0, fps=15, size=(160, 120), blank=[(1.0, 1.4)])


@needs_ffmpeg
@pytest.mark.parametrize("extension", [".mp4", ".avi", ".flv"])
def test_write_video_round_trips(tmp_path, clip_frames, extension):
    path = write_video(tmp_path / f"clip{extension}", clip_frames, 15)
    assert path.is_file() and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    info = probe(path)
    assert info.has_video and not info.has_audio
    assert (info.width, info.height) == (160, 120) and info.fps == pytest.approx(15)
    decoded = read_frames(path, fps=15)
    assert len(decoded) == len(clip_frames)
    error = np.abs(decoded.frames.astype(np.int16) - clip_frames).mean(axis=(1, 2, 3))
    assert error.max() < 8
    # Aligned, not shifted by a frame: each decoded frame is closest to the one written at its
    # index, and the blank stretch begins and ends at the same frames.
    for index in (0, 14, 15, 20, 21, len(clip_frames) - 1):
        distances = np.abs(clip_frames.astype(np.int16) - decoded.frames[index]).mean(
            axis=(1, 2, 3))
        assert distances[index] == pytest.approx(distances.min(), abs=0.5), index
    blank = [np.abs(frame.astype(np.int16) - BACKGROUND).mean() < 3 for frame in decoded.frames]
    assert blank == [15 <= index <= 20 for index in range(len(clip_frames))]


@needs_ffmpeg
@needs_espeak
@pytest.mark.parametrize("extension", [".mp4", ".avi", ".flv"])
def test_write_video_with_audio_track(tmp_path, clip_frames, sentence, extension):
    audio = np.concatenate([sentence, silence(2.0)])[:2 * SAMPLE_RATE]
    path = write_video(tmp_path / f"talk{extension}", clip_frames, 15, audio=audio)
    info = probe(path)
    assert info.has_audio and info.has_video
    track = load_audio(path)
    assert abs(len(track) / SAMPLE_RATE - 2.0) < 0.1
    assert _rms(track) == pytest.approx(_rms(audio), rel=0.2)


def test_unsupported_extension(tmp_path, clip_frames):
    with pytest.raises(ValueError, match=r"\.mkv") as caught:
        write_video(tmp_path / "clip.mkv", clip_frames, 15)
    assert "clip.mkv" in str(caught.value) and ".mp4" in str(caught.value)
    assert not any(tmp_path.iterdir())
