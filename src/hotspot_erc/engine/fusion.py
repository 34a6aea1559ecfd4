"""Late fusion: one prediction from models that each read one modality and may use other labels.

No corpus at hand has both meaningful words and raw recordings (MELD's clips are not shipped,
RAVDESS actors read two fixed sentences), so a text model and an audio model are trained apart
and combined at prediction time. Member ``m`` gives, per utterance ``u``, probabilities
``p_m(k | u)`` over its own labels ``k``; ``labels_m`` maps each of them to one fused label.
For the members ``M(u)`` whose own modality utterance ``u`` has (all members when it has none):

    q_m(c | u) = sum_{k : labels_m(k) = c} p_m(k | u)                   (labels mapped)
    log p(c | u) = sum_{m in M(u)} w_m [log max(q_m(c | u), eps) - log pi_m(c)]
                   + sum_{m in M(u)} w_m log pi_m(c) / sum_{m in M(u)} w_m - log Z(u)

with weights ``w_m``, ``pi_m`` the member's label prior (the share of each label in its
training split, mapped like its probabilities; uniform when not given) and ``Z(u)`` the
normaliser over fused labels ``c``. A weighted product of experts with each member's prior
divided out and one (their weighted geometric mean) put back: a naive-Bayes combination of
independent evidence that counts the label prior once, not once per member (MELD's text model
alone would otherwise pull every fused answer towards its frequent "neutral"). With one member
present the pool is that member's own distribution. A label wins when every present member
finds it plausible; a member that is sure a label is wrong vetoes it (``eps`` = 1e-6 bounds the
veto). Every member maps onto every fused label, so no label is vetoed merely for lacking it.

A fused model is a folder holding ``fusion.json`` (:class:`FusionConfig`: fused labels, and per
member a shipped model's name or a checkpoint folder relative to it, its modality, weight and
label map) and ``model_card.json``. :class:`FusedPredictor` predicts like
:class:`~hotspot_erc.engine.predict.Predictor`: each member extracts its own modality only, and
the result holds each member's evidence under its modality.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hotspot_erc.data.dialogue import DataFormatError, Dialogue, Utterance
from hotspot_erc.engine.model_card import ModelCard
from hotspot_erc.engine.prediction import (
    MODALITIES,
    ConversationPrediction,
    ModalityEvidence,
    UtterancePrediction,
)

FUSION_FILE = "fusion.json"
FUSION_FORMAT = "hotspot-erc-fusion/1"
EPS = 1e-6


@dataclass(frozen=True)
class Member:
    """One fused model: ``model`` (a shipped model's name, or a checkpoint folder relative to
    the fusion folder), the ``modality`` it answers for, its ``weight``, its ``labels`` map
    (its label -> fused label) and its training ``prior`` (its label -> share; None: uniform)."""

    model: str
    modality: str
    weight: float
    labels: dict[str, str]
    prior: dict[str, float] | None = None


@dataclass(frozen=True)
class FusionConfig:
    label_names: list[str]
    members: list[Member]

    def __post_init__(self) -> None:
        where = FUSION_FILE
        if len(set(self.label_names)) != len(self.label_names) or not self.label_names:
            raise DataFormatError(f"{where}: field label_names: expected distinct labels")
        for index, member in enumerate(self.members):
            field_name = f"members[{index}]"
            if member.modality not in MODALITIES:
                raise DataFormatError(f"{where}: field {field_name}.modality: expected one of "
                                      f"{', '.join(MODALITIES)}, got {member.modality!r}")
            if not (isinstance(member.weight, (int, float)) and math.isfinite(member.weight)
                    and member.weight > 0):
                raise DataFormatError(f"{where}: field {field_name}.weight: expected a "
                                      f"positive number, got {member.weight!r}")
            unknown = sorted(set(member.labels.values()) - set(self.label_names))
            if unknown:
                raise DataFormatError(f"{where}: field {field_name}.labels: {unknown} are not "
                                      "fused labels")
            if member.prior is not None and (
                    set(member.prior) != set(member.labels)
                    or not all(isinstance(v, (int, float)) and v > 0
                               for v in member.prior.values())):
                raise DataFormatError(f"{where}: field {field_name}.prior: expected a positive "
                                      "share for each of the member's labels")
            uncovered = sorted(set(self.label_names) - set(member.labels.values()))
            if uncovered:
                raise DataFormatError(f"{where}: field {field_name}.labels: no label of "
                                      f"{member.model!r} maps to {uncovered}")
        if len({m.modality for m in self.members}) != len(self.members) or not self.members:
            raise DataFormatError(f"{where}: field members: expected one member per modality")

    def to_json(self) -> dict:
        return {"format": FUSION_FORMAT, "label_names": list(self.label_names),
                "members": [dataclasses.asdict(m) for m in self.members]}

    @classmethod
    def from_json(cls, data) -> FusionConfig:
        if not isinstance(data, Mapping) or data.get("format") != FUSION_FORMAT:
            raise DataFormatError(f"{FUSION_FILE}: field format: expected {FUSION_FORMAT!r}")
        members = data.get("members")
        if not isinstance(members, list):
            raise DataFormatError(f"{FUSION_FILE}: field members: expected a list")
        parsed = []
        for index, member in enumerate(members):
            try:
                prior = member.get("prior")
                parsed.append(Member(str(member["model"]), str(member["modality"]),
                                     member["weight"], dict(member["labels"]),
                                     None if prior is None else dict(prior)))
            except (KeyError, TypeError, ValueError) as error:
                raise DataFormatError(f"{FUSION_FILE}: field members[{index}]: expected model, "
                                      f"modality, weight and labels ({error})") from None
        return cls(list(data.get("label_names") or []), parsed)


def pool(probabilities: Sequence[np.ndarray], maps: Sequence[np.ndarray],
         weights: Sequence[float], priors: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """The pool (module docstring) of one utterance: ``probabilities[m]`` ``(K_m,)``,
    ``maps[m]`` ``(K_m, C)`` with one 1 per row (member label -> fused label), ``priors[m]``
    ``(K_m,)`` the member's label prior (None: uniform); returns ``(C,)``."""
    logits = 0.0
    kept_prior = 0.0
    for m, (p, mapped, w) in enumerate(zip(probabilities, maps, weights, strict=True)):
        log_prior = (np.log(priors[m] @ mapped) if priors is not None
                     else np.log(np.ones(len(p)) / len(p) @ mapped))
        logits = logits + w * (np.log(np.maximum(p @ mapped, EPS)) - log_prior)
        kept_prior = kept_prior + w * log_prior
    logits = logits + kept_prior / sum(weights)
    logits = logits - logits.max()
    fused = np.exp(logits)
    return fused / fused.sum()


