"""Aligner experts of the Mixture-of-Aligners: each maps a source sequence to an aligned candidate.

Every expert takes ``x`` ``(N, L, H)`` and a bool ``mask`` ``(N, L)`` and returns ``(N, L, H)``,
exactly zero where ``mask`` is False. What an expert reads at an invalid position (a gap, the
padding after the sequence, a position beyond either end) depends on ``edges``:

* ``"replicate"`` (the default): the nearest valid position's value; a gap holds the value before
  it, the edges repeat the first and last valid values (:func:`fill_gaps`). An expert then maps
  a constant sequence to the constant it maps a single position to: a sequence without local
  structure is aligned exactly as its one utterance-level position would be, which is what lets
  the hotspot path of the full model start neutral (see :mod:`hotspot_erc.model.model`);
* ``"zero"``: zero, as in models trained before edges were replicated (their checkpoints record
  it and keep computing what they were trained to).

Either way a padded position's own content never leaks into a valid one.

The four kinds, with ``x~`` the source with its invalid positions filled that way:

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

Mixing in one pass. The router mixes the experts per utterance, ``M_n = sum_e w_{n,e} A_e(x_n)``.
Identity, shift and conv are all depth-wise temporal convolutions of ``x~`` (identity is the
centred one-tap kernel ``[1]``, shift the offset weights read backwards, the same for every
channel), and all four experts are linear in ``x~``. So :func:`mix_experts` computes the mixture
as one depth-wise convolution per utterance with the mixed kernel and bias

    k_n = sum_{e temporal} w_{n,e} pad(k_e),    b_n = sum_{e conv} w_{n,e} b_e,
    M_n = mask * (conv(x~_n; k_n, b_n) + sum_{e low-rank} U_e (w_{n,e} V_e^T x~_n)),

where ``pad`` centres every kernel in the widest one. It reads ``x`` once and masks once instead
of running, masking and stacking ``E`` full candidate sequences; :func:`mix_experts_reference` is
the plain per-expert sum it is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional

EXPERT_KINDS = ("identity", "shift", "conv", "low_rank")
EDGES = ("replicate", "zero")
# How the temporal experts start: ``uniform`` (the shift a box blur over its window, the
# convolution PyTorch's random default) or ``identity`` (both pass the source through unchanged,
# so the mixture starts as the plain source and learns to move away from it).
INITS = ("uniform", "identity")


def _zero_padding(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` ``(N, L, H)`` with the positions where ``mask`` ``(N, L)`` is False set to zero."""
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


