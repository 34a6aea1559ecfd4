"""What a report needs beyond the prediction itself: its check, the colour of each label, the
timeline.

A report reads a :class:`~hotspot_erc.engine.prediction.ConversationPrediction` (made by
:meth:`hotspot_erc.engine.predict.Predictor.predict`, or read back from ``predictions.jsonl`` by
:func:`hotspot_erc.report.outputs.read_predictions`). :func:`check_conversation` rejects a
malformed one with the field that is wrong (a value built by hand can hold anything), so the
figure and HTML code can trust types: numbers that end up in CSS are real numbers, never strings.

Label colours come from Paul Tol's *muted* scheme, designed to stay distinguishable under the
common colour-vision deficiencies; each emotion family keeps the same colour in every corpus::

    neutral  #DDDDDD  pale grey     happy (joy)    #DDCC77  sand
    excited  #999933  olive         sad            #332288  indigo
    angry    #CC6677  rose          frustrated     #882255  wine
    fear     #AA4499  purple        disgust        #117733  green
    surprise #88CCEE  cyan          calm           #44AA99  teal

Any other label takes the next unused colour of the Okabe-Ito scheme (also colour-blind safe),
in the order of ``label_names``, so a label's colour is fixed for one label set.

Timeline: utterance ``i`` spans ``[start_i, end_i]`` seconds when every utterance has both
times, otherwise ``[i, i + 1]`` (order only, equal widths); one row per speaker, in order of
first appearance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hotspot_erc.engine.prediction import (
    ConversationPrediction,
    ModalityEvidence,
    PredictionFormatError,
    UtterancePrediction,
)

_FAMILY_COLOURS = {
    "neutral": "#DDDDDD", "happy": "#DDCC77", "excited": "#999933", "sad": "#332288",
    "angry": "#CC6677", "frustrated": "#882255", "fear": "#AA4499", "disgust": "#117733",
    "surprise": "#88CCEE", "calm": "#44AA99",
}
_ALIASES = {
    "neu": "neutral", "hap": "happy", "happiness": "happy", "joy": "happy", "exc": "excited",
    "excitement": "excited", "sadness": "sad", "ang": "angry", "anger": "angry",
    "fru": "frustrated", "frustration": "frustrated", "fea": "fear", "fearful": "fear",
    "dis": "disgust", "disgusted": "disgust", "sur": "surprise", "surprised": "surprise",
}
_OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
              "#000000")
UNKNOWN_LABEL_COLOUR = "#BBBBBB"


class ReportInputError(PredictionFormatError):
    """The conversation is malformed; the message names the field and what was expected."""


def label_colours(label_names: Sequence[str]) -> dict[str, str]:
    """A ``#RRGGBB`` colour per label: the family colour, else the next free Okabe-Ito one."""
    colours = {}
    spare = iter(_OKABE_ITO)
    for name in label_names:
        key = str(name).strip().lower()
        family = _FAMILY_COLOURS.get(_ALIASES.get(key, key))
        # Past the 8 spare colours, labels share grey rather than reusing a colour that means
        # another label.
        colours[name] = family if family is not None else next(spare, UNKNOWN_LABEL_COLOUR)
    return colours


def ink_on(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (WCAG relative luminance)."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast with black beats contrast with white above this luminance.
    return "#000000" if luminance > 0.179 else "#FFFFFF"


@dataclass(frozen=True)
class Timeline:
    """Where each utterance sits: ``spans[i] = (start, end)``, in seconds or in utterance index."""

    spans: list[tuple[float, float]]
    in_seconds: bool
    speakers: list[str]  # one row each, in order of first appearance

    @property
    def extent(self) -> tuple[float, float]:
        if not self.spans:
            return 0.0, 1.0
        low = min(start for start, _ in self.spans)
        high = max(end for _, end in self.spans)
        return low, max(high, low + 1e-9)


def timeline(conversation: ConversationPrediction) -> Timeline:
    utterances = conversation.utterances
    timed = bool(utterances) and all(u.start is not None and u.end is not None
                                     for u in utterances)
    if timed:
        spans = [(float(u.start), float(u.end)) for u in utterances]
    else:
        spans = [(float(index), float(index + 1)) for index in range(len(utterances))]
    speakers = list(dict.fromkeys(str(u.speaker) for u in utterances))
    return Timeline(spans=spans, in_seconds=timed, speakers=speakers)


def modality_evidence(utterance: UtterancePrediction, modality: str) -> ModalityEvidence | None:
    """The evidence of ``modality`` when the model read it for this utterance, else ``None``."""
    evidence = utterance.modalities.get(modality)
    if evidence is None or not evidence.present:
        return None
    return evidence


def masked_weights(values: Sequence[float] | None, valid: Sequence[bool] | None
                   ) -> list[float]:
    """``values`` (weights or prior) with positions flagged invalid, and non-finite values, as
    NaN; no ``valid`` flags means every position is valid."""
    if values is None:
        return []
    valid = valid or [True] * len(values)
    return [float(v) if ok and math.isfinite(float(v)) else math.nan
            for v, ok in zip(values, valid, strict=True)]


def check_conversation(conversation: ConversationPrediction) -> None:
    """Raise :class:`ReportInputError` naming the first malformed field; return ``None``.

    A conversation is well-formed when its JSON form reads back
    (:meth:`ConversationPrediction.from_json` holds the checks)."""
    if not isinstance(conversation, ConversationPrediction):
        raise ReportInputError(f"conversation: expected a ConversationPrediction, got "
                               f"{type(conversation).__name__}")
    try:
        ConversationPrediction.from_json(conversation.to_json())
    except PredictionFormatError as error:
        raise ReportInputError(str(error)) from None
