"""Read the processed feature packs of the graph-ERC repositories into a :class:`Dataset`.

Two families of pickles, both read with :func:`~hotspot_erc.data.safe_pickle.safe_load`:

**CORECT / COGMEN processed pickles** (``data_iemocap.pkl``, ``data_iemocap_4.pkl``, the CMU-MOSEI
ones): a dict ``{"train": [...], "dev": [...], "test": [...]}`` holding one record per dialogue.
CORECT writes a dict per dialogue with the keys ``vid``, ``speakers``, ``labels``, ``text``,
``audio``, ``visual``, ``sentence``; COGMEN (and CORECT's MOSEI script) pickle a ``Sample`` object
with the attributes ``vid``, ``speaker``, ``label``, ``text``, ``audio``, ``visual``, ``sentence``
and, in COGMEN, ``sbert_sentence_embeddings``. When a record has ``sbert_sentence_embeddings``,
those are its text vectors: they are what COGMEN's model reads, while its ``text`` holds the
100-d vectors copied from the DialogueRNN pack. ``dev`` becomes the split ``valid``. Documented
dimensions: IEMOCAP text 768 (sentence-BERT), audio 100, visual 512; CMU-MOSEI 768, 80, 35.

**DialogueRNN / MMGCN feature tuples** (``IEMOCAP_features.pkl``, ``IEMOCAP_features_4.pkl``,
MELD's ``MELD_features_raw*.pkl``): a tuple of dicts keyed by dialogue id, then the train and test
id lists. The entries, in order, are those of :data:`MMGCN_LAYOUTS`:

* IEMOCAP (9): ``videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoVisual,
  videoSentence, trainVid, testVid``;
* MELD, DialogueRNN (9): ``videoIDs, videoSpeakers, videoLabels, videoText, videoAudio,
  videoSentence, trainVid, testVid, videoSentiments`` (no visual features);
* MELD, MMGCN (10): the same with ``videoVisual`` after ``videoAudio``.

Documented IEMOCAP dimensions: text 100, audio 100 or 1582, visual 512 or 342. These tuples have
no validation split, so one is cut from ``trainVid``: with ``n`` train dialogues in the pack's
order (sorted by id if the pack stores a set), ``valid`` is the first ``int(valid_fraction * n)``
and ``train`` the rest. That is the rule by which CORECT and COGMEN cut their ``dev`` split from
this same tuple, so both packs give the same three splits.

Common rules:

* The pack's ``visual`` modality is this project's ``video``. Every utterance gets one
  :class:`ModalityFeatures` per modality with ``global_vector`` only (its local sequence is that
  vector, one position): these packs hold utterance-level vectors only, so HGF has nothing to
  localise on them and the ``corect`` variant is the natural model. The loaded dataset's
  description says so.
* Within one pack every utterance of a modality must have the same dimension; a different one is
  a :class:`DataFormatError` naming the file, the dialogue and the field. The documented
  dimensions are reported in the description, not required: another dimension adds a note.
* Labels are indices into the label set (or its names): ``iemocap6`` hap, sad, neu, ang, exc,
  fru; ``iemocap4`` hap, sad, neu, ang; ``meld`` neutral, surprise, fear, sadness, joy, disgust,
  anger (sentiment 0 neutral, 1 positive, 2 negative goes to ``Utterance.extra["sentiment"]``);
  ``mosei2``, ``mosei7`` and ``mosei-emotion`` as in :mod:`hotspot_erc.data.mosei` (the pack's
  integer codes are taken as given: COGMEN bins 7-class sentiment by intervals, not by rounding).
* A speaker is a name (``"M"``), an integer ``k`` or a one-hot list with hot index ``k``; the
  latter two become ``speaker<k>``. Utterance ids are the pack's ids when it has string ones
  (``videoIDs``), else ``{dialogue}_{index}``.

Besides plain containers and numpy arrays, a pack may hold exactly these globals, each mapped to
a stand-in by :data:`PACK_GLOBALS`: the ``Sample`` class (as :class:`PackRecord`, which keeps
the pickled attributes and runs nothing), and torch tensors, rebuilt through torch's own
weights-only loader and returned as numpy arrays. Any other global is refused before it is called.
"""

