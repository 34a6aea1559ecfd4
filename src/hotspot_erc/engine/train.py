"""Training with validation-only selection, early stopping and exact resume.

A run folder holds::

    config.json        the resolved model and training configs and the dataset description
    epochs.jsonl       one line per epoch: training loss, validation metrics, time
    checkpoint/        the best model on the validation split (never chosen on test), with its
                       model card (corpus, validation and test scores)
    resume/            the state after the last finished epoch (weights, optimiser, counters)
    metrics.json       validation and test metrics of the selected checkpoint
    diagnostics.json   gate distributions, hotspot localisation, MoA routing (validation, test)
    .lock              locked (``flock``) by the run using the folder; it holds that run's pid

One run at a time: a second ``train`` into a folder in use fails at once (:class:`RunFolderBusy`)
instead of mixing its files with the first's. The lock dies with its process, so the folder of a
killed run resumes without any cleaning up.

Determinism: the shuffling order and the dropout stream of epoch ``e`` are seeded from
``(seed, e)``, so an interrupted run that resumes after epoch ``e`` replays exactly what an
uninterrupted run does (same seed, CPU). Test metrics are computed once, after training, from the
checkpoint selected on validation.

Several processes: started by torchrun, the ranks train data-parallel (DDP), each on its share of
every batch, and rank 0 alone validates and writes the run folder (:mod:`~.distributed`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hotspot_erc.atomic import write_json, write_npz, write_text
from hotspot_erc.data.dialogue import Dataset, Dialogue
from hotspot_erc.data.safe_npz import read_npz
from hotspot_erc.engine import distributed
from hotspot_erc.engine.checkpoint import (
    load_checkpoint,
    save_checkpoint,
    save_model_card,
    state_to_arrays,
)
from hotspot_erc.engine.config import TrainConfig, batch_positions
from hotspot_erc.engine.ema import WeightAverage
from hotspot_erc.engine.evaluate import evaluate_model
from hotspot_erc.engine.model_card import ModelCard
from hotspot_erc.features.registry import is_measured
from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.model import HotspotERC
from hotspot_erc.model.variants import get_variant


class RunFolderBusy(OSError):
    """Another process is training into this run folder."""


class TrainingDiverged(ValueError):
    """The training loss became NaN or infinite; no weights of that step were kept."""


@dataclass
class RunResult:
    run_dir: Path
    best_epoch: int
    metrics: dict
    diagnostics: dict


def model_config_for(dataset: Dataset, base: ModelConfig) -> ModelConfig:
    """Fill the dataset-dependent fields (input dimensions, classes) of ``base``, and, unless
    ``base.standardise`` is set, standardise the measured modalities
    (:func:`~hotspot_erc.features.registry.is_measured`: physical units), not text embeddings
    or generated features."""
    specs = dataset.feature_spec.modalities
    dims = {m: (spec.global_dim, spec.local_dim) for m, spec in specs.items()}
    standardise = base.standardise
    if standardise is None:
        standardise = [m for m, spec in specs.items() if is_measured(spec.extractor)]
    return base.replace(input_dims=dims, num_classes=len(dataset.label_names),
                        standardise=standardise)


def run_config(dataset: Dataset, variant: str, model_overrides: Mapping | None = None,
               train_overrides: Mapping | None = None, seed: int = 0
               ) -> tuple[ModelConfig, TrainConfig]:
    """The configs that train ``variant`` on ``dataset``: each config's defaults, then what the
    dataset fixes (dimensions, classes), then the variant's settings, then the user's
    ``model_overrides`` / ``train_overrides`` (:class:`~hotspot_erc.model.variants.Variant`)."""
    chosen = get_variant(variant)
    model_config = chosen.model_config(model_config_for(dataset, ModelConfig()), model_overrides)
    train_config = TrainConfig().replace(**chosen.train_defaults).replace(
        **dict(train_overrides or {}), seed=seed)
    return model_config, train_config


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
    finished epoch; a run with another configuration there is a ValueError naming the
    differences, a run in progress there is :class:`RunFolderBusy`. An empty ``train`` or
    ``valid`` split is a ValueError. ``stop_after_epoch`` ends the call early (as a kill would),
    for tests.
    """
    for split in ("train", "valid"):
        _check_split(dataset, split)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # Under torchrun, rank 0 holds the folder and the other ranks follow it (distributed.py).
    with distributed.process_group(), distributed.held_by_main_rank(_run_lock, run_dir):
        return distributed.announce_end(_train_in(run_dir, dataset, model_config, train_config,
                                                  progress, stop_after_epoch))


