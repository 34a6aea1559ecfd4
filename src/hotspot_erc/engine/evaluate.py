"""Evaluation of a model or a checkpoint on any split: metrics, predictions, diagnostics."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from hotspot_erc.data.batch import IGNORE_INDEX, iterate_batches
from hotspot_erc.data.dialogue import Dataset, Dialogue, FeatureSpec
from hotspot_erc.engine.checkpoint import load_checkpoint
from hotspot_erc.engine.config import TrainConfig, batch_positions
from hotspot_erc.engine.diagnostics import DiagnosticsAccumulator
from hotspot_erc.engine.metrics import classification_metrics
from hotspot_erc.model.model import HotspotERC


class NonFiniteOutput(ValueError):
    """The model gave NaN or infinite logits: there is no prediction to report."""


def check_finite_logits(logits: torch.Tensor, utterance_ids: Sequence[Sequence[str]]) -> None:
    """Raise :class:`NonFiniteOutput` naming the first utterance whose ``(B, U, C)`` logits are
    not all finite (padding positions included: a finite model gives finite padding too)."""
    bad = ~torch.isfinite(logits).all(dim=-1)  # (B, U)
    if bool(bad.any()):
        b, u = (int(i) for i in bad.nonzero()[0])
        name = utterance_ids[b][u] if u < len(utterance_ids[b]) else f"padding of dialogue {b}"
        raise NonFiniteOutput(f"the model gave NaN or infinite scores (first at utterance {name}, "
                              f"{int(bad.sum())} in this batch); the checkpoint is damaged or "
                              "the features hold extreme values")


@torch.no_grad()
def evaluate_model(model: HotspotERC, dialogues: Sequence[Dialogue], label_names: Sequence[str],
                   feature_spec: FeatureSpec, batch_size: int = 10,
                   max_positions: dict[str, int] | None = None,
                   diagnostics: bool = False) -> dict:
    """Predict every scored utterance of ``dialogues``; return metrics, and with ``diagnostics``
    also the explanation statistics and the metrics on utterances with / without a ground-truth
    hotspot (where ground truth exists)."""
    was_training = model.training
    model.eval()
    accumulator = (DiagnosticsAccumulator(model.config.modalities, list(label_names))
                   if diagnostics else None)
    truth, predicted, utterance_ids = [], [], []
    for batch in iterate_batches(dialogues, label_names, feature_spec, batch_size,
                                 max_positions=max_positions):
        output = model(batch)
        check_finite_logits(output.logits, batch.utterance_ids)
        scored = batch.labels != IGNORE_INDEX
        truth.append(batch.labels[scored].numpy())
        predicted.append(output.logits.argmax(dim=-1)[scored].numpy())
        for b, ids in enumerate(batch.utterance_ids):
            utterance_ids.extend(uid for u, uid in enumerate(ids) if bool(scored[b, u]))
        if accumulator is not None:
            accumulator.update(batch, output)
    model.train(was_training)
    y_true = np.concatenate(truth) if truth else np.zeros(0, dtype=np.int64)
    y_pred = np.concatenate(predicted) if predicted else np.zeros(0, dtype=np.int64)
    result = {"metrics": classification_metrics(y_true, y_pred, list(label_names)),
              "predictions": {"utterance_ids": utterance_ids, "true": y_true.tolist(),
                              "predicted": y_pred.tolist()}}
    # Only with diagnostics: per-epoch validation never reads the subsets.
    subsets = hotspot_subsets(dialogues, utterance_ids) if diagnostics else None
    if subsets is not None:
        result["subsets"] = {
            name: (classification_metrics(y_true[mask], y_pred[mask], list(label_names))
                   if mask.any() else None)
            for name, mask in subsets.items()}
    if accumulator is not None:
        result["diagnostics"] = accumulator.result()
    return result


def hotspot_subsets(dialogues: Sequence[Dialogue], utterance_ids: Sequence[str]
                    ) -> dict[str, np.ndarray] | None:
    """Masks over ``utterance_ids``: utterances with a ground-truth hotspot in some modality, and
    those with none (only dialogue context can label them); where the ground truth records decoys
    (the synthetic benchmark's ``decoy_class``), also the utterances with a decoy, which only
    cross-modal timing tells from the true class, and the hotspot utterances without one. None
    without ground truth."""
    has_hotspot, has_decoy = {}, {}
    for dialogue in dialogues:
        for utt in dialogue.utterances:
            truths = [r.hotspot_truth for r in utt.features.values()
                      if r.present and r.hotspot_truth is not None]
            if truths:
                has_hotspot[utt.uid] = any(bool(t.any()) for t in truths)
            has_decoy[utt.uid] = "decoy_class" in utt.extra
    if not has_hotspot:
        return None
    flags = np.array([has_hotspot.get(uid) for uid in utterance_ids], dtype=object)
    subsets = {"with_hotspot": flags == True,  # noqa: E712 (None marks "unknown")
               "without_hotspot": flags == False}  # noqa: E712
    if any(has_decoy.values()):
        decoys = np.array([has_decoy.get(uid, False) for uid in utterance_ids], dtype=bool)
        subsets["with_decoy"] = decoys
        subsets["with_hotspot_without_decoy"] = subsets["with_hotspot"] & ~decoys
    return subsets


def evaluate_checkpoint(checkpoint_dir: str | os.PathLike, dataset: Dataset, split: str,
                        batch_size: int = 10, diagnostics: bool = True) -> dict:
    """Load a checkpoint, check its feature spec against ``dataset`` and evaluate ``split``."""
    checkpoint = load_checkpoint(checkpoint_dir)
    notices = checkpoint.check_features(dataset.feature_spec, f"dataset {dataset.name}")
    if list(checkpoint.label_names) != list(dataset.label_names):
        raise ValueError(f"checkpoint labels {checkpoint.label_names} differ from the labels of "
                         f"dataset {dataset.name}: {dataset.label_names}")
    max_positions = batch_positions(checkpoint.config,
                                    TrainConfig.from_dict(checkpoint.train_config))
    result = evaluate_model(checkpoint.model, dataset.split(split), dataset.label_names,
                            checkpoint.feature_spec, batch_size, max_positions, diagnostics)
    result["notices"] = notices
    return result
