"""The words of a report in plain language: the "How to read this report" section and the
tooltips (HTML ``title`` attributes) on the same terms.

One text per term serves both, so a tooltip never says something the glossary does not.
:data:`TERMS` are the report's own words (emotion, hotspot, prior, gate, aligner ...);
:data:`EXPERTS` the aligner experts of the Mixture-of-Aligners, by the names the predictor writes
(:data:`hotspot_erc.model.aligners.EXPERT_KINDS`; the report layer does not import the model, so
the names are repeated here and a test keeps the two lists equal).
"""

from __future__ import annotations

from hotspot_erc.report.conversation import HOTSPOT_MIN_WEIGHT

TERMS = {
    "emotion": "The emotion the model predicts for an utterance: the label with the highest "
               "probability. It is the model's guess from the words, voice and face, not a fact "
               "about what the speaker felt.",
    "probability": "How strongly the model favours each label, from 0 to 1; the bars of one "
                   "utterance add up to 1. A top label at 0.4 is a weak guess.",
    "hotspot": "A short stretch the model looked at most closely: words in the text, moments "
               "in the voice or the face. It is shown only where the model's weight reaches "
               f"{HOTSPOT_MIN_WEIGHT:g}.",
    "hotspot weight": "How much the model used each word or moment, from 0 (ignored) to 1 "
                      "(used fully), on the same scale on every utterance. In the text the "
                      "highlight is as strong as the weight; in the curves it is the solid blue "
                      "line.",
    "prior": "A rule-based first guess, made before the model looked, of where emotion may be, "
             "from 0 to 1: emotional words for the text, a sudden change of pitch or loudness "
             "for the voice, face movement for the video (the dashed orange line). The model may "
             "follow it or overrule it.",
    "gate": "How much the model relied on the hotspots rather than on the whole utterance for "
            "this modality, from 0 (the whole utterance only) to 1 (the hotspots only); "
            "averaged over the utterance.",
    "aligner": "Words, voice and face do not move in step: a face can react before the word. "
               "For each pair of modalities the model picks the aligner experts that fit best "
               "to line one up with the other, and mixes them by the weights shown (they add up "
               "to 1).",
    "score": "How well the model did on labelled conversations it did not learn from, out of "
             "100: accuracy counts the utterances it labelled right; weighted F1 also checks "
             "that each emotion is both found and not over-used. Scores hold for conversations "
             "like the training ones, not necessarily for yours.",
    "masked": "Missing or unusable data (no recording, a silence, a face out of view). The "
              "model ignores it; it never reads it as zeros.",
}

EXPERTS = {
    "identity": "takes the other modality as it is: the two are already in step",
    "shift": "moves the other modality a little earlier or later in time",
    "conv": "spreads the other modality's evidence over neighbouring moments",
    "low_rank": "translates the other modality's features into this modality's terms, moment "
                "by moment",
}


def expert_tip(name: str) -> str:
    """The tooltip of an aligner expert's name; names this report does not know say so."""
    return EXPERTS.get(name, "an aligner expert this report has no description of")
