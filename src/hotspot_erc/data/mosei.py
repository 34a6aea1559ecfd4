"""Read CMU-MOSEI from the CMU Multimodal SDK's computational-sequence files (``.csd``).

Layout assumed (the SDK's HDF5 format): one top-level group named after the sequence (``All
Labels``, ``COVAREP``, ...) holding, per video, ``data/<video id>/features`` ``(rows, dim)`` and
``data/<video id>/intervals`` ``(rows, 2)`` (start and end, seconds within the video); a row is a
segment (labels), a frame (acoustic and visual features) or a word (words, word vectors). The
``metadata`` group beside ``data`` is not read.

**Labels** (``CMU_MOSEI_Labels.csd``): one row per annotated segment with the columns of
:data:`LABEL_COLUMNS` (sentiment in [-3, 3], then the intensities of happy, sad, angry, surprise,
disgust, fear in [0, 3]). A video is a dialogue and each of its segments an utterance, ordered by
start time, with ``uid`` ``<video>[<k>]`` (``k``: the segment's row in the label file) and the
video id as speaker (MOSEI videos are monologues). ``Utterance.extra`` keeps the raw sentiment and
the six intensities as text. Tasks, with the label conventions of the graph-ERC line:

* ``sentiment2``: ``negative`` (sentiment < 0) vs ``non_negative`` (sentiment >= 0), so a
  neutral 0 counts as non-negative, as COGMEN's and CORECT's MOSEI packs do;
* ``sentiment7``: ``round(clip(sentiment, -3, 3))`` gives -3..3, named by
  :data:`SENTIMENT7_LABELS` in that order; rounding is numpy's, half to even (0.5 -> 0,
  1.5 -> 2), as in the usual MOSEI 7-class accuracy. (COGMEN's own packs bin by intervals
  instead; :mod:`hotspot_erc.data.feature_packs` takes their codes as given.)
* ``emotion:<name>`` for a name of :data:`EMOTIONS`: ``present`` (intensity > 0) vs ``absent``.

**Features**: ``feature_csds`` maps a modality (``text``, ``audio``, ``video``) to a file. The rows
of a video whose interval midpoint lies in a segment's ``[start, end)`` belong to that segment and
their mean is the utterance's ``global_vector``. Non-finite values (COVAREP writes ``-inf`` for
unvoiced frames) are set to 0, as users of the SDK files do, and counted in the description. A
segment without rows, or a video absent from the file, has that modality missing. With
``keep_sequences=True`` the rows are also kept as the local sequence, with ``position_times`` from
the segment start, so HGF has frames to weigh; otherwise the dataset holds utterance-level vectors
only, HGF has nothing to localise, and the ``corect`` variant is the natural model.
``words_csd`` (``CMU_MOSEI_TimestampedWords.csd``, one word per row, ``sp`` for silence) gives
each utterance its text.

**Splits**: ``folds`` (``{"train": ids, "valid": ids, "test": ids}``, e.g. the SDK's standard
folds) places the videos; ids absent from the label file are skipped, and videos in no fold are
left out. Without ``folds`` the sorted video ids are cut in order: the first ``int(0.7 n)``
train, the next ``int(0.1 n)`` valid, the rest test. That is deterministic, but not the official
split.

h5py (``pip install h5py``) is imported only when a file is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from hotspot_erc.data.dialogue import (
    MODALITIES,
    DataFormatError,
    Dataset,
    Dialogue,
    FeatureSpec,
    ModalityFeatures,
    ModalitySpec,
    Utterance,
)

LABEL_COLUMNS: tuple[str, ...] = ("sentiment", "happy", "sad", "angry", "surprise", "disgust",
                                  "fear")
EMOTIONS: tuple[str, ...] = LABEL_COLUMNS[1:]
SENTIMENT2_LABELS: tuple[str, ...] = ("negative", "non_negative")
# Index k is the rounded sentiment k - 3.
SENTIMENT7_LABELS: tuple[str, ...] = ("strongly_negative", "negative", "weakly_negative",
                                      "neutral", "weakly_positive", "positive",
                                      "strongly_positive")
EMOTION_PRESENCE_LABELS: tuple[str, ...] = ("absent", "present")
TASKS: tuple[str, ...] = ("sentiment2", "sentiment7") + tuple(f"emotion:{name}"
                                                              for name in EMOTIONS)

_TRAIN_SHARE, _VALID_SHARE = 0.7, 0.1
_SILENCE_WORD = "sp"


def sentiment7_index(score: float) -> int:
    """Index into :data:`SENTIMENT7_LABELS` of ``round(clip(score, -3, 3))``."""
    return int(np.round(np.clip(score, -3.0, 3.0))) + 3


def sentiment2_index(score: float) -> int:
    """0 (negative) for ``score < 0``, else 1 (non-negative)."""
    return 0 if score < 0 else 1


def task_labels(task: str) -> tuple[str, ...]:
    """The label names of ``task`` (one of :data:`TASKS`), in index order."""
    if task not in TASKS:
        raise ValueError(f"unknown MOSEI task {task!r}; expected one of {list(TASKS)}")
    if task == "sentiment2":
        return SENTIMENT2_LABELS
    if task == "sentiment7":
        return SENTIMENT7_LABELS
    return EMOTION_PRESENCE_LABELS


def label_index(task: str, row: np.ndarray) -> int:
    """The label index of one label-file row (:data:`LABEL_COLUMNS`) under ``task``."""
    if task == "sentiment2":
        return sentiment2_index(float(row[0]))
    if task == "sentiment7":
        return sentiment7_index(float(row[0]))
    emotion = task.split(":", 1)[1]
    return int(row[LABEL_COLUMNS.index(emotion)] > 0)


def rows_in_segment(intervals: np.ndarray, start: float, end: float) -> np.ndarray:
    """Mask of the rows of ``intervals`` ``(rows, 2)`` whose midpoint lies in ``[start, end)``."""
    midpoints = intervals.mean(axis=1)
    return (midpoints >= start) & (midpoints < end)


def load_mosei(label_csd: str | os.PathLike, feature_csds: Mapping[str, str | os.PathLike],
               task: str = "sentiment7", words_csd: str | os.PathLike | None = None,
               folds: Mapping[str, Iterable[str]] | None = None,
               keep_sequences: bool = False) -> Dataset:
    """Load CMU-MOSEI from ``.csd`` files as a :class:`Dataset` named ``mosei-<task>``.

    ``label_csd`` is the label file, ``feature_csds`` maps modalities to feature files (may be
    empty), ``task`` one of :data:`TASKS`; see the module docstring for ``words_csd``, ``folds``
    and ``keep_sequences``.
    """
    label_names = task_labels(task)
    unknown = [modality for modality in feature_csds if modality not in MODALITIES]
    if unknown:
        raise ValueError(f"feature_csds: unknown modalities {unknown}; expected some of "
                         f"{list(MODALITIES)}")
    h5py = _import_h5py()
    with ExitStack() as stack:
        labels = _Csd(h5py, Path(label_csd), stack)
        features = {modality: _Csd(h5py, Path(path), stack)
                    for modality, path in feature_csds.items()}
        words = _Csd(h5py, Path(words_csd), stack) if words_csd is not None else None
        splits, skipped = _splits(labels.videos(), folds)
        tally = _Tally()
        dialogues = [_video_dialogue(video, task, labels, features, words, keep_sequences, tally)
                     for ids in splits.values() for video in ids]
        feature_spec = FeatureSpec({
            modality: ModalitySpec(extractor=f"mosei-csd:{csd.name}", version="1",
                                   global_dim=csd.dim, local_dim=csd.dim)
            for modality, csd in features.items() if csd.dim is not None})
    description = _description(task, label_names, splits, folds is not None, skipped, features,
                               words is not None, keep_sequences, tally)
    return Dataset(name=f"mosei-{task}", dialogues=dialogues, label_names=list(label_names),
                   splits=splits, feature_spec=feature_spec, description=description)


def _import_h5py():
    try:
        import h5py
    except ImportError as error:
        raise ImportError("reading CMU-MOSEI .csd files needs the h5py package: "
                          "pip install h5py") from error
    return h5py


class _Csd:
    """One open computational-sequence file: its sequence name and checked per-video arrays."""

    def __init__(self, h5py, path: Path, stack: ExitStack) -> None:
        self.path = path
        self._h5py = h5py
        try:
            handle = stack.enter_context(h5py.File(path, "r"))
        except OSError as error:
            raise DataFormatError(f"{path}: not a readable HDF5 .csd file ({error})") from error
        groups = [name for name in handle if isinstance(handle[name], h5py.Group)]
        if len(groups) != 1:
            raise DataFormatError(f"{path}: expected one top-level group named after the "
                                  f"sequence, found {groups}")
        self.name = groups[0]
        data = handle[self.name].get("data")
        if not isinstance(data, h5py.Group):
            raise DataFormatError(f"{path}: missing key '{self.name}/data' (a group per video)")
        self._data = data
        self.dim: int | None = None
        self._dim_video = ""

    def videos(self) -> list[str]:
        return sorted(self._data)

    def __contains__(self, video: str) -> bool:
        return video in self._data

    def read(self, video: str, numeric: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(features (rows, dim), intervals (rows, 2) float64)`` of ``video``, checked."""
        key = f"{self.name}/data/{video}"
        group = self._data[video]
        if not isinstance(group, self._h5py.Group):
            raise DataFormatError(f"{self.path}: key '{key}' must be a group with 'features' "
                                  f"and 'intervals'")
        for field in ("features", "intervals"):
            if field not in group:
                raise DataFormatError(f"{self.path}: missing key '{key}/{field}'")
        features, intervals = group["features"][()], group["intervals"][()]
        if intervals.ndim != 2 or intervals.shape[1] != 2 or intervals.dtype.kind not in "iuf" \
                or not np.all(np.isfinite(intervals)):
            raise DataFormatError(f"{self.path}: key '{key}/intervals' must be finite numbers "
                                  f"of shape (rows, 2), got {intervals.dtype} {intervals.shape}")
        if features.ndim != 2 or features.shape[0] != intervals.shape[0]:
            raise DataFormatError(f"{self.path}: key '{key}/features' must have shape (rows, "
                                  f"dim) with one row per interval ({intervals.shape[0]}), got "
                                  f"{features.shape}")
        if numeric and features.dtype.kind not in "biuf":
            raise DataFormatError(f"{self.path}: key '{key}/features' must be numeric, got "
                                  f"{features.dtype}")
        if self.dim is None:
            self.dim, self._dim_video = int(features.shape[1]), video
        elif features.shape[1] != self.dim:
            raise DataFormatError(f"{self.path}: key '{key}/features' has dimension "
                                  f"{features.shape[1]}, but video {self._dim_video} has "
                                  f"{self.dim}; every video of a sequence needs the same")
        return features, intervals.astype(np.float64)


