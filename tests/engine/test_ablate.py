"""Ablations over variants x seeds: summary.json, the markdown table, resumption."""

from __future__ import annotations

import json

import pytest

from hotspot_erc.engine.ablate import ablate, summary_table
from hotspot_erc.engine.train import run_config


@pytest.fixture(scope="module")
def ablation(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    base_model = {"hidden": 16, "heads": 2, "graph.past": 2, "graph.future": 1}
    base_train = {"epochs": 2, "batch_size": 3, "threads": 1}
    summary = ablate(tiny_dataset, ["full", "no_graph"], [0, 1], out, base_model, base_train,
                     progress=False)
    return out, summary, base_model, base_train


def test_summary_holds_mean_std_and_per_seed_values(ablation):
    out, summary, _, _ = ablation
    assert json.loads((out / "summary.json").read_text()) == summary
    for variant in ("full", "no_graph"):
        block = summary["variants"][variant]
        assert block["seeds"] == [0, 1]
        per_seed = [json.loads((out / variant / f"seed{s}" / "metrics.json").read_text())
                    for s in (0, 1)]
        stat = block["test"]["weighted_f1"]
        assert stat["values"] == [m["test"]["weighted_f1"] for m in per_seed]
        assert stat["mean"] == pytest.approx(sum(stat["values"]) / 2)
        assert set(block["test"]["per_class_f1"]) == set(summary["label_names"])


def test_markdown_table_has_a_row_per_variant(ablation):
    out, summary, _, _ = ablation
    table = (out / "summary.md").read_text()
    assert table == summary_table(summary)
    rows = [line for line in table.splitlines() if line.startswith("| full") or
            line.startswith("| no_graph")]
    assert len(rows) == 4  # headline table and per-class table
    assert "+-" in rows[0]


def test_finished_runs_are_not_retrained(ablation, tiny_dataset):
    out, summary, base_model, base_train = ablation
    stamp = (out / "full" / "seed0" / "metrics.json").stat().st_mtime_ns
    again = ablate(tiny_dataset, ["full", "no_graph"], [0, 1], out, base_model, base_train,
                   progress=False)
    assert again == summary
    assert (out / "full" / "seed0" / "metrics.json").stat().st_mtime_ns == stamp


def test_variants_bring_their_training_settings(tiny_dataset):
    model, train = run_config(tiny_dataset, "corect", seed=3)
    assert (train.lr, train.weight_decay, train.seed) == (2.5e-4, 1e-8, 3)
    assert model.hidden == 100 and model.input_dims["text"] == (32, 32)


def test_a_later_call_with_other_variants_and_seeds_joins_the_summary(ablation, tiny_dataset):
    out, summary, base_model, base_train = ablation
    joined = ablate(tiny_dataset, ["no_hgf"], [0], out, base_model, base_train, progress=False)
    assert list(joined["variants"]) == ["full", "no_graph", "no_hgf"]
    assert joined["variants"]["full"] == summary["variants"]["full"]
    assert joined["variants"]["no_hgf"]["seeds"] == [0]
    assert "| no_hgf | 1 |" in (out / "summary.md").read_text()


def test_the_users_training_settings_win_over_the_variants(tiny_dataset):
    model, train = run_config(tiny_dataset, "corect", {"hidden": 128},
                              {"batch_size": 2, "lr": 1e-3}, seed=1)
    assert (model.hidden, train.batch_size, train.lr, train.weight_decay) == (128, 2, 1e-3, 1e-8)
