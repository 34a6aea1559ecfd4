"""Load IEMOCAP in the standard 6-way or 4-way ERC protocol (transcripts, speakers, timing).

Three files under ``root/iemocap/`` are joined:

* ``cosmic_iemocap.pkl``: the COSMIC pickle (7,433 utterances of 151 dialogues, their text,
  speaker ``M``/``F``, 6-way label and the official dialogue split), read with
  :func:`hotspot_erc.data.cosmic.load_cosmic`;
* ``cosmic_utterance_ids.json``: the official utterance id of every pickle utterance, in order;
* ``iemocap_utterances.json``: ``{utterance id: {start, end, speaker, ...}}``, times in seconds
  from the start of the dialogue's recording.

Standard protocol (DialogueRNN, COSMIC, COGMEN): train 108 dialogues / 5,163 utterances, valid
12 / 647, test 31 / 1,623 (Session 5). 6-way labels ``hap sad neu ang exc fru``. The 4-way
protocol of the graph-ERC line (COGMEN, CORECT) keeps only the ``hap sad neu ang`` utterances of
the same dialogues, with no merging of ``exc`` into ``hap``: train 3,274 / valid 326 / test 943.
Those projects remove the other utterances from the dialogues, and so does this loader by default
(a dialogue left empty is dropped; none is in the standard release); ``keep_other_as_context=True``
keeps them in place, unlabelled and unscored, as context.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from hotspot_erc.data.cosmic import IEMOCAP_LABELS, load_cosmic
from hotspot_erc.data.dialogue import DataFormatError, Dataset, Dialogue, Utterance

IEMOCAP4_LABELS: tuple[str, ...] = ("hap", "sad", "neu", "ang")

PICKLE_FILE = "cosmic_iemocap.pkl"
UTTERANCE_IDS_FILE = "cosmic_utterance_ids.json"
TIMING_FILE = "iemocap_utterances.json"

# The timing file spells speakers out; the pickle uses their initials.
_SPEAKER_INITIAL = {"Female": "F", "Male": "M"}


def load_iemocap(root: str | os.PathLike, ways: int = 6,
                 keep_other_as_context: bool = False) -> Dataset:
    """Load IEMOCAP from ``root/iemocap/`` as ``iemocap6`` (``ways=6``) or ``iemocap4``.

    With ``ways=4`` the ``exc``/``fru`` utterances are dropped from their dialogues, or kept with
    ``label=None, scored=False`` when ``keep_other_as_context`` is set. Dialogue media stay empty:
    only transcripts are available.
    """
    if ways not in (4, 6):
        raise ValueError(f"load_iemocap: ways must be 4 or 6, got {ways}")
    folder = Path(root) / "iemocap"
    dataset = load_cosmic(folder / PICKLE_FILE, "iemocap",
                          utterance_ids_path=folder / UTTERANCE_IDS_FILE)
    _attach_timing(dataset.dialogues, folder / TIMING_FILE)
    if ways == 6:
        return Dataset(
            name="iemocap6", dialogues=dataset.dialogues, label_names=list(IEMOCAP_LABELS),
            splits=dataset.splits,
            description=(f"IEMOCAP 6-way (hap sad neu ang exc fru), standard COSMIC split "
                         f"(dialogues: {_split_sizes(dataset.splits)}; test is Session 5), "
                         f"from {PICKLE_FILE} with official utterance ids and timing; text "
                         f"only, no audio or video features."))
    # A dialogue left without utterances has nothing to classify and no context to give.
    dialogues = [four_way for dialogue in dataset.dialogues
                 if len(four_way := _four_way(dialogue, keep_other_as_context)) > 0]
    kept = {dialogue.did for dialogue in dialogues}
    splits = {split: [did for did in ids if did in kept] for split, ids in dataset.splits.items()}
    others = "kept as unscored context" if keep_other_as_context else "removed"
    return Dataset(
        name="iemocap4", dialogues=dialogues, label_names=list(IEMOCAP4_LABELS), splits=splits,
        description=(f"IEMOCAP 4-way (hap sad neu ang, no merging), standard COSMIC split "
                     f"(dialogues: {_split_sizes(splits)}; test is Session 5); exc/fru "
                     f"utterances {others}; from {PICKLE_FILE} with official utterance ids "
                     f"and timing; text only, no audio or video features."))


def _split_sizes(splits: dict[str, list[str]]) -> str:
    return ", ".join(f"{split} {len(ids)}" for split, ids in splits.items())


def _four_way(dialogue: Dialogue, keep_other_as_context: bool) -> Dialogue:
    utterances = []
    for utt in dialogue.utterances:
        if utt.label in IEMOCAP4_LABELS:
            utterances.append(utt)
        elif keep_other_as_context:
            utterances.append(Utterance(uid=utt.uid, speaker=utt.speaker, text=utt.text,
                                        start=utt.start, end=utt.end, label=None, scored=False,
                                        extra=dict(utt.extra)))
    return Dialogue(did=dialogue.did, utterances=utterances)


def _attach_timing(dialogues: list[Dialogue], timing_path: Path) -> None:
    """Set ``start``/``end`` of every utterance from ``timing_path``, checking the join."""
    with open(timing_path, encoding="utf-8") as stream:
        try:
            timing = json.load(stream)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{timing_path}: not valid JSON ({error})") from error
    if not isinstance(timing, dict):
        raise DataFormatError(f"{timing_path}: expected a JSON object keyed by utterance id")
    for dialogue in dialogues:
        for utt in dialogue.utterances:
            record = timing.get(utt.uid)
            if not isinstance(record, dict):
                raise DataFormatError(f"{timing_path}: no record for utterance {utt.uid} of "
                                      f"dialogue {dialogue.did}")
            start, end = record.get("start"), record.get("end")
            if not all(isinstance(t, (int, float)) and math.isfinite(t) for t in (start, end)) \
                    or not 0 <= start <= end:
                raise DataFormatError(
                    f"{timing_path}: utterance {utt.uid}: fields 'start'/'end' must be seconds "
                    f"with 0 <= start <= end, got {start!r}/{end!r}")
            # The ids were matched to the pickle on text and speaker; a speaker disagreement
            # means the ids file and the pickle come from different releases.
            speaker = _SPEAKER_INITIAL.get(record.get("speaker"), record.get("speaker"))
            if speaker != utt.speaker:
                raise DataFormatError(
                    f"{timing_path}: utterance {utt.uid}: field 'speaker' is "
                    f"{record.get('speaker')!r} but the pickle has {utt.speaker!r}")
            utt.start = float(start)
            utt.end = float(end)
