"""Predict emotions on one's own conversation and collect the evidence behind each prediction.

Two calls::

    predictor = Predictor.load("runs/my_model")          # checkpoint or run folder
    conversation = predictor.predict(dialogue)           # a Dialogue, e.g. from load_transcript

``predict`` extracts the conversation's features with exactly the extractors the checkpoint
records, rebuilt from their recipes (:func:`~hotspot_erc.features.registry.extractors_for`; any
difference in extractor name, version, dimension or recipe option, such as another package
version, is a :class:`~.checkpoint.FeatureSpecMismatch`), runs the model and
returns a :class:`~hotspot_erc.engine.prediction.ConversationPrediction`
(:func:`hotspot_erc.report.outputs.write_outputs` writes it as ``predictions.jsonl`` and
``report.html``):

* ``utterances``: per utterance its ``id``, ``speaker``, ``start``/``end``, ``text``, predicted
  ``label`` and class ``probabilities``; per modality the model read, its
  :class:`~hotspot_erc.engine.prediction.ModalityEvidence`: ``present``, the mean gate
  value over valid positions (``gate_mean``), the hotspot ``weights`` per position with the rule
  ``prior``, ``valid`` flags and ``times`` (seconds from the utterance start; audio and video)
  or word-piece ``tokens`` (text), and the top ``hotspots`` spans (token ranges for text;
  seconds from the start of the recording for audio and video); the aligner experts chosen per
  modality pair (``routing``);
* ``notices``: what the run could not use (a modality the checkpoint does not know, media that
  could not be decoded, media in which the extractor found nothing to describe, such as a
  silent track or a video without a face, overlapping turns), one per media problem, naming the
  modality, the file, the reason and how many utterances lost that modality;
* ``timings``: seconds spent extracting (decoding included), in the model (batching and the
  forward pass) and collecting the evidence;
* ``model_card``: the checkpoint's :class:`~hotspot_erc.engine.model_card.ModelCard` (training
  corpus and domain, scores, intended use, demonstration flag), also ``Predictor.card``.

Modalities the conversation lacks are masked (never zero-filled data); a modality the
checkpoint does not know is ignored with a notice.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from hotspot_erc.data.batch import collate
from hotspot_erc.data.dialogue import (
    Dataset,
    Dialogue,
    FeatureSpec,
    ModalityFeatures,
    Utterance,
)
from hotspot_erc.engine.checkpoint import (
    ASSETS_FOLDER,
    Checkpoint,
    FeatureSpecMismatch,
    load_checkpoint,
)
from hotspot_erc.engine.evaluate import check_finite_logits
from hotspot_erc.engine.model_card import ModelCard
from hotspot_erc.engine.prediction import (
    ConversationPrediction,
    ModalityEvidence,
    Routing,
    TimeSpan,
    TokenSpan,
    UtterancePrediction,
)
from hotspot_erc.features.decode import probe
from hotspot_erc.spans import hotspot_spans, join_pieces

if TYPE_CHECKING:
    from hotspot_erc.features.extract import Failure


def conversation_media(media: str | None = None, audio: str | None = None,
                       video: str | None = None) -> tuple[dict[str, str], float | None]:
    """The recordings of one conversation as ``{modality: absolute path}`` and the shortest
    duration among them: ``media`` is one recording (its audio and video streams are used),
    ``audio`` and ``video`` separate ones. A file without the stream it is named for is a
    ValueError."""
    found: dict[str, str] = {}
    duration = None
    for option, path in (("--media", media), ("--audio", audio), ("--video", video)):
        if path is None:
            continue
        info = probe(path)
        duration = info.duration if duration is None else min(duration, info.duration or duration)
        if option == "--video" and not info.has_video:
            raise ValueError(f"{path}: --video names a file without a video stream")
        if option == "--media" and not (info.has_audio or info.has_video):
            raise ValueError(f"{path}: no audio or video stream")
        if option in ("--media", "--video") and info.has_video:
            found["video"] = os.path.abspath(path)
        if option in ("--media", "--audio") and info.has_audio:
            found["audio"] = os.path.abspath(path)
    return found, duration


@dataclass
class Predictor:
    """A loaded checkpoint plus the extractors that reproduce its features."""

    checkpoint: Checkpoint
    workers: int = 2
    _extractors: dict | None = field(default=None, repr=False)
    _warmed: bool = field(default=False, repr=False)

    @classmethod
    def load(cls, folder: str | os.PathLike, workers: int = 2) -> Predictor:
        return cls(load_checkpoint(folder), workers=workers)

    @classmethod
    def from_pretrained(cls, name: str, workers: int = 2):
        """A model that ships with the package (:mod:`hotspot_erc.engine.pretrained`), e.g.
        ``"meld-text"``; ``hotspot-erc models --pretrained`` lists them. A fused one
        (``"text-audio"``) is a :class:`~hotspot_erc.engine.fusion.FusedPredictor`."""
        from hotspot_erc.engine.pretrained import pretrained_folder

        return load_predictor(pretrained_folder(name), workers=workers)

    @property
    def label_names(self) -> list[str]:
        return list(self.checkpoint.label_names)

    @property
    def card(self) -> ModelCard | None:
        """The checkpoint's model card: what the model learned from and what it is for."""
        return self.checkpoint.card

    # -- extraction recipe ---------------------------------------------------------------------

    def extract_config(self):
        """The :class:`~hotspot_erc.features.extract.ExtractConfig` of the checkpoint's
        modalities; how each is extracted comes from :meth:`extractors`."""
        from hotspot_erc.features.extract import ExtractConfig

        return ExtractConfig(modalities=tuple(self.checkpoint.feature_spec.modalities),
                             workers=self.workers)

    def extractors(self) -> dict:
        """The extractors of the checkpoint's features by modality, rebuilt from its recipes once
        (models load on first use); a recipe this installation cannot rebuild (an unknown
        extractor or option) is a :class:`FeatureSpecMismatch`."""
        if self._extractors is None:
            from hotspot_erc.features.registry import RecipeError, extractors_for

            try:
                assets = (self.checkpoint.path / ASSETS_FOLDER
                          if self.checkpoint.path is not None else None)
                self._extractors = extractors_for(self.checkpoint.feature_spec, assets)
            except RecipeError as error:
                raise FeatureSpecMismatch(f"checkpoint {self.checkpoint.path}: {error}") from None
        return self._extractors

    def check_recipe(self) -> None:
        """Fail before any extraction if this installation cannot make the checkpoint's
        features (another extractor version, another package version, features that came with
        the training data)."""
        from hotspot_erc.data.speaker_norm import without_speaker_norm

        problems = []
        for modality, extractor in self.extractors().items():
            if not extractor.extracts:
                problems.append(f"{modality}: the checkpoint's features come with its training "
                                f"data ({extractor.name!r}), no extractor makes them")
                continue
            # Speaker normalisation comes after extraction: compare the extractor's own recipe.
            wanted = without_speaker_norm(self.checkpoint.feature_spec.modalities[modality])
            problems += [f"{modality}.{key}: the checkpoint needs {want!r}, this installation "
                         f"makes {made!r}"
                         for key, want, made in wanted.differences(extractor.spec)]
        if problems:
            raise FeatureSpecMismatch(
                f"checkpoint {self.checkpoint.path} cannot be fed by this installation's "
                f"extractors: {'; '.join(problems)}. Install the package versions it was "
                "trained with, or retrain on features extracted here.")

    # -- prediction ----------------------------------------------------------------------------

    def predict(self, dialogue: Dialogue, notices: list[str] | None = None,
                feature_folder: str | os.PathLike | None = None, progress: bool = False
                ) -> ConversationPrediction:
        """Extract, run the model, and return the conversation's predictions with evidence.

        ``feature_folder`` keeps the extracted features (a feature store per conversation
        content, ``<feature_folder>/<digest>``; a rerun on the same conversation reuses them);
        by default they go to a temporary folder. ``notices`` are carried into the result.
        """
        from hotspot_erc.features.extract import (
            dataset_digest,
            extract_features,
            load_extracted,
            media_modalities,
        )

        notices = list(notices or [])
        known = self.checkpoint.feature_spec.modalities
        dataset = Dataset(name=dialogue.did, dialogues=[dialogue],
                          label_names=list(self.checkpoint.label_names),
                          splits={"all": [dialogue.did]})
        available = set(media_modalities(dataset))
        if any(u.text.strip() for u in dialogue.utterances):
            available.add("text")
        for modality in sorted(available - set(known)):
            notices.append(f"the checkpoint knows no {modality} features: {modality} ignored")
        for modality in known:
            if modality not in available:
                notices.append(f"the conversation has no {modality}: {modality} is treated as "
                               "missing (masked)")
        began = time.perf_counter()
        config = self.extract_config()
        self.check_recipe()
        # The first forward pass of a process pays one-off start-up costs: pay them on a dummy
        # batch while the extractors work, once per predictor (a server calls predict often).
        warm_up = threading.Thread(target=self._warm_up, daemon=True)
        if not self._warmed:
            warm_up.start()
        if feature_folder is None and available & set(config.modalities) == {"text"}:
            # Text alone, nothing to keep: no store (a server's text-only requests).
            loaded = self._text_features(dataset)
        else:
            with tempfile.TemporaryDirectory() as scratch:
                # One store per conversation content: an edited transcript gets fresh features.
                folder = (Path(feature_folder) / dataset_digest(dataset)
                          if feature_folder is not None else Path(scratch))
                report = extract_features(dataset, folder, config, progress=progress,
                                          extractors=self.extractors())
                notices += [failure_notice(f, len(dialogue.utterances)) for f in report.failures]
                loaded = load_extracted(folder, report)
        loaded = self.normalise_speakers(loaded)
        self.checkpoint.check_features(loaded.feature_spec, f"conversation {dialogue.did}")
        if not self._warmed:
            warm_up.join()
            self._warmed = True
        extracted = time.perf_counter()
        conversation = self.run_model(loaded, notices)
        conversation.timings["extract_s"] = round(extracted - began, 3)
        return conversation

    def _text_features(self, dataset: Dataset) -> Dataset:
        """``dataset`` (one dialogue) with its text features, in memory: the same values a
        feature store would give back (:func:`~hotspot_erc.data.store.records_as_stored`)."""
        from hotspot_erc.data.store import records_as_stored

        extractor = self.extractors()["text"]
        spec = extractor.spec
        dialogue = dataset.dialogues[0]
        records = records_as_stored(extractor.extract_conversations([dialogue])[0],
                                    [u.uid for u in dialogue.utterances], spec, dialogue.did,
                                    "text")
        utterances = [dataclasses.replace(u, features={"text": record})
                      for u, record in zip(dialogue.utterances, records, strict=True)]
        return dataclasses.replace(
            dataset, dialogues=[dataclasses.replace(dialogue, utterances=utterances)],
            feature_spec=FeatureSpec({"text": spec}))

    def normalise_speakers(self, dataset: Dataset) -> Dataset:
        """Normalise per speaker the modalities the checkpoint was trained on normalised."""
        from hotspot_erc.data.speaker_norm import normalise_speakers, speaker_norm_scope

        scopes = {m: speaker_norm_scope(spec)
                  for m, spec in self.checkpoint.feature_spec.modalities.items()
                  if m in dataset.feature_spec.modalities}
        for scope in sorted({s for s in scopes.values() if s is not None}):
            dataset = normalise_speakers(dataset, [m for m, s in scopes.items() if s == scope],
                                         scope)
        return dataset

    def warm_up(self) -> None:
        """Pay the model's first-call costs now, once per predictor (then a no-op)."""
        if not self._warmed:
            self._warm_up()
            self._warmed = True

    def _warm_up(self) -> None:
        """One forward pass over a dummy two-utterance dialogue with every known modality."""
        rng = np.random.default_rng(0)
        features = {m: ModalityFeatures(global_vector=rng.standard_normal(spec.global_dim),
                                        local=rng.standard_normal((4, spec.local_dim)))
                    for m, spec in self.checkpoint.feature_spec.modalities.items()}
        dummy = Dialogue("warm-up", [Utterance(f"u{i}", "AB"[i], features=features)
                                     for i in range(2)])
        batch = collate([dummy], self.checkpoint.label_names, self.checkpoint.feature_spec)
        with torch.no_grad():
            self.checkpoint.model.eval()(batch)

    def run_model(self, dataset: Dataset, notices: list[str]) -> ConversationPrediction:
        """The predictions, with their evidence, of ``dataset``'s one dialogue, whose features
        are already extracted (and normalised per speaker where the checkpoint asks)."""
        model = self.checkpoint.model.eval()
        dialogue = dataset.dialogues[0]
        spec = self.checkpoint.feature_spec
        began = time.perf_counter()
        # A modality the conversation lacks is simply not present in the batch (masked).
        batch = collate([dialogue], self.checkpoint.label_names, spec)
        with torch.no_grad():
            output = model(batch)
        check_finite_logits(output.logits, batch.utterance_ids)
        model_seconds = time.perf_counter() - began
        probabilities = torch.softmax(output.logits[0], dim=-1).numpy()  # (U, C)
        labels = self.checkpoint.label_names
        tokens = {}
        if "text" in spec.modalities and "text" in dataset.feature_spec.modalities:
            extractor = self.extractors()["text"]
            tokens = {u.uid: extractor.tokens(u.text) for u in dialogue.utterances}
        kinds = model.moa.expert_kinds if model.moa is not None else []
        utterances = []
        for index, utterance in enumerate(dialogue.utterances):
            chosen_routing = {}
            for (source, target), routing in output.routing.items():
                if not bool(routing.valid[0, index]):
                    continue
                chosen = [int(e) for e in routing.selected[0, index] if int(e) >= 0]
                chosen_routing[f"{source}->{target}"] = Routing(
                    experts=[kinds[e] if e < len(kinds) else str(e) for e in chosen],
                    weights=[round(float(routing.weights[0, index, e]), 4) for e in chosen])
            utterances.append(UtterancePrediction(
                id=utterance.uid, speaker=utterance.speaker, start=utterance.start,
                end=utterance.end, text=utterance.text,
                label=labels[int(np.argmax(probabilities[index]))],
                probabilities={name: round(float(p), 6)
                               for name, p in zip(labels, probabilities[index], strict=True)},
                modalities={modality: _modality_evidence(
                    modality, utterance, output.hotspots.get(modality), index,
                    tokens.get(utterance.uid, [])) for modality in model.modalities},
                routing=chosen_routing))
        return ConversationPrediction(
            name=dialogue.did, label_names=list(labels), checkpoint=str(self.checkpoint.path),
            media=dict(dialogue.media), notices=notices, utterances=utterances,
            timings={"model_s": round(model_seconds, 4),
                     "evidence_s": round(time.perf_counter() - began - model_seconds, 4)},
            model_card=self.card)


