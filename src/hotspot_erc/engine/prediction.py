"""What a prediction is: the typed results :meth:`~hotspot_erc.engine.predict.Predictor.predict`
returns and the report layer reads.

::

    ConversationPrediction   name, label_names, checkpoint, media, notices, timings, utterances,
                             model_card (the checkpoint's ModelCard, or None when unknown)
      UtterancePrediction    id, speaker, start, end, text, label, probabilities,
                             modalities {modality: ModalityEvidence}, routing {"a->b": Routing}
        ModalityEvidence     present, gate_mean, and per position weights, prior, valid and
                             either tokens (text; hotspots are TokenSpan) or times in seconds
                             from the utterance start (audio, video; hotspots are TimeSpan)
        Routing              the aligner experts chosen for one modality pair, with weights

``to_json()`` gives the plain JSON form: ``predictions.jsonl`` holds one
``UtterancePrediction.to_json()`` per line (docs/formats.md, section 4.6), and
``ConversationPrediction.to_json()`` wraps them with the conversation's header (the model card
belongs to the header only: ``predictions.jsonl`` lines do not carry it). ``from_json()``
reads that form back and rejects malformed input with :class:`PredictionFormatError` naming the
first wrong field (``conversation.utterances[3].modalities.audio.times: expected ...``), so a
result read back can be trusted on types: a number that ends up in a report's CSS is a number,
never a string. ``X.from_json(x.to_json()) == x`` for every well-formed ``x``.

Only the standard library: the report layer imports this module without torch or numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hotspot_erc.engine.model_card import ModelCard, ModelCardError

MODALITIES = ("text", "audio", "video")


class PredictionFormatError(ValueError):
    """A prediction's JSON form is malformed; the message names the field and what was expected."""


# -- checks of the JSON form --------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value) -> bool:
    return _is_number(value) and math.isfinite(value)


def _require(condition: bool, where: str, expected: str, value) -> None:
    if not condition:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise PredictionFormatError(f"{where}: expected {expected}, got {shown}")


def _numbers(values, where: str, length: int | None = None, finite: bool = False) -> list:
    _require(isinstance(values, list), where, "a list of numbers", values)
    for index, value in enumerate(values):
        _require(_is_finite(value) if finite else _is_number(value), f"{where}[{index}]",
                 "a finite number" if finite else "a number", value)
    if length is not None:
        _require(len(values) == length, where, f"{length} values (one per position)",
                 f"{len(values)} values")
    return list(values)


def _object(data, where: str, expected: str = "an object") -> Mapping:
    _require(isinstance(data, Mapping), where, expected, data)
    return data


def _span_number(span: Mapping, key: str, where: str):
    value = span.get(key)
    _require(_is_finite(value), f"{where}.{key}", "a finite number", value)
    return value


# -- the results --------------------------------------------------------------------------------

@dataclass(kw_only=True)
class TokenSpan:
    """A text hotspot: word pieces ``first`` to ``last`` (inclusive), joined into ``tokens``, and
    the largest hotspot weight on them."""

    tokens: str
    first: int
    last: int
    weight: float

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "first": self.first, "last": self.last,
                "weight": self.weight}

    @classmethod
    def from_json(cls, data, where: str = "span") -> TokenSpan:
        span = _object(data, where)
        tokens = span.get("tokens")
        _require(isinstance(tokens, str), f"{where}.tokens", "a string", tokens)
        return cls(tokens=tokens, first=_span_number(span, "first", where),
                   last=_span_number(span, "last", where),
                   weight=_span_number(span, "weight", where))


@dataclass(kw_only=True)
class TimeSpan:
    """An audio or video hotspot from ``start`` to ``end`` in seconds of the recording (from the
    utterance start when that is unknown), and the largest hotspot weight in it."""

    start: float
    end: float
    weight: float

    def to_json(self) -> dict:
        return {"start": self.start, "end": self.end, "weight": self.weight}

    @classmethod
    def from_json(cls, data, where: str = "span") -> TimeSpan:
        span = _object(data, where)
        return cls(start=_span_number(span, "start", where),
                   end=_span_number(span, "end", where),
                   weight=_span_number(span, "weight", where))