from __future__ import annotations

import collections
import io
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hotspot_erc.data.cosmic import IEMOCAP_LABELS, MELD_LABELS, MELD_SENTIMENTS
from hotspot_erc.data.dialogue import (
    DataFormatError,
    Dataset,
    Dialogue,
    FeatureSpec,
    ModalityFeatures,
    ModalitySpec,
    Utterance,
)
from hotspot_erc.data.iemocap import IEMOCAP4_LABELS
from hotspot_erc.data.mosei import EMOTION_PRESENCE_LABELS, SENTIMENT2_LABELS, SENTIMENT7_LABELS
from hotspot_erc.data.safe_pickle import safe_load

LABEL_SETS: dict[str, tuple[str, ...]] = {
    "iemocap6": IEMOCAP_LABELS,
    "iemocap4": IEMOCAP4_LABELS,
    "meld": MELD_LABELS,
    "mosei2": SENTIMENT2_LABELS,
    "mosei7": SENTIMENT7_LABELS,
    "mosei-emotion": EMOTION_PRESENCE_LABELS,
}
_CORPUS_OF_LABEL_SET = {"iemocap6": "IEMOCAP", "iemocap4": "IEMOCAP", "meld": "MELD",
                        "mosei2": "CMU-MOSEI", "mosei7": "CMU-MOSEI",
                        "mosei-emotion": "CMU-MOSEI"}

# Per corpus, per modality: the dimensions the packs are documented to have.
CORECT_EXPECTED_DIMS: dict[str, dict[str, tuple[int, ...]]] = {
    "IEMOCAP": {"text": (768,), "audio": (100,), "video": (512,)},
    "CMU-MOSEI": {"text": (768,), "audio": (80,), "video": (35,)},
}
MMGCN_EXPECTED_DIMS: dict[str, dict[str, tuple[int, ...]]] = {
    "IEMOCAP": {"text": (100,), "audio": (100, 1582), "video": (512, 342)},
}

MMGCN_LAYOUTS: dict[tuple[str, int], tuple[str, ...]] = {
    ("iemocap", 9): ("videoIDs", "videoSpeakers", "videoLabels", "videoText", "videoAudio",
                     "videoVisual", "videoSentence", "trainVid", "testVid"),
    ("meld", 9): ("videoIDs", "videoSpeakers", "videoLabels", "videoText", "videoAudio",
                  "videoSentence", "trainVid", "testVid", "videoSentiments"),
    ("meld", 10): ("videoIDs", "videoSpeakers", "videoLabels", "videoText", "videoAudio",
                   "videoVisual", "videoSentence", "trainVid", "testVid", "videoSentiments"),
}
_MMGCN_MODALITY_FIELDS = {"videoText": "text", "videoAudio": "audio", "videoVisual": "video"}

CORECT_SPLIT_KEYS: dict[str, str] = {"train": "train", "valid": "dev", "test": "test"}
# Record field -> the keys it may have, first match wins (CORECT dicts, COGMEN ``Sample``s).
_CORECT_FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "vid": ("vid",),
    "speakers": ("speakers", "speaker"),
    "labels": ("labels", "label"),
    "text": ("sbert_sentence_embeddings", "text"),
    "audio": ("audio",),
    "visual": ("visual",),
    "sentence": ("sentence",),
}
_CORECT_MODALITY_FIELDS = {"text": "text", "audio": "audio", "visual": "video"}

_UTTERANCE_LEVEL_NOTE = ("These packs hold utterance-level vectors only, so HGF has nothing to "
                         "localise and the `corect` variant is the natural model.")


class PackRecord:
    """Stand-in for a pack's own per-dialogue record class (COGMEN's and CORECT's ``Sample``).

    Unpickling creates it empty and hands it the pickled attribute dict, which it keeps in
    ``fields``; no code of the original class exists here or runs.
    """

    __slots__ = ("fields",)

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
            raise DataFormatError("a Sample record's state must be a dict of attributes")
        self.fields = dict(state)