def _train_in(run_dir: Path, dataset: Dataset, model_config: ModelConfig,
              train_config: TrainConfig, progress: bool, stop_after_epoch: int | None
              ) -> RunResult:
    """:func:`train` in the locked ``run_dir``."""
    torch.set_num_threads(train_config.threads)
    resolved = {"model": model_config.to_dict(), "train": train_config.to_dict(),
                "dataset": {"name": dataset.name, "label_names": dataset.label_names,
                            "feature_spec": dataset.feature_spec.to_dict(),
                            "splits": {s: len(ids) for s, ids in dataset.splits.items()},
                            "description": dataset.description}}
    torch.manual_seed(train_config.seed)
    model = HotspotERC(model_config)
    optimiser = torch.optim.Adam(model.parameters(), lr=train_config.lr,
                                 weight_decay=train_config.weight_decay)
    # Written once the model builds: a config that cannot leaves no run folder behind that
    # would refuse the corrected command as "another configuration".
    _check_or_write_config(run_dir / "config.json", resolved)
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
    network = distributed.data_parallel(model)
    if not distributed.is_main_rank():
        return distributed.follow_main_rank(functools.partial(
            _train_epoch, model, optimiser, train_dialogues, dataset, train_config,
            positions=positions, average=average, forward=network))
    log_path = run_dir / "epochs.jsonl"
    log_lines = _read_log(log_path, state["epoch"])
    bar = tqdm(range(state["epoch"], train_config.epochs), desc=f"train {model_config.variant}",
               disable=not progress, initial=state["epoch"], total=train_config.epochs)
    for epoch in bar:
        if state["bad_epochs"] >= train_config.patience and epoch >= train_config.min_epochs:
            break
        started = time.perf_counter()
        distributed.announce_epoch(epoch)
        train_loss = _train_epoch(model, optimiser, train_dialogues, dataset, train_config, epoch,
                                  positions, average, network)
        with _selected_weights(model, average):
            valid = evaluate_model(model, valid_dialogues, dataset.label_names,
                                   dataset.feature_spec, train_config.batch_size, positions)
            score = valid["metrics"][train_config.selection_metric]
            improved = score > state["best_score"]
            if improved:
                state.update(best_score=score, best_epoch=epoch, bad_epochs=0)
                save_checkpoint(run_dir / "checkpoint", model, dataset.label_names,
                                dataset.feature_spec, train_config.to_dict(), epoch,
                                card=_model_card(dataset, {"valid": valid["metrics"]}))
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
    save_model_card(run_dir / "checkpoint", _model_card(dataset, metrics))
    return RunResult(run_dir, best_epoch, metrics, diagnostics)


def _model_card(dataset: Dataset, metrics: Mapping) -> ModelCard:
    """The card of a checkpoint trained on ``dataset`` that scored ``metrics`` (split ->
    metrics)."""
    return ModelCard.trained_on(dataset.name, dataset.label_names,
                                list(dataset.feature_spec.modalities), metrics)


