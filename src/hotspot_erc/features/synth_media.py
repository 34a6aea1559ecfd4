"""Make real media files offline: espeak-ng speech and a moving-face video muxed with ffmpeg.

Used by the tests, the speed benchmark and the demonstration corpus. Everything here produces
real signals that go through the same decoders and extractors as a user's recordings:

* :func:`speak` synthesises an utterance with espeak-ng (voice, pitch, rate and amplitude are
  espeak's own ``-v``, ``-p``, ``-s``, ``-a`` options) and resamples it to 16 kHz;
* :func:`face_frames` animates the public-domain astronaut portrait that ships with
  scikit-image (Eileen Collins, NASA): the head drifts slowly on a plain background, and at each
  time in ``bursts`` it shakes hard for ``burst_seconds`` (a known motion hotspot);
* :func:`write_wav` and :func:`write_video` write them (video as H.264 mp4, MPEG-4 avi or flv,
  chosen by the file extension, with an optional audio track).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hotspot_erc.atomic import atomic_open
from hotspot_erc.features.decode import SAMPLE_RATE, MediaError, _tool

ESPEAK_RATE = 22_050
# Head region of skimage's astronaut portrait (rows, columns), around the detected face.
HEAD_BOX = (20, 235, 125, 330)


def speak(text: str, voice: str = "en-us+m3", pitch: int = 50, rate: int = 170,
          amplitude: int = 100, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``text`` spoken by espeak-ng, float32 mono at ``sample_rate``."""
    from scipy.signal import resample_poly

    command = [_tool("espeak-ng"), "-v", voice, "-p", str(pitch), "-s", str(rate),
               "-a", str(amplitude), "--stdout", text]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0 or len(result.stdout) < 44:
        raise MediaError("espeak-ng", result.stderr.decode(errors="replace").strip()
                         or "produced no audio")
    with wave.open(_BytesReader(result.stdout)) as reader:
        raw = reader.readframes(reader.getnframes())
        source_rate = reader.getframerate()
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    divisor = np.gcd(sample_rate, source_rate)
    return resample_poly(samples, sample_rate // divisor, source_rate // divisor).astype(
        np.float32)


class _BytesReader:
    """A minimal file object over bytes for :mod:`wave` (espeak-ng's streamed header has
    unknown sizes, which ``wave`` tolerates when reading to the end)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._position + size
        chunk = self._data[self._position:end]
        self._position += len(chunk)
        return chunk


def silence(seconds: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = SAMPLE_RATE
              ) -> Path:
    """16-bit PCM mono wav, written atomically. Samples beyond [-1, 1] are clipped."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with atomic_open(path, "wb") as handle, wave.open(handle, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm.tobytes())
    return Path(path)


def _head() -> np.ndarray:
    from skimage.data import astronaut

    top, bottom, left, right = HEAD_BOX
    return astronaut()[top:bottom, left:right]


