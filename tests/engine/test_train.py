"""Training: the run folder, validation-only selection, exact resume."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from hotspot_erc.data.dialogue import Dataset
from hotspot_erc.engine.checkpoint import load_checkpoint
from hotspot_erc.engine.train import train


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


def test_early_stopping_stops_after_patience(tiny_dataset, tiny_model_config, tiny_train_config,
                                             tmp_path):
    config = tiny_train_config.replace(epochs=30, patience=1, lr=0.0, min_epochs=0)
    train(tiny_dataset, tiny_model_config, config, tmp_path / "r", progress=False)
    # With lr 0 the score never improves after epoch 0: epoch 1 is the one bad epoch allowed.
    assert len(read_log(tmp_path / "r")) == 2
    # min_epochs keeps a run going through an early plateau.
    config = config.replace(min_epochs=5)
    train(tiny_dataset, tiny_model_config, config, tmp_path / "r5", progress=False)
    assert len(read_log(tmp_path / "r5")) == 5
