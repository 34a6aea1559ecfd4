"""A tiny synthetic corpus and small configs so engine tests train in seconds."""

from __future__ import annotations

import pytest

from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset
from hotspot_erc.engine.train import TrainConfig, model_config_for
from hotspot_erc.model.config import ModelConfig

TINY = dict(num_train=6, num_valid=3, num_test=3, min_utterances=4, max_utterances=6,
            min_duration=1.0, max_duration=2.0, audio_rate_hz=10.0, video_rate_hz=6.0)


@pytest.fixture(scope="session")
def tiny_dataset():
    return generate_dataset(SyntheticConfig(**TINY))


@pytest.fixture
def tiny_model_config(tiny_dataset):
    return model_config_for(tiny_dataset, ModelConfig(hidden=16, heads=2).override(
        {"graph.past": 2, "graph.future": 1}))


@pytest.fixture
def tiny_train_config():
    return TrainConfig(epochs=3, batch_size=3, patience=10, threads=1, lr=3e-3)
