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


def test_train_corect_on_a_feature_pack_then_refuse_other_features(capsys, tmp_path):
    """A CORECT-style pack (utterance-level vectors) trains the corect variant end to end, and
    its checkpoint refuses a pack with other dimensions."""
    import pickle

    import numpy as np

    def pack(path, audio_dim):
        rng = np.random.default_rng(0)

        def record(vid, count):
            return {"vid": vid, "speakers": ["F", "M"] * (count // 2) + ["F"] * (count % 2),
                    "labels": [int(k) for k in rng.integers(0, 6, count)],
                    "sentence": [f"line {k}" for k in range(count)],
                    "text": list(rng.standard_normal((count, 768), dtype=np.float32)),
                    "audio": list(rng.standard_normal((count, audio_dim), dtype=np.float32)),
                    "visual": list(rng.standard_normal((count, 512), dtype=np.float32))}

        payload = {"train": [record(f"Ses01F_impro0{k}", 5) for k in range(3)],
                   "dev": [record("Ses03F_impro01", 4)], "test": [record("Ses05F_impro01", 4)]}
        path.write_bytes(pickle.dumps(payload, protocol=4))
        return str(path)

    good, other = pack(tmp_path / "pack.pkl", 100), pack(tmp_path / "other.pkl", 80)
    run = tmp_path / "run"
    assert main(["train", "--dataset", good, "--format", "corect-pack", "--variant", "corect",
                 "--epochs", "1", "--threads", "1", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--dataset", good, "--format", "corect-pack",
                 "--checkpoint", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--dataset", other, "--format", "corect-pack",
                 "--checkpoint", str(run)]) == 2
    assert "audio.global_dim: expected 100, found 80" in capsys.readouterr().err


def test_unknown_training_override_is_a_clear_error(capsys, tmp_path):
    assert main(["train", "--dataset", "synthetic", "--out", str(tmp_path / "r"),
                 "--train-set", "lrr=0.1"]) == 2
    assert "TrainConfig: unknown keys ['lrr']" in capsys.readouterr().err
