"""Decode raw media with ffmpeg: 16 kHz mono audio and RGB video frames, whole or cut by time.

Every container ffmpeg reads works the same way (wav, flac, mp3, and the audio track and frames
of flv, mp4, avi, ...). ffmpeg runs as a subprocess writing raw samples or raw frames to a pipe,
so nothing is written to disk and no Python media binding is needed.

Time conventions: ``start`` and ``end`` are seconds from the beginning of the file. Audio sample
``i`` of a segment cut at ``start`` lies at ``start + i / sample_rate``. Video is resampled to a
constant ``fps`` by ffmpeg's ``fps`` filter, whose output frame ``k`` is the source frame shown at
``start + k / fps``; :class:`VideoFrames` carries those times, so a frame index never has to be
guessed from a rate. Decoding with ``-ss`` *after* ``-i`` is frame-accurate (ffmpeg decodes from
the start and drops what lies before ``start``), which costs a little for late segments of long
files; :func:`read_frames` therefore seeks with ``-ss`` before ``-i`` to the key frame just
before the segment and then trims exactly.

Any failure (no such file, no audio or video stream, undecodable bytes, ffmpeg missing) raises
:class:`MediaError` naming the file and the reason.

Header sanity: a wav or flac header states its sample rate as a raw number, and ffmpeg believes
it. Believed, a damaged header (say 4 MHz, or 1 Hz) decodes to a handful of samples, whose
utterances then seem to lie past the end of the recording, or to gigabytes of samples: a wrong
length either way. :func:`probe` and :func:`load_audio` therefore read that header first and
raise :class:`MediaError` naming the field when the rate lies outside
``MIN_SAMPLE_RATE``..``MAX_SAMPLE_RATE`` or there is no channel, before ffmpeg runs. Within those
bounds the decoded 16 kHz signal holds at most four samples per stored sample, so its size stays
proportional to the file's. Other containers get their rates from ffmpeg's own parsers.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
# Sample rates a header may state: from the lowest rate speech is still stored at (4 kHz, below
# telephony's 8 kHz) to the highest studio rate (384 kHz); anything else is a damaged header.
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 384_000
_HEADER_BYTES = 64 * 1024  # how far into a wav file the format chunk is looked for


class MediaError(RuntimeError):
    """A media file cannot be read. ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class MediaInfo:
    """What :func:`probe` finds in a file. Durations in seconds; None when unknown."""

    path: str
    duration: float | None
    has_audio: bool
    has_video: bool
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    audio_rate: int | None = None


@dataclass
class VideoFrames:
    """Decoded frames ``(frames, height, width, 3)`` uint8 RGB and their ``times`` in seconds."""

    frames: np.ndarray
    times: np.ndarray
    fps: float

    def __len__(self) -> int:
        return int(self.frames.shape[0])


def _tool(name: str) -> str:
    """The system's ``ffmpeg``/``ffprobe``; without a system ffmpeg, the one inside the
    ``imageio-ffmpeg`` wheel (installed with the media extra, so no root is needed)."""
    found = shutil.which(name)
    if found is None and name == "ffmpeg":
        try:
            import imageio_ffmpeg

            found = imageio_ffmpeg.get_ffmpeg_exe()
        except (ImportError, RuntimeError):
            found = None
    if found is None:
        raise MediaError(name, f"{name} is not installed (pip install 'hotspot-erc[media]' "
                               "or bash install.sh media installs it)")
    return found


def _check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "no such file")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file")
    return path


def _wav_format(head: bytes) -> tuple[str, int, int] | None:
    """(field, sample rate, channels) of the ``fmt `` chunk of a RIFF/RF64/RIFX wav header."""
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64", b"RIFX") or head[8:12] != b"WAVE":
        return None
    order = ">" if head[:4] == b"RIFX" else "<"
    offset = 12
    while offset + 8 <= len(head):
        chunk, size = head[offset:offset + 4], struct.unpack_from(f"{order}I", head, offset + 4)[0]
        if chunk == b"fmt ":
            if offset + 16 > len(head):
                return None
            channels, rate = struct.unpack_from(f"{order}HI", head, offset + 10)
            return "wav header (fmt chunk)", rate, channels
        if chunk == b"data":
            return None  # no format before the samples: ffmpeg will say what is wrong
        offset += 8 + size + (size & 1)  # chunks are padded to an even length
    return None


