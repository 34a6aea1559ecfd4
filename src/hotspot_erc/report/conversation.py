"""What a report needs beyond the prediction itself: its check, the colour of each label, the
timeline and its ticks, the scale of hotspot weights, the modalities the model reads.

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
first appearance. :func:`time_ticks` marks it every 1, 2 or 5 x 10^k seconds.

Hotspot weights are read on one fixed scale, the same on every card and every figure. The model
gives each position ``p`` a weight ``a_p`` in ``[0, 1]`` ("how much of position p enters the
hotspot view": a sigmoid per position, or the probability that p lies in a chosen window), so
the scale is the weight itself, not the weight relative to the utterance's own maximum::

    highlight opacity  alpha_p = min(max(a_p, 0), 1)           (masked positions: 0)
    hotspot shown      when its peak weight >= HOTSPOT_MIN_WEIGHT (0.2)

Near-equal small weights (a neutral line at 0.017-0.033) therefore stay nearly unhighlighted and
show no hotspot, while a real peak (0.8) reads strongly; a span the predictor found (weight >=
0.6 x the utterance's maximum, :mod:`hotspot_erc.spans`) whose peak is below the threshold is
not shown as a hotspot, however it compares with the rest of its utterance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hotspot_erc.engine.model_card import ModelCard
from hotspot_erc.engine.prediction import (
    MODALITIES,
    ConversationPrediction,
    ModalityEvidence,
    PredictionFormatError,
    TimeSpan,
    TokenSpan,
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
HOTSPOT_MIN_WEIGHT = 0.2  # a span is shown as a hotspot when its peak weight reaches this


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


def is_neutral(label: str) -> bool:
    """Whether ``label`` names the neutral class (``neutral``, ``neu``, any case)."""
    key = str(label).strip().lower()
    return _ALIASES.get(key, key) == "neutral"


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


def time_ticks(low: float, high: float, most: int = 10) -> list[float]:
    """Tick positions in ``[low, high]`` every ``step`` seconds, the smallest step of 1, 2 or 5 x
    10^k that gives at most ``most`` ticks."""
    span = high - low
    if not (math.isfinite(span) and span > 0):
        return []
    magnitude = 10.0 ** math.floor(math.log10(span / most))
    # A step of 10 x magnitude exceeds span / most, so the loop always ends with few enough.
    for factor in (1, 2, 5, 10):
        step = factor * magnitude
        first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
        if last - first + 1 <= most:
            break
    return [round(index * step, 10) for index in range(first, last + 1)]


def highlight_opacity(weight: float) -> float:
    """The opacity of a word piece's highlight: its hotspot weight on the fixed ``[0, 1]``
    scale (NaN, a masked position, is 0)."""
    return 0.0 if math.isnan(weight) else min(max(float(weight), 0.0), 1.0)


def shown_hotspots(evidence: ModalityEvidence) -> list[TokenSpan] | list[TimeSpan]:
    """The hotspot spans of ``evidence`` whose peak weight reaches :data:`HOTSPOT_MIN_WEIGHT`,
    strongest first."""
    return [span for span in evidence.hotspots if span.weight >= HOTSPOT_MIN_WEIGHT]


def read_modalities(conversation: ConversationPrediction) -> list[str]:
    """The modalities the model reads, in the order text, audio, video: those of its model card
    and those any utterance has evidence of (present or masked)."""
    named = set(conversation.model_card.modalities if conversation.model_card else [])
    named.update(m for u in conversation.utterances for m in u.modalities)
    return [m for m in MODALITIES if m in named]


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
    card = conversation.model_card
    if card is not None and not isinstance(card, ModelCard):
        raise ReportInputError(f"conversation.model_card: expected a ModelCard or None, got "
                               f"{type(card).__name__}")
    try:
        ConversationPrediction.from_json(conversation.to_json())
    except PredictionFormatError as error:
        raise ReportInputError(str(error)) from None
