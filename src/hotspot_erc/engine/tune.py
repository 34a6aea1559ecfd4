"""Hyperparameter search with a fair budget: Optuna, validation only, resumable.

Each trial draws one configuration from a :class:`SearchSpace`, trains it with every seed of
``seeds`` (each run resumable, in ``out/trial-<n>/seed<k>``) and scores it by the mean
validation weighted F1 over those seeds. The test split is removed from the dataset before any
training, so no trial can read it. The study lives in ``out/study.db`` (SQLite): rerunning the
same command continues it, and asking for more trials adds to it. A trial that was interrupted
(killed: still marked running; Ctrl-C: marked failed) is run again first, with its own
configuration and in its own folder, so its seeds resume from their last finished epoch. The
best configuration is written to ``out/best.json`` with the ``ablate`` command that runs it for
the reported seeds.

Fairness: every variant is searched over the same space (:data:`SPACES`, ``"common"``: learning
rate, weight decay, dropout, hidden size, dialogues per batch) with the same number of trials
and epochs, and Optuna's TPE sampler seeded the same way, so that no variant wins by having been
tuned harder. A variant-specific space can be registered, and must then say what it adds.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hotspot_erc.atomic import write_json
from hotspot_erc.data.dialogue import Dataset
from hotspot_erc.engine.train import run_config, train


@dataclass(frozen=True)
class Knob:
    """One searched setting: ``target`` ``"model"`` or ``"train"`` (which config it sets),
    ``kind`` ``"log"`` (log-uniform float in [low, high]), ``"float"`` (uniform) or
    ``"choice"`` (one of ``choices``)."""

    target: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple = ()

    def sample(self, trial, name: str):
        if self.kind == "log":
            return trial.suggest_float(name, self.low, self.high, log=True)
        if self.kind == "float":
            return trial.suggest_float(name, self.low, self.high)
        return trial.suggest_categorical(name, list(self.choices))


SearchSpace = Mapping[str, Knob]

SPACES: dict[str, SearchSpace] = {
    "common": {
        "lr": Knob("train", "log", 1e-4, 5e-3),
        "weight_decay": Knob("train", "log", 1e-8, 1e-3),
        "dropout": Knob("model", "float", 0.1, 0.6),
        "hidden": Knob("model", "choice", choices=(64, 96, 128)),
        "batch_size": Knob("train", "choice", choices=(4, 10, 16)),
    },
}


def describe_space(name: str) -> str:
    """The space ``name`` in words, one knob per line (for the CLI and docs/results.md)."""
    lines = []
    for knob_name, knob in _space(name).items():
        values = (f"one of {', '.join(map(str, knob.choices))}" if knob.kind == "choice"
                  else f"{'log-uniform' if knob.kind == 'log' else 'uniform'} in "
                       f"[{knob.low:g}, {knob.high:g}]")
        lines.append(f"{knob_name} ({knob.target}): {values}")
    return "\n".join(lines)


def without_test(dataset: Dataset) -> Dataset:
    """``dataset`` with its test split and the test dialogues removed."""
    test = set(dataset.splits.get("test", []))
    return Dataset(dataset.name, [d for d in dataset.dialogues if d.did not in test],
                   list(dataset.label_names),
                   {split: ids for split, ids in dataset.splits.items() if split != "test"},
                   dataset.feature_spec, dataset.description)


def tune(dataset: Dataset, variant: str, out_dir: str | os.PathLike, trials: int,
         seeds: Sequence[int] = (0, 1), space: str = "common",
         model_overrides: Mapping | None = None, train_overrides: Mapping | None = None,
         progress: bool = False, on_trial: Callable[[dict], None] | None = None) -> dict:
    """Run the study up to ``trials`` finished trials (module docstring); return the summary
    written to ``best.json``. ``model_overrides`` / ``train_overrides`` fix settings for every
    trial (e.g. the epochs); a searched knob may not be among them."""
    import optuna

    knobs = _space(space)
    fixed = {**dict(model_overrides or {}), **dict(train_overrides or {})}
    clash = sorted(set(knobs) & set(fixed))
    if clash:
        raise ValueError(f"tune: {clash} are searched by the space {space!r} and cannot also be "
                         "fixed")
    if trials < 1 or not seeds:
        raise ValueError("tune: needs at least one trial and one seed")
    data = without_test(dataset)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"{variant}-{space}", storage=f"sqlite:///{out / 'study.db'}",
        direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=0))
    _check_same_study(study, variant, space, list(seeds), fixed)
    _requeue_interrupted(study)

    def objective(trial) -> float:
        chosen = {name: knob.sample(trial, name) for name, knob in knobs.items()}
        # A requeued trial runs in the folder of the one it replaces (its runs resume there).
        folder = trial.user_attrs.get("folder", f"trial-{trial.number}")
        trial.set_user_attr("folder", folder)
        model = {**dict(model_overrides or {}),
                 **{k: v for k, v in chosen.items() if knobs[k].target == "model"}}
        training = {**dict(train_overrides or {}),
                    **{k: v for k, v in chosen.items() if knobs[k].target == "train"}}
        scores = []
        for seed in seeds:
            model_config, train_config = run_config(data, variant, model, training, seed)
            result = train(data, model_config, train_config, out / folder / f"seed{seed}",
                           progress=progress)
            scores.append(result.metrics["valid"]["weighted_f1"])
        trial.set_user_attr("valid_weighted_f1", scores)
        if on_trial is not None:
            on_trial({"trial": trial.number, "params": chosen, "valid": scores})
        return statistics.mean(scores)

    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(finished) < trials:
        study.optimize(objective, n_trials=trials - len(finished))
    summary = _summary(study, dataset, variant, space, list(seeds), model_overrides,
                       train_overrides)
    write_json(out / "best.json", summary)
    return summary


def _requeue_interrupted(study) -> None:
    """Mark every interrupted trial failed (a killed one is still "running") and queue its
    configuration again, once, to run in its folder; a requeued trial that is itself
    interrupted is requeued in turn, one that completes ends the chain."""
    import optuna

    running, failed = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL
    done = set(study.user_attrs.get("requeued", []))
    queued = {t.user_attrs.get("folder") for t in study.trials
              if t.state == optuna.trial.TrialState.WAITING}
    for trial in study.trials:
        if trial.state not in (running, failed) or trial.number in done:
            continue
        if trial.state == running:
            study.tell(trial.number, state=failed)
        folder = trial.user_attrs.get("folder", f"trial-{trial.number}")
        if folder not in queued:
            study.enqueue_trial(trial.params, user_attrs={"folder": folder})
            queued.add(folder)
        done.add(trial.number)
    study.set_user_attr("requeued", sorted(done))


def _space(name: str) -> SearchSpace:
    if name not in SPACES:
        raise KeyError(f"unknown search space {name!r}; known: {', '.join(SPACES)}")
    return SPACES[name]


def _check_same_study(study, variant: str, space: str, seeds: list[int], fixed: dict) -> None:
    """A resumed study must be the same search: same seeds and fixed settings."""
    key = json.dumps({"variant": variant, "space": space, "seeds": seeds, "fixed": fixed},
                     sort_keys=True, default=str)
    stored = study.user_attrs.get("search")
    if stored is None:
        study.set_user_attr("search", key)
    elif stored != key:
        raise ValueError(f"the study in this folder is another search ({stored}); use a new "
                         "--out folder")


def _summary(study, dataset: Dataset, variant: str, space: str, seeds: list[int],
             model_overrides, train_overrides) -> dict:
    import optuna

    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial
    knobs = _space(space)
    model = {**dict(model_overrides or {}),
             **{k: v for k, v in best.params.items() if knobs[k].target == "model"}}
    training = {**dict(train_overrides or {}),
                **{k: v for k, v in best.params.items() if knobs[k].target == "train"}}
    return {
        "dataset": dataset.name, "variant": variant, "space": space,
        "space_description": describe_space(space), "seeds": seeds,
        "trials": len(finished), "objective": "mean validation weighted F1 over the seeds",
        "best": {"trial": best.number, "valid_weighted_f1": best.value,
                 "per_seed": best.user_attrs.get("valid_weighted_f1"),
                 "model": model, "train": training},
        "history": [{"trial": t.number, "value": t.value, "params": t.params}
                    for t in finished],
        "ablate_flags": _flags(model, training),
    }


def _flags(model: Mapping, training: Mapping) -> str:
    """The ``ablate`` options that reproduce ``model`` / ``training`` exactly."""
    named = {"epochs": "--epochs", "batch_size": "--batch-size", "patience": "--patience",
             "threads": "--threads"}
    parts = [f"{named[key]} {value!r}" if key in named else f"--train-set {key}={value!r}"
             for key, value in training.items()]
    parts += [f"--set {key}={value!r}" for key, value in model.items()]
    return " ".join(parts)
