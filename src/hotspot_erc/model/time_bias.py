"""Relative-time attention bias: lets a cross-attention read *when* a source position happened.

A content-only cross-attention (``softmax(q k^T / sqrt(d))``) cannot tell two equally matching
source spans apart by their timing: moving a source sequence in time changes nothing it computes
except at the edges. This bias gives the scores a clock shared by all modalities.

Each sequence's valid positions get a normalised time, the centre of their share of the
utterance,

    u_r = (r + 1/2) / n,    r = rank of the position among the n valid ones,

so that modalities sampled at different rates (text tokens, 100 Hz audio, 25 Hz video) read one
clock in ``(0, 1)``. For a target (query) position ``q`` and a source (key) position ``k``,
``delta = u_q - u_k`` lies in ``(-1, 1)``, and head ``h`` adds to its attention score a
piecewise-linear profile over ``delta`` with ``G`` knots ``c_g = -1 + 2 g / (G - 1)``:

    b_h(delta) = (1 - f) T[h, g] + f T[h, g + 1],   g + f = (delta + 1) (G - 1) / 2,
    attention  = softmax(q k^T / sqrt(d) + b_h(u_q - u_k)).

A profile that peaks at ``delta = -0.2`` makes a target position read the source fifth of an
utterance later: a lag hypothesis. With ``tables = E`` each aligner expert carries its own profile
``T_e`` and utterance ``n`` reads the router's mixture ``T_n = sum_e w_{n,e} T_e`` (the same
weights that mix the experts' key sequences), so routing picks a lag per utterance; with one table
the lag is the same for every utterance.

Every table starts at zero: the bias is then zero everywhere and the attention computes exactly
what it computes without it (tested), so the clock is something training adds, not a change of
the starting point.

``init="centred"`` starts every profile instead as a bump preferring co-occurrence,
``3 exp(-delta^2 / (2 * 0.15^2))`` (a key at the query's own time gets ``e^3 = 20`` times the
weight of a distant one): an experiment's starting point, to tell whether a profile fails to be
learned or fails to help once it exists.

The profile is stored divided by a ``gain``, ``T = gain * T_stored``. Adam moves every stored
number by about the learning rate per step, whatever its gradient's scale; a profile must reach
heights of several units to steer a softmax over dozens of keys, which without the gain took more
steps than a training run has (docs/results.md, "aligners and timing").

:func:`relative_time_bias_reference` is the plain per-element loop the vectorised module is
tested against.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

TIME_INITS = ("zero", "centred")
# The "centred" start: a bump of this height and width (in utterance fractions) at delta = 0.
CENTRED_HEIGHT = 3.0
CENTRED_WIDTH = 0.15


def normalised_positions(mask: Tensor) -> Tensor:
    """``(r + 1/2) / n`` for every valid position of ``mask`` ``(N, L)`` bool (``r`` its rank among
    the ``n`` valid positions of its row) -> ``(N, L)``; invalid positions hold 0 (they are
    masked out of any attention that reads them)."""
    count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(torch.float32)  # (N, 1)
    rank = mask.cumsum(dim=1).to(torch.float32) - 1.0  # (N, L)
    return ((rank + 0.5) / count).masked_fill(~mask, 0.0)


class RelativeTimeBias(nn.Module):
    """The additive score bias of the module docstring.

    Args:
        heads (int): attention heads; each has its own profile.
        tables (int): profiles per head: 1 (one lag for every utterance) or the number of
            experts whose routing weights mix them (default 1).
        knots (int): ``G``, knots of each piecewise-linear profile over ``(-1, 1)``, at least 2
            (default 33: a knot every 1/16 of an utterance).
        gain (float): ``T = gain * table`` (default 8.0; the module docstring says why).
        init (str): ``"zero"`` (default) or ``"centred"`` (module docstring).

    Shapes: ``forward(query_mask (N, Lq), key_mask (N, Lk), weights (N, tables) or None)`` ->
    ``(N, heads, Lq, Lk)``. ``weights`` is required when ``tables > 1``.
    """

    def __init__(self, heads: int, *, tables: int = 1, knots: int = 33,
                 gain: float = 8.0, init: str = "zero") -> None:
        super().__init__()
        if heads < 1 or tables < 1:
            raise ValueError(f"RelativeTimeBias: heads and tables must be >= 1, got {heads} "
                             f"and {tables}")
        if knots < 2:
            raise ValueError(f"RelativeTimeBias: knots must be >= 2, got {knots}")
        if gain <= 0:
            raise ValueError(f"RelativeTimeBias: gain must be > 0, got {gain}")
        if init not in TIME_INITS:
            raise ValueError(f"RelativeTimeBias: init must be one of {TIME_INITS}, got {init!r}")
        self.heads = heads
        self.knots = knots
        self.gain = gain
        self.table = nn.Parameter(torch.zeros(tables, heads, knots))
        if init == "centred":
            knot_times = torch.linspace(-1.0, 1.0, knots)
            bump = CENTRED_HEIGHT * torch.exp(-knot_times ** 2 / (2 * CENTRED_WIDTH ** 2))
            with torch.no_grad():
                self.table.copy_((bump / gain).expand(tables, heads, knots))

    def profiles(self, rows: int, weights: Tensor | None) -> Tensor:
        """Each utterance's profiles ``(N, heads, G)``: the one table, or the weighted mixture."""
        tables = self.table.shape[0]
        if weights is None:
            if tables != 1:
                raise ValueError(f"RelativeTimeBias: {tables} tables need mixing weights "
                                 f"(N, {tables})")
            return (self.gain * self.table[0]).expand(rows, -1, -1)
        if weights.shape != (rows, tables):
            raise ValueError(f"RelativeTimeBias: weights must be (N={rows}, {tables}), got "
                             f"{tuple(weights.shape)}")
        return torch.einsum("ne,ehg->nhg", weights, self.gain * self.table)

    def forward(self, query_mask: Tensor, key_mask: Tensor,
                weights: Tensor | None = None) -> Tensor:
        rows, query_length = query_mask.shape
        key_length = key_mask.shape[1]
        delta = (normalised_positions(query_mask)[:, :, None]
                 - normalised_positions(key_mask)[:, None, :])  # (N, Lq, Lk) in (-1, 1)
        place = (delta + 1.0) * (self.knots - 1) / 2.0
        lower = place.floor().clamp(0, self.knots - 2)
        fraction = (place - lower).reshape(rows, 1, -1)  # (N, 1, Lq Lk)
        index = lower.long().reshape(rows, 1, -1).expand(-1, self.heads, -1)  # (N, heads, Lq Lk)
        profiles = self.profiles(rows, weights)  # (N, heads, G)
        below = profiles.gather(2, index)
        above = profiles.gather(2, index + 1)
        bias = below + fraction * (above - below)  # (N, heads, Lq Lk)
        return bias.view(rows, self.heads, query_length, key_length)