class _Tally:
    """What the loader had to adapt, for the description."""

    def __init__(self) -> None:
        self.non_finite: dict[str, int] = {}
        self.videos_without: dict[str, int] = {}


def _video_dialogue(video: str, task: str, labels: _Csd, features: Mapping[str, _Csd],
                    words: _Csd | None, keep_sequences: bool, tally: _Tally) -> Dialogue:
    label_rows, segments = labels.read(video)
    where = f"{labels.path}: key '{labels.name}/data/{video}/features'"
    if label_rows.shape[1] < len(LABEL_COLUMNS):
        raise DataFormatError(f"{where}: expected {len(LABEL_COLUMNS)} columns "
                              f"{list(LABEL_COLUMNS)}, got {label_rows.shape[1]}")
    streams = {}
    for modality, csd in features.items():
        if video in csd:
            streams[modality] = csd.read(video)
        else:
            tally.videos_without[modality] = tally.videos_without.get(modality, 0) + 1
    word_rows = words.read(video, numeric=False) if words is not None and video in words \
        else None

    utterances = []
    for index in np.lexsort((np.arange(len(segments)), segments[:, 0])):
        row = label_rows[index]
        if not np.all(np.isfinite(row[:len(LABEL_COLUMNS)])):
            raise DataFormatError(f"{where}: segment {index} holds NaN or infinite labels")
        start, end = float(segments[index, 0]), float(segments[index, 1])
        if end < start:
            raise DataFormatError(f"{labels.path}: key '{labels.name}/data/{video}/intervals': "
                                  f"segment {index} ends ({end}) before it starts ({start})")
        record = {modality: _segment_features(rows, times, start, end, keep_sequences,
                                              modality, tally)
                  for modality, (rows, times) in streams.items()}
        text = "" if word_rows is None else _segment_text(*word_rows, start, end)
        extra = {name: f"{float(value):g}"
                 for name, value in zip(LABEL_COLUMNS, row, strict=False)}
        utterances.append(Utterance(
            uid=f"{video}[{index}]", speaker=video, text=text, start=start, end=end,
            label=task_labels(task)[label_index(task, row)], features=record, extra=extra))
    return Dialogue(did=video, utterances=utterances)


