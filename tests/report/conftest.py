"""Shared by the report tests: a made-up but realistic conversation prediction (with the model
card of its checkpoint), and a small DOM built with the standard library's html.parser."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import numpy as np
import pytest

from hotspot_erc.engine.model_card import ModelCard
from hotspot_erc.engine.prediction import (
    ConversationPrediction,
    ModalityEvidence,
    Routing,
    TimeSpan,
    TokenSpan,
    UtterancePrediction,
)
from hotspot_erc.model.aligners import EXPERT_KINDS
from hotspot_erc.spans import hotspot_spans, join_pieces

# -- the example conversation -------------------------------------------------------------------
#
# Two speakers, word-piece tokens, audio positions at 25 Hz with silent edges masked, video frames
# at 15 fps with a run of frames where the face was lost, one utterance without video, hotspot
# weights in [0, 1] as the model's default sigmoid weighting gives them (high on the emotive
# words and around a burst, low elsewhere), hotspot spans found the way the predictor finds them
# (hotspot_spans), aligner routing per modality pair with the real expert names, and the model
# card of a checkpoint trained on IEMOCAP. Deterministic for a given seed.

LABEL_NAMES = ["neutral", "happy", "sad", "angry", "excited", "frustrated"]
AUDIO_STEP = 0.04
VIDEO_STEP = 1 / 15

# (speaker, text, label, duration in seconds, words that carry the emotion)
_SCRIPT = [
    ("Ana", "I can't believe you did that again!", "angry", 2.4, {"believe", "again"}),
    ("Ben", "Honestly, it was unbelievable luck.", "excited", 2.3, {"unbelievable", "luck"}),
    ("Ana", "Fine. Whatever.", "frustrated", 1.8, {"whatever"}),
    ("Ben", "I'm sorry, I didn't mean to upset you.", "sad", 2.8, {"sorry", "upset"}),
    ("Ana", "Okay, let's just start over.", "neutral", 1.6, {"okay"}),
    ("Ben", "That makes me really happy!", "happy", 2.4, {"really", "happy"}),
]
_NO_VIDEO = 2  # script line whose utterance has no video (camera off)
_FACE_LOST = 1  # script line whose video loses the face for a few frames


def _word_pieces(text: str) -> list[str]:
    """A small stand-in for a WordPiece tokenizer: lower case, punctuation split off, words
    longer than seven letters cut into a stem and ``##`` pieces of at most four letters."""
    pieces = []
    for word in re.findall(r"\w+|[^\w\s]", text.lower()):
        if len(word) <= 7:
            pieces.append(word)
            continue
        pieces.append(word[:4])
        pieces += ["##" + word[start:start + 4] for start in range(4, len(word), 4)]
    return pieces


