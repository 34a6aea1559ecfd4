"""The on-disk feature store: one format for extracted or generated features.

Layout under ``root``::

    store.json                                  metadata: everything but the feature arrays
    <modality>/<key>/spec.json                  the ModalitySpec of those features
    <modality>/<key>/<id>.npz                   one file per dialogue (id made file-safe)

where ``<key>`` is :meth:`FeatureStore.features_key`: ``<extractor>@<version>+<digest of the
recipe>``, so features made with other options never share a folder.

``store.json`` holds ``format_version``, ``name``, ``label_names``, ``splits``, ``description``,
``half`` and per dialogue its ``did``, ``media`` and utterance metadata (``uid``, ``speaker``,
``text``, ``start``, ``end``, ``label``, ``scored``, ``extra``, ``media``).

A dialogue file holds, for its ``N`` utterances in order, with ``P`` the total number of local
positions of the present ones (local sequences are concatenated, not padded):

* ``uids`` ``(N,)`` str, checked against ``store.json`` so a stale file cannot be read silently;
* ``present`` ``(N,)`` bool and ``positions`` ``(N,)`` int (0 for a missing modality);
* ``global_vector`` ``(N, global_dim)`` float32 (zeros where missing);
* ``local`` ``(P, local_dim)``: float32, or float16 when the store was created with
  ``half=True`` (halves the disk and memory of the largest arrays; values beyond the float16
  range are refused rather than stored as infinities); read back as float32;
* ``local_mask`` ``(P,)`` bool;
* optional ``prior`` ``(P,)`` float32, ``hotspot_truth`` ``(P,)`` bool and ``position_times``
  ``(P,)`` float32, each with ``has_<name>`` ``(N,)`` bool saying which utterances have it.

Arrays are written with ``np.savez`` and read with ``allow_pickle=False``: nothing is pickled.
Every file is written atomically (temporary file in the same folder, flush, fsync,
``os.replace``), so an interrupted run never leaves a half file and a dialogue file that exists
is complete; extraction resumes by skipping the dialogues that :meth:`FeatureStore.has`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import quote

import numpy as np

from hotspot_erc.atomic import atomic_open
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
from hotspot_erc.data.safe_npz import read_npz

FORMAT_VERSION = 1
METADATA_FILE = "store.json"
SPEC_FILE = "spec.json"
OPTIONAL_ARRAYS = ("prior", "hotspot_truth", "position_times")
FLOAT16_MAX = float(np.finfo(np.float16).max)


class FeatureStore:
    """A feature store on disk (see the module docstring for the layout).

    ``FeatureStore(root)`` opens an existing store; :meth:`create` makes (or resumes) one.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        metadata_path = self.root / METADATA_FILE
        if not metadata_path.is_file():
            raise DataFormatError(f"{metadata_path}: no feature store here ({METADATA_FILE} "
                                  "is missing; create one with FeatureStore.create)")
        self._metadata = _parse_metadata(metadata_path)
        self.half = bool(self._metadata["half"])
        self._dialogues = {d["did"]: d for d in self._metadata["dialogues"]}

    @classmethod
    def create(cls, root: str | os.PathLike, dataset: Dataset, half: bool = False
               ) -> FeatureStore:
        """Write ``store.json`` for ``dataset`` (no features), or resume an existing store.

        An existing store is reused when it holds the same dialogues with the same utterance ids
        in the same order (its feature files stay valid); its metadata is then rewritten if the
        dataset's differs (e.g. corrected labels). Different dialogues, or a different ``half``,
        are an error: the caller must pick another folder.
        """
        root = Path(root)
        metadata = _dataset_metadata(dataset, half)
        metadata_path = root / METADATA_FILE
        if metadata_path.is_file():
            existing = _parse_metadata(metadata_path)
            if _utterance_layout(existing) != _utterance_layout(metadata):
                raise DataFormatError(
                    f"{metadata_path}: the store holds other dialogues or utterances than "
                    f"dataset {dataset.name!r}; use an empty folder for a new store")
            if bool(existing["half"]) != half:
                raise DataFormatError(
                    f"{metadata_path}: field 'half' is {existing['half']}, asked {half}; "
                    "a store keeps one precision")
            if existing == metadata:
                return cls(root)
        root.mkdir(parents=True, exist_ok=True)
        _atomic_write(metadata_path, lambda handle: handle.write(
            json.dumps(metadata, indent=1).encode("utf-8")))
        return cls(root)

    @staticmethod
    def features_key(spec: ModalitySpec) -> str:
        """The folder of ``spec``'s features: ``extractor@version+<digest>``, the digest being
        :func:`short_digest` of the recipe (``extractor@version`` for an empty recipe), so any
        change of an option gives a new folder. This is the one cache key of feature sets;
        neither part may hold a path separator."""
        key = f"{spec.extractor}@{spec.version}"
        if any(sep in key for sep in ("/", "\\")) or key.startswith("."):
            raise DataFormatError(f"feature spec: extractor {spec.extractor!r} and version "
                                  f"{spec.version!r} must not contain '/' or '\\' or start "
                                  "with '.' (they name a folder of the store)")
        if spec.recipe:
            key += "+" + short_digest([json.dumps(spec.recipe, sort_keys=True)])
        return key

    def has(self, modality: str, key: str, did: str) -> bool:
        return self._dialogue_path(modality, key, did).is_file()

    def write(self, modality: str, spec: ModalitySpec, did: str,
              records: list[ModalityFeatures]) -> None:
        """Write one dialogue's features of ``modality``: one record per utterance, in order."""
        if did not in self._dialogues:
            raise DataFormatError(f"{self.root / METADATA_FILE}: no dialogue {did!r} in the store")
        utterances = self._dialogues[did]["utterances"]
        if len(records) != len(utterances):
            raise DataFormatError(
                f"dialogue {did}, modality {modality}: got {len(records)} records, expected "
                f"{len(utterances)} (one per utterance)")
        key = self.features_key(spec)
        folder = self.root / modality / key
        spec_path = folder / SPEC_FILE
        spec_is_new = _check_spec(spec_path, spec)
        # Validate every record before touching the disk: a refused write leaves no trace.
        arrays = _pack_records(records, [u["uid"] for u in utterances], spec, did, modality,
                               self.half)
        if spec_is_new:
            folder.mkdir(parents=True, exist_ok=True)
            _atomic_write(spec_path, lambda handle: handle.write(
                json.dumps(spec.to_dict(), indent=1).encode("utf-8")))
        _atomic_write(self._dialogue_path(modality, key, did),
                      lambda handle: _write_npz(handle, arrays))

    def available(self) -> dict[str, list[str]]:
        """Modality -> feature keys that have a ``spec.json`` (modalities in canonical order)."""
        found: dict[str, list[str]] = {}
        for modality_dir in sorted((p for p in self.root.iterdir() if p.is_dir()),
                                   key=lambda p: _modality_order(p.name)):
            keys = sorted(p.name for p in modality_dir.iterdir() if (p / SPEC_FILE).is_file())
            if keys:
                found[modality_dir.name] = keys
        return found

    def load_dataset(self, features: dict[str, str] | None = None) -> Dataset:
        """Load every dialogue with the chosen features (see :meth:`iter_dialogues`)."""
        specs = self._resolve_features(features)
        dialogues = [self._load_dialogue(did, specs) for did in self._dialogues]
        return self._dataset(dialogues, specs)

    def iter_dialogues(self, split: str, features: dict[str, str] | None = None
                       ) -> Iterator[Dialogue]:
        """Yield the dialogues of ``split`` one at a time, reading each one's arrays on demand.

        ``features`` maps a modality to a feature key; by default every modality that has
        exactly one key. Only the arrays of the dialogue being yielded are in memory.
        """
        splits = self._metadata["splits"]
        if split not in splits:
            raise KeyError(f"{self.root / METADATA_FILE}: no split {split!r}; "
                           f"splits: {sorted(splits)}")
        specs = self._resolve_features(features)
        for did in splits[split]:
            yield self._load_dialogue(did, specs)

    def metadata_dataset(self, features: dict[str, str] | None = None) -> Dataset:
        """The dataset's dialogues without arrays, with the feature spec of ``features``.

        This is what lazy consumers need up front (label names, splits, dimensions) while
        :meth:`iter_dialogues` streams the arrays.
        """
        specs = self._resolve_features(features)
        return self._dataset([self._dialogue_shell(did) for did in self._dialogues], specs)

    def _dataset(self, dialogues: list[Dialogue], specs: dict[str, tuple[str, ModalitySpec]]
                 ) -> Dataset:
        meta = self._metadata
        feature_spec = FeatureSpec({m: spec for m, (_, spec) in specs.items()})
        return Dataset(meta["name"], dialogues, list(meta["label_names"]),
                       {k: list(v) for k, v in meta["splits"].items()}, feature_spec,
                       meta["description"])

    def _resolve_features(self, features: dict[str, str] | None
                          ) -> dict[str, tuple[str, ModalitySpec]]:
        """Modality -> (key, spec) for the chosen features."""
        available = self.available()
        if features is None:
            ambiguous = {m: keys for m, keys in available.items() if len(keys) > 1}
            if ambiguous:
                listing = "; ".join(f"{m}: {', '.join(keys)}" for m, keys in ambiguous.items())
                raise DataFormatError(
                    f"{self.root}: several feature sets for a modality ({listing}); choose one "
                    "per modality with features={modality: key}")
            features = {m: keys[0] for m, keys in available.items()}
        chosen = {}
        # Canonical modality order whatever the caller's: models concatenate in spec order.
        for modality, key in sorted(features.items(), key=lambda item: _modality_order(item[0])):
            if key not in available.get(modality, []):
                raise DataFormatError(
                    f"{self.root}: no features {key!r} for modality {modality!r}; "
                    f"available: {available}")
            spec_path = self.root / modality / key / SPEC_FILE
            chosen[modality] = (key, _parse_spec(spec_path))
        return chosen

    def _dialogue_shell(self, did: str) -> Dialogue:
        entry = self._dialogues[did]
        utterances = [Utterance(uid=u["uid"], speaker=u["speaker"], text=u["text"],
                                start=u["start"], end=u["end"], label=u["label"],
                                scored=u["scored"], extra=dict(u["extra"]),
                                media=dict(u["media"]))
                      for u in entry["utterances"]]
        return Dialogue(did, utterances, dict(entry["media"]))

    def _load_dialogue(self, did: str, specs: dict[str, tuple[str, ModalitySpec]]) -> Dialogue:
        dialogue = self._dialogue_shell(did)
        uids = [u.uid for u in dialogue.utterances]
        for modality, (key, spec) in specs.items():
            path = self._dialogue_path(modality, key, did)
            if not path.is_file():
                raise DataFormatError(
                    f"{path}: missing: modality {modality} ({key}) has no features for dialogue "
                    f"{did}; the extraction is incomplete (run it again to resume)")
            records = _read_records(path, uids, spec)
            for utterance, record in zip(dialogue.utterances, records, strict=True):
                utterance.features[modality] = record
        return dialogue

    def _dialogue_path(self, modality: str, key: str, did: str) -> Path:
        # quote() is injective, so distinct dialogue ids never share a file.
        return self.root / modality / key / f"{quote(did, safe='-_.')}.npz"