@dataclass(kw_only=True)
class ModalityEvidence:
    """What the model made of one modality of one utterance.

    ``present`` is false when the utterance has no usable data of the modality (then nothing else
    is set). Otherwise per position ``p``: the learned hotspot weight ``weights[p]``, the rule
    prior ``prior[p]`` (``None`` when the extractor gives none), ``valid[p]``, and either the word
    piece ``tokens[p]`` (text) or ``times[p]`` in seconds from the utterance start (audio,
    video); ``gate_mean`` is the mean HGF gate over valid positions (``None`` when none is valid);
    ``hotspots`` are the top spans, strongest first.
    """

    present: bool
    gate_mean: float | None = None
    weights: list[float] = field(default_factory=list)
    prior: list[float] | None = None
    valid: list[bool] | None = None
    tokens: list[str] | None = None
    times: list[float] | None = None
    hotspots: list[TokenSpan] | list[TimeSpan] = field(default_factory=list)

    @classmethod
    def absent(cls) -> ModalityEvidence:
        return cls(present=False)

    def to_json(self) -> dict:
        if not self.present:
            return {"present": self.present}
        data = {"present": self.present, "gate_mean": self.gate_mean,
                "weights": list(self.weights),
                "prior": None if self.prior is None else list(self.prior),
                "valid": None if self.valid is None else list(self.valid)}
        if self.tokens is not None:
            data["tokens"] = list(self.tokens)
        else:
            data["times"] = None if self.times is None else list(self.times)
        data["hotspots"] = [span.to_json() for span in self.hotspots]
        return data

    @classmethod
    def from_json(cls, data, modality: str, where: str = "evidence") -> ModalityEvidence:
        """``modality`` decides the per-position labels: tokens for text, times otherwise."""
        evidence = _object(data, where)
        present = evidence.get("present")
        _require(isinstance(present, bool), f"{where}.present", "true or false", present)
        if not present:
            return cls.absent()
        gate = evidence.get("gate_mean")
        _require(gate is None or _is_finite(gate), f"{where}.gate_mean",
                 "a finite number or null", gate)
        weights = _numbers(evidence.get("weights"), f"{where}.weights")
        prior = evidence.get("prior")
        if prior is not None:
            prior = _numbers(prior, f"{where}.prior", len(weights))
        valid = evidence.get("valid")
        if valid is not None:
            _require(isinstance(valid, list) and all(isinstance(v, bool) for v in valid),
                     f"{where}.valid", "a list of true/false", valid)
            _require(len(valid) == len(weights), f"{where}.valid",
                     f"{len(weights)} flags (one per position)", f"{len(valid)} flags")
            valid = list(valid)
        tokens = times = None
        if modality == "text":
            tokens = evidence.get("tokens")
            _require(isinstance(tokens, list) and all(isinstance(t, str) for t in tokens),
                     f"{where}.tokens", "a list of strings", tokens)
            _require(len(tokens) == len(weights), f"{where}.tokens",
                     f"{len(weights)} tokens (one per position)", f"{len(tokens)} tokens")
            tokens = list(tokens)
            span_type = TokenSpan
        else:
            times = _numbers(evidence.get("times"), f"{where}.times", len(weights), finite=True)
            span_type = TimeSpan
        hotspots = evidence.get("hotspots", [])
        _require(isinstance(hotspots, list), f"{where}.hotspots", "a list", hotspots)
        return cls(present=True, gate_mean=gate, weights=weights, prior=prior, valid=valid,
                   tokens=tokens, times=times,
                   hotspots=[span_type.from_json(span, f"{where}.hotspots[{index}]")
                             for index, span in enumerate(hotspots)])


@dataclass(kw_only=True)
class Routing:
    """The aligner experts the Mixture-of-Aligners chose for one modality pair (names from
    :data:`hotspot_erc.model.aligners.EXPERT_KINDS`) and their mixing weights, in the order the
    router chose them."""

    experts: list[str]
    weights: list[float]

    def to_json(self) -> dict:
        return {"experts": list(self.experts), "weights": list(self.weights)}

    @classmethod
    def from_json(cls, data, where: str = "routing") -> Routing:
        choice = _object(data, where, "an object with experts and weights")
        experts = choice.get("experts")
        _require(isinstance(experts, list) and all(isinstance(e, str) for e in experts),
                 f"{where}.experts", "a list of expert names", experts)
        return cls(experts=list(experts),
                   weights=_numbers(choice.get("weights"), f"{where}.weights", len(experts),
                                    finite=True))


