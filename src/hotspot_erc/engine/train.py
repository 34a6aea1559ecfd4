"""Training with validation-only selection, early stopping and exact resume.

A run folder holds::

    config.json        the resolved model and training configs and the dataset description
    epochs.jsonl       one line per epoch: training loss, validation metrics, time
    checkpoint/        the best model on the validation split (never chosen on test)
    resume/            the state after the last finished epoch (weights, optimiser, counters)
    metrics.json       validation and test metrics of the selected checkpoint
    diagnostics.json   gate distributions, hotspot localisation, MoA routing (validation, test)

Determinism: the shuffling order and the dropout stream of epoch ``e`` are seeded from
``(seed, e)``, so an interrupted run that resumes after epoch ``e`` replays exactly what an
uninterrupted run does (same seed, CPU). Test metrics are computed once, after training, from the
checkpoint selected on validation.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hotspot_erc.atomic import write_json, write_npz, write_text
from hotspot_erc.data.batch import iterate_batches
from hotspot_erc.data.dialogue import Dataset, Dialogue
from hotspot_erc.engine.checkpoint import (
    load_checkpoint,
    save_checkpoint,
    state_to_arrays,
)
from hotspot_erc.engine.config import TrainConfig, batch_positions
from hotspot_erc.engine.ema import WeightAverage
from hotspot_erc.engine.evaluate import evaluate_model
from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.model import HotspotERC


@dataclass
class RunResult:
    run_dir: Path
    best_epoch: int
    metrics: dict
    diagnostics: dict


def model_config_for(dataset: Dataset, base: ModelConfig) -> ModelConfig:
    """Fill the dataset-dependent fields (input dimensions, classes) of ``base``, and, unless
    ``base.standardise`` is set, standardise the modalities made by the raw-media extractors
    (``audio-*``, ``video-*``: physical units), not text embeddings or generated features."""
    specs = dataset.feature_spec.modalities
    dims = {m: (spec.global_dim, spec.local_dim) for m, spec in specs.items()}
    standardise = base.standardise
    if standardise is None:
        standardise = [m for m, spec in specs.items()
                       if spec.extractor.startswith(("audio-", "video-"))]
    return base.replace(input_dims=dims, num_classes=len(dataset.label_names),
                        standardise=standardise)


def fit_standardisers(model: HotspotERC, dialogues: list[Dialogue]) -> None:
    """Fit the model's input standardisers on ``dialogues`` (the training split): global
    vectors of present utterances, local rows at valid positions."""
    for modality, standardiser in model.standardisers.items():
        records = [u.features[modality] for d in dialogues for u in d.utterances
                   if u.has(modality)]
        global_dim, local_dim = model.config.input_dims[modality]
        global_rows = np.stack([r.global_vector for r in records]) if records else np.zeros(
            (0, global_dim), np.float32)
        local_rows = np.concatenate([r.local[r.local_mask] for r in records]) if records \
            else np.zeros((0, local_dim), np.float32)
        standardiser.fit(global_rows, local_rows)


def train(dataset: Dataset, model_config: ModelConfig, train_config: TrainConfig,
          run_dir: str | os.PathLike, progress: bool = True,
          stop_after_epoch: int | None = None) -> RunResult:
    """Train, select on validation, evaluate the selected checkpoint on validation and test.

    If ``run_dir`` holds an unfinished run with the same configuration, it resumes after its last
    finished epoch. ``stop_after_epoch`` ends the call early (as a kill would), for tests.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(train_config.threads)
    resolved = {"model": model_config.to_dict(), "train": train_config.to_dict(),
                "dataset": {"name": dataset.name, "label_names": dataset.label_names,
                            "feature_spec": dataset.feature_spec.to_dict(),
                            "splits": {s: len(ids) for s, ids in dataset.splits.items()},
                            "description": dataset.description}}
    _check_or_write_config(run_dir / "config.json", resolved)

    torch.manual_seed(train_config.seed)
    model = HotspotERC(model_config)
    optimiser = torch.optim.Adam(model.parameters(), lr=train_config.lr,
                                 weight_decay=train_config.weight_decay)
    state = {"epoch": 0, "best_score": -math.inf, "best_epoch": -1, "bad_epochs": 0}
    # The weights that are validated and saved: the raw ones, or their moving average.
    average = WeightAverage(model, train_config.ema) if train_config.ema else None
    if (run_dir / "resume" / "state.json").exists():
        state = _load_resume(run_dir / "resume", model, optimiser, average)
    else:
        fit_standardisers(model, dataset.split("train"))

    positions = batch_positions(model_config, train_config)
    train_dialogues = dataset.split("train")
    valid_dialogues = dataset.split("valid")
    log_path = run_dir / "epochs.jsonl"
    log_lines = _read_log(log_path, state["epoch"])
    bar = tqdm(range(state["epoch"], train_config.epochs), desc=f"train {model_config.variant}",
               disable=not progress, initial=state["epoch"], total=train_config.epochs)
    for epoch in bar:
        if state["bad_epochs"] >= train_config.patience and epoch >= train_config.min_epochs:
            break
        started = time.perf_counter()
        train_loss = _train_epoch(model, optimiser, train_dialogues, dataset, train_config, epoch,
                                  positions, average)
        with _selected_weights(model, average):
            valid = evaluate_model(model, valid_dialogues, dataset.label_names,
                                   dataset.feature_spec, train_config.batch_size, positions)
            score = valid["metrics"][train_config.selection_metric]
            improved = score > state["best_score"]
            if improved:
                state.update(best_score=score, best_epoch=epoch, bad_epochs=0)
                save_checkpoint(run_dir / "checkpoint", model, dataset.label_names,
                                dataset.feature_spec, train_config.to_dict(), epoch)
            else:
                state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        log_lines.append(json.dumps({
            "epoch": epoch, "train_loss": train_loss,
            "valid": {k: valid["metrics"][k] for k in ("accuracy", "weighted_f1", "macro_f1")},
            "selected": improved, "seconds": round(time.perf_counter() - started, 3)}))
        write_text(log_path, "\n".join(log_lines) + "\n")
        _save_resume(run_dir / "resume", model, optimiser, state, average)
        bar.set_postfix(loss=f"{train_loss:.3f}",
                        valid=f"{100 * score:.1f}", best=f"{100 * state['best_score']:.1f}")
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            bar.close()
            return RunResult(run_dir, state["best_epoch"], {}, {})
    bar.close()
    return finish_run(dataset, run_dir, train_config, state["best_epoch"])


