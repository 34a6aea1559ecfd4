"""The summary at the top of a report: who felt what, the dominant emotion, the moments to read.

For a conversation of utterances ``i`` with predicted label ``y_i`` and its probability
``p_i = P(y_i)``:

* ``counts[speaker][label]``: how many of the speaker's utterances got ``label``; ``totals``
  the same over everyone (labels in the checkpoint's order, speakers in order of first
  appearance);
* ``dominant``: the most frequent label(s), every tied label listed; ``dominant_emotion``: the
  most frequent label(s) other than neutral (:func:`~.conversation.is_neutral`), empty when every
  utterance is neutral;
* ``confident``: the ``top`` utterances of highest ``p_i``; ``intense``: the ``top``
  non-neutral utterances of highest ``p_i`` (the strongest emotions the model is surest of);
  ``uncertain``: the ``top`` utterances of lowest ``p_i``, to be read with care. Ties keep
  conversation order.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotspot_erc.engine.prediction import ConversationPrediction
from hotspot_erc.report.conversation import is_neutral

TOP_MOMENTS = 3


@dataclass(frozen=True)
class Moment:
    """Utterance number ``index`` (0-based, its card is ``#utt-<index>``) predicted ``label``
    with ``probability``."""

    index: int
    speaker: str
    label: str
    probability: float


@dataclass(frozen=True)
class ConversationSummary:
    """What :func:`summarise` finds (see the module docstring)."""

    speakers: list[str]
    counts: dict[str, dict[str, int]]
    totals: dict[str, int]
    dominant: list[str]
    dominant_emotion: list[str]
    confident: list[Moment]
    intense: list[Moment]
    uncertain: list[Moment]


def _most_frequent(totals: dict[str, int]) -> list[str]:
    most = max(totals.values(), default=0)
    return [label for label, count in totals.items() if count == most and count > 0]


def summarise(conversation: ConversationPrediction, top: int = TOP_MOMENTS
              ) -> ConversationSummary:
    """The summary of ``conversation``; ``top`` moments per list."""
    labels = list(conversation.label_names)
    speakers = list(dict.fromkeys(str(u.speaker) for u in conversation.utterances))
    counts = {speaker: dict.fromkeys(labels, 0) for speaker in speakers}
    moments = []
    for index, utterance in enumerate(conversation.utterances):
        counts[str(utterance.speaker)][utterance.label] += 1
        moments.append(Moment(index, str(utterance.speaker), utterance.label,
                              float(utterance.probabilities.get(utterance.label, 0.0))))
    totals = {label: sum(row[label] for row in counts.values()) for label in labels}
    emotions = {label: count for label, count in totals.items() if not is_neutral(label)}
    by_confidence = sorted(moments, key=lambda moment: -moment.probability)
    return ConversationSummary(
        speakers=speakers, counts=counts, totals=totals, dominant=_most_frequent(totals),
        dominant_emotion=_most_frequent(emotions), confident=by_confidence[:top],
        intense=[m for m in by_confidence if not is_neutral(m.label)][:top],
        uncertain=sorted(moments, key=lambda moment: moment.probability)[:top])
