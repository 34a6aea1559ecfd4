"""Aligner experts of the Mixture-of-Aligners: each maps a source sequence to an aligned candidate.

Every expert takes ``x`` ``(N, L, H)`` and a bool ``mask`` ``(N, L)`` and returns ``(N, L, H)``.
Padded positions are zeroed before the expert reads them and in what it returns, so a padded
position never leaks into a valid one and the output is exactly zero where ``mask`` is False.

The four kinds, with ``x~ = mask * x`` the source with its padding zeroed:

* :class:`IdentityAligner` (``identity``): ``y_t = x~_t``; the source is already in step.
* :class:`ShiftAligner` (``shift``): a soft, learned temporal shift,
  ``y_t = sum_{s=-S..S} a_s x~_{t-s}`` with ``a = softmax(shift_logits)`` shared by all channels;
  a positive offset ``s`` moves content ``s`` positions later. Because ``a`` is a softmax, the
  shift is differentiable and can settle on one offset or spread over a few.
* :class:`DepthwiseConvAligner` (``conv``): ``y_{t,c} = sum_{i} w_{c,i} x~_{t+i-r,c} + b_c``,
  a depth-wise convolution of odd width ``2r+1`` (wider than the shift) for evidence that is
  smeared over time rather than displaced.
* :class:`LowRankAligner` (``low_rank``): ``y_t = U V^T x~_t`` with ``U, V`` of shape ``(H, r)``,
  a per-position change of feature space for sources whose channels do not line up with the
  target's.

:func:`build_aligner_experts` lays out ``E`` experts in the order identity, shift, conv,
low-rank; beyond four it repeats shift, conv and low-rank (each with its own parameters), never a
second identity, which would be a duplicate of the first.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional

EXPERT_KINDS = ("identity", "shift", "conv", "low_rank")


def _zero_padding(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` ``(N, L, H)`` with the positions where ``mask`` ``(N, L)`` is False set to zero."""
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


class IdentityAligner(nn.Module):
    """``y = mask * x``: the source as it is."""

    kind = "identity"

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return _zero_padding(x, mask)


class ShiftAligner(nn.Module):
    """A soft temporal shift over offsets ``-max_shift..max_shift``.

    ``y_t = sum_s softmax(shift_logits)_s x~_{t-s}``; ``shift_logits[i]`` belongs to offset
    ``i - max_shift``. Starting from all-zero logits the shift is a uniform blur over the window,
    which gives every offset a gradient from the first step.

    Args:
        max_shift (int): the largest displacement in positions, at least 1.
    """

    kind = "shift"

    def __init__(self, max_shift: int) -> None:
        super().__init__()
        if max_shift < 1:
            raise ValueError(f"ShiftAligner: max_shift must be at least 1, got {max_shift}")
        self.max_shift = max_shift
        self.shift_logits = nn.Parameter(torch.zeros(2 * max_shift + 1))

    def offsets(self) -> Tensor:
        """The offsets ``(2 * max_shift + 1,)`` that ``shift_logits`` index, in positions."""
        return torch.arange(-self.max_shift, self.max_shift + 1, device=self.shift_logits.device)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        hidden = x.shape[-1]
        offset_weights = torch.softmax(self.shift_logits, dim=0)  # (2S+1,)
        # conv1d is a cross-correlation, out_t = sum_i k_i x_{t+i-S}; the offset s = S - i, so
        # the kernel is the offset weights read backwards.
        kernel = offset_weights.flip(0).view(1, 1, -1).expand(hidden, 1, -1)  # (H, 1, 2S+1)
        source = _zero_padding(x, mask).transpose(1, 2)  # (N, H, L)
        shifted = functional.conv1d(source, kernel, padding=self.max_shift, groups=hidden)
        return _zero_padding(shifted.transpose(1, 2), mask)


class DepthwiseConvAligner(nn.Module):
    """A depth-wise temporal convolution of odd width ``kernel_size``, zero-padded at the edges.

    Args:
        hidden (int): channels ``H``.
        kernel_size (int): odd width of the window, at least 3.
    """

    kind = "conv"

    def __init__(self, hidden: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"DepthwiseConvAligner: kernel_size must be odd and at least 3, "
                             f"got {kernel_size}")
        self.conv = nn.Conv1d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        source = _zero_padding(x, mask).transpose(1, 2)  # (N, H, L)
        return _zero_padding(self.conv(source).transpose(1, 2), mask)


class LowRankAligner(nn.Module):
    """``y_t = U V^T x~_t``, a rank-``rank`` linear map of the features at each position.

    Args:
        hidden (int): channels ``H``.
        rank (int): ``r``, between 1 and ``hidden``.
    """

    kind = "low_rank"

    def __init__(self, hidden: int, rank: int) -> None:
        super().__init__()
        if not 1 <= rank <= hidden:
            raise ValueError(f"LowRankAligner: rank must be in 1..hidden ({hidden}), got {rank}")
        self.down = nn.Linear(hidden, rank, bias=False)  # V^T
        self.up = nn.Linear(rank, hidden, bias=False)  # U

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return _zero_padding(self.up(self.down(_zero_padding(x, mask))), mask)


def build_aligner_experts(num_experts: int, hidden: int, *, max_shift: int, conv_kernel: int,
                          low_rank: int) -> nn.ModuleList:
    """``num_experts`` (at least 3) experts: identity, shift, conv, low-rank, then shift, conv,
    low-rank again. Three is the minimum so that the router always chooses between different
    kinds of alignment (in step, displaced, smeared)."""
    if num_experts < 3:
        raise ValueError(f"build_aligner_experts: num_experts must be at least 3 (identity, shift "
                         f"and conv are the smallest useful mixture), got {num_experts}")

    def make(kind: str) -> nn.Module:
        if kind == "identity":
            return IdentityAligner()
        if kind == "shift":
            return ShiftAligner(max_shift)
        if kind == "conv":
            return DepthwiseConvAligner(hidden, conv_kernel)
        return LowRankAligner(hidden, low_rank)

    repeated_kinds = EXPERT_KINDS[1:]
    kinds = [EXPERT_KINDS[e] if e < len(EXPERT_KINDS)
             else repeated_kinds[(e - len(EXPERT_KINDS)) % len(repeated_kinds)]
             for e in range(num_experts)]
    return nn.ModuleList(make(kind) for kind in kinds)