def short_digest(chunks: Iterable[str], length: int = 12) -> str:
    """The first ``length`` hex digits of a SHA-256 over ``chunks`` (UTF-8, lone surrogates
    kept): the one digest behind every cache key (feature sets, cache folders of datasets)."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:length]


def save_dataset(dataset: Dataset, root: str | os.PathLike, half: bool = False) -> FeatureStore:
    """Write ``dataset``'s metadata and every modality of its ``feature_spec`` to ``root``."""
    store = FeatureStore.create(root, dataset, half=half)
    for modality, spec in dataset.feature_spec.modalities.items():
        for dialogue in dataset:
            records = [u.features.get(modality) or ModalityFeatures.missing()
                       for u in dialogue.utterances]
            store.write(modality, spec, dialogue.did, records)
    return store


def load_store(root: str | os.PathLike, features: dict[str, str] | None = None) -> Dataset:
    """Open the store at ``root`` and load it eagerly."""
    return FeatureStore(root).load_dataset(features)


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``path`` through a temporary sibling, then rename: readers see all or nothing."""
    with atomic_open(path, "wb") as handle:
        write(handle)


def _write_npz(handle: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    np.savez(handle, **arrays)


def _modality_order(name: str) -> tuple[int, str]:
    return (MODALITIES.index(name) if name in MODALITIES else len(MODALITIES), name)


def _dataset_metadata(dataset: Dataset, half: bool) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "name": dataset.name,
        "label_names": list(dataset.label_names),
        "splits": {name: list(ids) for name, ids in dataset.splits.items()},
        "description": dataset.description,
        "half": bool(half),
        "dialogues": [{
            "did": dialogue.did,
            "media": dict(dialogue.media),
            "utterances": [{"uid": u.uid, "speaker": u.speaker, "text": u.text,
                            "start": u.start, "end": u.end, "label": u.label,
                            "scored": u.scored, "extra": dict(u.extra),
                            "media": dict(u.media)}
                           for u in dialogue.utterances],
        } for dialogue in dataset],
    }


def _utterance_layout(metadata: dict) -> list[tuple[str, list[str]]]:
    """What feature files depend on: the dialogues and their utterance ids, in order."""
    return [(d["did"], [u["uid"] for u in d["utterances"]]) for d in metadata["dialogues"]]


def _require(container: dict, key: str, path: Path, where: str, kinds: type | tuple):
    if not isinstance(container, dict) or key not in container:
        raise DataFormatError(f"{path}: field {where}{key} is missing")
    value = container[key]
    if not isinstance(value, kinds):
        raise DataFormatError(f"{path}: field {where}{key} has type {type(value).__name__}, "
                              f"expected {kinds}")
    return value


def _parse_metadata(path: Path) -> dict:
    """Read and check ``store.json``; fill optional utterance fields with their defaults."""
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataFormatError(f"{path}: not readable JSON ({error})") from error
    if not isinstance(metadata, dict):
        raise DataFormatError(f"{path}: expected a JSON object at the top level")
    version = _require(metadata, "format_version", path, "", int)
    if version > FORMAT_VERSION:
        raise DataFormatError(f"{path}: field format_version is {version}; this version of "
                              f"hotspot-erc reads up to {FORMAT_VERSION}")
    _require(metadata, "name", path, "", str)
    _require(metadata, "label_names", path, "", list)
    splits = _require(metadata, "splits", path, "", dict)
    _require(metadata, "half", path, "", bool)
    metadata.setdefault("description", "")
    known = set()
    for d_index, dialogue in enumerate(_require(metadata, "dialogues", path, "", list)):
        where = f"dialogues[{d_index}]."
        known.add(_require(dialogue, "did", path, where, str))
        dialogue.setdefault("media", {})
        for u_index, utterance in enumerate(_require(dialogue, "utterances", path, where, list)):
            u_where = f"{where}utterances[{u_index}]."
            _require(utterance, "uid", path, u_where, str)
            _require(utterance, "speaker", path, u_where, str)
            _require(utterance, "label", path, u_where, (str, type(None)))
            for name, default in (("text", ""), ("start", None), ("end", None),
                                  ("scored", True), ("extra", {}), ("media", {})):
                utterance.setdefault(name, default)
    for split, ids in splits.items():
        unknown = [did for did in ids if did not in known]
        if unknown:
            raise DataFormatError(f"{path}: field splits.{split} names unknown dialogues "
                                  f"{unknown[:3]}")
    return metadata


def _parse_spec(path: Path) -> ModalitySpec:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise DataFormatError(f"{path}: not readable JSON ({error})") from error
    try:
        return ModalitySpec.from_dict(data)
    except DataFormatError as error:
        raise DataFormatError(f"{path}: {error}") from None


def _check_spec(path: Path, spec: ModalitySpec) -> bool:
    """True if ``path`` is still to be written; an existing different spec is an error."""
    if not path.is_file():
        return True
    stored = _parse_spec(path)
    if stored != spec:
        raise DataFormatError(
            f"{path}: these features were written with spec {stored.to_dict()}, now asked "
            f"{spec.to_dict()}; a changed extractor needs a new version")
    return False


def _pack_records(records: list[ModalityFeatures], uids: list[str], spec: ModalitySpec,
                  did: str, modality: str, half: bool) -> dict[str, np.ndarray]:
    """Validate one dialogue's records against ``spec`` and pack them into flat arrays."""
    count = len(records)
    present = np.array([r.present for r in records], dtype=bool)
    positions = np.array([r.num_positions if r.present else 0 for r in records], dtype=np.int64)
    global_vector = np.zeros((count, spec.global_dim), dtype=np.float32)
    for index, (uid, record) in enumerate(zip(uids, records, strict=True)):
        if not record.present:
            continue
        where = f"dialogue {did}, utterance {uid}, modality {modality}"
        if record.global_vector.shape != (spec.global_dim,):
            raise DataFormatError(f"{where}: field global_vector has shape "
                                  f"{record.global_vector.shape}, expected ({spec.global_dim},)")
        if record.local.shape[1] != spec.local_dim:
            raise DataFormatError(f"{where}: field local has {record.local.shape[1]} channels, "
                                  f"expected {spec.local_dim} from the spec")
        if half and np.abs(record.local).max() > FLOAT16_MAX:
            raise DataFormatError(f"{where}: field local exceeds the float16 range; "
                                  "store it with half=False")
        global_vector[index] = record.global_vector
    kept = [r for r in records if r.present]
    local_dtype = np.float16 if half else np.float32
    arrays = {
        "uids": np.array(uids, dtype=str),
        "present": present,
        "positions": positions,
        "global_vector": global_vector,
        "local": _concatenate([r.local for r in kept], (0, spec.local_dim), local_dtype),
        "local_mask": _concatenate([r.local_mask for r in kept], (0,), bool),
    }
    for name in OPTIONAL_ARRAYS:
        has = np.array([r.present and getattr(r, name) is not None for r in records])
        if not has.any():
            continue
        dtype = bool if name == "hotspot_truth" else np.float32
        arrays[f"has_{name}"] = has
        arrays[name] = _concatenate(
            [getattr(r, name) if getattr(r, name) is not None else np.zeros(r.num_positions)
             for r in kept], (0,), dtype)
    return arrays