def _segment_features(rows: np.ndarray, times: np.ndarray, start: float, end: float,
                      keep_sequences: bool, modality: str, tally: _Tally) -> ModalityFeatures:
    inside = rows_in_segment(times, start, end)
    if not inside.any():
        return ModalityFeatures.missing()
    values = rows[inside].astype(np.float64)  # (positions, dim)
    finite = np.isfinite(values)
    tally.non_finite[modality] = tally.non_finite.get(modality, 0) + int((~finite).sum())
    values = np.where(finite, values, 0.0).astype(np.float32)
    if not keep_sequences:
        return ModalityFeatures(global_vector=values.mean(axis=0))
    offsets = times[inside].mean(axis=1) - start  # (positions,) seconds from the segment start
    return ModalityFeatures(global_vector=values.mean(axis=0), local=values,
                            position_times=offsets)


def _segment_text(words: np.ndarray, times: np.ndarray, start: float, end: float) -> str:
    tokens = []
    for value in words[rows_in_segment(times, start, end)].reshape(-1):
        token = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        if token != _SILENCE_WORD:
            tokens.append(token)
    return " ".join(tokens)


def _splits(videos: list[str], folds: Mapping[str, Iterable[str]] | None
            ) -> tuple[dict[str, list[str]], int]:
    """Split name -> video ids, and how many fold ids were absent from the label file."""
    if folds is None:
        n_train = int(_TRAIN_SHARE * len(videos))
        n_valid = int(_VALID_SHARE * len(videos))
        return {"train": videos[:n_train], "valid": videos[n_train:n_train + n_valid],
                "test": videos[n_train + n_valid:]}, 0
    if sorted(folds) != ["test", "train", "valid"]:
        raise ValueError(f"folds must have the keys 'train', 'valid', 'test', got {sorted(folds)}")
    known = set(videos)
    splits: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    skipped = 0
    for split in ("train", "valid", "test"):
        splits[split] = []
        for video in folds[split]:
            if video in owner:
                raise ValueError(f"folds: video {video} is in both {owner[video]!r} and "
                                 f"{split!r}")
            owner[video] = split
            if video in known:
                splits[split].append(video)
            else:
                skipped += 1
    return splits, skipped