def _sigmoid(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-position weights in [0, 1], zero where invalid (the model's sigmoid weighting)."""
    return np.where(valid, 1 / (1 + np.exp(-scores)), 0.0)


def _text_evidence(text: str, emotive: set[str], rng: np.random.Generator) -> ModalityEvidence:
    pieces = _word_pieces(text)
    # Each piece belongs to the whole word it is part of; the word is emotive or not.
    words, current = [], ""
    for piece in pieces:
        current = current + piece[2:] if piece.startswith("##") else piece
        words.append(current)
    owners = []
    for index in range(len(pieces)):
        end = index
        while end + 1 < len(pieces) and pieces[end + 1].startswith("##"):
            end += 1
        owners.append(words[end])
    prior = np.array([1.0 if owner in emotive else 0.1 for owner in owners])
    valid = np.ones(len(pieces), dtype=bool)
    weights = _sigmoid(4.0 * prior - 2.6 + rng.normal(0, 0.4, len(pieces)), valid)
    return ModalityEvidence(
        present=True, gate_mean=round(float(rng.uniform(0.35, 0.8)), 4),
        weights=[round(float(w), 4) for w in weights],
        prior=[round(float(p), 4) for p in prior], valid=valid.tolist(), tokens=pieces,
        hotspots=[TokenSpan(tokens=join_pieces(pieces[first:last + 1]), first=first, last=last,
                            weight=round(peak, 4))
                  for first, last, peak in hotspot_spans(weights, valid)])


def _signal_evidence(start: float, duration: float, step: float, valid: np.ndarray,
                     rng: np.random.Generator) -> ModalityEvidence:
    times = np.arange(len(valid)) * step + step / 2
    centre = rng.uniform(0.3, 0.8) * duration
    bump = np.exp(-0.5 * ((times - centre) / (0.15 * duration)) ** 2)
    prior = np.clip(bump + rng.normal(0, 0.05, len(times)), 0, 1)
    weights = _sigmoid(5.0 * bump - 3.0 + rng.normal(0, 0.15, len(times)), valid)
    return ModalityEvidence(
        present=True, gate_mean=round(float(rng.uniform(0.2, 0.7)), 4),
        weights=[round(float(w), 5) for w in weights],
        prior=[round(float(p), 4) for p in prior], valid=valid.tolist(),
        times=[round(float(t), 3) for t in times],
        hotspots=[TimeSpan(start=round(start + float(times[first]) - step / 2, 3),
                           end=round(start + float(times[last]) + step / 2, 3),
                           weight=round(peak, 4))
                  for first, last, peak in hotspot_spans(weights, valid)])


def _routing(modalities: list[str], rng: np.random.Generator) -> dict[str, Routing]:
    routing = {}
    for source in modalities:
        for target in modalities:
            if source == target:
                continue
            scores = rng.dirichlet(np.ones(len(EXPERT_KINDS)))
            chosen = np.argsort(-scores)[:2]
            weights = scores[chosen] / scores[chosen].sum()
            routing[f"{source}->{target}"] = Routing(
                experts=[EXPERT_KINDS[e] for e in chosen],
                weights=[round(float(w), 4) for w in weights])
    return routing


def _probabilities(label: str, rng: np.random.Generator) -> dict[str, float]:
    scores = rng.dirichlet(np.ones(len(LABEL_NAMES)))
    scores[LABEL_NAMES.index(label)] += 1.5
    scores /= scores.sum()
    return {name: round(float(p), 6) for name, p in zip(LABEL_NAMES, scores, strict=True)}


def build_example(num_utterances: int = 6, seed: int = 0) -> ConversationPrediction:
    """A conversation prediction as the predictor makes one; the script repeats past six
    utterances."""
    rng = np.random.default_rng(seed)
    utterances, clock = [], 0.0
    for index in range(num_utterances):
        line = index % len(_SCRIPT)
        speaker, text, label, duration, emotive = _SCRIPT[line]
        start, end = round(clock, 3), round(clock + duration, 3)
        audio_valid = np.ones(int(duration / AUDIO_STEP), dtype=bool)
        audio_valid[:3] = audio_valid[-3:] = False  # leading and trailing silence
        modalities = {"text": _text_evidence(text, emotive, rng),
                      "audio": _signal_evidence(start, duration, AUDIO_STEP, audio_valid, rng)}
        if line == _NO_VIDEO:
            modalities["video"] = ModalityEvidence.absent()
        else:
            video_valid = np.ones(int(duration / VIDEO_STEP), dtype=bool)
            if line == _FACE_LOST:
                video_valid[8:14] = False
            modalities["video"] = _signal_evidence(start, duration, VIDEO_STEP, video_valid,
                                                   rng)
        present = [m for m, evidence in modalities.items() if evidence.present]
        utterances.append(UtterancePrediction(
            id=f"session1_{index:03d}", speaker=speaker, start=start, end=end, text=text,
            label=label, probabilities=_probabilities(label, rng), modalities=modalities,
            routing=_routing(present, rng)))
        clock += duration + round(float(rng.uniform(0.15, 0.5)), 2)
    return ConversationPrediction(
        name="session1", label_names=list(LABEL_NAMES), checkpoint="runs/full-iemocap/checkpoint",
        media={"audio": "media/session1.wav", "video": "media/session1.mp4"},
        notices=["utterance session1_002: no face video (camera off): video masked"],
        utterances=utterances, model_card=example_card())


def example_card() -> ModelCard:
    """The card of the example's checkpoint: IEMOCAP, three modalities, both scores."""
    return ModelCard.trained_on(
        "iemocap6", LABEL_NAMES, ["text", "audio", "video"],
        {"valid": {"weighted_f1": 0.652, "accuracy": 0.661},
         "test": {"weighted_f1": 0.631, "accuracy": 0.64, "macro_f1": 0.602}})


@pytest.fixture(scope="session")
def example_conversation():
    """``build_example``: call it for a fresh, freely changeable conversation."""
    return build_example


# -- a small DOM --------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    parent: Element | None
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def inside(self, element_id: str) -> bool:
        node = self.parent
        while node is not None:
            if node.attrs.get("id") == element_id:
                return True
            node = node.parent
        return False

    def content(self) -> str:
        return "".join(self.text)


class Page(HTMLParser):
    """Every element with its attributes, parent and text (the text of all its descendants)."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), self._open[-1] if self._open else None)
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.elements.append(Element(tag, dict(attrs), self._open[-1] if self._open else None))

    def handle_endtag(self, tag):
        for depth in range(len(self._open) - 1, -1, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data):
        for element in self._open:
            element.text.append(data)

    def find(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        return [e for e in self.elements
                if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)]

    def by_id(self, element_id: str) -> Element:
        matches = [e for e in self.elements if e.attrs.get("id") == element_id]
        assert len(matches) == 1, f"{len(matches)} elements with id {element_id!r}"
        return matches[0]

    def visible_text(self) -> str:
        """Text outside <script>, <style> and <head>, as a browser would show it."""
        body = [e for e in self.elements if e.tag == "body"]
        return body[0].content() if body else ""


@pytest.fixture
def parse_page():
    return Page