def relative_time_bias_reference(table: Tensor, query_mask: Tensor, key_mask: Tensor,
                                 weights: Tensor | None = None) -> Tensor:
    """The bias of :class:`RelativeTimeBias` element by element: ``table`` ``(tables, heads, G)``
    (the profiles, the gain already applied),
    masks ``(N, Lq)`` and ``(N, Lk)``, ``weights`` ``(N, tables)`` or None ->
    ``(N, heads, Lq, Lk)``."""
    tables, heads, knots = table.shape
    rows, query_length = query_mask.shape
    key_length = key_mask.shape[1]
    bias = torch.zeros(rows, heads, query_length, key_length, dtype=table.dtype)
    for n in range(rows):
        mixed = table[0] if weights is None else sum(
            weights[n, e] * table[e] for e in range(tables))  # (heads, G)
        query_count = max(int(query_mask[n].sum()), 1)
        key_count = max(int(key_mask[n].sum()), 1)
        query_rank = key_rank = 0
        for q in range(query_length):
            query_time = (query_rank + 0.5) / query_count if query_mask[n, q] else 0.0
            query_rank += int(query_mask[n, q])
            key_rank = 0
            for k in range(key_length):
                key_time = (key_rank + 0.5) / key_count if key_mask[n, k] else 0.0
                key_rank += int(key_mask[n, k])
                place = (query_time - key_time + 1.0) * (knots - 1) / 2.0
                g = min(max(int(place // 1), 0), knots - 2)
                f = place - g
                bias[n, :, q, k] = (1 - f) * mixed[:, g] + f * mixed[:, g + 1]
    return bias