def _description(task: str, label_names: tuple[str, ...], splits: Mapping[str, list[str]],
                 official: bool, skipped: int, features: Mapping[str, _Csd], has_words: bool,
                 keep_sequences: bool, tally: _Tally) -> str:
    counts = ", ".join(f"{split} {len(ids)}" for split, ids in splits.items())
    split_rule = ("from the given folds" + (f" ({skipped} fold ids not in the label file "
                                            f"skipped)" if skipped else "")
                  if official else "sorted video ids cut 70/10/20, not the official folds")
    parts = [f"CMU-MOSEI, task {task} ({' '.join(label_names)}), from the SDK .csd files: "
             f"videos as dialogues ({counts}; {split_rule})."]
    found = [f"{modality} {csd.dim} ('{csd.name}')" for modality, csd in features.items()
             if csd.dim is not None]
    parts.append(f"Dimensions found: {', '.join(found) or 'none'}.")
    for modality, count in tally.videos_without.items():
        parts.append(f"{count} videos have no {modality} features.")
    for modality, count in tally.non_finite.items():
        if count:
            parts.append(f"{count} non-finite {modality} values were set to 0.")
    if not has_words:
        parts.append("No words file given: utterance text is empty.")
    if keep_sequences:
        parts.append("Utterance vectors are segment means; the frame rows are kept as local "
                     "sequences for HGF.")
    else:
        parts.append("Utterance-level vectors only (segment means), so HGF has nothing to "
                     "localise and the `corect` variant is the natural model.")
    return " ".join(parts)