def _concatenate(parts: list[np.ndarray], empty_shape: tuple[int, ...], dtype) -> np.ndarray:
    if not parts:
        return np.zeros(empty_shape, dtype=dtype)
    return np.concatenate(parts).astype(dtype)


def records_as_stored(records: list[ModalityFeatures], uids: list[str], spec: ModalitySpec,
                      did: str, modality: str) -> list[ModalityFeatures]:
    """``records`` exactly as a store of ``half=False`` writes and reads them back (validated,
    in the stored dtypes), without the disk: features used at once need not be stored."""
    if len(records) != len(uids):
        raise DataFormatError(f"dialogue {did}, modality {modality}: got {len(records)} "
                              f"records, expected {len(uids)} (one per utterance)")
    arrays = _pack_records(records, uids, spec, did, modality, half=False)
    return _unpack_records(arrays, uids, spec, f"dialogue {did}, modality {modality}")


def _read_records(path: Path, uids: list[str], spec: ModalitySpec) -> list[ModalityFeatures]:
    """Read one dialogue file and unpack it into one record per utterance."""
    return _unpack_records(read_npz(path), uids, spec, str(path))


def _unpack_records(arrays: dict[str, np.ndarray], uids: list[str], spec: ModalitySpec,
                    path: str) -> list[ModalityFeatures]:
    """One record per utterance from one dialogue's arrays; ``path`` names them in errors."""
    count = len(uids)

    def field(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in arrays:
            raise DataFormatError(f"{path}: field {name} is missing")
        if arrays[name].shape != shape:
            raise DataFormatError(f"{path}: field {name} has shape {arrays[name].shape}, "
                                  f"expected {shape}")
        return arrays[name]

    stored_uids = field("uids", (count,))
    if stored_uids.tolist() != uids:
        raise DataFormatError(f"{path}: field uids does not match the utterances of "
                              f"{METADATA_FILE}; the file belongs to another version of the data")
    present = field("present", (count,)).astype(bool)
    positions = field("positions", (count,)).astype(np.int64)
    if np.any(positions < 0) or np.any(present & (positions == 0)):
        raise DataFormatError(f"{path}: field positions: expected >= 1 per present utterance")
    total = int(positions[present].sum())
    global_vector = field("global_vector", (count, spec.global_dim))
    local = field("local", (total, spec.local_dim))
    local_mask = field("local_mask", (total,))
    optional = {}
    for name in OPTIONAL_ARRAYS:
        if f"has_{name}" in arrays or name in arrays:
            optional[name] = (field(f"has_{name}", (count,)).astype(bool), field(name, (total,)))
    records, offset = [], 0
    for index in range(count):
        if not present[index]:
            records.append(ModalityFeatures.missing())
            continue
        span = slice(offset, offset + int(positions[index]))
        offset = span.stop
        extras = {name: values[span] if has[index] else None
                  for name, (has, values) in optional.items()}
        try:
            records.append(ModalityFeatures(global_vector=global_vector[index], local=local[span],
                                            local_mask=local_mask[span], **extras))
        except DataFormatError as error:
            raise DataFormatError(f"{path}: utterance {uids[index]}: {error}") from error
    return records