def _train_epoch(model: HotspotERC, optimiser: torch.optim.Optimizer, dialogues, dataset: Dataset,
                 config: TrainConfig, epoch: int, positions: dict[str, int],
                 average: WeightAverage | None = None,
                 forward: torch.nn.Module | None = None) -> float:
    """Train ``model`` one epoch on this rank's share of each batch; return the mean loss.
    ``forward`` runs the batches: ``model``, or its DDP wrapper under torchrun."""
    model.train()
    torch.manual_seed(config.seed * 100_003 + epoch)
    generator = np.random.default_rng([config.seed, epoch])
    total, batches = 0.0, 0
    for batch in distributed.shard_batches(dialogues, dataset.label_names, dataset.feature_spec,
                                           config.batch_size, generator, positions):
        output = (forward or model)(batch)
        loss = distributed.rank_loss(model.loss(output, batch.labels), batch.labels,
                                     model.class_weights)
        if not torch.isfinite(loss):
            # The weights would become NaN at this step, and every later epoch with them.
            raise TrainingDiverged(f"training diverged in epoch {epoch}: the loss is "
                                   f"{float(loss.detach())}; lower the learning rate "
                                   "(--train-set lr=...) or check the features for extreme "
                                   "values")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimiser.step()
        if average is not None:
            average.update(model)
        total += float(loss.detach())
        batches += 1
    return distributed.mean_over_ranks(total) / max(batches, 1)


def _selected_weights(model: HotspotERC, average: WeightAverage | None):
    """Context in which ``model`` holds the weights that are validated and saved."""
    return average.applied(model) if average is not None else contextlib.nullcontext(model)


def _check_split(dataset: Dataset, split: str) -> None:
    """``split`` of ``dataset`` must hold at least one labelled, scored utterance."""
    if split not in dataset.splits:
        raise ValueError(f"dataset {dataset.name!r} has no {split!r} split (splits: "
                         f"{', '.join(sorted(dataset.splits)) or 'none'}); training needs "
                         "train and valid")
    if not dataset.stats()[split]["scored"]:
        raise ValueError(f"dataset {dataset.name!r}: the {split!r} split is empty (no labelled, "
                         f"scored utterance in its {len(dataset.splits[split])} dialogues); "
                         "training needs utterances in train and valid")


@contextlib.contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``run_dir/.lock`` for the block, or raise
    :class:`RunFolderBusy` at once if another process holds it."""
    path = run_dir / ".lock"
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunFolderBusy(f"{run_dir}: another train run (pid {holder}) is using this run "
                                "folder; wait for it to end or use another --out") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_or_write_config(path: Path, resolved: dict) -> None:
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a run configuration ({error}); use a new --out "
                             "folder or delete it") from None
        differences = _differences(_as_current(existing), json.loads(json.dumps(resolved)))
        if differences:
            shown = "; ".join(differences[:5]) + ("; ..." if len(differences) > 5 else "")
            raise ValueError(f"{path}: this run folder holds a run with another configuration "
                             f"({shown}); use a new --out folder or delete it")
        return
    write_json(path, resolved)


def _as_current(existing: dict) -> dict:
    """A run folder's saved configuration as this version writes it: fields added since are
    filled with their defaults, which compute what runs computed before the field existed (as
    for checkpoints), so a run started by an older version resumes. A section that does not
    read as a config is left as it is (and then differs)."""
    current = dict(existing)
    for section, config_class in (("model", ModelConfig), ("train", TrainConfig)):
        try:
            current[section] = config_class.from_dict(existing[section]).to_dict()
        except (KeyError, TypeError, ValueError):
            pass
    return current


def _differences(existing, requested, where: str = "") -> list[str]:
    """``field: folder has X, asked Y`` for each leaf where two JSON documents differ."""
    if isinstance(existing, dict) and isinstance(requested, dict):
        found = []
        for key in [*existing, *(k for k in requested if k not in existing)]:
            found += _differences(existing.get(key), requested.get(key),
                                  f"{where}.{key}" if where else key)
        return found
    if existing == requested:
        return []
    return [f"{where or 'config'}: folder has {_shortened(existing)}, asked "
            f"{_shortened(requested)}"]


def _shortened(value, limit: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
    arrays = read_npz(folder / "state.npz")
    # Resume points written before the counters moved into the archive: state.json.
    meta = json.loads(str(arrays.pop("meta")) if "meta" in arrays
                      else (folder / "state.json").read_text(encoding="utf-8"))
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
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
