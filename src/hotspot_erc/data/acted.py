"""Acted emotional speech and video corpora read from raw media: RAVDESS speech and CREMA-D clips.

Neither is conversational: every file is one sentence, so every file becomes a dialogue of one
utterance whose ``media`` is that file (features come from ``hotspot-erc extract``, or
automatically with ``--dataset ravdess``).

**RAVDESS** (Livingstone & Russo 2018, CC BY-NC-SA 4.0), ``<root>/ravdess/Actor_NN/
03-01-EE-II-SS-RR-AA.flac``: EE is the emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry,
06 fearful, 07 disgust, 08 surprised), II the intensity (01 normal, 02 strong, kept in
``extra``), SS the statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the
door"), RR the repetition, AA the actor (the speaker). Split by actor so that test speakers are
unseen: train 01-10, validation 11-12, test 13-16 (:data:`RAVDESS_SPLITS`).

**CREMA-D** (Cao et al. 2014, ODbL), ``<root>/crema-d/VideoFlash/AAAA_SSS_EEE_LL.flv`` (video
with speech) and ``AudioMP3/*.mp3``: actor, sentence code, emotion (ANG, DIS, FEA, HAP, NEU, SAD)
and level. Only a handful of clips ship with the shared data, all in the split ``test``: enough
to run the raw-media pipeline, far too few for an accuracy claim.
"""

from __future__ import annotations

import os
import re

from hotspot_erc.data.dialogue import DataFormatError, Dataset, Dialogue, Utterance
from hotspot_erc.data.paths import data_root

RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                    "surprised")
RAVDESS_STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
RAVDESS_SPLITS = {"train": range(1, 11), "valid": range(11, 13), "test": range(13, 17)}
_RAVDESS_NAME = re.compile(r"^03-01-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.(flac|wav)$")

CREMA_EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
CREMA_SENTENCES = {
    "IEO": "It's eleven o'clock", "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting", "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full", "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock", "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket", "ITS": "I think I've seen this before",
    "TSI": "The surface is slick", "WSI": "We'll stop in a couple of minutes"}
_CREMA_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.(flv|mp3|wav|mp4)$")


def load_ravdess(root: str | os.PathLike | None = None) -> Dataset:
    """RAVDESS speech actors found under ``<root>/ravdess`` (8 emotions, split by actor)."""
    folder = data_root(root) / "ravdess"
    files = sorted(folder.glob("Actor_*/*")) if folder.is_dir() else []
    if not files:
        raise DataFormatError(f"{folder}: no RAVDESS files (expected Actor_NN/03-01-*.flac)")
    dialogues, splits = [], {name: [] for name in RAVDESS_SPLITS}
    for path in files:
        match = _RAVDESS_NAME.match(path.name)
        if match is None:
            raise DataFormatError(f"{path}: file name does not follow RAVDESS's "
                                  "03-01-EE-II-SS-RR-AA pattern")
        emotion, intensity, statement, _, actor, _ = match.groups()
        if not 1 <= int(emotion) <= len(RAVDESS_EMOTIONS) or statement not in RAVDESS_STATEMENTS:
            raise DataFormatError(f"{path}: emotion {emotion} or statement {statement} is "
                                  "outside RAVDESS's codes")
        uid = path.stem
        utterance = Utterance(uid=uid, speaker=f"actor{actor}",
                              text=RAVDESS_STATEMENTS[statement],
                              label=RAVDESS_EMOTIONS[int(emotion) - 1],
                              extra={"intensity": "strong" if intensity == "02" else "normal"},
                              media={"audio": str(path.resolve())})
        dialogues.append(Dialogue(uid, [utterance]))
        split = next((name for name, actors in RAVDESS_SPLITS.items() if int(actor) in actors),
                     None)
        if split is not None:
            splits[split].append(uid)
    return Dataset(name="ravdess", dialogues=dialogues, label_names=list(RAVDESS_EMOTIONS),
                   splits=splits,
                   description="RAVDESS speech, 8 emotions, split by actor (train 01-10, "
                               "valid 11-12, test 13-16)")


def load_crema_d(root: str | os.PathLike | None = None) -> Dataset:
    """The CREMA-D clips under ``<root>/crema-d`` (video with speech, and audio-only files)."""
    folder = data_root(root) / "crema-d"
    files = sorted(p for sub in ("VideoFlash", "AudioMP3") for p in (folder / sub).glob("*")
                   if p.is_file()) if folder.is_dir() else []
    if not files:
        raise DataFormatError(f"{folder}: no CREMA-D clips (expected VideoFlash/*.flv or "
                              "AudioMP3/*.mp3)")
    dialogues = []
    for path in files:
        match = _CREMA_NAME.match(path.name)
        if match is None or match.group(3) not in CREMA_EMOTIONS:
            raise DataFormatError(f"{path}: file name does not follow CREMA-D's "
                                  "ActorID_Sentence_Emotion_Level pattern")
        actor, sentence, emotion, level, extension = match.groups()
        media = {"audio": str(path.resolve())}
        if extension in ("flv", "mp4"):
            media["video"] = media["audio"]
        uid = f"{path.stem}.{extension}"
        dialogues.append(Dialogue(uid, [Utterance(
            uid=uid, speaker=f"actor{actor}", text=CREMA_SENTENCES.get(sentence, ""),
            label=emotion, extra={"level": level}, media=media)]))
    return Dataset(name="crema-d", dialogues=dialogues, label_names=list(CREMA_EMOTIONS),
                   splits={"test": [d.did for d in dialogues]},
                   description="CREMA-D clips (video with speech, and audio only)")

