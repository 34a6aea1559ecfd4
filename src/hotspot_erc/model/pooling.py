"""Pooling a padded sequence into one vector, looking only at its valid positions.

* :func:`masked_mean`: ``mean(x) = sum_l m_l x_l / max(1, sum_l m_l)`` along one dimension.
* :class:`AttentionPool`: ``a = softmax_{l valid}(w^T x_l + b)``, ``pool(x) = sum_l a_l x_l``.

Both return zeros for a row with no valid position at all (a padded utterance, a missing
modality) instead of NaN, so callers can pool a whole padded batch and mask the result afterwards.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def masked_mean(x: Tensor, mask: Tensor, dim: int) -> Tensor:
    """Mean of ``x`` over ``dim`` counting only positions where ``mask`` is True.

    Args:
        x: values; ``mask`` covers its leading dimensions, e.g. ``(N, L, H)``.
        mask: bool, ``x.shape[:mask.ndim]``, e.g. ``(N, L)``; trailing feature dimensions of
            ``x`` are broadcast.
        dim: the dimension of ``x`` to average over; it must be one of the masked dimensions.

    Returns:
        ``x`` with ``dim`` removed, e.g. ``(N, H)``; zero where no position was valid.
    """
    if mask.shape != x.shape[: mask.ndim]:
        raise ValueError(f"masked_mean: mask shape {tuple(mask.shape)} must equal the leading "
                         f"dimensions of x {tuple(x.shape)}")
    dim = dim % x.ndim
    if dim >= mask.ndim:
        raise ValueError(f"masked_mean: dim {dim} is a feature dimension; expected one of the "
                         f"{mask.ndim} masked dimensions")
    weights = mask.to(x.dtype).reshape(mask.shape + (1,) * (x.ndim - mask.ndim))
    total = (x * weights).sum(dim)
    count = weights.sum(dim).clamp(min=1.0)
    return total / count


class AttentionPool(nn.Module):
    """Attention pooling over the valid positions of a sequence.

    ``a_l = softmax over valid l of (w^T x_l + b)``; ``pool(x) = sum_l a_l x_l``.

    Args:
        hidden (int): size of the last dimension of ``x``.

    Shapes:
        ``x`` ``(..., L, hidden)``, ``mask`` ``(..., L)`` bool -> ``(..., hidden)``.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.score = nn.Linear(hidden, 1, bias=False)  # a bias cancels in the softmax

    def attention(self, x: Tensor, mask: Tensor) -> Tensor:
        """The pooling weights ``(..., L)``: sum to 1 over valid positions, zero elsewhere."""
        if mask.shape != x.shape[:-1]:
            raise ValueError(f"AttentionPool: mask shape {tuple(mask.shape)} must equal x shape "
                             f"without its last dimension {tuple(x.shape[:-1])}")
        scores = self.score(x).squeeze(-1)  # (..., L)
        scores = scores.masked_fill(~mask, float("-inf"))
        # A row without any valid position would give softmax(-inf, ...) = NaN; give it finite
        # scores and let the mask zero its weights.
        has_valid = mask.any(dim=-1, keepdim=True)
        scores = scores.masked_fill(~has_valid, 0.0)
        return torch.softmax(scores, dim=-1) * mask.to(x.dtype)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        weights = self.attention(x, mask)  # (..., L)
        return (weights.unsqueeze(-1) * x).sum(dim=-2)