def fill_gaps(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` ``(N, L, H)`` with every position where ``mask`` ``(N, L)`` is False holding the
    value of the last valid position before it, or of the first valid one for leading gaps (a
    row without any valid position is left as it is: its output is masked anyway)."""
    length = x.shape[1]
    index = torch.arange(length, device=x.device).expand_as(mask)
    before = torch.where(mask, index, -1).cummax(dim=1).values  # (N, L) last valid at or before
    first = torch.where(mask, index, length).min(dim=1, keepdim=True).values  # (N, 1)
    source = torch.where(before >= 0, before, first).clamp(max=length - 1)
    return x.gather(1, source.unsqueeze(-1).expand_as(x))


def _edged(x: Tensor, mask: Tensor, edges: str) -> Tensor:
    """The source an expert reads: gaps filled (``replicate``) or zeroed (``zero``)."""
    return fill_gaps(x, mask) if edges == "replicate" else _zero_padding(x, mask)


def _pad_time(source: Tensor, width: int, edges: str) -> Tensor:
    """``source`` ``(N, H, L)`` padded by ``width // 2`` on both ends of time."""
    return functional.pad(source, (width // 2, width // 2),
                          mode="replicate" if edges == "replicate" else "constant")


def _temporal_conv(x: Tensor, mask: Tensor, kernel: Tensor, bias: Tensor | None,
                   edges: str) -> Tensor:
    """Depth-wise ``conv1d`` of ``x`` ``(N, L, H)`` read as ``edges`` says; ``kernel``
    ``(H, W)`` (``W`` odd), ``bias`` ``(H,)`` or None; zero where ``mask`` is False."""
    hidden, width = kernel.shape
    source = _pad_time(_edged(x, mask, edges).transpose(1, 2), width, edges)
    out = functional.conv1d(source, kernel.unsqueeze(1), bias, groups=hidden)
    return _zero_padding(out.transpose(1, 2), mask)


class IdentityAligner(nn.Module):
    """``y = mask * x``: the source as it is."""

    kind = "identity"

    def __init__(self) -> None:
        super().__init__()
        # The one-tap kernel [1] as a buffer, so that it follows the module's device and dtype.
        self.register_buffer("centre_tap", torch.ones(1, 1), persistent=False)

    def temporal_kernel(self) -> tuple[Tensor, Tensor | None]:
        """The kernel ``(1, 1)`` (shared by all channels) and no bias, as in :func:`mix_experts`."""
        return self.centre_tap, None

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

    def __init__(self, max_shift: int, edges: str = "replicate", init: str = "uniform") -> None:
        super().__init__()
        if max_shift < 1:
            raise ValueError(f"ShiftAligner: max_shift must be at least 1, got {max_shift}")
        self.max_shift = max_shift
        self.edges = _check_edges(edges)
        self.shift_logits = nn.Parameter(torch.zeros(2 * max_shift + 1))
        if _check_init(init) == "identity":
            with torch.no_grad():  # offset 0 gets all but e^-6 of the weight, not all of it
                self.shift_logits.fill_(-6.0)
                self.shift_logits[max_shift] = 0.0

    def offsets(self) -> Tensor:
        """The offsets ``(2 * max_shift + 1,)`` that ``shift_logits`` index, in positions."""
        return torch.arange(-self.max_shift, self.max_shift + 1, device=self.shift_logits.device)

    def temporal_kernel(self) -> tuple[Tensor, Tensor | None]:
        """The kernel ``(1, 2S+1)`` (shared by all channels) and no bias."""
        offset_weights = torch.softmax(self.shift_logits, dim=0)  # (2S+1,)
        # conv1d is a cross-correlation, out_t = sum_i k_i x_{t+i-S}; the offset s = S - i, so
        # the kernel is the offset weights read backwards.
        return offset_weights.flip(0).unsqueeze(0), None

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        kernel = self.temporal_kernel()[0].expand(x.shape[-1], -1)  # (H, 2S+1)
        return _temporal_conv(x, mask, kernel, None, self.edges)


class DepthwiseConvAligner(nn.Module):
    """A depth-wise temporal convolution of odd width ``kernel_size``; its edges repeat the
    first and last valid values.

    Args:
        hidden (int): channels ``H``.
        kernel_size (int): odd width of the window, at least 3.
    """

    kind = "conv"

    def __init__(self, hidden: int, kernel_size: int, edges: str = "replicate",
                 init: str = "uniform") -> None:
        super().__init__()
        self.edges = _check_edges(edges)
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"DepthwiseConvAligner: kernel_size must be odd and at least 3, "
                             f"got {kernel_size}")
        # Applied through _temporal_conv (edge-replicated padding); the module holds the weights.
        self.conv = nn.Conv1d(hidden, hidden, kernel_size, groups=hidden)
        if _check_init(init) == "identity":
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.weight[:, 0, kernel_size // 2] = 1.0
                self.conv.bias.zero_()

    def temporal_kernel(self) -> tuple[Tensor, Tensor | None]:
        """The per-channel kernel ``(H, kernel_size)`` and bias ``(H,)``."""
        return self.conv.weight.squeeze(1), self.conv.bias

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        kernel, bias = self.temporal_kernel()
        return _temporal_conv(x, mask, kernel, bias, self.edges)


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


def _check_edges(edges: str) -> str:
    if edges not in EDGES:
        raise ValueError(f"aligner edges={edges!r}, expected one of {EDGES}")
    return edges


def _check_init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"aligner init={init!r}, expected one of {INITS}")
    return init


def build_aligner_experts(num_experts: int, hidden: int, *, max_shift: int, conv_kernel: int,
                          low_rank: int, edges: str = "replicate",
                          init: str = "uniform") -> nn.ModuleList:
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
            return ShiftAligner(max_shift, edges, init)
        if kind == "conv":
            return DepthwiseConvAligner(hidden, conv_kernel, edges, init)
        return LowRankAligner(hidden, low_rank)

    repeated_kinds = EXPERT_KINDS[1:]
    kinds = [EXPERT_KINDS[e] if e < len(EXPERT_KINDS)
             else repeated_kinds[(e - len(EXPERT_KINDS)) % len(repeated_kinds)]
             for e in range(num_experts)]
    return nn.ModuleList(make(kind) for kind in kinds)


def mix_experts_reference(experts: Sequence[nn.Module], weights: Tensor, x: Tensor,
                          mask: Tensor) -> Tensor:
    """``sum_e weights[:, e] * experts[e](x, mask)``, each expert run on its own (for tests).

    Shapes: ``weights`` ``(N, E)``, ``x`` ``(N, L, H)``, ``mask`` ``(N, L)`` -> ``(N, L, H)``.
    """
    candidates = torch.stack([expert(x, mask) for expert in experts], dim=1)  # (N, E, L, H)
    return torch.einsum("ne,nelh->nlh", weights, candidates)


def mix_experts(experts: Sequence[nn.Module], weights: Tensor, x: Tensor, mask: Tensor,
                edges: str = "replicate") -> Tensor:
    """The same mixture as :func:`mix_experts_reference`, in one pass (see the module docstring).

    Shapes: ``weights`` ``(N, E)``, ``x`` ``(N, L, H)``, ``mask`` ``(N, L)`` -> ``(N, L, H)``,
    zero where ``mask`` is False; ``edges`` must be the experts' own. An expert with weight
    exactly 0 for every row gets an exactly zero gradient, as in the reference.
    """
    num_rows, length, hidden = x.shape
    source = _edged(x, mask, _check_edges(edges))  # (N, L, H)
    temporal = [e for e, expert in enumerate(experts) if expert.kind != "low_rank"]
    # Weighting the rank-r code of a low-rank expert is cheaper than weighting its H-wide output.
    terms = [expert.up(weights[:, e, None, None] * expert.down(source))
             for e, expert in enumerate(experts) if expert.kind == "low_rank"]  # (N, L, H) each
    if temporal and num_rows and length:
        kernels = [experts[e].temporal_kernel() for e in temporal]
        widest = max(kernel.shape[-1] for kernel, _ in kernels)
        padded = torch.stack([
            functional.pad(kernel, ((widest - kernel.shape[-1]) // 2,) * 2).expand(hidden, widest)
            for kernel, _ in kernels])  # (T, H, widest)
        # Taps more than L - 1 positions off centre read only padding: zeros, or the replicated
        # edge that the outermost tap within reach reads too. Dropping them, or folding their
        # weights into that tap, is exact, and oneDNN is slow on kernels wider than the
        # sequence (docs/results.md, "Design choices measured").
        width = min(widest, 2 * length - 1)
        if width < widest and edges == "zero":
            padded = padded[..., (widest - width) // 2:(widest + width) // 2]
        elif width < widest:
            cut = (widest - width) // 2
            inner = padded[..., cut:widest - cut].clone()
            inner[..., 0] += padded[..., :cut].sum(-1)
            inner[..., -1] += padded[..., widest - cut:].sum(-1)
            padded = inner  # (T, H, W)
        mixed_kernel = torch.einsum("nt,thw->nhw", weights[:, temporal], padded)  # (N, H, W)
        biased = [(e, bias) for e, (_, bias) in zip(temporal, kernels, strict=True)
                  if bias is not None]
        mixed_bias = (torch.einsum("nb,bh->nh", weights[:, [e for e, _ in biased]],
                                   torch.stack([bias for _, bias in biased])).reshape(-1)
                      if biased else None)  # (N*H,)
        # One group per (utterance, channel): a depth-wise convolution with a kernel per utterance.
        framed = _pad_time(source.transpose(1, 2), width, edges)  # (N, H, L + W - 1)
        convolved = functional.conv1d(
            framed.reshape(1, num_rows * hidden, length + width - 1),
            mixed_kernel.reshape(num_rows * hidden, 1, width), mixed_bias,
            groups=num_rows * hidden)  # (1, N*H, L)
        terms.append(convolved.view(num_rows, hidden, length).transpose(1, 2))
    if not terms:  # no rows or no positions: nothing to mix
        return _zero_padding(source, mask)
    return _zero_padding(sum(terms[1:], terms[0]), mask)
