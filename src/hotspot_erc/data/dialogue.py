"""The conversation data model: dialogues, utterances and per-modality feature records.

A :class:`Dataset` is a list of :class:`Dialogue` objects plus a label vocabulary, the splits
(split name -> dialogue ids) and a :class:`FeatureSpec` saying which extractor produced each
modality. Every utterance holds, per modality it has, one :class:`ModalityFeatures` record:

* ``global_vector`` ``(global_dim,)``: an utterance-level vector (sentence embedding, acoustic
  functionals, mean face descriptor);
* ``local`` ``(positions, local_dim)``: the local sequence (tokens, audio frames, video frames);
* ``local_mask`` ``(positions,)``: which positions are real (a video frame without a face is False);
* ``prior`` ``(positions,)`` in [0, 1], optional: a rule-based hotspot score per position;
* ``hotspot_truth`` ``(positions,)`` bool, optional: the ground-truth hotspot (synthetic data);
* ``position_times`` ``(positions,)`` seconds from the utterance start, optional (for explanations);
* ``present``: False means the modality is missing for this utterance. A missing modality is
  stored without arrays; nothing downstream may read it as data.

A modality that is absent from ``Utterance.features`` is missing, exactly like ``present=False``.
Labels are stored as names (``"hap"``); the dataset's ``label_names`` fixes their indices.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

MODALITIES: tuple[str, ...] = ("text", "audio", "video")


class DataFormatError(ValueError):
    """A data file or record is malformed. The message names the file and the field."""


@dataclass
class ModalityFeatures:
    """Features of one modality of one utterance (see the module docstring for shapes)."""

    global_vector: np.ndarray | None = None
    local: np.ndarray | None = None
    local_mask: np.ndarray | None = None
    prior: np.ndarray | None = None
    hotspot_truth: np.ndarray | None = None
    position_times: np.ndarray | None = None
    present: bool = True

    def __post_init__(self) -> None:
        if not self.present:
            return
        if self.global_vector is None and self.local is None:
            raise DataFormatError("a present modality needs a global_vector or a local sequence")
        if self.global_vector is not None:
            self.global_vector = np.asarray(self.global_vector, dtype=np.float32)
            if self.global_vector.ndim != 1:
                raise DataFormatError(
                    f"global_vector: expected shape (dim,), got {self.global_vector.shape}")
        if self.local is None:
            # Utterance-level features only: the local sequence is the global vector, one position.
            self.local = self.global_vector[None, :]
        self.local = np.asarray(self.local, dtype=np.float32)
        if self.local.ndim != 2 or self.local.shape[0] == 0:
            raise DataFormatError(
                f"local: expected shape (positions >= 1, dim), got {self.local.shape}")
        positions = self.local.shape[0]
        if self.local_mask is None:
            self.local_mask = np.ones(positions, dtype=bool)
        self.local_mask = np.asarray(self.local_mask, dtype=bool)
        if self.global_vector is None:
            if self.local_mask.shape != (positions,):
                raise DataFormatError(f"local_mask: expected shape ({positions},) to match local, "
                                      f"got {self.local_mask.shape}")
            if not self.local_mask.any():
                raise DataFormatError("a present modality given only a local sequence needs at "
                                      "least one valid position (local_mask) to form its global "
                                      "vector")
            self.global_vector = self.local[self.local_mask].mean(axis=0)
        for name in ("local_mask", "prior", "hotspot_truth", "position_times"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (positions,):
                raise DataFormatError(
                    f"{name}: expected shape ({positions},) to match local, got {np.shape(value)}")
        if self.prior is not None:
            self.prior = np.asarray(self.prior, dtype=np.float32)
            if np.any(~np.isfinite(self.prior)) or self.prior.min() < 0 or self.prior.max() > 1:
                raise DataFormatError("prior: values must be finite and in [0, 1]")
        if self.hotspot_truth is not None:
            self.hotspot_truth = np.asarray(self.hotspot_truth, dtype=bool)
        if self.position_times is not None:
            self.position_times = np.asarray(self.position_times, dtype=np.float32)
        if not np.all(np.isfinite(self.global_vector)) or not np.all(
                np.isfinite(self.local[self.local_mask])):
            raise DataFormatError("features contain NaN or infinite values")

    @classmethod
    def missing(cls) -> ModalityFeatures:
        return cls(present=False)

    @property
    def num_positions(self) -> int:
        return 0 if self.local is None else int(self.local.shape[0])


@dataclass
class Utterance:
    """One turn of a dialogue. ``label`` is a label name or None (unlabelled, e.g. prediction).

    ``scored=False`` keeps a labelled utterance as dialogue context without scoring it (for
    example the non-4-way utterances of IEMOCAP when they are kept as context).
    ``extra`` holds further annotations by name (e.g. MELD's ``sentiment``).
    ``media`` maps a modality to a recording of this utterance alone (a RAVDESS file); then
    ``start``/``end`` are times in that file (None: the whole file). Without it the utterance is
    cut from its dialogue's recording (``Dialogue.media``) by ``start``/``end``.
    """

    uid: str
    speaker: str
    text: str = ""
    start: float | None = None
    end: float | None = None
    label: str | None = None
    scored: bool = True
    features: dict[str, ModalityFeatures] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    media: dict[str, str] = field(default_factory=dict)

    def has(self, modality: str) -> bool:
        record = self.features.get(modality)
        return record is not None and record.present


@dataclass
class Dialogue:
    """An ordered list of utterances. ``media`` maps a modality to a recording path, if any."""

    did: str
    utterances: list[Utterance]
    media: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def speakers(self) -> list[str]:
        """Distinct speakers in order of first appearance."""
        return list(dict.fromkeys(u.speaker for u in self.utterances))


_SPEC_FIELDS = ("extractor", "version", "global_dim", "local_dim", "rate_hz")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass
class ModalitySpec:
    """How one modality's features were made: extractor name and version, and dimensions."""

    extractor: str
    version: str
    global_dim: int
    local_dim: int
    rate_hz: float | None = None

    def to_dict(self) -> dict:
        return {"extractor": self.extractor, "version": self.version,
                "global_dim": self.global_dim, "local_dim": self.local_dim,
                "rate_hz": self.rate_hz}

    @classmethod
    def from_dict(cls, data: dict) -> ModalitySpec:
        """The spec saved by :meth:`to_dict`; a missing or malformed field is a
        :class:`DataFormatError` naming it."""
        if not isinstance(data, dict):
            raise DataFormatError(f"expected an object with the fields {', '.join(_SPEC_FIELDS)}, "
                                  f"got {type(data).__name__}")
        for name, valid, wanted in (
                ("extractor", lambda v: isinstance(v, str) and v, "a name"),
                ("version", lambda v: isinstance(v, str), "a string"),
                ("global_dim", _positive_int, "an integer >= 1"),
                ("local_dim", _positive_int, "an integer >= 1"),
                ("rate_hz", lambda v: v is None or (isinstance(v, (int, float))
                                                    and not isinstance(v, bool) and v > 0
                                                    and math.isfinite(v)), "a number > 0 or null")):
            if name not in data and name != "rate_hz":
                raise DataFormatError(f"field {name!r} is missing (a modality spec has "
                                      f"{', '.join(_SPEC_FIELDS)})")
            if not valid(data.get(name)):
                raise DataFormatError(f"field {name!r}: expected {wanted}, got "
                                      f"{data.get(name)!r:.60}")
        return cls(extractor=data["extractor"], version=data["version"],
                   global_dim=data["global_dim"], local_dim=data["local_dim"],
                   rate_hz=None if data.get("rate_hz") is None else float(data["rate_hz"]))


@dataclass
class FeatureSpec:
    """Which features a dataset (or a checkpoint) has, per modality."""

    modalities: dict[str, ModalitySpec] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {name: spec.to_dict() for name, spec in self.modalities.items()}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpec:
        if not isinstance(data, dict):
            raise DataFormatError(f"expected an object of modality specs, got "
                                  f"{type(data).__name__}")
        modalities = {}
        for name, spec in data.items():
            try:
                modalities[name] = ModalitySpec.from_dict(spec)
            except DataFormatError as error:
                raise DataFormatError(f"modality {name!r}: {error}") from None
        return cls(modalities)

    def mismatches(self, other: FeatureSpec) -> list[str]:
        """Human-readable differences between what ``self`` expects and what ``other`` has."""
        problems = []
        for name, expected in self.modalities.items():
            found = other.modalities.get(name)
            if found is None:
                continue  # a missing modality is allowed: it is masked
            for key in ("extractor", "version", "global_dim", "local_dim"):
                if getattr(expected, key) != getattr(found, key):
                    problems.append(f"{name}.{key}: expected {getattr(expected, key)!r}, "
                                    f"found {getattr(found, key)!r}")
        return problems


@dataclass
class Dataset:
    """Dialogues, the label vocabulary, the splits and the feature specification."""

    name: str
    dialogues: list[Dialogue]
    label_names: list[str]
    splits: dict[str, list[str]]
    feature_spec: FeatureSpec = field(default_factory=FeatureSpec)
    description: str = ""

    def __post_init__(self) -> None:
        self._by_id = {d.did: d for d in self.dialogues}
        if len(self._by_id) != len(self.dialogues):
            raise DataFormatError(f"dataset {self.name}: duplicate dialogue ids")
        for split, ids in self.splits.items():
            unknown = [did for did in ids if did not in self._by_id]
            if unknown:
                raise DataFormatError(
                    f"dataset {self.name}: split {split!r} names unknown dialogues {unknown[:3]}")
        known = set(self.label_names)
        for dialogue in self.dialogues:
            for utt in dialogue.utterances:
                if utt.label is not None and utt.label not in known:
                    raise DataFormatError(
                        f"dataset {self.name}: utterance {utt.uid} has unknown label "
                        f"{utt.label!r}; expected one of {self.label_names}")

    def split(self, name: str) -> list[Dialogue]:
        if name not in self.splits:
            raise KeyError(f"dataset {self.name} has no split {name!r}; "
                           f"splits: {sorted(self.splits)}")
        return [self._by_id[did] for did in self.splits[name]]

    def dialogue(self, did: str) -> Dialogue:
        return self._by_id[did]

    def __iter__(self) -> Iterator[Dialogue]:
        return iter(self.dialogues)

    @property
    def modalities(self) -> list[str]:
        """Modalities present in at least one utterance, in canonical order."""
        found = {m for d in self.dialogues for u in d.utterances for m in u.features
                 if u.has(m)}
        return [m for m in MODALITIES if m in found]

    def label_index(self, label: str) -> int:
        return self.label_names.index(label)

    def stats(self) -> dict[str, dict]:
        """Per split: dialogue and utterance counts (scored ones) and label counts."""
        table = {}
        for split in self.splits:
            dialogues = self.split(split)
            scored = [u for d in dialogues for u in d.utterances if u.scored and u.label]
            counts = {name: 0 for name in self.label_names}
            for utt in scored:
                counts[utt.label] += 1
            table[split] = {"dialogues": len(dialogues),
                            "utterances": sum(len(d) for d in dialogues),
                            "scored": len(scored), "labels": counts}
        return table

