"""The prediction structure a report reads: its checks, the colour of each label, the timeline.

A conversation is the JSON-ready dict made by :meth:`hotspot_erc.engine.predict.Predictor.predict`
(``predictions.jsonl`` holds its ``utterances``, one per line)::

    {"name", "label_names", "media", "notices", "checkpoint",
     "utterances": [{"id", "speaker", "start", "end", "text", "label", "probabilities",
                     "modalities": {"text" | "audio" | "video": {"present", "gate_mean",
                                    "weights", "prior", "valid", "tokens" | "times",
                                    "hotspots"}},
                     "routing": {"source->target": {"experts", "weights"}}}]}

:func:`check_conversation` rejects a malformed dict with the field that is wrong, so the figure
and HTML code can trust types (numbers that end up in CSS are real numbers, never strings).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MODALITIES = ("text", "audio", "video")

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


class ReportInputError(ValueError):
    """The conversation dict is malformed; the message names the field and what was expected."""


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


def timeline(conversation: Mapping) -> Timeline:
    utterances = conversation["utterances"]
    timed = bool(utterances) and all(u.get("start") is not None and u.get("end") is not None
                                     for u in utterances)
    if timed:
        spans = [(float(u["start"]), float(u["end"])) for u in utterances]
    else:
        spans = [(float(index), float(index + 1)) for index in range(len(utterances))]
    speakers = list(dict.fromkeys(str(u["speaker"]) for u in utterances))
    return Timeline(spans=spans, in_seconds=timed, speakers=speakers)


def modality_evidence(utterance: Mapping, modality: str) -> Mapping | None:
    """The evidence of ``modality`` when the model read it for this utterance, else ``None``."""
    evidence = (utterance.get("modalities") or {}).get(modality)
    if not evidence or not evidence.get("present"):
        return None
    return evidence


def masked_weights(evidence: Mapping, key: str = "weights") -> list[float]:
    """``evidence[key]`` with positions flagged invalid (and non-finite values) as NaN."""
    values = evidence.get(key)
    if values is None:
        return []
    valid = evidence.get("valid") or [True] * len(values)
    return [float(v) if ok and math.isfinite(float(v)) else math.nan
            for v, ok in zip(values, valid, strict=True)]


# -- checks -------------------------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require(condition: bool, field: str, expected: str, value) -> None:
    if not condition:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ReportInputError(f"{field}: expected {expected}, got {shown}")


def _check_numbers(values, field: str, length: int | None, finite: bool = False) -> None:
    _require(isinstance(values, list), field, "a list of numbers", values)
    for index, value in enumerate(values):
        _require(_is_number(value) and (not finite or math.isfinite(value)),
                 f"{field}[{index}]", "a finite number" if finite else "a number", value)
    if length is not None:
        _require(len(values) == length, field, f"{length} values (one per position)",
                 f"{len(values)} values")


def _check_modality(evidence, field: str, modality: str) -> None:
    _require(isinstance(evidence, Mapping), field, "an object", evidence)
    _require(isinstance(evidence.get("present"), bool), f"{field}.present", "true or false",
             evidence.get("present"))
    if not evidence["present"]:
        return
    gate = evidence.get("gate_mean")
    _require(gate is None or (_is_number(gate) and math.isfinite(gate)), f"{field}.gate_mean",
             "a finite number or null", gate)
    weights = evidence.get("weights")
    _check_numbers(weights, f"{field}.weights", None)
    if evidence.get("prior") is not None:
        _check_numbers(evidence["prior"], f"{field}.prior", len(weights))
    if evidence.get("valid") is not None:
        valid = evidence["valid"]
        _require(isinstance(valid, list) and all(isinstance(v, bool) for v in valid),
                 f"{field}.valid", "a list of true/false", valid)
        _require(len(valid) == len(weights), f"{field}.valid",
                 f"{len(weights)} flags (one per position)", f"{len(valid)} flags")
    if modality == "text":
        tokens = evidence.get("tokens")
        _require(isinstance(tokens, list) and all(isinstance(t, str) for t in tokens),
                 f"{field}.tokens", "a list of strings", tokens)
        _require(len(tokens) == len(weights), f"{field}.tokens",
                 f"{len(weights)} tokens (one per position)", f"{len(tokens)} tokens")
    else:
        _check_numbers(evidence.get("times"), f"{field}.times", len(weights), finite=True)
    hotspots = evidence.get("hotspots", [])
    _require(isinstance(hotspots, list), f"{field}.hotspots", "a list", hotspots)
    span_keys = ("first", "last", "weight") if modality == "text" else ("start", "end", "weight")
    for index, span in enumerate(hotspots):
        for key in span_keys:
            value = span.get(key) if isinstance(span, Mapping) else None
            _require(_is_number(value) and math.isfinite(value),
                     f"{field}.hotspots[{index}].{key}", "a finite number", value)


def check_conversation(conversation) -> None:
    """Raise :class:`ReportInputError` naming the first malformed field; return ``None``."""
    _require(isinstance(conversation, Mapping), "conversation", "an object", conversation)
    label_names = conversation.get("label_names")
    _require(isinstance(label_names, list) and label_names
             and all(isinstance(n, str) for n in label_names),
             "conversation.label_names", "a non-empty list of strings", label_names)
    notices = conversation.get("notices", [])
    _require(isinstance(notices, list) and all(isinstance(n, str) for n in notices),
             "conversation.notices", "a list of strings", notices)
    _require(isinstance(conversation.get("media", {}), Mapping), "conversation.media",
             "an object of modality -> path", conversation.get("media"))
    utterances = conversation.get("utterances")
    _require(isinstance(utterances, list), "conversation.utterances", "a list", utterances)
    for index, utterance in enumerate(utterances):
        field = f"conversation.utterances[{index}]"
        _require(isinstance(utterance, Mapping), field, "an object", utterance)
        for key in ("id", "speaker", "text"):
            _require(isinstance(utterance.get(key, "" if key == "text" else None), str),
                     f"{field}.{key}", "a string", utterance.get(key))
        for key in ("start", "end"):
            value = utterance.get(key)
            _require(value is None or (_is_number(value) and math.isfinite(value)),
                     f"{field}.{key}", "a finite number of seconds or null", value)
        if utterance.get("start") is not None and utterance.get("end") is not None:
            _require(utterance["end"] >= utterance["start"], f"{field}.end",
                     f"a time >= start ({utterance['start']})", utterance["end"])
        _require(utterance.get("label") in label_names, f"{field}.label",
                 f"one of label_names {label_names}", utterance.get("label"))
        probabilities = utterance.get("probabilities")
        _require(isinstance(probabilities, Mapping), f"{field}.probabilities",
                 "an object of label -> probability", probabilities)
        for name, value in probabilities.items():
            _require(name in label_names, f"{field}.probabilities", "keys from label_names",
                     name)
            _require(_is_number(value) and math.isfinite(value) and -1e-6 <= value <= 1 + 1e-6,
                     f"{field}.probabilities[{name!r}]", "a probability in [0, 1]", value)
        modalities = utterance.get("modalities", {})
        _require(isinstance(modalities, Mapping), f"{field}.modalities", "an object",
                 modalities)
        for modality, evidence in modalities.items():
            _require(modality in MODALITIES, f"{field}.modalities", f"keys from {MODALITIES}",
                     modality)
            _check_modality(evidence, f"{field}.modalities.{modality}", modality)
        routing = utterance.get("routing", {})
        _require(isinstance(routing, Mapping), f"{field}.routing", "an object", routing)
        for pair, choice in routing.items():
            where = f"{field}.routing[{pair!r}]"
            _require(isinstance(choice, Mapping), where, "an object with experts and weights",
                     choice)
            experts, weights = choice.get("experts"), choice.get("weights")
            _require(isinstance(experts, list) and all(isinstance(e, str) for e in experts),
                     f"{where}.experts", "a list of expert names", experts)
            _check_numbers(weights, f"{where}.weights", len(experts), finite=True)
