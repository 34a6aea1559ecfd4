"""Training: the run folder, validation-only selection, exact resume."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from hotspot_erc.data.dialogue import Dataset
from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset
from hotspot_erc.engine.checkpoint import load_checkpoint
from hotspot_erc.engine.train import RunFolderBusy, train


def read_log(run_dir):
    return [json.loads(line) for line in (run_dir / "epochs.jsonl").read_text().splitlines()]


def weights(run_dir):
    with np.load(run_dir / "checkpoint" / "weights.npz") as arrays:
        return {k: arrays[k].copy() for k in arrays.files}


def test_run_folder_holds_config_log_checkpoint_metrics(tiny_dataset, tiny_model_config,
                                                        tiny_train_config, tmp_path):
    result = train(tiny_dataset, tiny_model_config, tiny_train_config, tmp_path / "run",
                   progress=False)
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["hidden"] == 16 and config["train"]["epochs"] == 3
    assert len(read_log(run)) == 3
    metrics = json.loads((run / "metrics.json").read_text())
    for split in ("valid", "test"):
        for key in ("accuracy", "weighted_f1", "macro_f1", "per_class_f1", "confusion"):
            assert key in metrics[split]
    assert metrics == json.loads(json.dumps(result.metrics))
    diagnostics = json.loads((run / "diagnostics.json").read_text())
    assert set(diagnostics["test"]["modalities"]) == {"text", "audio", "video"}
    # The checkpoint is the epoch with the best validation score.
    log = read_log(run)
    best = max(range(3), key=lambda e: log[e]["valid"]["weighted_f1"])
    assert result.best_epoch == best == metrics["best_epoch"]
    assert load_checkpoint(run).epoch == best


def test_resume_after_a_kill_equals_an_uninterrupted_run(tiny_dataset, tiny_model_config,
                                                          tiny_train_config, tmp_path):
    train(tiny_dataset, tiny_model_config, tiny_train_config, tmp_path / "straight",
          progress=False)
    interrupted = train(tiny_dataset, tiny_model_config, tiny_train_config, tmp_path / "resumed",
                        progress=False, stop_after_epoch=0)
    assert interrupted.metrics == {}
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    train(tiny_dataset, tiny_model_config, tiny_train_config, tmp_path / "resumed",
          progress=False)
    straight, resumed = read_log(tmp_path / "straight"), read_log(tmp_path / "resumed")
    assert [e["train_loss"] for e in straight] == [e["train_loss"] for e in resumed]
    assert [e["valid"] for e in straight] == [e["valid"] for e in resumed]
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert (json.loads((tmp_path / "straight" / "metrics.json").read_text())
            == json.loads((tmp_path / "resumed" / "metrics.json").read_text()))


def test_resume_with_a_weight_average_equals_an_uninterrupted_run(
        tiny_dataset, tiny_model_config, tiny_train_config, tmp_path):
    config = tiny_train_config.replace(ema=0.9)
    train(tiny_dataset, tiny_model_config, config, tmp_path / "straight", progress=False)
    train(tiny_dataset, tiny_model_config, config, tmp_path / "resumed", progress=False,
          stop_after_epoch=1)
    train(tiny_dataset, tiny_model_config, config, tmp_path / "resumed", progress=False)
    straight, resumed = read_log(tmp_path / "straight"), read_log(tmp_path / "resumed")
    assert [e["valid"] for e in straight] == [e["valid"] for e in resumed]
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_the_saved_checkpoint_holds_the_average_not_the_last_weights(
        tiny_dataset, tiny_model_config, tiny_train_config, tmp_path):
    # One epoch: it is always selected, so the checkpoint is that epoch's saved weights.
    config = tiny_train_config.replace(ema=0.9, epochs=1, min_epochs=0)
    train(tiny_dataset, tiny_model_config, config, tmp_path / "ema", progress=False)
    train(tiny_dataset, tiny_model_config, config.replace(ema=0.0), tmp_path / "raw",
          progress=False)
    with np.load(tmp_path / "ema" / "resume" / "state.npz") as arrays:
        raw_last = {k[len("model/"):]: arrays[k].copy() for k in arrays.files
                    if k.startswith("model/")}
        averaged = {k[len("average/"):]: arrays[k].copy() for k in arrays.files
                    if k.startswith("average/")}
    assert averaged and set(averaged) <= set(raw_last)
    assert any(not np.allclose(averaged[k], raw_last[k]) for k in averaged)
    # Same seed, same updates: the average changes what is saved, not how training goes.
    with np.load(tmp_path / "raw" / "resume" / "state.npz") as arrays:
        assert all(np.array_equal(arrays[f"model/{k}"], raw_last[k]) for k in raw_last)
    assert read_log(tmp_path / "ema")[0]["train_loss"] == read_log(tmp_path / "raw")[0][
        "train_loss"]
    saved = weights(tmp_path / "ema")
    assert all(np.array_equal(saved[k], averaged[k]) for k in averaged)
    assert all(np.array_equal(saved[k], raw_last[k]) for k in raw_last if k not in averaged)


def test_selection_never_looks_at_the_test_split(tiny_dataset, tiny_model_config,
                                                 tiny_train_config, tmp_path):
    """Scramble every test label: training, selection and the chosen weights must not change."""
    scrambled = copy.deepcopy(tiny_dataset)
    rng = np.random.default_rng(0)
    for dialogue in scrambled.split("test"):
        for utt in dialogue.utterances:
            utt.label = scrambled.label_names[int(rng.integers(len(scrambled.label_names)))]
    scrambled = Dataset(scrambled.name, scrambled.dialogues, scrambled.label_names,
                        scrambled.splits, scrambled.feature_spec, scrambled.description)
    original = train(tiny_dataset, tiny_model_config, tiny_train_config, tmp_path / "a",
                     progress=False)
    changed = train(scrambled, tiny_model_config, tiny_train_config, tmp_path / "b",
                    progress=False)
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in read_log(tmp_path / "a")]
    assert strip == [{k: v for k, v in e.items() if k != "seconds"}
                     for e in read_log(tmp_path / "b")]
    assert original.best_epoch == changed.best_epoch
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert original.metrics["valid"] == changed.metrics["valid"]


def test_a_run_folder_with_another_config_is_refused(tiny_dataset, tiny_model_config,
                                                     tiny_train_config, tmp_path):
    train(tiny_dataset, tiny_model_config, tiny_train_config.replace(epochs=1), tmp_path / "r",
          progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        train(tiny_dataset, tiny_model_config, tiny_train_config.replace(lr=1e-4),
              tmp_path / "r", progress=False)


def test_a_run_started_before_a_field_existed_resumes(tiny_dataset, tiny_model_config,
                                                     tiny_train_config, tmp_path):
    # A folder an older version wrote: its config lacks a field added since (neutral_map, whose
    # default computes what runs computed before it existed).
    config = tiny_train_config.replace(epochs=2, min_epochs=0)
    train(tiny_dataset, tiny_model_config, config, tmp_path / "r", progress=False,
          stop_after_epoch=0)
    assert len(read_log(tmp_path / "r")) == 1
    path = tmp_path / "r" / "config.json"
    saved = json.loads(path.read_text())
    del saved["model"]["neutral_map"]
    path.write_text(json.dumps(saved))
    resumed = train(tiny_dataset, tiny_model_config, config, tmp_path / "r", progress=False)
    assert len(read_log(tmp_path / "r")) == 2 and resumed.best_epoch in (0, 1)
    # A field it holds with another value is still another configuration.
    saved["model"]["hidden"] = tiny_model_config.hidden * 2
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"another configuration \(model.hidden"):
        train(tiny_dataset, tiny_model_config, config, tmp_path / "r", progress=False)


def test_early_stopping_stops_after_patience(tiny_dataset, tiny_model_config, tiny_train_config,
                                             tmp_path):
    config = tiny_train_config.replace(epochs=30, patience=1, lr=1e-12, min_epochs=0)
    train(tiny_dataset, tiny_model_config, config, tmp_path / "r", progress=False)
    # With lr 1e-12 (lr 0 is refused) the weights barely move, so the score never improves after
    # epoch 0: epoch 1 is the one bad epoch allowed.
    assert len(read_log(tmp_path / "r")) == 2
    # min_epochs keeps a run going through an early plateau.
    config = config.replace(min_epochs=5)
    train(tiny_dataset, tiny_model_config, config, tmp_path / "r5", progress=False)
    assert len(read_log(tmp_path / "r5")) == 5


def test_another_seed_in_the_same_run_folder_names_both(tiny_dataset, tiny_model_config,
                                                        tiny_train_config, tmp_path):
    """Resuming a folder with another seed is refused, naming the folder's value and the asked
    one (the race of issue 12 left seed 4's config.json beside seed 3's weights)."""
    config = tiny_train_config.replace(epochs=1, seed=3)
    train(tiny_dataset, tiny_model_config, config, tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match=r"config\.json: this run folder holds a run with another "
                                         r"configuration \(train\.seed: folder has 3, asked 4\)"):
        train(tiny_dataset, tiny_model_config, config.replace(seed=4), tmp_path / "r",
              progress=False)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"]["seed"] == 3


def _hold_lock(path):
    """A separate process that holds the run folder's lock (as a running ``train`` does)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         "handle = open(sys.argv[1], 'a+')\n"
         "fcntl.flock(handle, fcntl.LOCK_EX)\n"
         "handle.seek(0); handle.truncate(); handle.write(f'{os.getpid()}\\n'); handle.flush()\n"
         "print('locked', flush=True)\n"
         "time.sleep(120)\n", str(path)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_run_into_a_folder_in_use_fails_at_once(tiny_dataset, tiny_model_config,
                                                        tiny_train_config, tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    holder = _hold_lock(run / ".lock")
    try:
        with pytest.raises(RunFolderBusy, match=rf"{run}: another train run \(pid {holder.pid}\) "
                                                "is using this run folder"):
            train(tiny_dataset, tiny_model_config, tiny_train_config.replace(seed=4), run,
                  progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert not (run / "config.json").exists()


def test_the_lock_of_a_killed_run_does_not_block_its_resume(tiny_dataset, tiny_model_config,
                                                            tiny_train_config, tmp_path):
    run = tmp_path / "r"
    train(tiny_dataset, tiny_model_config, tiny_train_config, run, progress=False,
          stop_after_epoch=0)
    holder = _hold_lock(run / ".lock")
    os.kill(holder.pid, signal.SIGKILL)  # kill -9: no cleanup, the lock file stays
    holder.wait()
    assert (run / ".lock").read_text().strip() == str(holder.pid)
    result = train(tiny_dataset, tiny_model_config, tiny_train_config, run, progress=False)
    assert len(read_log(run)) == 3 and "test" in result.metrics


def test_the_lock_is_held_while_training_and_released_after(tiny_dataset, tiny_model_config,
                                                           tiny_train_config, tmp_path,
                                                           monkeypatch):
    """Two opens of the lock file conflict like two processes: the run holds it throughout."""
    import hotspot_erc.engine.train as train_module

    run = tmp_path / "r"
    seen = []
    real_epoch = train_module._train_epoch

    def epoch_with_a_second_run(*args, **kwargs):
        with pytest.raises(RunFolderBusy, match="is using this run folder"):
            train(tiny_dataset, tiny_model_config, tiny_train_config, run, progress=False)
        seen.append(True)
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "_train_epoch", epoch_with_a_second_run)
    train(tiny_dataset, tiny_model_config, tiny_train_config.replace(epochs=1), run,
          progress=False)
    assert seen == [True]
    with open(run / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again: does not raise


@pytest.mark.parametrize("sizes, split", [
    ({"num_valid": 0}, "valid"), ({"num_train": 1, "missing_rate": 0.0}, None)])
def test_an_empty_training_or_validation_split_is_an_error(tiny_model_config, tiny_train_config,
                                                           tmp_path, sizes, split):
    """``num_valid=0`` (or every training utterance unlabelled) ran, selected on nothing and
    exited 0; now it is an error naming the split, before any run folder is made."""
    from .conftest import TINY

    dataset = generate_dataset(SyntheticConfig(**{**TINY, **sizes}))
    if split is None:
        split = "train"
        for dialogue in dataset.split("train"):
            for utterance in dialogue.utterances:
                utterance.label = None
        dataset = Dataset(dataset.name, dataset.dialogues, dataset.label_names, dataset.splits,
                          dataset.feature_spec, dataset.description)
    with pytest.raises(ValueError, match=rf"the '{split}' split is empty \(no labelled, scored "
                                         "utterance in its"):
        train(dataset, tiny_model_config, tiny_train_config, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_a_dataset_without_a_validation_split_is_an_error(tiny_dataset, tiny_model_config,
                                                          tiny_train_config, tmp_path):
    splits = {"train": tiny_dataset.splits["train"], "test": tiny_dataset.splits["test"]}
    dataset = Dataset(tiny_dataset.name, tiny_dataset.dialogues, tiny_dataset.label_names,
                      splits, tiny_dataset.feature_spec, tiny_dataset.description)
    with pytest.raises(ValueError, match="has no 'valid' split \\(splits: test, train\\)"):
        train(dataset, tiny_model_config, tiny_train_config, tmp_path / "r", progress=False)


def test_a_config_that_cannot_build_leaves_no_config_behind(tiny_dataset, tiny_model_config,
                                                            tiny_train_config, tmp_path):
    """Otherwise the corrected command would be refused as "another configuration"."""
    with pytest.raises(ValueError, match="divisible"):
        train(tiny_dataset, tiny_model_config.replace(heads=3), tiny_train_config,
              tmp_path / "r", progress=False)
    assert not (tmp_path / "r" / "config.json").exists()
    train(tiny_dataset, tiny_model_config, tiny_train_config.replace(epochs=1), tmp_path / "r",
          progress=False)


def test_a_diverging_loss_stops_training_with_advice(tiny_dataset, tiny_model_config,
                                                     tiny_train_config, tmp_path, monkeypatch):
    import torch

    from hotspot_erc.engine.train import TrainingDiverged
    from hotspot_erc.model.model import HotspotERC

    real_loss = HotspotERC.loss
    monkeypatch.setattr(HotspotERC, "loss",
                        lambda self, output, labels: real_loss(self, output, labels)
                        * torch.tensor(float("nan")))
    with pytest.raises(TrainingDiverged, match=r"training diverged in epoch 0: the loss is nan; "
                                               r"lower the learning rate"):
        train(tiny_dataset, tiny_model_config, tiny_train_config, tmp_path / "r", progress=False)
    assert not (tmp_path / "r" / "checkpoint").exists()
