"""The tuning loop on a tiny budget: validation only, resumable, reproducible as an ablation."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("optuna")

from hotspot_erc.engine.tune import SPACES, describe_space, tune, without_test  # noqa: E402

FIXED_MODEL = {"heads": 2, "graph.past": 2, "graph.future": 1}
FIXED_TRAIN = {"epochs": 1, "min_epochs": 0, "threads": 1}


def test_the_study_never_sees_test_and_resumes(tiny_dataset, tmp_path, monkeypatch):
    import hotspot_erc.engine.tune as tune_module

    seen_splits = []
    real_train = tune_module.train

    def recording_train(dataset, *args, **kwargs):
        seen_splits.append(sorted(dataset.splits))
        assert not set(dataset.splits.get("test", [])) & {d.did for d in dataset.dialogues}
        return real_train(dataset, *args, **kwargs)

    monkeypatch.setattr(tune_module, "train", recording_train)
    summary = tune(tiny_dataset, "full", tmp_path / "study", trials=2, seeds=[0, 1],
                   model_overrides=FIXED_MODEL, train_overrides=FIXED_TRAIN)
    assert seen_splits == [["train", "valid"]] * 4
    assert summary["trials"] == 2 and len(summary["history"]) == 2
    best = summary["best"]
    assert best["valid_weighted_f1"] == pytest.approx(sum(best["per_seed"]) / 2)
    assert set(best["model"]) == {"dropout", "hidden", *FIXED_MODEL}
    assert set(best["train"]) == {"lr", "weight_decay", "batch_size", *FIXED_TRAIN}
    assert json.loads((tmp_path / "study" / "best.json").read_text()) == summary
    for trial in range(2):
        assert (tmp_path / "study" / f"trial-{trial}" / "seed1" / "metrics.json").is_file()
        assert "test" not in json.loads(
            (tmp_path / "study" / f"trial-{trial}" / "seed0" / "metrics.json").read_text())

    # The same command again adds nothing; asking for three trials adds one.
    seen_splits.clear()
    assert tune(tiny_dataset, "full", tmp_path / "study", trials=2, seeds=[0, 1],
                model_overrides=FIXED_MODEL, train_overrides=FIXED_TRAIN)["trials"] == 2
    assert seen_splits == []
    more = tune(tiny_dataset, "full", tmp_path / "study", trials=3, seeds=[0, 1],
                model_overrides=FIXED_MODEL, train_overrides=FIXED_TRAIN)
    assert more["trials"] == 3 and len(seen_splits) == 2


def test_another_search_in_the_same_folder_is_refused(tiny_dataset, tmp_path):
    tune(tiny_dataset, "corect", tmp_path / "s", trials=1, seeds=[0],
         model_overrides=FIXED_MODEL, train_overrides=FIXED_TRAIN)
    with pytest.raises(ValueError, match="the study in this folder is another search"):
        tune(tiny_dataset, "corect", tmp_path / "s", trials=1, seeds=[0, 1],
             model_overrides=FIXED_MODEL, train_overrides=FIXED_TRAIN)


def test_a_searched_knob_cannot_also_be_fixed(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match=r"\['lr'\] are searched by the space 'common'"):
        tune(tiny_dataset, "full", tmp_path / "s", trials=1, train_overrides={"lr": 1e-3})


def test_the_flags_reproduce_the_best_configuration_exactly(tiny_dataset, tmp_path):
    from hotspot_erc.cli import _overrides, build_parser

    summary = tune(tiny_dataset, "full", tmp_path / "s", trials=1, seeds=[0],
                   model_overrides=FIXED_MODEL, train_overrides=FIXED_TRAIN)
    args = build_parser().parse_args(["ablate", "--out", "x", *summary["ablate_flags"].split()])
    model, training = _overrides(args)
    assert model == summary["best"]["model"] and training == summary["best"]["train"]


def test_every_space_describes_itself_and_drops_test_only():
    assert "lr (train): log-uniform in [0.0001, 0.005]" in describe_space("common")
    assert set(SPACES) >= {"common"}


def test_without_test_keeps_train_and_valid(tiny_dataset):
    kept = without_test(tiny_dataset)
    assert set(kept.splits) == {"train", "valid"}
    assert len(kept.dialogues) == len(tiny_dataset.splits["train"]) + len(
        tiny_dataset.splits["valid"])


def test_an_interrupted_trial_runs_again_in_its_folder(tiny_dataset, tmp_path, monkeypatch):
    """Ctrl-C in the middle of a trial, then the same command: that trial's configuration runs
    first, in its folder, and the study still ends with the trials asked for."""
    import hotspot_erc.engine.tune as tune_module

    real_train = tune_module.train
    calls = []

    def interrupted_train(dataset, model_config, train_config, run_dir, **kwargs):
        calls.append((str(run_dir), train_config.lr))
        if len(calls) == 3:  # trial 1, seed 0
            raise KeyboardInterrupt
        return real_train(dataset, model_config, train_config, run_dir, **kwargs)

    monkeypatch.setattr(tune_module, "train", interrupted_train)
    options = dict(trials=2, seeds=[0, 1], model_overrides=FIXED_MODEL,
                   train_overrides=FIXED_TRAIN)
    with pytest.raises(KeyboardInterrupt):
        tune(tiny_dataset, "full", tmp_path / "study", **options)
    summary = tune(tiny_dataset, "full", tmp_path / "study", **options)
    interrupted_folder, interrupted_lr = calls[2]
    assert interrupted_folder.endswith("trial-1/seed0")
    assert calls[3] == (interrupted_folder, interrupted_lr)  # the same trial, first, in place
    assert summary["trials"] == 2
    assert sorted(h["params"]["lr"] for h in summary["history"]) == sorted(
        {lr for _, lr in calls})
    again = tune(tiny_dataset, "full", tmp_path / "study", **options)  # nothing left to run
    assert again["trials"] == 2 and len(calls) == 5


def test_a_killed_trial_left_running_runs_again(tiny_dataset, tmp_path, monkeypatch):
    """A killed process leaves its trial marked running in the study; the next call fails it
    and runs its configuration again in its folder."""
    import optuna

    import hotspot_erc.engine.tune as tune_module

    options = dict(seeds=[0], model_overrides=FIXED_MODEL, train_overrides=FIXED_TRAIN)
    tune(tiny_dataset, "full", tmp_path / "study", trials=1, **options)
    study = optuna.load_study(study_name="full-common",
                              storage=f"sqlite:///{tmp_path / 'study' / 'study.db'}")
    killed = study.ask()  # as a killed run leaves it: sampled, started, never told
    params = {name: knob.sample(killed, name) for name, knob in SPACES["common"].items()}
    killed.set_user_attr("folder", f"trial-{killed.number}")
    real_train = tune_module.train
    folders = []

    def recording_train(dataset, model_config, train_config, run_dir, **kwargs):
        folders.append((str(run_dir), train_config.lr))
        return real_train(dataset, model_config, train_config, run_dir, **kwargs)

    monkeypatch.setattr(tune_module, "train", recording_train)
    summary = tune(tiny_dataset, "full", tmp_path / "study", trials=2, **options)
    assert folders == [(str(tmp_path / "study" / f"trial-{killed.number}" / "seed0"),
                        params["lr"])]
    assert summary["trials"] == 2
