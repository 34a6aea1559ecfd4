"""Robustness of a checkpoint to missing and degraded modalities.

Evaluates the checkpoint on one split under these conditions, one modality at a time:

* ``clean``: the features as they are;
* ``drop``: the modality removed from every utterance (masked as missing, exactly what the model
  sees when a recording has no video or no transcript);
* ``noise`` at level s: every global vector and every valid local position gets Gaussian noise,
  ``x + s * sd * eps`` with ``sd`` the per-column standard deviation over the split;
* ``shift`` at level f: the local sequence is delayed by ``ceil(f * L)`` of its ``L`` positions
  (the first positions become invalid, the last ones fall off): the modality is out of step
  with the others and with its own global vector, as when a recording's clock is off.

Noise is drawn from one seeded generator, so a run is reproducible. The result holds accuracy,
weighted F1 and macro F1 per condition; :func:`robustness_table` formats it and
:func:`robustness_figure` draws the accuracy curves.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np

from hotspot_erc.data.dialogue import Dataset, ModalityFeatures
from hotspot_erc.engine.checkpoint import Checkpoint
from hotspot_erc.engine.evaluate import evaluate_model

NOISE_LEVELS = (0.25, 0.5, 1.0, 2.0)
SHIFT_LEVELS = (0.1, 0.25, 0.5)
METRICS = ("accuracy", "weighted_f1", "macro_f1")


def _column_std(records: list[ModalityFeatures]) -> tuple[np.ndarray, np.ndarray]:
    global_rows = np.stack([r.global_vector for r in records])
    local_rows = np.concatenate([r.local[r.local_mask] for r in records])
    return global_rows.std(axis=0), local_rows.std(axis=0)


def corrupt(dataset: Dataset, split: str, modality: str, kind: str, level: float = 0.0,
            seed: int = 0) -> list:
    """Deep copies of the ``split`` dialogues with ``modality`` dropped, noised or shifted."""
    dialogues = copy.deepcopy(dataset.split(split))
    records = [u.features[modality] for d in dialogues for u in d.utterances if u.has(modality)]
    if kind == "drop":
        for dialogue in dialogues:
            for utterance in dialogue.utterances:
                utterance.features.pop(modality, None)
        return dialogues
    if not records:
        return dialogues
    if kind == "noise":
        rng = np.random.default_rng(seed)
        global_sd, local_sd = _column_std(records)
        for record in records:
            record.global_vector = (record.global_vector + level * global_sd * rng.standard_normal(
                record.global_vector.shape)).astype(np.float32)
            noise = level * local_sd * rng.standard_normal(record.local.shape)
            record.local = np.where(record.local_mask[:, None], record.local + noise,
                                    record.local).astype(np.float32)
    elif kind == "shift":
        for record in records:
            length = record.num_positions
            delay = min(length - 1, math.ceil(level * length))
            if delay <= 0:
                continue
            record.local = np.concatenate([np.zeros_like(record.local[:delay]),
                                           record.local[:-delay]])
            mask = np.concatenate([np.zeros(delay, bool), record.local_mask[:-delay]])
            if not mask.any():  # nothing left in view: keep the last valid position visible
                mask[-1] = True
                record.local[-1] = record.local[length - 1 - delay]
            record.local_mask = mask
            if record.prior is not None:
                record.prior = np.concatenate([np.zeros(delay, np.float32),
                                               record.prior[:-delay]]) * mask
    else:
        raise ValueError(f"unknown corruption {kind!r}; expected drop, noise or shift")
    return dialogues


def robustness(checkpoint: Checkpoint, dataset: Dataset, split: str = "test",
               noise_levels: Sequence[float] = NOISE_LEVELS,
               shift_levels: Sequence[float] = SHIFT_LEVELS, seed: int = 0,
               batch_size: int = 10) -> dict:
    """Metrics of ``checkpoint`` on ``split`` under every condition (see the module docstring)."""
    checkpoint.check_features(dataset.feature_spec)
    spec = type(dataset.feature_spec)({m: s for m, s in checkpoint.feature_spec.modalities.items()
                                       if m in dataset.feature_spec.modalities})

    def score(dialogues) -> dict:
        metrics = evaluate_model(checkpoint.model, dialogues, dataset.label_names, spec,
                                 batch_size)["metrics"]
        return {name: metrics[name] for name in METRICS}

    result = {"split": split, "dataset": dataset.name, "seed": seed,
              "clean": score(dataset.split(split)), "modalities": {}}
    for modality in spec.modalities:
        entry = {"drop": score(corrupt(dataset, split, modality, "drop")),
                 "noise": [{"level": level, **score(corrupt(dataset, split, modality, "noise",
                                                             level, seed))}
                           for level in noise_levels],
                 "shift": [{"level": level, **score(corrupt(dataset, split, modality, "shift",
                                                             level, seed))}
                           for level in shift_levels]}
        result["modalities"][modality] = entry
    return result


def robustness_table(result: dict, metric: str = "accuracy") -> str:
    """Markdown: one row per modality, the metric (percent) per condition."""
    modalities = result["modalities"]
    if not modalities:
        return "no modality to corrupt"
    first = next(iter(modalities.values()))
    noise = [f"noise {row['level']:g}" for row in first["noise"]]
    shift = [f"shift {row['level']:g}" for row in first["shift"]]
    header = ["modality", "clean", "drop", *noise, *shift]
    lines = [f"{metric} on {result['dataset']} / {result['split']} (percent)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    clean = 100 * result["clean"][metric]
    for modality, entry in modalities.items():
        cells = [modality, f"{clean:.1f}", f"{100 * entry['drop'][metric]:.1f}"]
        cells += [f"{100 * row[metric]:.1f}" for row in entry["noise"] + entry["shift"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def robustness_figure(result: dict, metric: str = "accuracy") -> bytes:
    """PNG: the metric against the noise level and against the shift, one line per modality."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    clean = 100 * result["clean"][metric]
    for modality, entry in result["modalities"].items():
        for axis, kind in zip(axes, ("noise", "shift"), strict=True):
            levels = [0.0] + [row["level"] for row in entry[kind]]
            values = [clean] + [100 * row[metric] for row in entry[kind]]
            line, = axis.plot(levels, values, marker="o", label=modality)
            axis.axhline(100 * entry["drop"][metric], color=line.get_color(), linestyle=":",
                         linewidth=1)
    axes[0].set_xlabel("noise level (x feature sd)")
    axes[1].set_xlabel("delay (fraction of the utterance)")
    axes[0].set_ylabel(f"{metric} (%)")
    axes[0].legend(title="corrupted (dotted: dropped)", fontsize=8)
    figure.suptitle(f"{result['dataset']} / {result['split']}", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()
