"""The relative-time bias: its clock, the vectorised profile against the loop, the zero start,
and that a learned profile steers attention by timing alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hotspot_erc.model.attention import multi_head_attention
from hotspot_erc.model.time_bias import (
    RelativeTimeBias,
    normalised_positions,
    relative_time_bias_reference,
)


def ragged_mask(lengths, width):
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


def test_normalised_positions_centre_each_valid_position_in_its_share():
    mask = torch.tensor([[True, True, True, True], [True, True, False, False],
                         [False, False, False, False]])
    expected = torch.tensor([[0.125, 0.375, 0.625, 0.875], [0.25, 0.75, 0.0, 0.0],
                             [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(normalised_positions(mask), expected)


@pytest.mark.parametrize("tables", [1, 3])
def test_vectorised_bias_equals_the_element_by_element_reference(tables):
    torch.manual_seed(0)
    bias = RelativeTimeBias(2, tables=tables, knots=5)
    with torch.no_grad():
        bias.table.normal_()
    query_mask = ragged_mask([4, 2, 3], 4)
    key_mask = ragged_mask([6, 6, 1], 6)
    weights = torch.softmax(torch.randn(3, tables), dim=-1) if tables > 1 else None
    expected = relative_time_bias_reference(bias.gain * bias.table.detach(), query_mask,
                                            key_mask, weights)
    torch.testing.assert_close(bias(query_mask, key_mask, weights), expected)


def test_the_bias_starts_at_zero_and_learns():
    bias = RelativeTimeBias(4, tables=2)
    mask = ragged_mask([5, 3], 5)
    weights = torch.tensor([[0.3, 0.7], [1.0, 0.0]])
    out = bias(mask, mask, weights)
    assert out.shape == (2, 4, 5, 5) and out.abs().sum() == 0
    out.sum().backward()
    assert bias.table.grad.abs().sum() > 0


def test_the_centred_start_prefers_keys_at_the_querys_own_time():
    bias = RelativeTimeBias(2, tables=3, knots=33, init="centred")
    mask = ragged_mask([8], 8)
    out = bias(mask, mask, torch.full((1, 3), 1 / 3))[0]  # (heads, 8, 8)
    torch.testing.assert_close(out.diagonal(dim1=-2, dim2=-1), torch.full((2, 8), 3.0))
    assert (out[:, 0, 1:] < 3.0).all() and (out[:, 0, 7] < 0.1).all()  # falls off with distance


def test_a_profile_moves_attention_to_the_position_it_prefers():
    # Keys that differ in one channel only (so that what was read can be told apart); a profile
    # peaked at delta = -0.375 must make the first of two queries (time 0.25) read the third of
    # four keys (time 0.625) and nothing else.
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(4, 1, batch_first=True)
    query = torch.randn(1, 2, 4)
    keys = torch.ones(1, 4, 4) + torch.arange(4.0)[None, :, None] * torch.tensor([0, 0, 0, 1.0])
    bias = RelativeTimeBias(1, knots=17, gain=10.0)  # a knot every 0.125; -0.375 is knot 5
    with torch.no_grad():
        bias.table[0, 0, 5] = 5.0  # a height of 50
    padding = torch.zeros(1, 4, dtype=torch.bool)
    read = multi_head_attention(attention, query, keys,
                                padding, bias(torch.ones(1, 2, dtype=torch.bool), ~padding))
    value_of_key = nn.functional.linear(keys, attention.in_proj_weight[8:],
                                        attention.in_proj_bias[8:])  # (1, 4, 4)
    expected = attention.out_proj(value_of_key[:, 2])
    torch.testing.assert_close(read[0, 0], expected[0], atol=1e-3, rtol=1e-3)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="knots"):
        RelativeTimeBias(2, knots=1)
    with pytest.raises(ValueError, match="gain"):
        RelativeTimeBias(2, gain=0.0)
    with pytest.raises(ValueError, match="init"):
        RelativeTimeBias(2, init="random")
    bias = RelativeTimeBias(2, tables=3)
    mask = ragged_mask([2], 2)
    with pytest.raises(ValueError, match="3 tables need mixing weights"):
        bias(mask, mask)
    with pytest.raises(ValueError, match=r"weights must be \(N=1, 3\)"):
        bias(mask, mask, torch.ones(1, 2))