class FusedPredictor:
    """Predicts with every member of a :class:`FusionConfig` and pools their probabilities."""

    def __init__(self, config: FusionConfig, predictors: Sequence, card: ModelCard | None,
                 path: Path | None = None) -> None:
        self.config = config
        self.predictors = list(predictors)
        self.card = card
        self.path = path
        self._maps, self._priors = [], []
        for member, predictor in zip(config.members, self.predictors, strict=True):
            own = list(predictor.checkpoint.label_names)
            missing = sorted(set(own) - set(member.labels))
            if missing:
                raise DataFormatError(f"{FUSION_FILE}: member {member.model!r}: field labels "
                                      f"does not map its labels {missing}")
            if member.modality not in predictor.checkpoint.feature_spec.modalities:
                raise DataFormatError(f"{FUSION_FILE}: member {member.model!r} reads no "
                                      f"{member.modality}")
            mapped = np.zeros((len(own), len(config.label_names)))
            for row, label in enumerate(own):
                mapped[row, config.label_names.index(member.labels[label])] = 1.0
            self._maps.append(mapped)
            self._priors.append(np.ones(len(own)) / len(own) if member.prior is None
                                else np.array([member.prior[k] for k in own], dtype=float))

    @classmethod
    def load(cls, folder: str | os.PathLike, workers: int = 2) -> FusedPredictor:
        from hotspot_erc.engine.checkpoint import MODEL_CARD_FILE
        from hotspot_erc.engine.predict import Predictor
        from hotspot_erc.engine.pretrained import PRETRAINED

        folder = Path(folder)
        try:
            data = json.loads((folder / FUSION_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise DataFormatError(f"{folder / FUSION_FILE}: {error}") from None
        config = FusionConfig.from_json(data)
        predictors = [Predictor.from_pretrained(m.model, workers=workers)
                      if m.model in PRETRAINED else Predictor.load(folder / m.model, workers)
                      for m in config.members]
        return cls(config, predictors, _read_card(folder / MODEL_CARD_FILE, config), folder)

    @property
    def label_names(self) -> list[str]:
        return list(self.config.label_names)

    @property
    def workers(self) -> int:
        return self.predictors[0].workers

    def check_recipe(self) -> None:
        """Every member's :meth:`~hotspot_erc.engine.predict.Predictor.check_recipe`."""
        for predictor in self.predictors:
            predictor.check_recipe()

    def warm_up(self) -> None:
        for predictor in self.predictors:
            predictor.warm_up()

    def predict(self, dialogue: Dialogue, notices: list[str] | None = None,
                feature_folder: str | os.PathLike | None = None, progress: bool = False
                ) -> ConversationPrediction:
        """Each member predicts from its own modality; the probabilities are pooled per
        utterance over the members whose modality the utterance has."""
        began = time.perf_counter()
        outputs = []
        for member, predictor in zip(self.config.members, self.predictors, strict=True):
            alone = _only(dialogue, member.modality)
            outputs.append(predictor.predict(
                alone, feature_folder=feature_folder, progress=progress,
                notices=None))
        utterances = []
        for index, utterance in enumerate(dialogue.utterances):
            rows = [output.utterances[index] for output in outputs]
            present = [m for m, row in enumerate(rows)
                       if row.modalities.get(self.config.members[m].modality,
                                             ModalityEvidence.absent()).present]
            chosen = present or list(range(len(rows)))
            fused = pool([np.array([rows[m].probabilities[k]
                                    for k in self.predictors[m].checkpoint.label_names])
                          for m in chosen], [self._maps[m] for m in chosen],
                         [self.config.members[m].weight for m in chosen],
                         [self._priors[m] for m in chosen])
            evidence = {modality: ModalityEvidence.absent() for modality in MODALITIES}
            for member, row in zip(self.config.members, rows, strict=True):
                evidence[member.modality] = row.modalities.get(member.modality,
                                                               ModalityEvidence.absent())
            utterances.append(UtterancePrediction(
                id=utterance.uid, speaker=utterance.speaker, start=utterance.start,
                end=utterance.end, text=utterance.text,
                label=self.config.label_names[int(np.argmax(fused))],
                probabilities={name: round(float(p), 6)
                               for name, p in zip(self.config.label_names, fused, strict=True)},
                modalities=evidence))
        member_notices = [f"{member.model}: {notice}"
                          for member, output in zip(self.config.members, outputs, strict=True)
                          for notice in output.notices]
        timings = {key: round(sum(output.timings.get(key, 0.0) for output in outputs), 4)
                   for key in ("extract_s", "model_s", "evidence_s")}
        timings["total_s"] = round(time.perf_counter() - began, 4)
        return ConversationPrediction(
            name=dialogue.did, label_names=self.label_names,
            checkpoint=str(self.path) if self.path is not None else None,
            media=dict(dialogue.media), notices=list(notices or []) + member_notices,
            utterances=utterances, timings=timings, model_card=self.card)


def _read_card(path: Path, config: FusionConfig) -> ModelCard | None:
    if not path.is_file():
        return None
    try:
        card = ModelCard.from_json(json.loads(path.read_text(encoding="utf-8")), where="")
    except (ValueError, UnicodeDecodeError) as error:  # ModelCardError is a ValueError
        raise DataFormatError(f"{path}: {error}") from None
    if card.label_names != config.label_names:
        raise DataFormatError(f"{path}: field label_names: expected those of {FUSION_FILE} "
                              f"{config.label_names}, got {card.label_names}")
    return card


def _only(dialogue: Dialogue, modality: str) -> Dialogue:
    """``dialogue`` with nothing but ``modality``: no text for a media member, no media for the
    text member (so each member extracts and mentions only what it reads)."""
    def keep(media: Mapping[str, str]) -> dict[str, str]:
        return {m: path for m, path in media.items() if m == modality}

    return Dialogue(dialogue.did, [
        Utterance(u.uid, u.speaker, u.text if modality == "text" else "", u.start, u.end,
                  media=keep(u.media)) for u in dialogue.utterances],
        media=keep(dialogue.media))


def is_fusion(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a fused model rather than a checkpoint."""
    return (Path(folder) / FUSION_FILE).is_file()


def gold_labels(predictor: FusedPredictor, corpus: str) -> dict[str, str]:
    """How the labels of ``corpus`` read as fused labels: the label map of the member trained
    on it (a member's card names its corpus)."""
    for member, member_predictor in zip(predictor.config.members, predictor.predictors,
                                        strict=True):
        card = member_predictor.card
        if card is not None and card.dataset == corpus:
            return dict(member.labels)
    raise ValueError(f"no member of the fused model was trained on {corpus!r}")


def evaluate_fused(predictor: FusedPredictor, dataset, split: str, only: str | None = None,
                   feature_folder: str | os.PathLike | None = None) -> dict[str, float]:
    """Weighted F1, accuracy and macro F1 of the fused model on ``split`` of ``dataset``, in the
    fused labels (gold labels mapped by :func:`gold_labels`); with ``only`` a member's modality,
    that member alone (its probabilities mapped, not pooled). ``feature_folder`` keeps the
    extracted features for the next call."""
    from sklearn.metrics import accuracy_score, f1_score

    mapping = gold_labels(predictor, dataset.name)
    chosen = next((i for i, m in enumerate(predictor.config.members) if m.modality == only),
                  None) if only is not None else None
    gold, predicted = [], []
    for dialogue in dataset.split(split):
        bare = dialogue.unannotated()
        if chosen is None:
            labels = [u.label for u in predictor.predict(
                bare, feature_folder=feature_folder).utterances]
        else:
            member = predictor.predictors[chosen]
            output = member.predict(_only(bare, only), feature_folder=feature_folder)
            own = list(member.checkpoint.label_names)
            labels = [predictor.config.label_names[int(np.argmax(
                np.array([u.probabilities[k] for k in own]) @ predictor._maps[chosen]))]
                for u in output.utterances]
        for truth, label in zip(dialogue.utterances, labels, strict=True):
            if truth.label is not None and truth.scored:
                gold.append(mapping[truth.label])
                predicted.append(label)
    return {"weighted_f1": float(f1_score(gold, predicted, average="weighted",
                                          zero_division=0)),
            "accuracy": float(accuracy_score(gold, predicted)),
            "macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0))}
