"""What the model is and what it was given: the model card panel at the top of a report.

The panel sets the model's training data (corpus and domain, from its
:class:`~hotspot_erc.engine.model_card.ModelCard`) next to "your input" (what the conversation
brought: a transcript, recordings, and the modalities the model actually received), so a reader
can judge whether the two are alike. It lists the measured scores and the intended use.

A warning box is shown when one of these holds, each with its own sentence:

* the prediction carries no model card (a report rebuilt from ``predictions.jsonl``): nothing is
  known about the training data;
* the card marks a demonstration: always, with the card's intended use;
* the card's domain is unknown (a checkpoint from before model cards, or an unknown corpus);
* the model reads a modality that no utterance of the input has: it judged without it, which
  its scores do not cover.

Otherwise there is no warning: whether the training domain matches is the reader's judgement,
which the panel puts side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotspot_erc.engine.model_card import (
    SCORE_METRICS,
    SCORE_NAMES,
    SPLIT_NAMES,
    UNKNOWN,
    ModelCard,
)
from hotspot_erc.engine.prediction import ConversationPrediction
from hotspot_erc.report.conversation import read_modalities


@dataclass(frozen=True)
class Provenance:
    """The panel's content: the ``card`` (``None`` when unknown), what the model was
    ``trained_on``, a description of ``your_input``, the modalities the model ``reads`` and
    those it ``received`` from the input, one line per measured split in ``scores``, and the
    ``warnings``."""

    card: ModelCard | None
    trained_on: str
    your_input: str
    reads: list[str]
    received: list[str]
    scores: list[str]
    warnings: list[str]


def _listed(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _your_input(conversation: ConversationPrediction) -> str:
    utterances = conversation.utterances
    speakers = len({str(u.speaker) for u in utterances})
    parts = [f"a transcript of {len(utterances)} utterance{'s' * (len(utterances) != 1)} by "
             f"{speakers} speaker{'s' * (speakers != 1)}"]
    recordings = [m for m in ("audio", "video") if m in conversation.media]
    parts.append(f"with {_listed(recordings)} recordings" if recordings
                 else "without recordings")
    return " ".join(parts)


def _score_lines(card: ModelCard) -> list[str]:
    lines = []
    for split in ("test", "valid", *sorted(set(card.scores) - {"test", "valid"})):
        measured = card.scores.get(split)
        if not measured:
            continue
        ordered = [m for m in SCORE_METRICS if m in measured] + \
            sorted(m for m in measured if m not in SCORE_METRICS)
        lines.append(f"{SPLIT_NAMES.get(split, split)}: " + " \u00b7 ".join(
            f"{SCORE_NAMES.get(m, m)} {100 * measured[m]:.1f}" for m in ordered))
    return lines


def provenance(conversation: ConversationPrediction) -> Provenance:
    """The model card panel of ``conversation`` (see the module docstring)."""
    card = conversation.model_card
    reads = read_modalities(conversation)
    received = [m for m in reads if any(u.modalities.get(m) is not None
                                        and u.modalities[m].present
                                        for u in conversation.utterances)]
    warnings = []
    if card is None:
        warnings.append("Nothing is known about this model: these predictions carry no model "
                        "card, so its training data, scores and intended use are unknown.")
        trained_on = UNKNOWN
    else:
        trained_on = f"{card.dataset}: {card.domain}"
        if card.demonstration:
            warnings.append(f"DEMONSTRATION model. {card.intended_use}")
        elif card.domain == UNKNOWN:
            warnings.append("The kind of conversations this model learned from is unknown, so "
                            "there is no telling whether it suits yours.")
    lacking = [m for m in reads if m not in received]
    if conversation.utterances and lacking:
        pronoun = "it" if len(lacking) == 1 else "them"
        warnings.append(f"The model reads {_listed(reads)}, but your input has no "
                        f"{_listed(lacking)}: it judged without {pronoun}, which its scores do "
                        "not cover.")
    return Provenance(card=card, trained_on=trained_on, your_input=_your_input(conversation),
                      reads=reads, received=received,
                      scores=_score_lines(card) if card is not None else [],
                      warnings=warnings)
