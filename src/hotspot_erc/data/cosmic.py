"""Load the COSMIC-style pickle family (IEMOCAP, MELD, EmoryNLP) into a :class:`Dataset`.

The COSMIC repository (declare-lab/conv-emotion) publishes each corpus as one pickled list whose
per-dialogue fields are dicts ``{dialogue id: [one value per utterance, in dialogue order]}`` and
whose last three entries are the train, test and valid dialogue ids:

* ``iemocap``: ``[speakers, labels, sentences, train_ids, test_ids, valid_ids]``; speakers are
  ``'M'``/``'F'``; labels 0 hap, 1 sad, 2 neu, 3 ang, 4 exc, 5 fru.
* ``meld``: ``[speakers, emotion, sentiment, sentences, train_ids, test_ids, valid_ids]``; a
  speaker is a one-hot list; emotion 0 neutral, 1 surprise, 2 fear, 3 sadness, 4 joy,
  5 disgust, 6 anger; sentiment 0 neutral, 1 positive, 2 negative (kept in
  ``Utterance.extra["sentiment"]``).
* ``emorynlp``: ``[speakers, labels, sentences, train_ids, test_ids, valid_ids]``; a speaker is a
  9-dimensional one-hot list; labels 0 Joyful, 1 Mad, 2 Peaceful, 3 Neutral, 4 Sad, 5 Powerful,
  6 Scared.

A one-hot speaker becomes the name ``speaker<k>`` for its hot index ``k``. Utterance ids are
``{dialogue}_{index}`` unless official ids are given (a JSON ``{dialogue: [ids in pickle order]}``).
Utterances carry text only: features come from the extractors later. The pickle is read with
:func:`hotspot_erc.data.safe_pickle.safe_load`, so a tampered file cannot run code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hotspot_erc.data.dialogue import DataFormatError, Dataset, Dialogue, Utterance
from hotspot_erc.data.safe_pickle import safe_load

SPLITS: tuple[str, ...] = ("train", "valid", "test")


@dataclass(frozen=True)
class CosmicLayout:
    """The field order of one corpus's pickle and the meaning of its integer codes.

    ``fields`` names the entries of the pickled list; the per-dialogue ones are ``speakers``,
    ``labels``, ``sentences`` and optionally ``sentiments``; the split ones are ``train_ids``,
    ``test_ids`` and ``valid_ids``. ``one_hot_speakers`` says whether a speaker is a one-hot list
    (else a name string).
    """

    fields: tuple[str, ...]
    label_names: tuple[str, ...]
    one_hot_speakers: bool
    sentiment_names: tuple[str, ...] = ()


IEMOCAP_LABELS: tuple[str, ...] = ("hap", "sad", "neu", "ang", "exc", "fru")
MELD_LABELS: tuple[str, ...] = ("neutral", "surprise", "fear", "sadness", "joy", "disgust",
                                "anger")
MELD_SENTIMENTS: tuple[str, ...] = ("neutral", "positive", "negative")
EMORYNLP_LABELS: tuple[str, ...] = ("Joyful", "Mad", "Peaceful", "Neutral", "Sad", "Powerful",
                                    "Scared")

COSMIC_LAYOUTS: dict[str, CosmicLayout] = {
    "iemocap": CosmicLayout(
        fields=("speakers", "labels", "sentences", "train_ids", "test_ids", "valid_ids"),
        label_names=IEMOCAP_LABELS, one_hot_speakers=False),
    "meld": CosmicLayout(
        fields=("speakers", "labels", "sentiments", "sentences", "train_ids", "test_ids",
                "valid_ids"),
        label_names=MELD_LABELS, one_hot_speakers=True, sentiment_names=MELD_SENTIMENTS),
    "emorynlp": CosmicLayout(
        fields=("speakers", "labels", "sentences", "train_ids", "test_ids", "valid_ids"),
        label_names=EMORYNLP_LABELS, one_hot_speakers=True),
}

_SPLIT_FIELDS = {"train": "train_ids", "valid": "valid_ids", "test": "test_ids"}


def load_cosmic(path: str | os.PathLike, corpus: str,
                utterance_ids_path: str | os.PathLike | None = None) -> Dataset:
    """Read a COSMIC pickle of ``corpus`` (``iemocap``, ``meld`` or ``emorynlp``).

    ``utterance_ids_path`` optionally names a JSON file ``{dialogue id: [official utterance ids
    in pickle order]}``; without it the ids are ``{dialogue}_{index}``. Returns a
    :class:`Dataset` named ``corpus`` with splits ``train``, ``valid``, ``test``.
    """
    _layout(corpus)
    path = Path(path)
    payload = safe_load(path)
    utterance_ids = None
    ids_source = ""
    if utterance_ids_path is not None:
        ids_source = str(utterance_ids_path)
        utterance_ids = _read_json(Path(utterance_ids_path))
    return cosmic_dataset(payload, corpus, source=str(path), utterance_ids=utterance_ids,
                          ids_source=ids_source)


def _layout(corpus: str) -> CosmicLayout:
    if corpus not in COSMIC_LAYOUTS:
        raise ValueError(f"unknown COSMIC corpus {corpus!r}; expected one of "
                         f"{sorted(COSMIC_LAYOUTS)}")
    return COSMIC_LAYOUTS[corpus]


def _read_json(path: Path) -> object:
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataFormatError(f"{path}: not valid JSON ({error})") from error


def cosmic_dataset(payload: object, corpus: str, source: str,
                   utterance_ids: object | None = None, ids_source: str = "") -> Dataset:
    """Build the :class:`Dataset` from an unpickled COSMIC ``payload`` (no file access).

    ``source`` and ``ids_source`` name where ``payload`` and ``utterance_ids`` came from, for
    error messages.
    """
    layout = _layout(corpus)
    if not isinstance(payload, (list, tuple)) or len(payload) != len(layout.fields):
        raise DataFormatError(
            f"{source}: expected a list of {len(layout.fields)} entries {list(layout.fields)} "
            f"(COSMIC {corpus} layout), got {_describe(payload)}")
    fields = dict(zip(layout.fields, payload, strict=True))
    per_dialogue = [name for name in layout.fields if not name.endswith("_ids")]
    for name in per_dialogue:
        if not isinstance(fields[name], Mapping):
            raise DataFormatError(f"{source}: field {name!r} must be a dict keyed by dialogue "
                                  f"id, got {_describe(fields[name])}")
    dialogue_keys = list(fields["speakers"])
    for name in per_dialogue:
        missing = [key for key in dialogue_keys if key not in fields[name]]
        extra = [key for key in fields[name] if key not in fields["speakers"]]
        if missing or extra:
            raise DataFormatError(
                f"{source}: field {name!r} does not cover the same dialogues as 'speakers' "
                f"(missing {missing[:3]}, extra {extra[:3]})")
    if utterance_ids is not None and not isinstance(utterance_ids, Mapping):
        raise DataFormatError(f"{ids_source}: expected a JSON object {{dialogue id: [utterance "
                              f"ids]}}, got {_describe(utterance_ids)}")

    dialogues = [_build_dialogue(key, fields, layout, source, utterance_ids, ids_source)
                 for key in dialogue_keys]
    splits = _read_splits(fields, set(dialogue_keys), source)
    description = (
        f"{corpus} from the COSMIC pickle {Path(source).name}: {len(dialogues)} dialogues, "
        f"splits train/valid/test as listed in the pickle; text, speakers and labels only "
        f"(no audio or video features).")
    return Dataset(name=corpus, dialogues=dialogues, label_names=list(layout.label_names),
                   splits=splits, description=description)


def _build_dialogue(key: object, fields: Mapping[str, object], layout: CosmicLayout,
                    source: str, utterance_ids: Mapping | None, ids_source: str) -> Dialogue:
    did = str(key)
    where = f"{source}: dialogue {did}"
    columns = {name: fields[name][key] for name in ("speakers", "labels", "sentences",
                                                     "sentiments") if name in fields}
    for name, values in columns.items():
        if not isinstance(values, (list, tuple, np.ndarray)):
            raise DataFormatError(f"{where}: field {name!r} must be a list with one entry per "
                                  f"utterance, got {_describe(values)}")
    count = len(columns["speakers"])
    for name, values in columns.items():
        if len(values) != count:
            raise DataFormatError(f"{where}: field {name!r} has {len(values)} entries but "
                                  f"'speakers' has {count}; every field needs one per utterance")
    uids = [f"{did}_{index}" for index in range(count)]
    if utterance_ids is not None:
        uids = _official_ids(utterance_ids, did, count, ids_source)

    utterances = []
    for index in range(count):
        at = f"{where}, utterance {index}"
        speaker = _speaker_name(columns["speakers"][index], layout, at)
        label = layout.label_names[_code(columns["labels"][index], layout.label_names,
                                         "labels", at)]
        text = columns["sentences"][index]
        if not isinstance(text, str):
            raise DataFormatError(f"{at}: field 'sentences' must hold strings, got "
                                  f"{_describe(text)}")
        extra = {}
        if "sentiments" in columns:
            extra["sentiment"] = layout.sentiment_names[
                _code(columns["sentiments"][index], layout.sentiment_names, "sentiments", at)]
        utterances.append(Utterance(uid=uids[index], speaker=speaker, text=text, label=label,
                                    extra=extra))
    return Dialogue(did=did, utterances=utterances)


def _official_ids(utterance_ids: Mapping, did: str, count: int, ids_source: str) -> list[str]:
    ids = utterance_ids.get(did)
    if not isinstance(ids, list) or not all(isinstance(uid, str) for uid in ids):
        raise DataFormatError(f"{ids_source}: dialogue {did}: expected a list of utterance id "
                              f"strings, got {_describe(ids)}")
    if len(ids) != count:
        raise DataFormatError(f"{ids_source}: dialogue {did}: {len(ids)} utterance ids for "
                              f"{count} utterances in the pickle")
    if len(set(ids)) != count:
        raise DataFormatError(f"{ids_source}: dialogue {did}: duplicate utterance ids")
    return ids


def _speaker_name(value: object, layout: CosmicLayout, at: str) -> str:
    if not layout.one_hot_speakers:
        if not isinstance(value, str) or not value:
            raise DataFormatError(f"{at}: field 'speakers' must be a speaker name, got "
                                  f"{_describe(value)}")
        return value
    vector = np.asarray(value) if isinstance(value, (list, tuple, np.ndarray)) else None
    if (vector is None or vector.ndim != 1 or vector.dtype.kind not in "biuf"
            or not np.all((vector == 0) | (vector == 1)) or vector.sum() != 1):
        raise DataFormatError(f"{at}: field 'speakers' must be a one-hot list, got {value!r}")
    return f"speaker{int(np.argmax(vector))}"


def _code(value: object, names: Sequence[str], field_name: str, at: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not (
            0 <= value < len(names)):
        raise DataFormatError(
            f"{at}: field {field_name!r} value {value!r} is not an index 0..{len(names) - 1} "
            f"of {list(names)}")
    return int(value)


def _read_splits(fields: Mapping[str, object], known: set, source: str) -> dict[str, list[str]]:
    splits = {}
    owner: dict[object, str] = {}
    for split in SPLITS:
        field_name = _SPLIT_FIELDS[split]
        ids = fields[field_name]
        if not isinstance(ids, Iterable) or isinstance(ids, (str, bytes, Mapping)):
            raise DataFormatError(f"{source}: field {field_name!r} must be a list of dialogue "
                                  f"ids, got {_describe(ids)}")
        # A set has no order of its own: sort it so the dataset is the same on every run.
        ordered = sorted(ids, key=str) if isinstance(ids, (set, frozenset)) else list(ids)
        unknown = [key for key in ordered if key not in known]
        if unknown:
            raise DataFormatError(f"{source}: field {field_name!r} names dialogues that are not "
                                  f"in 'speakers': {unknown[:5]}")
        for key in ordered:
            if key in owner:
                raise DataFormatError(f"{source}: dialogue {key} is in both the {owner[key]} and "
                                      f"the {split} split")
            owner[key] = split
        splits[split] = [str(key) for key in ordered]
    return splits


def _describe(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} entries"
    return f"{type(value).__name__} {value!r:.60}"
