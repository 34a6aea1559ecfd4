"""Load MELD from its official CSV release (text, speakers, emotion, sentiment, timing).

``root/meld/{train,dev,test}_sent_emo.csv`` become the splits ``train``, ``valid`` (from dev)
and ``test``. One row is one utterance; the loader uses the columns ``Utterance``, ``Speaker``,
``Emotion``, ``Sentiment``, ``Dialogue_ID``, ``Utterance_ID``, ``Season``, ``Episode``,
``StartTime`` and ``EndTime``.

* Dialogue ids are ``{split}_dia{Dialogue_ID}`` and utterance ids
  ``{split}_dia{Dialogue_ID}_utt{Utterance_ID}`` with the official split prefix (``train``, ``dev``,
  ``test``; Dialogue_ID restarts in every file) followed by the stem of MELD's own clip file
  names. Utterances are ordered by ``Utterance_ID``; the release skips some ids, and the gaps are
  kept.
* Labels are the 7 emotions, indexed in the order COSMIC uses: neutral, surprise, fear, sadness,
  joy, disgust, anger. ``extra`` holds ``sentiment`` (neutral, positive, negative), ``season`` and
  ``episode``.
* ``start``/``end`` are seconds from the start of the *episode* (``HH:MM:SS,mmm``), because that
  is what the release gives. The millisecond part is an integer count of milliseconds: three rows
  of the release print it without zero padding (``00:06:47,28`` is 47.028 s). One test utterance
  has ``start == end``; only ``end < start`` is an error.
* Text is kept byte for byte, including the few rows with mojibake in the original release.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from hotspot_erc.data.cosmic import MELD_LABELS, MELD_SENTIMENTS
from hotspot_erc.data.dialogue import DataFormatError, Dataset, Dialogue, Utterance

# Split name in this project -> the official file prefix.
MELD_FILES: dict[str, str] = {"train": "train", "valid": "dev", "test": "test"}

REQUIRED_COLUMNS: tuple[str, ...] = ("Utterance", "Speaker", "Emotion", "Sentiment",
                                     "Dialogue_ID", "Utterance_ID", "Season", "Episode",
                                     "StartTime", "EndTime")

_TIME = re.compile(r"(\d+):([0-5]\d):([0-5]\d),(\d{1,3})")


def load_meld(root: str | os.PathLike) -> Dataset:
    """Load the three MELD CSVs under ``root/meld/`` into a :class:`Dataset` named ``meld``."""
    folder = Path(root) / "meld"
    dialogues: list[Dialogue] = []
    splits: dict[str, list[str]] = {}
    for split, prefix in MELD_FILES.items():
        split_dialogues = read_meld_csv(folder / f"{prefix}_sent_emo.csv", prefix)
        dialogues.extend(split_dialogues)
        splits[split] = [d.did for d in split_dialogues]
    counts = ", ".join(f"{split} {len(ids)}" for split, ids in splits.items())
    return Dataset(
        name="meld", dialogues=dialogues, label_names=list(MELD_LABELS), splits=splits,
        description=(f"MELD 7-way emotion (plus sentiment in extra), official CSV release, "
                     f"official split (dialogues: {counts}; valid is MELD's dev set); times are "
                     f"seconds within the Friends episode; text only, no audio or video "
                     f"features."))


def read_meld_csv(path: str | os.PathLike, prefix: str) -> list[Dialogue]:
    """Read one official MELD CSV; dialogues in ``Dialogue_ID`` order, ids prefixed ``prefix``."""
    path = Path(path)
    by_dialogue: dict[int, dict[int, Utterance]] = {}
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            reader = csv.DictReader(stream)
            missing = [name for name in REQUIRED_COLUMNS if name not in (reader.fieldnames or [])]
            if missing:
                raise DataFormatError(f"{path}: missing column(s) {missing}; expected "
                                      f"{list(REQUIRED_COLUMNS)}")
            for row_number, row in enumerate(reader, start=1):
                at = f"{path}, row {row_number} (line {reader.line_num})"
                dialogue_index = _integer(row, "Dialogue_ID", at)
                utterance_index = _integer(row, "Utterance_ID", at)
                utterances = by_dialogue.setdefault(dialogue_index, {})
                if utterance_index in utterances:
                    raise DataFormatError(f"{at}: duplicate Utterance_ID {utterance_index} in "
                                          f"Dialogue_ID {dialogue_index}")
                utterances[utterance_index] = _utterance(row, prefix, dialogue_index,
                                                         utterance_index, at)
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text ({error})") from error
    except csv.Error as error:
        raise DataFormatError(f"{path}: malformed CSV ({error})") from error
    return [Dialogue(did=f"{prefix}_dia{dialogue_index}",
                     utterances=[by_dialogue[dialogue_index][index]
                                 for index in sorted(by_dialogue[dialogue_index])])
            for dialogue_index in sorted(by_dialogue)]


def _utterance(row: dict[str, str | None], prefix: str, dialogue_index: int,
               utterance_index: int, at: str) -> Utterance:
    emotion = _field(row, "Emotion", at)
    if emotion not in MELD_LABELS:
        raise DataFormatError(f"{at}: field 'Emotion' is {emotion!r}; expected one of "
                              f"{list(MELD_LABELS)}")
    sentiment = _field(row, "Sentiment", at)
    if sentiment not in MELD_SENTIMENTS:
        raise DataFormatError(f"{at}: field 'Sentiment' is {sentiment!r}; expected one of "
                              f"{list(MELD_SENTIMENTS)}")
    start = parse_meld_time(_field(row, "StartTime", at), f"{at}, field 'StartTime'")
    end = parse_meld_time(_field(row, "EndTime", at), f"{at}, field 'EndTime'")
    if end < start:
        raise DataFormatError(f"{at}: field 'EndTime' ({end:.3f} s) is before field "
                              f"'StartTime' ({start:.3f} s)")
    speaker = _field(row, "Speaker", at)
    if not speaker:
        raise DataFormatError(f"{at}: field 'Speaker' is empty")
    return Utterance(uid=f"{prefix}_dia{dialogue_index}_utt{utterance_index}", speaker=speaker,
                     text=_field(row, "Utterance", at), start=start, end=end, label=emotion,
                     extra={"sentiment": sentiment, "season": _field(row, "Season", at),
                            "episode": _field(row, "Episode", at)})


def parse_meld_time(text: str, where: str = "time") -> float:
    """``HH:MM:SS,mmm`` -> seconds; the millisecond part is an integer of 1 to 3 digits."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise DataFormatError(f"{where}: {text!r} is not a time HH:MM:SS,mmm")
    hours, minutes, seconds, milliseconds = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds + milliseconds / 1000


def _field(row: dict[str, str | None], column: str, at: str) -> str:
    value = row.get(column)
    if value is None:
        # DictReader fills a short row's missing cells with None.
        raise DataFormatError(f"{at}: field {column!r} is missing (the row has too few cells)")
    return value


def _integer(row: dict[str, str | None], column: str, at: str) -> int:
    value = _field(row, column, at).strip()
    if not (value.isascii() and value.isdigit()):
        raise DataFormatError(f"{at}: field {column!r} is {value!r}; expected a non-negative "
                              f"integer")
    return int(value)