def finish_run(dataset: Dataset, run_dir: Path, train_config: TrainConfig,
               best_epoch: int) -> RunResult:
    """Evaluate the validation-selected checkpoint on validation and test; write the results."""
    checkpoint = load_checkpoint(run_dir / "checkpoint")
    metrics, diagnostics = {"best_epoch": best_epoch}, {}
    for split in ("valid", "test"):
        if split not in dataset.splits:
            continue
        result = evaluate_model(checkpoint.model, dataset.split(split), dataset.label_names,
                                dataset.feature_spec, train_config.batch_size,
                                batch_positions(checkpoint.config, train_config),
                                diagnostics=True)
        metrics[split] = result["metrics"]
        if "subsets" in result:
            metrics[f"{split}_subsets"] = result["subsets"]
        diagnostics[split] = result["diagnostics"]
    write_json(run_dir / "metrics.json", metrics)
    write_json(run_dir / "diagnostics.json", diagnostics)
    return RunResult(run_dir, best_epoch, metrics, diagnostics)


def _train_epoch(model: HotspotERC, optimiser: torch.optim.Optimizer, dialogues, dataset: Dataset,
                 config: TrainConfig, epoch: int, positions: dict[str, int],
                 average: WeightAverage | None = None) -> float:
    model.train()
    torch.manual_seed(config.seed * 100_003 + epoch)
    generator = np.random.default_rng([config.seed, epoch])
    total, batches = 0.0, 0
    for batch in iterate_batches(dialogues, dataset.label_names, dataset.feature_spec,
                                 config.batch_size, shuffle=True, generator=generator,
                                 max_positions=positions):
        output = model(batch)
        loss = model.loss(output, batch.labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimiser.step()
        if average is not None:
            average.update(model)
        total += float(loss.detach())
        batches += 1
    return total / max(batches, 1)


def _selected_weights(model: HotspotERC, average: WeightAverage | None):
    """Context in which ``model`` holds the weights that are validated and saved."""
    return average.applied(model) if average is not None else contextlib.nullcontext(model)


def _check_or_write_config(path: Path, resolved: dict) -> None:
    if path.exists():
        existing = json.loads(path.read_text(encoding="utf-8"))
        if existing != json.loads(json.dumps(resolved)):
            raise ValueError(f"{path}: this run folder holds a run with another configuration; "
                             "use a new --out folder or delete it")
        return
    write_json(path, resolved)


def _read_log(path: Path, epochs_done: int) -> list[str]:
    if not path.exists():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[:epochs_done]


def _save_resume(folder: Path, model: HotspotERC, optimiser: torch.optim.Optimizer,
                 state: dict, average: WeightAverage | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    optimiser_state = optimiser.state_dict()
    meta = {**state, "param_groups": optimiser_state["param_groups"]}
    arrays = {f"model/{k}": v for k, v in state_to_arrays(model.state_dict()).items()}
    for index, slots in optimiser_state["state"].items():
        for name, value in slots.items():
            arrays[f"optim/{index}/{name}"] = np.asarray(value.detach().cpu().numpy()
                                                         if torch.is_tensor(value) else value)
    if average is not None:
        steps, shadow = average.state()
        arrays.update({f"average/{k}": v for k, v in state_to_arrays(shadow).items()})
        meta["average_steps"] = steps
    # The counters travel inside the one atomically written archive, so weights and counters
    # always belong to the same epoch; state.json is written last and marks a complete point.
    arrays["meta"] = np.asarray(json.dumps(meta))
    write_npz(folder / "state.npz", arrays)
    write_json(folder / "state.json", meta)


def _load_resume(folder: Path, model: HotspotERC, optimiser: torch.optim.Optimizer,
                 average: WeightAverage | None = None) -> dict:
    with np.load(folder / "state.npz", allow_pickle=False) as arrays:
        # Resume points written before the counters moved into the archive: state.json.
        meta = json.loads(str(arrays["meta"]) if "meta" in arrays.files
                          else (folder / "state.json").read_text(encoding="utf-8"))
        tensors = {k: torch.from_numpy(np.array(arrays[k])) for k in arrays.files if k != "meta"}
    model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items()
                           if k.startswith("model/")})
    slots: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/")
            slots.setdefault(int(index), {})[name] = value
    optimiser.load_state_dict({"state": slots, "param_groups": meta.pop("param_groups")})
    steps = meta.pop("average_steps", None)
    if average is not None:
        if steps is None:
            raise ValueError(f"{folder}: this resume point has no weight average")
        average.load(steps, {k[len("average/"):]: v for k, v in tensors.items()
                             if k.startswith("average/")})
    return meta