def _storage_from_bytes(data: object) -> object:
    """Stand-in for ``torch.storage._load_from_bytes``, which runs ``torch.load`` without
    restrictions: the same bytes through torch's weights-only unpickler instead."""
    import torch

    if not isinstance(data, (bytes, bytearray)):
        raise DataFormatError(f"a tensor storage must be bytes, got {type(data).__name__}")
    try:
        storage = torch.load(io.BytesIO(bytes(data)), weights_only=True)
    except Exception as error:  # torch reports a bad stream with several exception types
        raise DataFormatError(f"a tensor storage could not be read safely ({error})") from error
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise DataFormatError(f"a tensor storage decoded to {type(storage).__name__}")
    return storage


def _tensor_as_array(storage: object, offset: object, size: object, stride: object,
                     requires_grad: object, backward_hooks: object,
                     metadata: object = None) -> np.ndarray:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: the tensor as a numpy array, because the
    data model holds numpy. Floating tensors become float32 (numpy has no bfloat16)."""
    import torch
    from torch._utils import _rebuild_tensor_v2

    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise DataFormatError(f"a tensor needs a storage, got {type(storage).__name__}")
    if backward_hooks:
        raise DataFormatError("a tensor with backward hooks cannot be loaded safely")
    _check_view(storage, offset, size, stride)
    try:
        tensor = _rebuild_tensor_v2(storage, offset, tuple(size), tuple(stride), False,
                                    collections.OrderedDict())
    except (RuntimeError, TypeError) as error:
        raise DataFormatError(f"a tensor does not fit its storage ({error})") from error
    if tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    return tensor.detach().numpy().copy()


def _check_view(storage, offset: object, size: object, stride: object) -> None:
    """A tensor must read only elements its storage holds, and no more elements than it holds:
    a view with stride 0 repeats one element, so a 2 KB file could ask for a huge array."""
    if not (isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list))
            and len(size) == len(stride) and isinstance(offset, int)
            and all(isinstance(n, int) and n >= 0 for n in (offset, *size, *stride))):
        raise DataFormatError(f"a tensor's offset, size and stride must be non-negative "
                              f"integers of one length each, got {offset!r:.20}, {size!r:.40}, "
                              f"{stride!r:.40}")
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "TypedStorage is deprecated"
        held = storage.size() if isinstance(storage, torch.TypedStorage) else storage.nbytes()
    count = math.prod(size)
    last = offset + sum((n - 1) * step for n, step in zip(size, stride, strict=True))
    if count and (count > held or last >= held):
        raise DataFormatError(f"a tensor of size {tuple(size)} and stride {tuple(stride)} at "
                              f"offset {offset} reads beyond or repeats its storage of {held:,} "
                              "elements (a tensor is read only as the storage holds it)")


PACK_GLOBALS: Mapping[tuple[str, str], object] = {
    ("cogmen.Sample", "Sample"): PackRecord,
    ("corect.Sample", "Sample"): PackRecord,
    ("__main__", "Sample"): PackRecord,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): _tensor_as_array,
}


def load_corect_pack(path: str | os.PathLike, label_set: str = "iemocap6") -> Dataset:
    """Read a CORECT or COGMEN processed pickle whose labels index ``label_set``.

    ``label_set`` is a key of :data:`LABEL_SETS` (``iemocap6`` for ``data_iemocap.pkl``,
    ``iemocap4`` for ``data_iemocap_4.pkl``, ``mosei2``/``mosei7``/``mosei-emotion`` for MOSEI).
    Returns a :class:`Dataset` named ``label_set`` with splits ``train``, ``valid``, ``test``.
    """
    path = Path(path)
    return corect_pack_dataset(safe_load(path, allowed=PACK_GLOBALS), label_set, source=str(path))


def corect_pack_dataset(payload: object, label_set: str, source: str) -> Dataset:
    """Build the :class:`Dataset` from an unpickled CORECT/COGMEN ``payload`` (no file access)."""
    label_names = _label_names(label_set)
    if not isinstance(payload, Mapping):
        raise DataFormatError(f"{source}: expected a dict with keys 'train', 'dev', 'test' "
                              f"(CORECT/COGMEN layout), got {_describe(payload)}")
    missing = [key for key in CORECT_SPLIT_KEYS.values() if key not in payload]
    if missing:
        raise DataFormatError(f"{source}: missing key(s) {missing}; a CORECT/COGMEN pack has "
                              f"'train', 'dev' and 'test'")
    dims = _DimensionCheck(source)
    dialogues: list[Dialogue] = []
    splits: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for split, key in CORECT_SPLIT_KEYS.items():
        records = payload[key]
        if not isinstance(records, (list, tuple)):
            raise DataFormatError(f"{source}: key {key!r} must be a list of dialogue records, "
                                  f"got {_describe(records)}")
        splits[split] = []
        for position, record in enumerate(records):
            fields = _corect_fields(record, f"{source}: {key}[{position}]")
            did = str(fields["vid"])
            if did in owner:
                raise DataFormatError(f"{source}: dialogue {did} appears twice (in "
                                      f"{owner[did]!r} and {key!r})")
            owner[did] = key
            features = {_CORECT_MODALITY_FIELDS[name]: (name, fields[name])
                        for name in ("text", "audio", "visual")}
            dialogues.append(_build_dialogue(
                did, fields["speakers"], fields["labels"], fields["sentence"], features,
                label_names, dims, f"{source}: dialogue {did}"))
            splits[split].append(did)
    corpus = _CORPUS_OF_LABEL_SET[label_set]
    counts = ", ".join(f"{split} {len(ids)}" for split, ids in splits.items())
    description = (
        f"{corpus} ({label_set}: {' '.join(label_names)}) from the CORECT/COGMEN processed "
        f"pickle {Path(source).name}: {len(dialogues)} dialogues ({counts}; valid is the "
        f"pack's dev split). {dims.summary(CORECT_EXPECTED_DIMS.get(corpus), 'CORECT ' + corpus)}"
        f" {_UTTERANCE_LEVEL_NOTE}")
    return Dataset(name=label_set, dialogues=dialogues, label_names=list(label_names),
                   splits=splits, feature_spec=dims.feature_spec("corect-pack"),
                   description=description)


def _corect_fields(record: object, where: str) -> dict[str, object]:
    """The seven fields of one CORECT dict or COGMEN ``Sample`` record, under CORECT's names."""
    if isinstance(record, PackRecord):
        attributes = getattr(record, "fields", None)
        if attributes is None:
            raise DataFormatError(f"{where}: a Sample record without attributes")
    elif isinstance(record, Mapping):
        attributes = record
    else:
        raise DataFormatError(f"{where}: expected a dialogue dict or Sample record, got "
                              f"{_describe(record)}")
    fields = {}
    for name, keys in _CORECT_FIELD_KEYS.items():
        found = [key for key in keys if key in attributes]
        if not found:
            raise DataFormatError(f"{where}: missing key {' or '.join(map(repr, keys))}")
        fields[name] = attributes[found[0]]
    return fields


