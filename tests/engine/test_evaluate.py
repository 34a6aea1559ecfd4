"""Evaluating a checkpoint on any split, and refusing features it was not trained on."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.metrics import f1_score

from hotspot_erc.data.dialogue import Dataset, FeatureSpec, ModalitySpec
from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset
from hotspot_erc.engine.checkpoint import FeatureSpecMismatch
from hotspot_erc.engine.evaluate import evaluate_checkpoint
from hotspot_erc.engine.train import train

from .conftest import TINY


@pytest.fixture(scope="module")
def run_dir(tiny_dataset, tmp_path_factory):
    from hotspot_erc.engine.train import TrainConfig, model_config_for
    from hotspot_erc.model.config import ModelConfig

    folder = tmp_path_factory.mktemp("run")
    config = model_config_for(tiny_dataset, ModelConfig(hidden=16, heads=2).override(
        {"graph.past": 2, "graph.future": 1}))
    train(tiny_dataset, config, TrainConfig(epochs=2, batch_size=3, threads=1), folder,
          progress=False)
    return folder


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_evaluate_any_split(run_dir, tiny_dataset, split):
    result = evaluate_checkpoint(run_dir, tiny_dataset, split)
    predictions = result["predictions"]
    scored = [u for d in tiny_dataset.split(split) for u in d.utterances]
    assert predictions["utterance_ids"] == [u.uid for u in scored]
    assert result["metrics"]["weighted_f1"] == pytest.approx(
        f1_score(predictions["true"], predictions["predicted"], average="weighted"))
    assert result["notices"] == []
    assert "modalities" in result["diagnostics"]


def test_test_metrics_match_the_run(run_dir, tiny_dataset):
    import json

    stored = json.loads((run_dir / "metrics.json").read_text())
    assert evaluate_checkpoint(run_dir, tiny_dataset, "test")["metrics"] == stored["test"]


def test_wrong_features_are_refused(run_dir, tiny_dataset):
    other = copy.deepcopy(tiny_dataset)
    spec = dict(other.feature_spec.modalities)
    spec["audio"] = ModalitySpec("opensmile-egemaps", "1", 24, 24)
    other = Dataset(other.name, other.dialogues, other.label_names, other.splits,
                    FeatureSpec(spec))
    with pytest.raises(FeatureSpecMismatch, match="audio.extractor"):
        evaluate_checkpoint(run_dir, other, "test")


def test_other_labels_are_refused(run_dir, tiny_dataset):
    other = copy.deepcopy(tiny_dataset)
    other = Dataset(other.name, other.dialogues, list(reversed(other.label_names)), other.splits,
                    other.feature_spec)
    with pytest.raises(ValueError, match="checkpoint labels"):
        evaluate_checkpoint(run_dir, other, "test")


def test_hotspot_subsets_split_the_scored_utterances(run_dir, tiny_dataset):
    result = evaluate_checkpoint(run_dir, tiny_dataset, "test")
    subsets = result["subsets"]
    sizes = [subsets[k]["num_samples"] for k in ("with_hotspot", "without_hotspot")
             if subsets[k] is not None]
    assert sum(sizes) == result["metrics"]["num_samples"]
    hotspot_free = [u for d in tiny_dataset.split("test") for u in d.utterances
                    if not any(r.present and r.hotspot_truth.any() for r in u.features.values())]
    expected = len(hotspot_free)
    got = subsets["without_hotspot"]["num_samples"] if subsets["without_hotspot"] else 0
    assert got == expected


def test_decoy_subsets_appear_only_where_the_ground_truth_has_decoys(tiny_dataset):
    from hotspot_erc.engine.evaluate import hotspot_subsets

    plain_ids = [u.uid for d in tiny_dataset.split("test") for u in d.utterances]
    assert set(hotspot_subsets(tiny_dataset.split("test"), plain_ids)) == {
        "with_hotspot", "without_hotspot"}
    decoyed = generate_dataset(SyntheticConfig(**{**TINY, "decoy_probability": 1.0}))
    dialogues = decoyed.split("test")
    ids = [u.uid for d in dialogues for u in d.utterances]
    subsets = hotspot_subsets(dialogues, ids)
    expected = np.array(["decoy_class" in u.extra for d in dialogues for u in d.utterances])
    assert expected.any()
    np.testing.assert_array_equal(subsets["with_decoy"], expected)
    np.testing.assert_array_equal(subsets["with_hotspot_without_decoy"],
                                  subsets["with_hotspot"] & ~expected)
    assert not (subsets["with_decoy"] & subsets["without_hotspot"]).any()  # decoys need a hotspot


def test_non_finite_logits_are_an_error_naming_the_utterance(run_dir, tiny_dataset):
    """NaN scores must never become an accuracy (issue 12: 0.3125 from a NaN checkpoint)."""
    import torch

    from hotspot_erc.engine.checkpoint import load_checkpoint
    from hotspot_erc.engine.evaluate import NonFiniteOutput, evaluate_model

    checkpoint = load_checkpoint(run_dir)
    with torch.no_grad():
        for parameter in checkpoint.model.parameters():
            parameter.fill_(float("nan"))
    first = tiny_dataset.split("test")[0].utterances[0].uid
    with pytest.raises(NonFiniteOutput, match=rf"NaN or infinite scores \(first at utterance "
                                              rf"{first},"):
        evaluate_model(checkpoint.model, tiny_dataset.split("test"), tiny_dataset.label_names,
                       tiny_dataset.feature_spec)