@dataclass(kw_only=True)
class UtterancePrediction:
    """One utterance: what the transcript says (``id``, ``speaker``, ``start``/``end`` in seconds
    of the recording or ``None``, ``text``), the predicted ``label`` with the class
    ``probabilities`` (in the order of the checkpoint's label names), the evidence per modality
    the model reads, and the aligner routing per modality pair (``"source->target"``; empty when
    there is nothing to align)."""

    id: str
    speaker: str
    start: float | None = None
    end: float | None = None
    text: str = ""
    label: str
    probabilities: dict[str, float]
    modalities: dict[str, ModalityEvidence] = field(default_factory=dict)
    routing: dict[str, Routing] = field(default_factory=dict)

    def to_json(self) -> dict:
        """One line of ``predictions.jsonl``."""
        return {"id": self.id, "speaker": self.speaker, "start": self.start, "end": self.end,
                "text": self.text, "label": self.label,
                "probabilities": dict(self.probabilities),
                "modalities": {m: e.to_json() for m, e in self.modalities.items()},
                "routing": {pair: r.to_json() for pair, r in self.routing.items()}}

    @classmethod
    def from_json(cls, data, label_names: Sequence[str] | None = None,
                  where: str = "utterance") -> UtterancePrediction:
        """Read one line of ``predictions.jsonl``; ``label_names`` default to the keys of its
        ``probabilities``."""
        utterance = _object(data, where)
        for key in ("id", "speaker", "text"):
            _require(isinstance(utterance.get(key, "" if key == "text" else None), str),
                     f"{where}.{key}", "a string", utterance.get(key))
        start, end = utterance.get("start"), utterance.get("end")
        for key, value in (("start", start), ("end", end)):
            _require(value is None or _is_finite(value), f"{where}.{key}",
                     "a finite number of seconds or null", value)
        if start is not None and end is not None:
            _require(end >= start, f"{where}.end", f"a time >= start ({start})", end)
        probabilities = _object(utterance.get("probabilities"), f"{where}.probabilities",
                                "an object of label -> probability")
        if label_names is None:
            label_names = list(probabilities)
        _require(utterance.get("label") in label_names, f"{where}.label",
                 f"one of label_names {list(label_names)}", utterance.get("label"))
        for name, value in probabilities.items():
            _require(name in label_names, f"{where}.probabilities", "keys from label_names",
                     name)
            _require(_is_finite(value) and -1e-6 <= value <= 1 + 1e-6,
                     f"{where}.probabilities[{name!r}]", "a probability in [0, 1]", value)
        modalities = {}
        for modality, evidence in _object(utterance.get("modalities", {}),
                                          f"{where}.modalities").items():
            _require(modality in MODALITIES, f"{where}.modalities", f"keys from {MODALITIES}",
                     modality)
            modalities[modality] = ModalityEvidence.from_json(evidence, modality,
                                                              f"{where}.modalities.{modality}")
        routing = _object(utterance.get("routing", {}), f"{where}.routing")
        return cls(id=utterance["id"], speaker=utterance["speaker"], start=start, end=end,
                   text=utterance.get("text", ""), label=utterance["label"],
                   probabilities=dict(probabilities), modalities=modalities,
                   routing={pair: Routing.from_json(choice, f"{where}.routing[{pair!r}]")
                            for pair, choice in routing.items()})


@dataclass(kw_only=True)
class ConversationPrediction:
    """A conversation's predictions: its ``name``, the checkpoint's ``label_names`` and path,
    the ``media`` read (``{modality: path}``), ``notices`` of what could not be used, seconds
    spent per stage (``timings``: ``model_s``, ``evidence_s``, ``extract_s``), the
    utterances in conversation order, and the checkpoint's ``model_card`` (``None`` when unknown,
    as for a conversation read back from ``predictions.jsonl``)."""

    name: str = "conversation"
    label_names: list[str]
    checkpoint: str | None = None
    media: dict[str, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    utterances: list[UtterancePrediction] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    model_card: ModelCard | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "label_names": list(self.label_names),
                "checkpoint": self.checkpoint, "media": dict(self.media),
                "notices": list(self.notices),
                "utterances": [u.to_json() for u in self.utterances],
                "timings": dict(self.timings),
                "model_card": None if self.model_card is None else self.model_card.to_json()}

    @classmethod
    def from_json(cls, data, where: str = "conversation") -> ConversationPrediction:
        conversation = _object(data, where)
        name = conversation.get("name", "conversation")
        _require(isinstance(name, str), f"{where}.name", "a string", name)
        label_names = conversation.get("label_names")
        _require(isinstance(label_names, list) and label_names
                 and all(isinstance(n, str) for n in label_names),
                 f"{where}.label_names", "a non-empty list of strings", label_names)
        checkpoint = conversation.get("checkpoint")
        _require(checkpoint is None or isinstance(checkpoint, str), f"{where}.checkpoint",
                 "a path or null", checkpoint)
        media = _object(conversation.get("media", {}), f"{where}.media",
                        "an object of modality -> path")
        notices = conversation.get("notices", [])
        _require(isinstance(notices, list) and all(isinstance(n, str) for n in notices),
                 f"{where}.notices", "a list of strings", notices)
        timings = _object(conversation.get("timings", {}), f"{where}.timings",
                          "an object of stage -> seconds")
        for stage, seconds in timings.items():
            _require(_is_finite(seconds), f"{where}.timings[{stage!r}]", "a number of seconds",
                     seconds)
        utterances = conversation.get("utterances")
        _require(isinstance(utterances, list), f"{where}.utterances", "a list", utterances)
        card = conversation.get("model_card")
        if card is not None:
            try:
                card = ModelCard.from_json(card, f"{where}.model_card")
            except ModelCardError as error:
                raise PredictionFormatError(str(error)) from None
        return cls(name=name, label_names=list(label_names), checkpoint=checkpoint,
                   media=dict(media), notices=list(notices), timings=dict(timings),
                   model_card=card,
                   utterances=[UtterancePrediction.from_json(u, label_names,
                                                             f"{where}.utterances[{index}]")
                               for index, u in enumerate(utterances)])