def face_frames(seconds: float, fps: float = 15.0, size: tuple[int, int] = (480, 360),
                bursts: Sequence[float] = (), burst_seconds: float = 0.3, seed: int = 0,
                blank: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """Frames ``(n, height, width, 3)`` uint8 of a slowly drifting face with motion bursts.

    ``size`` is (width, height). During ``[t, t + burst_seconds)`` for each ``t`` in ``bursts``
    the head jumps by up to a third of its width every frame. During each ``(start, end)`` of
    ``blank`` the frame shows no face (plain background).
    """
    import cv2

    width, height = size
    head = _head()
    scale = min(0.8 * height / head.shape[0], 0.5 * width / head.shape[1])
    head = cv2.resize(head, (int(head.shape[1] * scale), int(head.shape[0] * scale)),
                      interpolation=cv2.INTER_AREA)
    head_h, head_w = head.shape[:2]
    rng = np.random.default_rng(seed)
    count = int(round(seconds * fps))
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    background = np.array([96, 104, 112], dtype=np.uint8)
    for index in range(count):
        time = index / fps
        frame = frames[index]
        frame[:] = background
        if any(start <= time < end for start, end in blank):
            continue
        dx = 0.06 * width * np.sin(2 * np.pi * time / 7.0)
        dy = 0.03 * height * np.sin(2 * np.pi * time / 5.0)
        if any(start <= time < start + burst_seconds for start in bursts):
            dx += rng.uniform(-1, 1) * head_w / 3
            dy += rng.uniform(-1, 1) * head_h / 6
        x = int(np.clip((width - head_w) / 2 + dx, 0, width - head_w))
        y = int(np.clip((height - head_h) / 2 + dy, 0, height - head_h))
        frame[y:y + head_h, x:x + head_w] = head
    return frames


_VIDEO_CODECS = {".mp4": ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"],
                 ".avi": ["-c:v", "mpeg4", "-q:v", "4", "-bf", "0"],
                 ".flv": ["-c:v", "flv", "-q:v", "4"]}
_AUDIO_CODECS = {".mp4": ["-c:a", "aac"], ".avi": ["-c:a", "pcm_s16le"],
                 ".flv": ["-c:a", "libmp3lame", "-ar", "22050"]}


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float,
                audio: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE) -> Path:
    """Encode RGB ``frames`` (and ``audio``, if given) into ``path`` (.mp4, .avi or .flv)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _VIDEO_CODECS:
        raise ValueError(f"{path}: unsupported video extension {suffix!r}; "
                         f"expected one of {sorted(_VIDEO_CODECS)}")
    count, height, width, _ = frames.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        command = [_tool("ffmpeg"), "-nostdin", "-v", "error", "-y", "-f", "rawvideo",
                   "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-"]
        if audio is not None:
            track = write_wav(Path(scratch) / "audio.wav", audio, sample_rate)
            command += ["-i", str(track), *_AUDIO_CODECS[suffix], "-shortest"]
        temporary = Path(scratch) / f"video{suffix}"
        command += [*_VIDEO_CODECS[suffix], str(temporary)]
        result = subprocess.run(command, input=np.ascontiguousarray(frames).tobytes(),
                                capture_output=True, check=False)
        if result.returncode != 0:
            raise MediaError(path, "ffmpeg could not encode the video: "
                             + result.stderr.decode(errors="replace").strip()[-300:])
        os.replace(temporary, path)
    return path


SENTENCES = (
    "I really did not expect to see you here today.",
    "Could you pass me the report from last week?",
    "That is the best news I have heard all year!",
    "We should probably leave before the traffic gets bad.",
    "I told you three times already, and nobody listened.",
    "It is fine, I will take care of it myself.",
    "Do you remember the name of that little restaurant?",
    "Honestly, I am so tired of waiting for them.",
)
VOICES = {"A": ("en-us+m3", 40), "B": ("en-us+f3", 70)}


def make_conversation(folder: str | os.PathLike, seconds: float = 60.0, fps: float = 15.0,
                      size: tuple[int, int] = (480, 360), gap: float = 0.4, seed: int = 0,
                      video_suffix: str = ".mp4") -> Path:
    """A two-speaker conversation of about ``seconds`` s: video with speech, and a manifest.

    Speakers A and B alternate, each sentence spoken by espeak-ng in that speaker's voice,
    ``gap`` seconds apart; the video shows the drifting face with a motion burst in the middle of
    every third utterance. Writes ``conversation<suffix>`` and ``manifest.json`` (one dialogue,
    utterance times from the synthesis) into ``folder`` and returns the manifest's path.
    """
    import json

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    pieces: list[np.ndarray] = []
    utterances = []
    clock = 0.2
    pieces.append(silence(clock))
    index = 0
    while clock < seconds - 1.0:
        speaker = "AB"[index % 2]
        voice, pitch = VOICES[speaker]
        text = SENTENCES[int(rng.integers(len(SENTENCES)))]
        speech = speak(text, voice=voice, pitch=pitch, rate=int(rng.integers(150, 190)))
        duration = len(speech) / SAMPLE_RATE
        utterances.append({"id": f"u{index:03d}", "speaker": speaker, "text": text,
                           "start": round(clock, 3), "end": round(clock + duration, 3)})
        pieces += [speech, silence(gap)]
        clock += duration + gap
        index += 1
    audio = np.concatenate(pieces)[:int(seconds * SAMPLE_RATE)]
    bursts = [0.5 * (u["start"] + u["end"]) for u in utterances[1::3]]
    frames = face_frames(len(audio) / SAMPLE_RATE, fps=fps, size=size, bursts=bursts, seed=seed)
    video = write_video(folder / f"conversation{video_suffix}", frames, fps, audio=audio)
    utterances = [u for u in utterances if u["end"] <= len(audio) / SAMPLE_RATE]
    manifest = {"name": "conversation", "dialogues": [
        {"id": "conversation", "media": {"video": video.name}, "utterances": utterances}]}
    path = folder / "manifest.json"
    with atomic_open(path, "w") as handle:
        json.dump(manifest, handle, indent=1)
    return path


# The demonstration corpus: how each label is "acted" (espeak-ng pitch, words per minute,
# amplitude; a motion burst in the video or not) and what is said. A demonstration of the
# pipeline, not an emotion model: the cues are deliberately simple and consistent.
DEMO_STYLES: dict[str, dict] = {
    "neutral": {"pitch": 0, "rate": 165, "amplitude": 100, "burst": False, "sentences": (
        "The meeting is at three in the afternoon.", "I put the files on your desk.",
        "We can take the train or the bus.", "The shop closes at six today.")},
    "happy": {"pitch": 25, "rate": 195, "amplitude": 130, "burst": True, "sentences": (
        "This is wonderful, I love it so much!", "We won, this is the best day ever!",
        "What a lovely surprise, thank you!", "I am so glad you came, great news!")},
    "sad": {"pitch": -20, "rate": 125, "amplitude": 60, "burst": False, "sentences": (
        "I miss her so much, it hurts.", "Nothing went right today, I feel lost.",
        "He is gone and I am alone now.", "I am sorry, I failed again.")},
    "angry": {"pitch": 5, "rate": 185, "amplitude": 190, "burst": True, "sentences": (
        "Stop it right now, this is unacceptable!", "You lied to me again, I am furious!",
        "Get out, I have had enough of this!", "How dare you, this is outrageous!")},
}
DEMO_LABELS = tuple(DEMO_STYLES)


def make_demo_conversation(folder: str | os.PathLike, name: str, labels: Sequence[str],
                           seed: int = 0, fps: float = 15.0, size: tuple[int, int] = (320, 240),
                           gap: float = 0.3) -> dict:
    """One two-speaker conversation acted with :data:`DEMO_STYLES`; writes ``<name>.mp4``.

    Returns the manifest entry of the dialogue (utterance times, texts, labels, the video as its
    recording; the paths relative to ``folder``).
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    pieces = [silence(0.2)]
    clock = 0.2
    utterances, bursts = [], []
    for index, label in enumerate(labels):
        style = DEMO_STYLES[label]
        speaker = "AB"[index % 2]
        voice, base_pitch = VOICES[speaker]
        text = style["sentences"][int(rng.integers(len(style["sentences"])))]
        speech = speak(text, voice=voice, pitch=int(np.clip(base_pitch + style["pitch"], 0, 99)),
                       rate=style["rate"] + int(rng.integers(-10, 11)),
                       amplitude=style["amplitude"])
        duration = len(speech) / SAMPLE_RATE
        utterances.append({"id": f"{name}_{index:02d}", "speaker": speaker, "text": text,
                           "start": round(clock, 3), "end": round(clock + duration, 3),
                           "label": label})
        if style["burst"]:
            bursts.append(clock + duration * rng.uniform(0.3, 0.7))
        pieces += [speech, silence(gap)]
        clock += duration + gap
    audio = np.concatenate(pieces)
    frames = face_frames(len(audio) / SAMPLE_RATE, fps=fps, size=size, bursts=bursts, seed=seed)
    video = write_video(folder / f"{name}.mp4", frames, fps, audio=audio)
    return {"id": name, "media": {"video": video.name}, "utterances": utterances}


