"""Conversation manifests: one's own recordings and transcripts, as a JSON file.

A manifest lists dialogues, their utterances (speaker, text, times, optional label) and the media
they come from. It is what ``hotspot-erc extract`` reads; ``docs/formats.md`` documents it and
``docs/manifest.schema.json`` is its JSON Schema. Example::

    {
      "name": "my-corpus",
      "label_names": ["neutral", "happy", "sad", "angry"],
      "splits": {"train": ["call1"], "valid": ["call2"], "test": ["call3"]},
      "dialogues": [
        {"id": "call1",
         "media": {"audio": "call1.wav", "video": "call1.mp4"},
         "utterances": [
           {"id": "call1_0", "speaker": "A", "text": "Hi!", "start": 0.0, "end": 1.2,
            "label": "happy"},
           {"speaker": "B", "text": "Oh no.", "start": 1.4, "end": 2.0,
            "media": {"audio": "clips/b0.flac"}}
         ]}
      ]
    }

Rules:

* ``name``, ``label_names``, ``splits``, utterance ``id``, ``text``, ``label`` and every
  ``media`` are optional. Without ``label_names`` the labels found are used, in order of first
  appearance; without ``splits`` every dialogue is in the split ``all``; a missing utterance id
  is ``<dialogue id>_<index>``.
* A dialogue's ``media`` is one recording of the whole conversation: each utterance is cut out of
  it by its ``start`` and ``end`` (seconds), which are then required. An utterance's own
  ``media`` is a recording of that utterance alone (``start``/``end``, if given, are times in
  that file). Modalities are ``audio`` and ``video``; a video file's audio track serves as audio
  when no audio file is named.
* Relative media paths are relative to the manifest's folder.

Every problem raises :class:`~.dialogue.DataFormatError` naming the file and the field (for
example ``dialogues[2].utterances[5].end``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from hotspot_erc.data.dialogue import DataFormatError, Dataset, Dialogue, Utterance

MEDIA_MODALITIES = ("audio", "video")
_DIALOGUE_KEYS = {"id", "media", "utterances"}
_UTTERANCE_KEYS = {"id", "speaker", "text", "start", "end", "label", "media", "extra"}
_TOP_KEYS = {"name", "label_names", "splits", "dialogues", "description"}


def load_manifest(path: str | os.PathLike) -> Dataset:
    """Read a manifest file into a :class:`Dataset` without features (paths made absolute)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as error:
        raise DataFormatError(f"{path}: no such manifest file") from error
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text (byte {error.start}); save the manifest "
                              "as UTF-8") from error
    return parse_manifest(parse_json(text, path), path)


