"""The fast attention and dropout primitives equal the PyTorch modules they replace."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hotspot_erc.model.attention import ThresholdDropout, multi_head_attention

HIDDEN = 16


@pytest.mark.parametrize("self_attention", [True, False])
def test_multi_head_attention_equals_pytorchs_module_with_gradients(self_attention):
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(HIDDEN, 4, batch_first=True)
    generator = torch.Generator().manual_seed(2)
    query = torch.randn(3, 6, HIDDEN, generator=generator)
    key_value = query if self_attention else torch.randn(3, 5, HIDDEN, generator=generator)
    padding = torch.arange(key_value.shape[1])[None, :] >= torch.tensor([6, 2, 1])[:, None]
    read_out = torch.randn(3, 6, HIDDEN, generator=generator)
    parameters = list(attention.parameters())
    fast = multi_head_attention(attention, query, key_value, padding)
    reference = attention(query, key_value, key_value, key_padding_mask=padding,
                          need_weights=False)[0]
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)
    for fast_grad, reference_grad in zip(
            torch.autograd.grad((fast * read_out).sum(), parameters),
            torch.autograd.grad((reference * read_out).sum(), parameters), strict=True):
        torch.testing.assert_close(fast_grad, reference_grad, atol=1e-5, rtol=1e-5)


def test_a_score_bias_is_what_pytorchs_float_attention_mask_adds():
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(HIDDEN, 4, batch_first=True)
    generator = torch.Generator().manual_seed(3)
    query = torch.randn(3, 6, HIDDEN, generator=generator)
    key_value = torch.randn(3, 5, HIDDEN, generator=generator)
    padding = torch.arange(5)[None, :] >= torch.tensor([5, 2, 1])[:, None]
    bias = torch.randn(3, 4, 6, 5, generator=generator)
    fast = multi_head_attention(attention, query, key_value, padding, bias)
    float_padding = torch.zeros(3, 5).masked_fill(padding, float("-inf"))
    reference = attention(query, key_value, key_value, key_padding_mask=float_padding,
                          attn_mask=bias.reshape(12, 6, 5), need_weights=False)[0]
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)


def test_multi_head_attention_rejects_an_unpacked_module():
    attention = nn.MultiheadAttention(HIDDEN, 4, batch_first=True, kdim=8, vdim=8)
    with pytest.raises(ValueError, match="packed"):
        multi_head_attention(attention, torch.zeros(1, 2, HIDDEN), torch.zeros(1, 2, HIDDEN),
                             torch.zeros(1, 2, dtype=torch.bool))


def test_threshold_dropout_keeps_1_minus_p_scaled_and_is_identity_in_eval():
    dropout = ThresholdDropout(0.25)
    ones = torch.ones(400, 500)
    torch.manual_seed(0)
    dropped = dropout(ones)
    kept = dropped != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.005  # 200k draws: std 0.001
    torch.testing.assert_close(dropped[kept], torch.full_like(dropped[kept], 1 / 0.75))
    torch.manual_seed(0)
    assert torch.equal(dropout(ones), dropped)  # the global seed reproduces the mask
    assert torch.equal(dropout.eval()(ones), ones)
    assert torch.equal(ThresholdDropout(0.0)(ones), ones)
    assert ThresholdDropout(1.0)(ones).abs().sum() == 0