def load_mmgcn_pack(path: str | os.PathLike, label_set: str = "iemocap6",
                    valid_fraction: float = 0.1) -> Dataset:
    """Read a DialogueRNN/MMGCN feature tuple (``IEMOCAP_features.pkl`` or a MELD one).

    ``label_set`` is ``iemocap6`` (``IEMOCAP_features.pkl``), ``iemocap4``
    (``IEMOCAP_features_4.pkl``) or ``meld``. ``valid_fraction`` of the train dialogues become
    ``valid`` as the module docstring describes.
    """
    path = Path(path)
    return mmgcn_pack_dataset(safe_load(path, allowed=PACK_GLOBALS), label_set,
                              source=str(path), valid_fraction=valid_fraction)


def mmgcn_pack_dataset(payload: object, label_set: str, source: str,
                       valid_fraction: float = 0.1) -> Dataset:
    """Build the :class:`Dataset` from an unpickled DialogueRNN/MMGCN tuple (no file access)."""
    label_names = _label_names(label_set)
    if label_set not in ("iemocap6", "iemocap4", "meld"):
        raise ValueError(f"DialogueRNN/MMGCN packs hold IEMOCAP or MELD; label_set must be "
                         f"'iemocap6', 'iemocap4' or 'meld', got {label_set!r}")
    if not 0 <= valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    corpus = "meld" if label_set == "meld" else "iemocap"
    size = len(payload) if isinstance(payload, (list, tuple)) else None
    layout = MMGCN_LAYOUTS.get((corpus, size))
    if layout is None:
        expected = " or ".join(str(length) for (name, length) in MMGCN_LAYOUTS if name == corpus)
        raise DataFormatError(f"{source}: expected a tuple of {expected} entries (DialogueRNN/"
                              f"MMGCN {corpus} layout), got {_describe(payload)}")
    fields = dict(zip(layout, payload, strict=True))
    for name in layout:
        if name not in ("trainVid", "testVid") and not isinstance(fields[name], Mapping):
            raise DataFormatError(f"{source}: field {name!r} must be a dict keyed by dialogue "
                                  f"id, got {_describe(fields[name])}")
    pack_train = _id_list(fields["trainVid"], "trainVid", source)
    test_ids = _id_list(fields["testVid"], "testVid", source)
    both = set(pack_train) & set(test_ids)
    if both:
        raise DataFormatError(f"{source}: dialogues {sorted(map(str, both))[:3]} are in both "
                              f"'trainVid' and 'testVid'")
    valid_count = int(valid_fraction * len(pack_train))
    split_keys = {"train": pack_train[valid_count:], "valid": pack_train[:valid_count],
                  "test": test_ids}

    dims = _DimensionCheck(source)
    dialogues: list[Dialogue] = []
    for keys in split_keys.values():
        for key in keys:
            dialogues.append(_mmgcn_dialogue(key, fields, label_names, dims, source))
    splits = {split: [str(key) for key in keys] for split, keys in split_keys.items()}
    counts = ", ".join(f"{split} {len(ids)}" for split, ids in splits.items())
    corpus_name = _CORPUS_OF_LABEL_SET[label_set]
    description = (
        f"{corpus_name} ({label_set}: {' '.join(label_names)}) from the DialogueRNN/MMGCN "
        f"feature pickle {Path(source).name}: {len(dialogues)} dialogues ({counts}; valid is the "
        f"first {valid_count} of the pack's {len(pack_train)} train dialogues in pack order, as "
        f"CORECT/COGMEN cut their dev split). "
        f"{dims.summary(MMGCN_EXPECTED_DIMS.get(corpus_name), 'DialogueRNN/MMGCN ' + corpus_name)}"
        f" {_UTTERANCE_LEVEL_NOTE}")
    return Dataset(name=label_set, dialogues=dialogues, label_names=list(label_names),
                   splits=splits, feature_spec=dims.feature_spec("mmgcn-pack"),
                   description=description)