def parse_json(text: str, path: str | os.PathLike) -> object:
    """``text`` parsed as JSON; any reason it cannot be raises a DataFormatError naming ``path``.

    Beyond syntax errors, Python's parser refuses nesting deeper than its recursion limit
    (RecursionError) and integers of more than 4300 digits (ValueError); both come from files
    no one writes by hand, and both must still be a clear error, not a traceback.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{path}: not valid JSON (line {error.lineno}, column "
                              f"{error.colno}: {error.msg})") from error
    except RecursionError:
        raise DataFormatError(f"{path}: cannot be read as JSON: arrays or objects are nested too "
                              "deeply to read") from None
    except ValueError:
        raise DataFormatError(f"{path}: cannot be read as JSON: an integer has more digits than "
                              "can be read (over 4300)") from None


def parse_manifest(data: object, path: str | os.PathLike = "<manifest>") -> Dataset:
    """Check a manifest already parsed from JSON; ``path`` names it in errors and anchors media."""
    path = Path(path)
    base = path.parent

    def fail(field: str, problem: str) -> DataFormatError:
        return DataFormatError(f"{path}: field {field}: {problem}")

    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a JSON object with a 'dialogues' list")
    _check_unicode(data, fail)
    _unknown(data, _TOP_KEYS, "", fail)
    dialogues_data = data.get("dialogues")
    if not isinstance(dialogues_data, list) or not dialogues_data:
        raise fail("dialogues", "expected a non-empty list of dialogues")
    dialogues: list[Dialogue] = []
    seen_dialogues: set[str] = set()
    seen_utterances: set[str] = set()
    for d_index, entry in enumerate(dialogues_data):
        where = f"dialogues[{d_index}]"
        if not isinstance(entry, dict):
            raise fail(where, "expected an object")
        _unknown(entry, _DIALOGUE_KEYS, where + ".", fail)
        did = _string(entry.get("id", f"dialogue{d_index}"), f"{where}.id", fail)
        if did in seen_dialogues:
            raise fail(f"{where}.id", f"duplicate dialogue id {did!r}")
        seen_dialogues.add(did)
        media = check_media(entry.get("media", {}), f"{where}.media", base, fail)
        utterances_data = entry.get("utterances")
        if not isinstance(utterances_data, list) or not utterances_data:
            raise fail(f"{where}.utterances", "expected a non-empty list of utterances")
        utterances = []
        for u_index, record in enumerate(utterances_data):
            u_where = f"{where}.utterances[{u_index}]"
            utterance = _utterance(record, u_where, f"{did}_{u_index}", base, fail)
            if utterance.uid in seen_utterances:
                raise fail(f"{u_where}.id", f"duplicate utterance id {utterance.uid!r}")
            seen_utterances.add(utterance.uid)
            if media and not utterance.media and (utterance.start is None
                                                  or utterance.end is None):
                raise fail(f"{u_where}.start", "start and end are required to cut the "
                           "utterance out of the dialogue's recording")
            utterances.append(utterance)
        dialogues.append(Dialogue(did, utterances, media))
    labels_found = list(dict.fromkeys(u.label for d in dialogues for u in d.utterances
                                      if u.label is not None))
    label_names = data.get("label_names", labels_found)
    if not isinstance(label_names, list) or not all(isinstance(x, str) for x in label_names):
        raise fail("label_names", "expected a list of strings")
    unknown = [label for label in labels_found if label not in label_names]
    if unknown:
        raise fail("label_names", f"labels {unknown[:3]} are used but not listed")
    splits = data.get("splits", {"all": [d.did for d in dialogues]})
    if not isinstance(splits, dict) or not all(
            isinstance(ids, list) and all(isinstance(i, str) for i in ids)
            for ids in splits.values()):
        raise fail("splits", "expected an object mapping split names to lists of dialogue ids")
    placed: dict[str, str] = {}
    for split, ids in splits.items():
        missing = [did for did in ids if did not in seen_dialogues]
        if missing:
            raise fail(f"splits.{split}", f"unknown dialogue ids {missing[:3]}")
        for did in ids:
            if did in placed:
                raise fail(f"splits.{split}", f"dialogue {did!r} is already in split "
                           f"{placed[did]!r}; a dialogue belongs to one split")
            placed[did] = split
    name = _string(data.get("name", path.stem), "name", fail)
    return Dataset(name=name, dialogues=dialogues, label_names=list(label_names), splits=splits,
                   description=str(data.get("description", f"manifest {path}")))


def _check_unicode(data: dict, fail) -> None:
    """Refuse a string holding a lone surrogate: JSON's ``\\ud800`` escapes allow one, but it is
    not text and no file or terminal can be written with it later. Walks without recursion, as
    the JSON parser nests deeper than a recursive walk may."""
    pending: list[tuple[str, object]] = [("", data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                raise fail(where or "(top level)",
                           f"the string holds {value[error.start]!r}, a lone UTF-16 surrogate "
                           "(not valid Unicode text)") from None
        elif isinstance(value, dict):
            for key, child in value.items():
                pending += [(f"{where}.{key}" if where else key, key),
                            (f"{where}.{key}" if where else key, child)]
        elif isinstance(value, list):
            pending += [(f"{where}[{index}]", child) for index, child in enumerate(value)]


def _unknown(entry: dict, allowed: set[str], where: str, fail) -> None:
    extra = sorted(set(entry) - allowed)
    if extra:
        raise fail(f"{where}{extra[0]}", f"unknown field; allowed: {', '.join(sorted(allowed))}")


def _string(value: object, field: str, fail) -> str:
    if not isinstance(value, str) or not value:
        raise fail(field, f"expected a non-empty string, got {value!r}")
    return value


def check_seconds(value: object, field: str, fail) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(field, f"expected a finite number of seconds >= 0, got {value!r}")
    try:
        seconds = float(value)
    except OverflowError:
        # An integer beyond a float's range (JSON sets no limit) is as unusable as infinity.
        raise fail(field, "expected a finite number of seconds >= 0, got an integer too large "
                   "for a float") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise fail(field, f"expected a finite number of seconds >= 0, got {value!r}")
    return seconds


def check_media(value: object, field: str, base: Path, fail) -> dict[str, str]:
    if not isinstance(value, dict):
        raise fail(field, "expected an object like {\"audio\": \"file.wav\"}")
    media = {}
    for modality, file in value.items():
        if modality not in MEDIA_MODALITIES:
            raise fail(f"{field}.{modality}", f"unknown modality; expected one of "
                       f"{', '.join(MEDIA_MODALITIES)}")
        file = _string(file, f"{field}.{modality}", fail)
        if "\x00" in file:
            raise fail(f"{field}.{modality}", "a file name cannot hold a NUL character")
        media[modality] = str((base / file).resolve())
    return media


def _utterance(record: object, where: str, default_id: str, base: Path, fail) -> Utterance:
    if not isinstance(record, dict):
        raise fail(where, "expected an object")
    _unknown(record, _UTTERANCE_KEYS, where + ".", fail)
    if "speaker" not in record:
        raise fail(f"{where}.speaker", "missing (every utterance needs a speaker)")
    speaker = _string(record["speaker"], f"{where}.speaker", fail)
    text = record.get("text", "")
    if not isinstance(text, str):
        raise fail(f"{where}.text", f"expected a string, got {type(text).__name__}")
    start = check_seconds(record.get("start"), f"{where}.start", fail)
    end = check_seconds(record.get("end"), f"{where}.end", fail)
    if start is not None and end is not None and end <= start:
        raise fail(f"{where}.end", f"end {end} is not after start {start}")
    label = record.get("label")
    if label is not None and not isinstance(label, str):
        raise fail(f"{where}.label", f"expected a string or null, got {label!r}")
    extra = record.get("extra", {})
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise fail(f"{where}.extra", "expected an object of strings")
    return Utterance(uid=_string(record.get("id", default_id), f"{where}.id", fail),
                     speaker=speaker, text=text, start=start, end=end, label=label,
                     extra=dict(extra),
                     media=check_media(record.get("media", {}), f"{where}.media", base, fail))


def manifest_dict(dataset: Dataset) -> dict:
    """The manifest of ``dataset`` (its dialogues, labels, splits and media; no features)."""
    def utterance(u: Utterance) -> dict:
        entry = {"id": u.uid, "speaker": u.speaker, "text": u.text}
        for key in ("start", "end", "label"):
            if getattr(u, key) is not None:
                entry[key] = getattr(u, key)
        if u.media:
            entry["media"] = dict(u.media)
        if u.extra:
            entry["extra"] = dict(u.extra)
        return entry

    return {"name": dataset.name, "description": dataset.description,
            "label_names": list(dataset.label_names), "splits": dict(dataset.splits),
            "dialogues": [{"id": d.did, **({"media": dict(d.media)} if d.media else {}),
                           "utterances": [utterance(u) for u in d.utterances]}
                          for d in dataset]}
