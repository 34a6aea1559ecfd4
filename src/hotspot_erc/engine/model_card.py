"""The model card of a checkpoint: what a model learned from, what it scored, what it is for.

A checkpoint folder keeps it as ``model_card.json`` beside ``checkpoint.json`` (docs/formats.md,
section 4.5)::

    {"format": "hotspot-erc-model-card/1",
     "dataset": "meld",                                   training corpus, or "unknown"
     "domain": "TV-series dialogue (MELD: ...)",          what its conversations are like
     "label_names": ["neutral", "surprise", ...],
     "modalities": ["text", "audio"],                     what the model reads
     "scores": {"valid": {"weighted_f1": 0.61, "accuracy": 0.63, "macro_f1": 0.42},
                "test": {...}},                           measured on the selected checkpoint
     "intended_use": "Research on emotions in ...",
     "demonstration": false}                              true: a pipeline demonstration only

``domain`` is there to be compared with the user's own input: a model that learned acted studio
speech says so, and a report shows it next to "your input" (:func:`training_domain` knows the
corpora this project loads). ``scores`` maps a split to metrics in ``[0, 1]``; a split that was
not measured is absent, so "no test score" is never shown as 0.

:meth:`ModelCard.from_json` rejects a malformed card with :class:`ModelCardError` naming the
field (``scores.test.accuracy: expected a number in [0, 1], got '0.5'``), so a card read from a
checkpoint or a prediction file can be trusted on types. Only the standard library: the report
layer imports this module without torch or numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

FORMAT = "hotspot-erc-model-card/1"
UNKNOWN = "unknown"
# The metrics a card keeps, in the order a summary names them.
SCORE_METRICS = ("weighted_f1", "accuracy", "macro_f1")
SCORE_NAMES = {"weighted_f1": "weighted F1", "accuracy": "accuracy", "macro_f1": "macro F1"}
SPLIT_NAMES = {"test": "test", "valid": "validation"}

# (dataset name prefix, domain) for the corpora this project loads; the first match wins.
TRAINING_DOMAINS = (
    ("iemocap", "acted dyadic conversations (IEMOCAP: actors in scripted and improvised "
                "scenes, studio recordings, English)"),
    ("meld", "TV-series dialogue (MELD: scenes of the sitcom Friends, English)"),
    ("emorynlp", "TV-series dialogue (EmoryNLP: scenes of the sitcom Friends, English)"),
    ("ravdess", "acted speech (RAVDESS: actors saying two fixed sentences, studio "
                "recordings, North American English)"),
    ("crema-d", "acted speech (CREMA-D: actors saying fixed sentences, English)"),
    ("mosei", "online monologue videos (CMU-MOSEI: YouTube opinion videos, English)"),
    ("synthetic", "synthetic features (generated numbers, no recordings or words)"),
)
UNKNOWN_USE = ("Unknown: this checkpoint was written before model cards, so nothing is recorded "
               "about the data it learned from.")
_KEYS = ("format", "dataset", "domain", "label_names", "modalities", "scores", "intended_use",
         "demonstration")


class ModelCardError(ValueError):
    """A model card's JSON form is malformed; the message names the field and what was
    expected."""


def training_domain(dataset: str) -> str:
    """The domain of a corpus this project loads, by name (``iemocap4`` -> acted dyadic
    conversations ...); ``"unknown"`` for any other name."""
    name = str(dataset).strip().lower()
    return next((domain for prefix, domain in TRAINING_DOMAINS if name.startswith(prefix)),
                UNKNOWN)


def card_scores(metrics: Mapping) -> dict[str, dict[str, float]]:
    """The :data:`SCORE_METRICS` of the ``valid`` and ``test`` splits of ``metrics`` (as
    ``train`` writes them to ``metrics.json``); other entries, and values that are not finite
    numbers, are left out."""
    scores = {}
    for split in ("valid", "test"):
        measured = metrics.get(split)
        if not isinstance(measured, Mapping):
            continue
        kept = {name: float(measured[name]) for name in SCORE_METRICS
                if _is_number(measured.get(name)) and math.isfinite(measured[name])}
        if kept:
            scores[split] = kept
    return scores


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else f"field {key}"


def _require(condition: bool, where: str, expected: str, value) -> None:
    if not condition:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ModelCardError(f"{where}: expected {expected}, got {shown}")


def _names(value, where: str, allow_empty: bool) -> list[str]:
    _require(isinstance(value, list) and (allow_empty or bool(value))
             and all(isinstance(name, str) for name in value), where,
             "a list of names" if allow_empty else "a non-empty list of names", value)
    return list(value)


@dataclass(kw_only=True)
class ModelCard:
    """What a checkpoint is: the training corpus ``dataset`` and its ``domain``, the
    ``label_names`` it predicts, the ``modalities`` it reads, its measured ``scores`` (split ->
    metric -> value in ``[0, 1]``), its ``intended_use``, and whether it is a
    ``demonstration`` only."""

    dataset: str = UNKNOWN
    domain: str = UNKNOWN
    label_names: list[str]
    modalities: list[str]
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    intended_use: str = UNKNOWN_USE
    demonstration: bool = False

    @classmethod
    def trained_on(cls, dataset: str, label_names: Sequence[str], modalities: Sequence[str],
                   scores: Mapping | None = None) -> ModelCard:
        """The card of a model trained on the corpus named ``dataset``; its domain comes from
        :func:`training_domain`."""
        domain = training_domain(dataset)
        like = f"those of {dataset}" if domain == UNKNOWN else domain
        return cls(dataset=str(dataset), domain=domain, label_names=list(label_names),
                   modalities=list(modalities), scores=card_scores(scores or {}),
                   intended_use=(f"Research on emotions in conversations like {like}. The "
                                 "labels are the model's guesses, not facts about the "
                                 "speakers; expect lower accuracy on other kinds of "
                                 "conversation."))

    def headline_score(self) -> tuple[str, str, float] | None:
        """``(split, metric, value)`` a summary leads with: test before validation, then the
        order of :data:`SCORE_METRICS`; ``None`` when nothing was measured."""
        for split in ("test", "valid", *sorted(set(self.scores) - {"test", "valid"})):
            measured = self.scores.get(split, {})
            for metric in SCORE_METRICS:
                if metric in measured:
                    return split, metric, measured[metric]
        return None

    def summary_lines(self) -> list[str]:
        """Two to four lines for a terminal: the corpus and domain, the labels, the headline
        score, and a warning when the model is a demonstration only."""
        lines = [f"model: trained on {self.dataset} ({self.domain}); reads "
                 f"{', '.join(self.modalities) or 'nothing'}",
                 f"labels: {', '.join(self.label_names)}"]
        headline = self.headline_score()
        if headline is None:
            lines.append("score: not measured (no validation or test score recorded)")
        else:
            split, metric, value = headline
            others = [f"{SCORE_NAMES.get(name, name)} {100 * score:.1f}"
                      for name, score in self.scores[split].items() if name != metric]
            lines.append(f"{SPLIT_NAMES.get(split, split)} score: {SCORE_NAMES[metric]} "
                         f"{100 * value:.1f}" + (f" ({', '.join(others)})" if others else ""))
        if self.demonstration:
            lines.append(f"WARNING: DEMONSTRATION checkpoint. {self.intended_use}")
        return lines

    def to_json(self) -> dict:
        return {"format": FORMAT, "dataset": self.dataset, "domain": self.domain,
                "label_names": list(self.label_names), "modalities": list(self.modalities),
                "scores": {split: dict(measured) for split, measured in self.scores.items()},
                "intended_use": self.intended_use, "demonstration": self.demonstration}

    @classmethod
    def from_json(cls, data, where: str = "model_card") -> ModelCard:
        """Read the JSON form back; ``where`` prefixes the field in errors
        (``model_card.scores.test: ...``; with ``""``: ``field scores.test: ...``).

        ``domain``, ``scores`` and ``intended_use`` may be absent; an unknown key is an error,
        so a misspelt ``demonstration`` is never silently false."""
        _require(isinstance(data, Mapping), where or "model card", "an object", data)
        unknown = sorted(str(key) for key in data if key not in _KEYS)
        _require(not unknown, where or "model card", f"only the keys {list(_KEYS)}",
                 f"unknown keys {unknown}")
        format_ = data.get("format", FORMAT)
        _require(format_ == FORMAT, _path(where, "format"), repr(FORMAT), format_)
        strings = {}
        for key, default in (("dataset", None), ("domain", UNKNOWN),
                             ("intended_use", UNKNOWN_USE)):
            value = data.get(key, default)
            _require(isinstance(value, str) and bool(value.strip()), _path(where, key),
                     "a non-empty string", value)
            strings[key] = value
        demonstration = data.get("demonstration")
        _require(isinstance(demonstration, bool), _path(where, "demonstration"),
                 "true or false", demonstration)
        scores = data.get("scores", {})
        _require(isinstance(scores, Mapping), _path(where, "scores"),
                 "an object of split -> {metric: value}", scores)
        checked = {}
        for split, measured in scores.items():
            at = _path(where, f"scores.{split}")
            _require(isinstance(measured, Mapping), at, "an object of metric -> value",
                     measured)
            for metric, value in measured.items():
                _require(_is_number(value) and math.isfinite(value) and 0 <= value <= 1,
                         f"{at}.{metric}", "a number in [0, 1]", value)
            checked[str(split)] = {str(metric): float(value)
                                   for metric, value in measured.items()}
        return cls(dataset=strings["dataset"], domain=strings["domain"],
                   label_names=_names(data.get("label_names"), _path(where, "label_names"),
                                      allow_empty=False),
                   modalities=_names(data.get("modalities"), _path(where, "modalities"),
                                     allow_empty=True),
                   scores=checked, intended_use=strings["intended_use"],
                   demonstration=demonstration)