def _flac_format(head: bytes) -> tuple[str, int, int] | None:
    """(field, sample rate, channels) of the STREAMINFO block that opens a flac file."""
    if len(head) < 8 + 34 or head[:4] != b"fLaC" or (head[4] & 0x7F) != 0:
        return None
    info = head[8:8 + 34]
    # STREAMINFO bytes 10-12: a 20-bit sample rate, then 3 bits of (channels - 1).
    rate = (info[10] << 12) | (info[11] << 4) | (info[12] >> 4)
    channels = ((info[12] >> 1) & 0x07) + 1
    return "flac header (STREAMINFO)", rate, channels


def _check_audio_header(path: Path) -> None:
    """Raise :class:`MediaError` if a wav or flac header states an impossible format."""
    with open(path, "rb") as handle:
        head = handle.read(_HEADER_BYTES)
    stated = _wav_format(head) or _flac_format(head)
    if stated is None:
        return
    field, rate, channels = stated
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise MediaError(path, f"{field}: sample rate {rate} Hz; expected {MIN_SAMPLE_RATE}-"
                               f"{MAX_SAMPLE_RATE} Hz (a damaged header?)")
    if channels < 1:
        raise MediaError(path, f"{field}: {channels} channels; expected at least 1 "
                               "(a damaged header?)")


def _run(command: list[str], path: Path, what: str) -> bytes:
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.decode(errors="replace").splitlines() if line]
        detail = lines[-1] if lines else f"exit status {result.returncode}"
        raise MediaError(path, f"cannot decode {what}: {detail}")
    return result.stdout


def _rate(text: str | None) -> float | None:
    if not text or text in ("0/0", "N/A"):
        return None
    if "/" in text:
        numerator, denominator = text.split("/", 1)
        return float(numerator) / float(denominator) if float(denominator) else None
    return float(text)


def probe(path: str | os.PathLike) -> MediaInfo:
    """Streams and duration of a media file: ffprobe, or PyAV (FFmpeg's libraries, from its
    wheel) where no ffprobe is installed."""
    path = _check_file(path)
    _check_audio_header(path)
    if shutil.which("ffprobe") is None:
        return _probe_with_pyav(path)
    output = _run([_tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format",
                   "-show_streams", str(path)], path, "the container")
    data = json.loads(output.decode() or "{}")
    streams = data.get("streams", [])
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not s.get("disposition", {}).get("attached_pic")), None)
    if audio is None and video is None:
        raise MediaError(path, "no audio or video stream")
    duration = _rate(data.get("format", {}).get("duration"))
    return MediaInfo(
        path=str(path), duration=duration, has_audio=audio is not None,
        has_video=video is not None,
        fps=_rate(video.get("avg_frame_rate") or video.get("r_frame_rate")) if video else None,
        width=int(video["width"]) if video and "width" in video else None,
        height=int(video["height"]) if video and "height" in video else None,
        audio_rate=int(audio["sample_rate"]) if audio and "sample_rate" in audio else None)


def _probe_with_pyav(path: Path) -> MediaInfo:
    """:func:`probe` through PyAV: the same container fields ffprobe reports."""
    try:
        import av
    except ImportError:
        raise MediaError(path, "neither ffprobe nor PyAV is installed (pip install "
                               "'hotspot-erc[media]')") from None
    try:
        with av.open(str(path)) as container:
            audio = next(iter(container.streams.audio), None)
            video = next((s for s in container.streams.video
                          if not s.disposition & av.stream.Disposition.attached_pic), None)
            if audio is None and video is None:
                raise MediaError(path, "no audio or video stream")
            rate = video.average_rate or video.guessed_rate if video is not None else None
            return MediaInfo(
                path=str(path),
                duration=container.duration / av.time_base if container.duration else None,
                has_audio=audio is not None, has_video=video is not None,
                fps=float(rate) if rate else None,
                width=video.codec_context.width or None if video is not None else None,
                height=video.codec_context.height or None if video is not None else None,
                audio_rate=audio.codec_context.sample_rate or None if audio else None)
    except av.error.FFmpegError as error:
        raise MediaError(path, f"the container could not be read ({error})") from None


def _check_times(path: Path, start: float | None, end: float | None) -> None:
    for name, value in (("start", start), ("end", end)):
        if value is not None and (not np.isfinite(value) or value < 0):
            raise MediaError(path, f"{name}={value}: expected a finite time >= 0 seconds")
    if start is not None and end is not None and end <= start:
        raise MediaError(path, f"end={end} is not after start={start}")


