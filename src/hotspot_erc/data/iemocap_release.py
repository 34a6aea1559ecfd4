"""Read the IEMOCAP release folder (``IEMOCAP_full_release``) into a :class:`Dataset`.

``root`` is the folder holding ``Session1`` ... ``Session5`` (missing sessions are skipped; none
at all is an error). Per session, under ``SessionN/dialog/``:

* ``EmoEvaluation/<dialogue>.txt`` (only the ``Ses*.txt`` files at that level; the subfolders
  hold per-annotator detail): one block per evaluated utterance whose first line is
  ``[start - end]<TAB>utterance id<TAB>label<TAB>[V, A, D]``, times in seconds within the
  dialogue. Only lines starting with ``[`` are data lines, and each must parse; the header
  (``% [START_TIME - END_TIME] ...``), the annotator lines (``C-E1:``, ``A-F1:``, ...) and blank
  lines are skipped. These lines define the dialogue's utterances.
* ``transcriptions/<dialogue>.txt``: ``<utterance id> [start-end]: text`` per line. A line whose
  first word starts with ``<dialogue>_`` must parse; other lines carry no utterance and are
  skipped. A transcribed turn that was not evaluated (for example an ``..._MXX0`` id) is not an
  utterance of the dataset; an evaluated utterance without a transcription line is an error.
* ``wav/<dialogue>.wav`` and ``avi/DivX/<dialogue>.avi``: stored in ``Dialogue.media["audio"]``
  and ``["video"]`` when they exist, for ``hotspot-erc extract``.

Every utterance keeps its official id, its start and end time, the speaker (the letter after the
id's last underscore: ``F`` or ``M``), its text and, in ``Utterance.extra``, the release's label
(``raw_label``) and the mean ``valence``/``arousal``/``dominance`` as written. Utterances are
ordered by start time. The raw labels are :data:`RAW_LABELS` (``xxx``: the annotators had no
majority); another label is an error.

``ways=6`` labels hap, sad, neu, ang, exc, fru; ``ways=4`` hap, sad, neu, ang (no merging of
``exc`` into ``hap``). As in the standard protocol, utterances whose label is ``xxx`` or outside
the chosen set are removed; ``keep_other_as_context=True`` keeps them in place, unlabelled and
unscored. On the full release the 6-way set has 7,380 utterances (hap 595, sad 1,084, neu 1,708,
ang 1,103, exc 1,041, fru 1,849); the DialogueRNN/COSMIC pickles hold 7,433 because 53 utterances
whose release label is ``xxx`` are ``hap`` there.

Splits: Session 5 is ``test``. Sessions 1-4 are ``train`` except the dialogues of
:data:`STANDARD_VALID_DIALOGUES`, the validation split of the DialogueRNN/COSMIC protocol, which
are ``valid``; on the full release that gives the standard 108 / 12 / 31 dialogues. Lines that do
not parse raise :class:`DataFormatError` naming the file, the line number and the field.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from hotspot_erc.data.cosmic import IEMOCAP_LABELS
from hotspot_erc.data.dialogue import DataFormatError, Dataset, Dialogue, Utterance
from hotspot_erc.data.iemocap import IEMOCAP4_LABELS

RAW_LABELS: tuple[str, ...] = ("ang", "hap", "exc", "sad", "fru", "fea", "sur", "neu", "dis",
                               "oth", "xxx")
SESSIONS: tuple[str, ...] = tuple(f"Session{number}" for number in range(1, 6))
TEST_SESSION = "Session5"
STANDARD_VALID_DIALOGUES: tuple[str, ...] = (
    "Ses01M_impro01", "Ses01M_script03_1", "Ses02F_impro02", "Ses02F_impro07",
    "Ses02M_script01_2", "Ses03F_impro01", "Ses03M_impro02", "Ses03M_impro08a",
    "Ses03M_script02_2", "Ses03M_script03_2", "Ses04F_impro07", "Ses04F_script02_1")

_NUMBER = r"[0-9]+(?:\.[0-9]*)?"
_EVALUATION_LINE = re.compile(r"\[(?P<times>[^\]]*)\]\t(?P<uid>[^\t]*)\t(?P<label>[^\t]*)\t"
                              r"\[(?P<vad>[^\]]*)\]\s*")
_EVALUATION_TIMES = re.compile(rf"\s*(?P<start>{_NUMBER})\s*-\s*(?P<end>{_NUMBER})\s*")
_VAD = re.compile(rf"\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*")
_TRANSCRIPT_LINE = re.compile(r"(?P<uid>\S+)\s+\[(?P<times>[^\]]*)\]:\s?(?P<text>.*)")
_TRANSCRIPT_TIMES = re.compile(rf"(?P<start>{_NUMBER})-(?P<end>{_NUMBER})")
_SPEAKER_PART = re.compile(r"[FM][0-9]+")


@dataclass
class EvaluatedUtterance:
    """One data line of an EmoEvaluation file (``line``: its 1-based line number)."""

    line: int
    uid: str
    start: float
    end: float
    raw_label: str
    valence: str
    arousal: str
    dominance: str


def load_iemocap_release(root: str | os.PathLike, ways: int = 6,
                         keep_other_as_context: bool = False) -> Dataset:
    """Load the IEMOCAP release under ``root`` as ``iemocap6`` (``ways=6``) or ``iemocap4``."""
    if ways not in (4, 6):
        raise ValueError(f"load_iemocap_release: ways must be 4 or 6, got {ways}")
    label_names = IEMOCAP_LABELS if ways == 6 else IEMOCAP4_LABELS
    root = Path(root)
    sessions = [root / name for name in SESSIONS if (root / name).is_dir()]
    if not sessions:
        raise FileNotFoundError(f"{root}: no Session1..Session5 folders; point at the IEMOCAP "
                                f"release folder (IEMOCAP_full_release)")
    dialogues: list[Dialogue] = []
    splits: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for session in sessions:
        dialog = session / "dialog"
        evaluation_files = sorted((dialog / "EmoEvaluation").glob("Ses*.txt"))
        if not evaluation_files:
            raise DataFormatError(f"{dialog / 'EmoEvaluation'}: no Ses*.txt evaluation files")
        for evaluation_path in evaluation_files:
            did = evaluation_path.stem
            evaluated = read_emo_evaluation(evaluation_path)
            texts = read_transcription(dialog / "transcriptions" / f"{did}.txt", did)
            dialogue = _dialogue(did, evaluated, texts, label_names, keep_other_as_context,
                                 evaluation_path, dialog / "transcriptions" / f"{did}.txt")
            dialogue.media.update(_media(dialog, did))
            dialogues.append(dialogue)
            if session.name == TEST_SESSION:
                splits["test"].append(did)
            elif did in STANDARD_VALID_DIALOGUES:
                splits["valid"].append(did)
            else:
                splits["train"].append(did)
    counts = ", ".join(f"{split} {len(ids)}" for split, ids in splits.items())
    others = "kept as unscored context" if keep_other_as_context else "removed"
    return Dataset(
        name=f"iemocap{ways}", dialogues=dialogues, label_names=list(label_names), splits=splits,
        description=(
            f"IEMOCAP {ways}-way ({' '.join(label_names)}) from the release folder {root} "
            f"(sessions {', '.join(s.name for s in sessions)}): dialogues {counts}; test is "
            f"Session 5, valid the 12 standard DialogueRNN/COSMIC validation dialogues. "
            f"Utterances labelled xxx or outside the label set are {others}; raw labels in "
            f"extra['raw_label']. No features yet: the media paths are ready for "
            f"hotspot-erc extract."))


def read_emo_evaluation(path: Path) -> list[EvaluatedUtterance]:
    """The data lines of one EmoEvaluation file, in file order."""
    records = []
    seen: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.startswith("["):
                continue
            at = f"{path}: line {number}"
            match = _EVALUATION_LINE.fullmatch(line.rstrip("\r\n"))
            if match is None:
                raise DataFormatError(f"{at}: expected '[start - end]<TAB>utterance id<TAB>label"
                                      f"<TAB>[V, A, D]', got {line.strip()!r}")
            times = _EVALUATION_TIMES.fullmatch(match["times"])
            if times is None or float(times["end"]) < float(times["start"]):
                raise DataFormatError(f"{at}: field 'times' must be 'start - end' in seconds "
                                      f"with start <= end, got {match['times']!r}")
            uid, label = match["uid"].strip(), match["label"].strip()
            if not uid or uid in seen:
                raise DataFormatError(f"{at}: field 'utterance id' {uid!r} is empty or repeated")
            seen.add(uid)
            if label not in RAW_LABELS:
                raise DataFormatError(f"{at}: field 'label' {label!r} is not an IEMOCAP label; "
                                      f"expected one of {list(RAW_LABELS)}")
            vad = _VAD.fullmatch(match["vad"])
            if vad is None:
                raise DataFormatError(f"{at}: field '[V, A, D]' must be three numbers, got "
                                      f"{match['vad']!r}")
            records.append(EvaluatedUtterance(number, uid, float(times["start"]),
                                              float(times["end"]), label, *vad.groups()))
    return records


def read_transcription(path: Path, did: str) -> dict[str, str]:
    """Utterance id -> text for the lines of ``path`` that belong to dialogue ``did``."""
    if not path.is_file():
        raise DataFormatError(f"{path}: transcription file of dialogue {did} is missing")
    texts = {}
    with open(path, encoding="utf-8", errors="replace") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.startswith(f"{did}_"):
                continue
            at = f"{path}: line {number}"
            match = _TRANSCRIPT_LINE.fullmatch(line.rstrip("\r\n"))
            if match is None:
                raise DataFormatError(f"{at}: expected '<utterance id> [start-end]: text', got "
                                      f"{line.strip()!r}")
            if _TRANSCRIPT_TIMES.fullmatch(match["times"]) is None:
                raise DataFormatError(f"{at}: field 'times' must be 'start-end' in seconds, got "
                                      f"{match['times']!r}")
            texts[match["uid"]] = match["text"].strip()
    return texts


def _dialogue(did: str, evaluated: list[EvaluatedUtterance], texts: dict[str, str],
              label_names: tuple[str, ...], keep_other_as_context: bool,
              evaluation_path: Path, transcription_path: Path) -> Dialogue:
    utterances = []
    for record in sorted(evaluated, key=lambda r: (r.start, r.uid)):
        speaker_part = record.uid.rsplit("_", 1)[-1]
        if not record.uid.startswith(f"{did}_") or _SPEAKER_PART.fullmatch(speaker_part) is None:
            raise DataFormatError(f"{evaluation_path}: line {record.line}: field 'utterance id' "
                                  f"{record.uid!r} must be '{did}_' followed by F or M and a "
                                  f"number")
        if record.uid not in texts:
            raise DataFormatError(f"{transcription_path}: no transcription line for utterance "
                                  f"{record.uid} (evaluated in {evaluation_path.name})")
        in_set = record.raw_label in label_names
        if not in_set and not keep_other_as_context:
            continue
        utterances.append(Utterance(
            uid=record.uid, speaker=speaker_part[0], text=texts[record.uid], start=record.start,
            end=record.end, label=record.raw_label if in_set else None, scored=in_set,
            extra={"raw_label": record.raw_label, "valence": record.valence,
                   "arousal": record.arousal, "dominance": record.dominance}))
    return Dialogue(did=did, utterances=utterances)


def _media(dialog: Path, did: str) -> dict[str, str]:
    candidates = {"audio": dialog / "wav" / f"{did}.wav",
                  "video": dialog / "avi" / "DivX" / f"{did}.avi"}
    return {modality: str(path) for modality, path in candidates.items() if path.is_file()}
