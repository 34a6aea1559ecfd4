"""The weight average: its update equation, the swap in and out, and resume state."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hotspot_erc.engine.ema import WeightAverage


def test_update_follows_the_warm_up_equation():
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    average = WeightAverage(layer, decay=0.99)
    expected = torch.zeros(1, 2)
    for step, value in enumerate([1.0, 2.0, 4.0], start=1):
        with torch.no_grad():
            layer.weight.fill_(value)
        average.update(layer)
        decay = min(0.99, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * value
    assert torch.allclose(average.shadow["weight"], expected)


def test_applied_swaps_the_average_in_and_restores_the_weights():
    layer = nn.Linear(3, 2)
    average = WeightAverage(layer, decay=0.5)
    original = {k: v.detach().clone() for k, v in layer.state_dict().items()}
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(1.0)
    average.update(layer)
    trained = {k: v.detach().clone() for k, v in layer.state_dict().items()}
    with average.applied(layer):
        for name, value in layer.state_dict().items():
            assert torch.allclose(value, average.shadow[name])
            assert not torch.allclose(value, original[name])
            assert not torch.allclose(value, trained[name])
    for name, value in layer.state_dict().items():
        assert torch.equal(value, trained[name])


def test_weights_come_back_when_the_block_raises():
    layer = nn.Linear(2, 2)
    average = WeightAverage(layer, decay=0.5)
    with torch.no_grad():
        layer.weight.add_(3.0)
    before = layer.weight.detach().clone()
    with pytest.raises(RuntimeError), average.applied(layer):
        raise RuntimeError("evaluation failed")
    assert torch.equal(layer.weight, before)


def test_state_round_trip_and_bad_decay():
    layer = nn.Linear(2, 2)
    average = WeightAverage(layer, decay=0.9)
    average.update(layer)
    steps, shadow = average.state()
    other = WeightAverage(nn.Linear(2, 2), decay=0.9)
    other.load(steps, shadow)
    assert other.steps == 1
    assert all(torch.equal(other.shadow[k], shadow[k]) for k in shadow)
    with pytest.raises(ValueError, match="lacks"):
        other.load(1, {})
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(layer, decay=1.0)