def _mmgcn_dialogue(key: object, fields: Mapping[str, object], label_names: Sequence[str],
                    dims: _DimensionCheck, source: str) -> Dialogue:
    did = str(key)
    where = f"{source}: dialogue {did}"
    columns = {}
    for name, value in fields.items():
        if name in ("trainVid", "testVid"):
            continue
        if key not in value:
            raise DataFormatError(f"{where}: missing key {did!r} in field {name!r}")
        columns[name] = value[key]
    features = {modality: (name, columns[name]) for name, modality in
                _MMGCN_MODALITY_FIELDS.items() if name in columns}
    dialogue = _build_dialogue(did, columns["videoSpeakers"], columns["videoLabels"],
                               columns["videoSentence"], features, label_names, dims, where,
                               field_names=("videoSpeakers", "videoLabels", "videoSentence"))
    ids = _as_sequence(columns["videoIDs"], "videoIDs", where)
    _check_length(ids, len(dialogue), "videoIDs", "videoLabels", where)
    for utt, pack_id in zip(dialogue.utterances, ids, strict=True):
        if isinstance(pack_id, str):
            utt.uid = pack_id
    if "videoSentiments" in columns:
        sentiments = _as_sequence(columns["videoSentiments"], "videoSentiments", where)
        _check_length(sentiments, len(dialogue), "videoSentiments", "videoLabels", where)
        for index, utt in enumerate(dialogue.utterances):
            code = _label_code(sentiments[index], MELD_SENTIMENTS, "videoSentiments",
                               f"{where}, utterance {index}")
            utt.extra["sentiment"] = MELD_SENTIMENTS[code]
    return dialogue