def load_predictor(folder: str | os.PathLike, workers: int = 2):
    """The predictor of ``folder``: a :class:`Predictor` for a checkpoint, a
    :class:`~hotspot_erc.engine.fusion.FusedPredictor` for a fused model (``fusion.json``)."""
    from hotspot_erc.engine.fusion import FusedPredictor, is_fusion

    if is_fusion(folder):
        return FusedPredictor.load(folder, workers=workers)
    return Predictor.load(folder, workers=workers)


def failure_notice(failure: Failure, utterances: int) -> str:
    """``audio call.wav: no speech found (silence?): audio masked for all 12 utterances``."""
    count = len(failure.utterances)
    if count == utterances == 1:
        scope = "the only utterance"
    elif count == utterances:
        scope = f"all {count} utterances"
    else:
        scope = f"{count} of {utterances} utterances"
    return (f"{failure.modality} {failure.path}: {failure.reason}: {failure.modality} masked "
            f"for {scope}")


def _modality_evidence(modality: str, utterance, explanation, index: int,
                       tokens: list[str]) -> ModalityEvidence:
    record = utterance.features.get(modality)
    if record is None or not record.present or explanation is None \
            or not bool(explanation.present[0, index]):
        return ModalityEvidence.absent()
    length = record.num_positions
    weights = explanation.hotspot_weights[0, index, :length].numpy().astype(float)
    gate = explanation.gate[0, index, :length].numpy().astype(float)
    valid = record.local_mask[:length].astype(bool)
    evidence = ModalityEvidence(
        present=True, gate_mean=round(float(gate[valid].mean()), 4) if valid.any() else None,
        weights=[round(w, 4) for w in weights.tolist()],
        prior=None if record.prior is None
        else [round(float(p), 4) for p in record.prior[:length]],
        valid=valid.tolist())
    spans = hotspot_spans(weights, valid)
    if modality == "text":
        evidence.tokens = tokens[:length]
        evidence.hotspots = [TokenSpan(tokens=join_pieces(tokens[first:last + 1]), first=first,
                                       last=last, weight=round(peak, 4))
                             for first, last, peak in spans]
    else:
        times = record.position_times
        evidence.times = [round(float(t), 3) for t in times[:length]]
        offset = utterance.start or 0.0
        step = float(np.median(np.diff(times))) if length > 1 else 0.0
        evidence.hotspots = [TimeSpan(start=round(offset + float(times[first]) - step / 2, 3),
                                      end=round(offset + float(times[last]) + step / 2, 3),
                                      weight=round(peak, 4))
                             for first, last, peak in spans]
    return evidence
