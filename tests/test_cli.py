"""The command line: thin wrappers, clear errors, exit codes."""

from __future__ import annotations

import json

from hotspot_erc.cli import main


def test_models_lists_the_variants(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("full", "no_hgf", "no_moa", "no_graph", "fixed_align", "no_cross_edges",
                 "no_temporal_edges", "corect"):
        assert f"\n{name} " in "\n" + out
    assert main(["models", "no_*"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "full" not in names and "no_hgf" in names


def test_data_stats_prints_the_split_counts(capsys, shared_data):
    assert main(["data", "stats", "--dataset", "iemocap6", "--data", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "train          108        5163" in out
    assert "test            31        1623" in out
    assert main(["data", "stats", "--dataset", "meld", "--data", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "valid          114        1109" in out


def test_data_stats_synthetic_needs_no_files(capsys, monkeypatch):
    monkeypatch.delenv("HOTSPOT_ERC_DATA", raising=False)
    assert main(["data", "stats", "--dataset", "synthetic"]) == 0
    assert "synthetic" in capsys.readouterr().out


def test_bad_input_is_a_clear_error_without_traceback(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("HOTSPOT_ERC_DATA", raising=False)
    assert main(["data", "stats", "--dataset", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert main(["data", "stats", "--dataset", "iemocap6"]) == 2
    assert "HOTSPOT_ERC_DATA" in capsys.readouterr().err
    assert main(["train", "--dataset", "synthetic", "--out", str(tmp_path / "r"),
                 "--set", "hiden=3"]) == 2
    assert "unknown keys ['hiden']" in capsys.readouterr().err


def test_train_then_evaluate(capsys, tmp_path):
    run = tmp_path / "run"
    tiny = ["--synthetic-set", "num_train=4", "--synthetic-set", "num_valid=2",
            "--synthetic-set", "num_test=2", "--synthetic-set", "max_utterances=5",
            "--synthetic-set", "min_utterances=3", "--synthetic-set", "max_duration=2.0"]
    assert main(["train", "--dataset", "synthetic", *tiny, "--epochs", "1", "--threads", "1",
                 "--set", "hidden=16", "--set", "heads=2", "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "checkpoint selected on validation" in out
    assert (run / "metrics.json").exists()
    assert main(["evaluate", "--dataset", "synthetic", *tiny, "--checkpoint", str(run),
                 "--split", "valid", "--out", str(tmp_path / "eval.json")]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert set(result["metrics"]) >= {"accuracy", "weighted_f1", "macro_f1"}


def test_generate_then_read_the_store(capsys, tmp_path):
    out = tmp_path / "store"
    assert main(["data", "generate", "--out", str(out), "--synthetic-set", "num_train=3",
                 "--synthetic-set", "num_valid=1", "--synthetic-set", "num_test=1"]) == 0
    capsys.readouterr()
    assert main(["data", "stats", "--dataset", str(out), "--format", "store"]) == 0
    out_text = capsys.readouterr().out
    assert "train            3" in out_text
    assert "modalities: text, audio, video" in out_text
