"""TrainConfig: every field checked in one place, with the field and the range in the message."""

from __future__ import annotations

import re

import pytest

from hotspot_erc.engine.config import TrainConfig


@pytest.mark.parametrize("change, message", [
    ({"lr": float("nan")}, "lr: expected a finite number, got nan"),
    ({"lr": "nan"}, "lr: expected a finite number, got 'nan'"),
    ({"lr": float("inf")}, "lr: expected a finite number, got inf"),
    ({"lr": 0.0}, "lr: expected a finite number > 0, got 0.0"),
    ({"lr": -1e-3}, "lr: expected a finite number > 0, got -0.001"),
    ({"epochs": 0}, "epochs: expected an integer >= 1, got 0"),
    ({"epochs": 2.5}, "epochs: expected an integer, got 2.5"),
    ({"batch_size": 0}, "batch_size: expected an integer >= 1, got 0"),
    ({"patience": -1}, "patience: expected an integer >= 0, got -1"),
    ({"min_epochs": -2}, "min_epochs: expected an integer >= 0, got -2"),
    ({"threads": 0}, "threads: expected an integer >= 1, got 0"),
    ({"seed": -1}, "seed: expected an integer >= 0, got -1"),
    ({"seed": True}, "seed: expected an integer, got True"),
    ({"weight_decay": -1.0}, "weight_decay: expected a finite number >= 0, got -1.0"),
    ({"grad_clip": float("nan")}, "grad_clip: expected a finite number, got nan"),
    ({"ema": 1.0}, "ema: expected a finite number in [0, 1)"),
    ({"selection_metric": "loss"},
     "selection_metric: expected one of weighted_f1, accuracy, macro_f1, got 'loss'"),
    ({"max_positions": {"audio": 0}}, "max_positions: expected {modality: integer >= 1}"),
    ({"max_positions": [3]}, "max_positions: expected a mapping (a string to an integer)"),
    ({"selection_metric": 3}, "selection_metric: expected a string, got 3"),
])
def test_an_invalid_field_is_a_value_error_naming_it(change, message):
    with pytest.raises(ValueError, match="^TrainConfig: .*" + re.escape(message)):
        TrainConfig().replace(**change)
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**change)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError, match="epochs: .*; batch_size: .*; lr: "):
        TrainConfig(epochs=0, batch_size=0, lr=0.0)


def test_valid_configs_pass_and_round_trip():
    config = TrainConfig(epochs=1, batch_size=1, patience=0, min_epochs=0, threads=1, lr=1e-6,
                         weight_decay=0, grad_clip=0, ema=0.999, selection_metric="macro_f1",
                         max_positions={"audio": 64})
    assert TrainConfig.from_dict(config.to_dict()) == config