def make_demo_corpus(folder: str | os.PathLike, dialogues: dict[str, int] | None = None,
                     utterances: int = 6, seed: int = 0) -> Path:
    """A labelled corpus of demonstration conversations and its manifest (``manifest.json``).

    ``dialogues`` maps split -> number of conversations (default train 16, valid 4, test 4);
    each has ``utterances`` turns with labels drawn with some persistence (a speaker's mood
    tends to carry on). Returns the manifest path.
    """
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dialogues = dialogues or {"train": 16, "valid": 4, "test": 4}
    rng = np.random.default_rng(seed)
    entries, splits = [], {}
    for split, count in dialogues.items():
        splits[split] = []
        for index in range(count):
            labels, previous = [], None
            for _ in range(utterances):
                if previous is not None and rng.random() < 0.4:
                    labels.append(previous)
                else:
                    labels.append(DEMO_LABELS[int(rng.integers(len(DEMO_LABELS)))])
                previous = labels[-1]
            name = f"{split}{index:02d}"
            entries.append(make_demo_conversation(folder, name, labels,
                                                  seed=int(rng.integers(2**31))))
            splits[split].append(name)
    manifest = {"name": "demo", "label_names": list(DEMO_LABELS), "splits": splits,
                "description": "generated demonstration conversations (espeak-ng voices acting "
                               "four labels, a synthetic face): not an emotion corpus",
                "dialogues": entries}
    path = folder / "manifest.json"
    with atomic_open(path, "w") as handle:
        json.dump(manifest, handle, indent=1)
    return path