class _DimensionCheck:
    """The dimension of every modality across one pack: the first utterance seen fixes it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.dims: dict[str, int] = {}
        self._first: dict[str, str] = {}

    def check(self, modality: str, dim: int, field: str, where: str) -> None:
        if modality not in self.dims:
            self.dims[modality] = dim
            self._first[modality] = where
        elif self.dims[modality] != dim:
            raise DataFormatError(
                f"{where}: field {field!r} has dimension {dim}, but the pack's {modality} vectors "
                f"have dimension {self.dims[modality]} (first seen at {self._first[modality]})")

    def summary(self, expected: Mapping[str, tuple[int, ...]] | None, reference: str) -> str:
        found = ", ".join(f"{modality} {dim}" for modality, dim in self.dims.items())
        text = f"Dimensions found: {found or 'none'}."
        if expected is None:
            return text + f" No reference dimensions are documented for {reference} packs."
        notes = [f"{modality} {dim} (documented: {' or '.join(map(str, expected[modality]))})"
                 for modality, dim in self.dims.items()
                 if modality in expected and dim not in expected[modality]]
        if notes:
            return text + f" Note: differs from the documented {reference} dims: " \
                          f"{', '.join(notes)}."
        return text + f" These match the documented {reference} dims."

    def feature_spec(self, extractor: str) -> FeatureSpec:
        return FeatureSpec({modality: ModalitySpec(extractor=extractor, version="1",
                                                   global_dim=dim, local_dim=dim)
                            for modality, dim in self.dims.items()})


def _build_dialogue(did: str, speakers: object, labels: object, sentences: object,
                    features: Mapping[str, tuple[str, object]], label_names: Sequence[str],
                    dims: _DimensionCheck, where: str,
                    field_names: tuple[str, str, str] = ("speakers", "labels", "sentence")
                    ) -> Dialogue:
    """One dialogue from its per-utterance columns; ``features`` maps a modality to its
    (pack field name, per-utterance vectors)."""
    speakers_field, labels_field, sentences_field = field_names
    labels = _as_sequence(labels, labels_field, where)
    count = len(labels)
    if count == 0:
        raise DataFormatError(f"{where}: field {labels_field!r} is empty: a dialogue needs at "
                              "least one utterance")
    speakers = _as_sequence(speakers, speakers_field, where)
    sentences = _as_sequence(sentences, sentences_field, where)
    _check_length(speakers, count, speakers_field, labels_field, where)
    _check_length(sentences, count, sentences_field, labels_field, where)
    matrices = {modality: _vectors(value, count, field, labels_field, modality, dims, where)
                for modality, (field, value) in features.items()}
    utterances = []
    for index in range(count):
        at = f"{where}, utterance {index}"
        text = sentences[index]
        if not isinstance(text, str):
            raise DataFormatError(f"{at}: field {sentences_field!r} must hold strings, got "
                                  f"{_describe(text)}")
        label = label_names[_label_code(labels[index], label_names, labels_field, at)]
        utterances.append(Utterance(
            uid=f"{did}_{index}", speaker=_speaker_name(speakers[index], speakers_field, at),
            text=text, label=label,
            features={modality: ModalityFeatures(global_vector=matrix[index])
                      for modality, matrix in matrices.items()}))
    return Dialogue(did=did, utterances=utterances)


def _vectors(value: object, count: int, field: str, labels_field: str, modality: str,
             dims: _DimensionCheck, where: str) -> np.ndarray:
    """``(count, dim)`` float32 from a 2-D array or a list of 1-D vectors, checked."""
    rows = _as_sequence(value, field, where)
    _check_length(rows, count, field, labels_field, where)
    vectors = []
    for index, row in enumerate(rows):
        at = f"{where}, utterance {index}"
        vector = _array(row)
        if vector is None or vector.ndim != 1 or vector.size == 0 or \
                vector.dtype.kind not in "biuf":
            raise DataFormatError(f"{at}: field {field!r} must hold one numeric vector per "
                                  f"utterance, got {_describe(row)}")
        dims.check(modality, int(vector.size), field, at)
        if not np.all(np.isfinite(vector)):
            raise DataFormatError(f"{at}: field {field!r} holds NaN or infinite values")
        vectors.append(vector.astype(np.float32))
    if not vectors:
        return np.zeros((0, dims.dims.get(modality, 0)), dtype=np.float32)
    return np.stack(vectors)


def _array(value: object) -> np.ndarray | None:
    """``value`` as a numpy array if it is a list, tuple or array that makes one (nested lists
    of unequal lengths do not), else None."""
    if not isinstance(value, (list, tuple, np.ndarray)):
        return None
    try:
        return np.asarray(value)
    except (ValueError, TypeError):
        return None


def _as_sequence(value: object, field: str, where: str) -> Sequence:
    """A per-utterance column: a list, a tuple or an array whose first axis is the utterance."""
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        return value
    if isinstance(value, (list, tuple)):
        return value
    raise DataFormatError(f"{where}: field {field!r} must be a list with one entry per "
                          f"utterance, got {_describe(value)}")


def _check_length(values: Sequence, count: int, field: str, reference: str, where: str) -> None:
    if len(values) != count:
        raise DataFormatError(f"{where}: field {field!r} has {len(values)} entries but "
                              f"{reference!r} has {count}; every field needs one per utterance")


def _label_code(value: object, names: Sequence[str], field: str, at: str) -> int:
    """Index of a label given as an index (an integral number) or as one of ``names``."""
    if isinstance(value, str) and value in names:
        return list(names).index(value)
    is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))
    if is_number and float(value).is_integer() and 0 <= value < len(names):
        return int(value)
    raise DataFormatError(f"{at}: field {field!r} value {value!r} is not an index "
                          f"0..{len(names) - 1} of {list(names)} nor one of those names")


def _speaker_name(value: object, field: str, at: str) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return f"speaker{int(value)}"
    vector = _array(value)
    if (vector is not None and vector.ndim == 1 and vector.dtype.kind in "biuf"
            and np.all((vector == 0) | (vector == 1)) and vector.sum() == 1):
        return f"speaker{int(np.argmax(vector))}"
    raise DataFormatError(f"{at}: field {field!r} must be a speaker name, an integer or a "
                          f"one-hot list, got {value!r:.60}")


def _id_list(value: object, field: str, source: str) -> list:
    """A split's dialogue ids in the pack's order; a set has none, so it is sorted."""
    if isinstance(value, (set, frozenset, list, tuple, np.ndarray)):
        ids = list(value)
        odd = [key for key in ids if not isinstance(key, (str, int, np.str_, np.integer))
               or isinstance(key, bool)]
        if odd:
            raise DataFormatError(f"{source}: field {field!r}: a dialogue id must be a string or "
                                  f"an integer, got {_describe(odd[0])}")
        if len({str(key) for key in ids}) != len(ids):
            raise DataFormatError(f"{source}: field {field!r} lists a dialogue twice")
        return sorted(ids, key=str) if isinstance(value, (set, frozenset)) else ids
    raise DataFormatError(f"{source}: field {field!r} must be a list of dialogue ids, got "
                          f"{_describe(value)}")


def _label_names(label_set: str) -> tuple[str, ...]:
    if label_set not in LABEL_SETS:
        raise ValueError(f"unknown label set {label_set!r}; expected one of {sorted(LABEL_SETS)}")
    return LABEL_SETS[label_set]


def _describe(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} entries"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"{type(value).__name__} {value!r:.60}"
