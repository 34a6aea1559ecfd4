"""A short real-data training on IEMOCAP text (MiniLM features) to catch breakage end to end.

Not a results run: a few epochs on part of the training split, one seed.
"""

from __future__ import annotations

import json

import pytest

from hotspot_erc.data.dialogue import Dataset
from hotspot_erc.engine.datasets import resolve_dataset
from hotspot_erc.engine.evaluate import evaluate_checkpoint
from hotspot_erc.engine.train import TrainConfig, model_config_for, train
from hotspot_erc.model.config import ModelConfig

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def iemocap(shared_data):
    # The default feature cache: extracted once per machine (about a minute), then read back.
    return resolve_dataset("iemocap6", shared_data, progress=False)


def test_iemocap_text_features_follow_the_spec(iemocap):
    spec = iemocap.feature_spec.modalities["text"]
    assert (spec.global_dim, spec.local_dim) == (384, 384)
    assert iemocap.modalities == ["text"]
    utt = iemocap.split("test")[0].utterances[0]
    record = utt.features["text"]
    assert record.local.shape[1] == 384 and record.prior is not None
    assert 0.0 <= record.prior.min() and record.prior.max() <= 1.0


@pytest.mark.parametrize("variant", ["full", "corect"])
def test_short_training_on_iemocap(iemocap, variant, tmp_path):
    small = Dataset(iemocap.name, iemocap.dialogues, iemocap.label_names,
                    {"train": iemocap.splits["train"][:24], "valid": iemocap.splits["valid"],
                     "test": iemocap.splits["test"][:8]},
                    iemocap.feature_spec, iemocap.description)
    from hotspot_erc.model.variants import variant_config

    config = variant_config(variant, model_config_for(small, ModelConfig(hidden=32)))
    result = train(small, config, TrainConfig(epochs=3, threads=2, lr=1e-3), tmp_path,
                   progress=False)
    log = [json.loads(line) for line in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    test = result.metrics["test"]
    assert test["num_samples"] == sum(len(d) for d in small.split("test"))
    assert 0.0 <= test["weighted_f1"] <= 1.0
    again = evaluate_checkpoint(tmp_path, small, "test")
    assert again["metrics"] == test