def _nothing_decoded(start: float | None, end: float | None, stream: str) -> str:
    """`` from 1.000 s to 2.000 s (no audio stream, or past the end)`` for an error message."""
    if start is None and end is None:
        return f" (no {stream}, or an empty one)"
    return (f" from {0.0 if start is None else start:.3f} s"
            + ("" if end is None else f" to {end:.3f} s") + f" (no {stream}, or past the end)")


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE,
               start: float | None = None, end: float | None = None) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at ``sample_rate``, optionally only ``start``..``end`` s.

    Channels are averaged (downmix). A file without an audio stream, a wav or flac header that
    states an impossible sample rate, or a segment that lies wholly past the end of the file,
    raises :class:`MediaError`.
    """
    path = _check_file(path)
    _check_times(path, start, end)
    _check_audio_header(path)
    command = [_tool("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path)]
    if start is not None:
        command += ["-ss", f"{start:.6f}"]
    if end is not None:
        command += ["-to", f"{end:.6f}"]
    # ffmpeg's float downmix weights each channel 1/sqrt(2) (stereo peaks reach 1.41); capping
    # the mixing matrix's row sum at 1 makes it the mean of the channels, as documented.
    command += ["-vn", "-rematrix_maxval", "1", "-ac", "1", "-ar", str(sample_rate),
                "-f", "f32le", "-"]
    samples = np.frombuffer(_run(command, path, "audio"), dtype="<f4").astype(np.float32)
    if samples.size == 0:
        raise MediaError(path, f"no audio samples{_nothing_decoded(start, end, 'audio stream')}")
    return samples


def cut_audio(samples: np.ndarray, sample_rate: int, start: float, end: float) -> np.ndarray:
    """The samples of ``start``..``end`` seconds of an already decoded recording (may be empty)."""
    first = max(0, int(round(start * sample_rate)))
    last = min(len(samples), int(round(end * sample_rate)))
    return samples[first:last] if last > first else samples[:0]


def read_frames(path: str | os.PathLike, fps: float = 15.0, start: float | None = None,
                end: float | None = None, width: int | None = None, height: int | None = None
                ) -> VideoFrames:
    """RGB frames at a constant ``fps``, optionally only ``start``..``end`` s, optionally resized.

    With only ``width`` (or only ``height``) given the other side keeps the aspect ratio. A file
    without a video stream, or a segment wholly past its end, raises :class:`MediaError`.
    """
    if not fps > 0:
        raise ValueError(f"fps={fps}: expected > 0")
    path = _check_file(path)
    _check_times(path, start, end)
    if width is None or height is None:
        info = probe(path)
        if not info.has_video:
            raise MediaError(path, "no video stream")
        if width is None and height is None:
            width, height = info.width, info.height
        elif width is None:
            width = int(round(info.width * height / info.height / 2)) * 2
        else:
            height = int(round(info.height * width / info.width / 2)) * 2
    origin = 0.0 if start is None else start
    # Coarse seek to 2 s before the segment (fast), then exact trimming after decoding.
    coarse = max(0.0, origin - 2.0)
    command = [_tool("ffmpeg"), "-nostdin", "-v", "error"]
    if coarse > 0:
        command += ["-ss", f"{coarse:.6f}"]
    command += ["-i", str(path), "-an"]
    trim = f"trim=start={origin - coarse:.6f}"
    if end is not None:
        trim += f":end={end - coarse:.6f}"
    filters = f"{trim},setpts=PTS-STARTPTS,fps={fps}:round=near,scale={width}:{height}"
    command += ["-vf", filters, "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
    try:
        raw = _run(command, path, "video")
    except MediaError:
        # Given both sizes, the file was not probed; ffmpeg's complaint about a file without
        # video ("Output file #0 does not contain any stream") would not say what is wrong.
        if not probe(path).has_video:
            raise MediaError(path, "no video stream") from None
        raise
    frame_bytes = width * height * 3
    count = len(raw) // frame_bytes
    if count == 0:
        raise MediaError(path, f"no video frames{_nothing_decoded(start, end, 'video stream')}")
    frames = np.frombuffer(raw[:count * frame_bytes], dtype=np.uint8).reshape(
        count, height, width, 3)
    times = origin + np.arange(count, dtype=np.float64) / fps
    return VideoFrames(frames=frames, times=times, fps=float(fps))
