"""Attention and dropout primitives shared by HGF and MoA, written for speed on CPU.

* :func:`multi_head_attention`: exactly ``nn.MultiheadAttention``'s equations and parameters
  (``softmax(Q K^T / sqrt(d) + mask) V`` per head, then the output projection), computed with
  batch-first views straight into the fused attention kernel and without dropout on the
  attention weights (dropping weights forces PyTorch's slow attention path).
* :class:`ThresholdDropout`: inverted dropout with the distribution of ``nn.Dropout``, drawn by
  thresholding uniform noise (twice as fast on CPU).

Both are tested against the PyTorch modules they replace (tests/model/test_attention.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ThresholdDropout(nn.Dropout):
    """Inverted dropout ``x * [u >= p] / (1 - p)`` with ``u ~ U[0, 1)`` drawn per element.

    The same distribution as :class:`torch.nn.Dropout` (each element kept with probability
    ``1 - p``, kept ones scaled by ``1 / (1 - p)``), drawn by thresholding uniform noise: on CPU
    PyTorch's Bernoulli sampler took twice as long as ``torch.rand`` on the same tensor, and
    dropout on the (N, L, H) sequences was the largest single cost of a training step.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        # Noise in row-major order whatever x's strides, so a mask depends on positions only.
        noise = torch.rand(x.shape, dtype=x.dtype, device=x.device)
        keep = noise.ge_(self.p).div_(1.0 - self.p)  # 0 or 1 / (1 - p)
        return x * keep


def multi_head_attention(attention: nn.MultiheadAttention, query: Tensor, key_value: Tensor,
                         key_padding_mask: Tensor, score_bias: Tensor | None = None) -> Tensor:
    """``attention(query, key_value, key_value, key_padding_mask=..., attn_mask=score_bias,
    need_weights=False)[0]`` for a batch-first module, without dropout on the attention weights.

    The same parameters and equations as PyTorch's module, computed with batch-first views all
    the way into the fused attention kernel instead of its (L, N, H) transposes and copies.

    Shapes: ``query`` ``(N, Lq, H)``, ``key_value`` ``(N, Lk, H)``, ``key_padding_mask``
    ``(N, Lk)`` bool, True = ignore this key (every row needs one key it may read),
    ``score_bias`` ``(N, heads, Lq, Lk)`` float added to every head's scores after scaling, or
    None -> ``(N, Lq, H)``.
    """
    if not attention.batch_first or attention.in_proj_weight is None \
            or attention.in_proj_bias is None or attention.bias_k is not None:
        raise ValueError("multi_head_attention: expected a batch-first nn.MultiheadAttention "
                         "with a packed, biased input projection and no extra key/value bias")
    rows, query_length, hidden = query.shape
    key_length = key_value.shape[1]
    heads = attention.num_heads
    head_dim = hidden // heads
    weight, bias = attention.in_proj_weight, attention.in_proj_bias
    if query is key_value:
        projected = F.linear(query, weight, bias)  # (N, L, 3H): one product for q, k and v
        q, k, v = projected.view(rows, query_length, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    else:
        q = F.linear(query, weight[:hidden], bias[:hidden])
        q = q.view(rows, query_length, heads, head_dim).transpose(1, 2)  # (N, heads, Lq, d)
        k, v = F.linear(key_value, weight[hidden:], bias[hidden:]).view(
            rows, key_length, 2, heads, head_dim).permute(2, 0, 3, 1, 4)  # (N, heads, Lk, d)
    if score_bias is None:
        mask = ~key_padding_mask[:, None, None, :]  # True = may read
    else:
        mask = score_bias.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (N, heads, Lq, d)
    return attention.out_proj(attended.transpose(1, 2).reshape(rows, query_length, hidden))
