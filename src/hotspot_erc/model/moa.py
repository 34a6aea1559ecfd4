"""Mixture-of-Aligners (MoA): routed, learned alignment between every ordered pair of modalities.

For each ordered pair source ``k`` -> target ``j`` (``k != j``) and utterance, with ``F[m]`` the
HGF output ``(L_m, H)`` of modality ``m`` and ``mean`` the mean over its valid positions:

1. Experts (:mod:`hotspot_erc.model.aligners`): ``A_e(F[k])`` for ``e = 1..E`` (identity,
   soft temporal shift, wide depth-wise convolution, low-rank map, ...).
2. Router: ``p = softmax(W_r [mean(F[j]); mean(F[k])] + b_r)`` ``(E,)``; keep the TopK experts
   ``T``, ``w_e = p_e / sum_{f in T} p_f`` for ``e in T`` and 0 otherwise;
   ``M = sum_e w_e A_e(F[k])``.
3. Cross-attention: ``Y[k->j] = LayerNorm(F[j] + Dropout(MHA(query=F[j], key=M, value=M)))``,
   with the source's padding as key padding mask. With ``time_bias`` its scores also get a
   relative-time bias (:mod:`hotspot_erc.model.time_bias`): each expert carries a lag profile
   over ``u_q - u_k`` (normalised positions), mixed with the same weights ``w`` as the experts,
   so an expert is a lag hypothesis together with its key map; every profile starts at zero.
4. Combine over sources: ``F'[j] = mean over the sources k present for this utterance of
   Y[k->j]``. A source that is absent is left out of the mean (never fed in as zeros). If no
   source is present for an utterance, ``F'[j] = F[j]``: the target keeps its own sequence.
5. Pool: ``z[j] = AttentionPool_j(F'[j])`` over the target's valid positions ``(H,)``.

Load balancing (Switch Transformer, Fedus et al. 2021), per pair over the utterances where both
modalities are present, with ``K`` routing slots per utterance:
``L_bal = E * sum_e f_e P_e``, ``f_e`` = fraction of slots that went to expert ``e``,
``P_e`` = mean router probability of ``e``. It is 1 for uniform routing and ``E`` when every
utterance goes to one expert with probability 1. :class:`MoAOutput` carries its sum over pairs.

Choices the paper leaves open, and ours:

* All ``E`` experts are mixed densely with weights that are zero outside TopK, in one pass:
  every expert is linear in the source, so the mixture is one depth-wise convolution per
  utterance with the mixed kernel plus the weighted low-rank term
  (:func:`hotspot_erc.model.aligners.mix_experts`, tested against running each expert on its
  own). An unselected expert gets an exactly zero gradient.
* Dropout acts on the cross-attention's output (the residual branch of step 3), not on its
  attention weights: dropping weights of the ``(N, heads, Lj, Lk)`` attention maps forces
  PyTorch's plain attention, which builds those maps in memory, where without it the fused
  (flash) kernel runs. With attention-weight dropout here and in HGF a CPU training step on the
  batch of ``benchmarks/model_speed.py`` took about 15 s; without it, about 2 s.
* The renormaliser ``sum_{f in T} p_f`` is detached from the graph. The weights keep exactly their
  renormalised values, but the router receives the task gradient through each kept ``p_e`` as in
  Switch Transformer; with the normaliser attached and ``K = 1`` the weight would be the constant
  1 and the router would learn from the balance loss alone.
* The router's summaries are masked means, not attention pools, so routing reads the utterance as
  a whole and does not depend on a second learned pooling.
* A modality counts as present for an utterance when its ``present`` flag is set and at least one
  position is valid; ``masks`` are and-ed with ``present`` so an absent modality is ignored even
  if its mask were not cleared.
* Output sequences are zero at the target's padded positions; the pooled vector of a target that
  is absent for an utterance is zero (the caller masks it with ``present``).
* ``routing=False`` is the ``fixed_align`` ablation: one plain cross-attention per pair directly
  over ``F[k]``, no experts, no router, an empty ``routing`` dict and a zero balance loss. With
  ``time_bias`` it has one lag profile per pair, the same for every utterance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional

from hotspot_erc.model.aligners import build_aligner_experts, mix_experts
from hotspot_erc.model.attention import ThresholdDropout, multi_head_attention
from hotspot_erc.model.pooling import AttentionPool, masked_mean
from hotspot_erc.model.time_bias import RelativeTimeBias


@dataclass
class RoutingInfo:
    """The router's decisions for one ordered pair; rows where ``valid`` is False carry the
    router's output on empty summaries and must be ignored."""

    probs: Tensor  # (N, E) router probabilities (softmax) per utterance
    selected: Tensor  # (N, K) long, indices of the TopK experts kept
    weights: Tensor  # (N, E) renormalised mixing weights, zero outside TopK
    valid: Tensor  # (N,) bool: both source and target present for this utterance


@dataclass
class MoAOutput:
    pooled: dict[str, Tensor]  # target modality -> (N, H) attention-pooled utterance vector
    sequences: dict[str, Tensor]  # target modality -> (N, L_target, H) after cross-attention
    balance_loss: Tensor  # scalar, sum over pairs of the Switch load-balancing loss
    routing: dict[tuple[str, str], RoutingInfo]  # (source, target) -> the router's decisions


def switch_balance_loss(probs: Tensor, selected: Tensor, valid: Tensor, num_experts: int) -> Tensor:
    """``E * sum_e f_e P_e`` over the rows where ``valid`` is True (zero if there are none).

    Args:
        probs: ``(N, E)`` router probabilities.
        selected: ``(N, K)`` long, the experts each row was routed to (``K`` slots per row).
        valid: ``(N,)`` bool, the rows that count.
        num_experts: ``E``.

    ``f_e`` (share of the ``K * sum(valid)`` slots sent to ``e``) is a count and carries no
    gradient; ``P_e`` (mean of ``probs[:, e]``) does, which is what pushes the router apart.
    """
    if probs.ndim != 2 or probs.shape[1] != num_experts:
        raise ValueError(f"switch_balance_loss: probs must be (N, {num_experts}), "
                         f"got {tuple(probs.shape)}")
    if selected.ndim != 2 or selected.shape[0] != probs.shape[0]:
        raise ValueError(f"switch_balance_loss: selected must be (N={probs.shape[0]}, K), "
                         f"got {tuple(selected.shape)}")
    if valid.shape != probs.shape[:1] or valid.dtype != torch.bool:
        raise ValueError(f"switch_balance_loss: valid must be bool (N={probs.shape[0]},), "
                         f"got {valid.dtype} {tuple(valid.shape)}")
    if not bool(valid.any()):
        return probs.new_zeros(())
    slot_counts = functional.one_hot(selected[valid], num_experts).sum(dim=(0, 1))  # (E,)
    slot_fraction = slot_counts.to(probs.dtype) / slot_counts.sum()
    mean_prob = probs[valid].mean(dim=0)  # (E,)
    return num_experts * (slot_fraction * mean_prob).sum()


def _zero_padding(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` ``(N, L, H)`` with the positions where ``mask`` ``(N, L)`` is False set to zero."""
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


class PairAligner(nn.Module):
    """Steps 1-3 of the module docstring for one ordered pair source -> target.

    ``forward(target (N, Lj, H), target_mask (N, Lj), source (N, Lk, H), source_mask (N, Lk),
    valid (N,), summaries=None)`` returns the cross-attended target ``(N, Lj, H)`` (meaningful
    only where ``valid``) and the :class:`RoutingInfo`, or None when ``routing`` is False.
    ``summaries`` are the router's inputs ``(mean(target), mean(source))``, each ``(N, H)``;
    :class:`MixtureOfAligners` computes each modality's mean once for all its pairs.
    """

    def __init__(self, hidden: int, *, num_experts: int, top_k: int, heads: int, dropout: float,
                 routing: bool, max_shift: int, conv_kernel: int, low_rank: int,
                 edges: str = "replicate", init: str = "uniform", time_bias: bool = False,
                 time_knots: int = 33, time_gain: float = 8.0, time_init: str = "zero") -> None:
        super().__init__()
        self.num_experts = num_experts
        self.top_k = top_k
        self.routing = routing
        self.edges = edges
        if routing:
            self.experts = build_aligner_experts(num_experts, hidden, max_shift=max_shift,
                                                 conv_kernel=conv_kernel, low_rank=low_rank,
                                                 edges=edges, init=init)
            self.router = nn.Linear(2 * hidden, num_experts)
        # No dropout on the attention weights (see the module docstring): only on its output.
        self.cross_attention = nn.MultiheadAttention(hidden, heads, dropout=0.0,
                                                     batch_first=True)
        self.dropout = ThresholdDropout(dropout)
        self.norm = nn.LayerNorm(hidden)
        self.time_bias = (RelativeTimeBias(heads, tables=num_experts if routing else 1,
                                           knots=time_knots, gain=time_gain, init=time_init)
                          if time_bias else None)

    def forward(self, target: Tensor, target_mask: Tensor, source: Tensor, source_mask: Tensor,
                valid: Tensor, summaries: tuple[Tensor, Tensor] | None = None,
                ) -> tuple[Tensor, RoutingInfo | None]:
        info = None
        keys = source
        weights = None
        if self.routing:
            if summaries is None:
                summaries = (masked_mean(target, target_mask, dim=1),
                             masked_mean(source, source_mask, dim=1))
            probs = torch.softmax(self.router(torch.cat(summaries, dim=-1)), dim=-1)  # (N, E)
            kept_probs, selected = probs.topk(self.top_k, dim=-1)  # (N, K)
            kept_weights = kept_probs / kept_probs.sum(dim=-1, keepdim=True).detach()
            weights = torch.zeros_like(probs).scatter(-1, selected, kept_weights)  # (N, E)
            keys = mix_experts(self.experts, weights, source, source_mask,
                               self.edges)  # (N, Lk, H)
            info = RoutingInfo(probs=probs, selected=selected, weights=weights, valid=valid)
        # A row without any valid source position would make every attention score -inf and the
        # softmax NaN (NaN gradients too); such rows attend to their zeroed keys instead, and the
        # caller discards them through ``valid``.
        key_padding = ~source_mask & valid.unsqueeze(1)  # (N, Lk) True = ignore
        score_bias = (None if self.time_bias is None
                      else self.time_bias(target_mask, source_mask, weights))  # (N, h, Lj, Lk)
        attended = multi_head_attention(self.cross_attention, target, keys, key_padding,
                                        score_bias)
        return self.norm(target + self.dropout(attended)), info


class MixtureOfAligners(nn.Module):
    """Routed cross-modal alignment of every target modality against every other (see module
    docstring for the equations).

    Args:
        modalities (Sequence[str]): at least two distinct modality names.
        hidden (int): feature size ``H`` of every input sequence.
        num_experts (int): ``E`` experts per ordered pair, at least 3 (default 4).
        top_k (int): experts kept per utterance, ``1 <= K <= E`` (default 2).
        heads (int): attention heads of the cross-attention; must divide ``hidden`` (default 4).
        dropout (float): dropout on the cross-attention's output, before the residual sum
            (default 0.1).
        routing (bool): False gives the ``fixed_align`` ablation (default True).
        max_shift (int): largest displacement of the shift expert (default 4).
        conv_kernel (int): odd width of the depth-wise convolution expert (default 9).
        low_rank (int): rank of the low-rank expert (default 16, capped at ``hidden``).
        edges (str): what the experts read beyond a sequence's valid positions, ``"replicate"``
            or ``"zero"`` (:mod:`hotspot_erc.model.aligners`; default ``"replicate"``).
        init (str): how the temporal experts start, ``"uniform"`` or ``"identity"``
            (:data:`hotspot_erc.model.aligners.INITS`; default ``"uniform"``).
        time_bias (bool): add the relative-time bias of step 3 to every cross-attention
            (default False).
        time_knots (int): knots of each lag profile (default 33).
        time_gain (float): the profiles' gain (:class:`~hotspot_erc.model.time_bias.
            RelativeTimeBias`; default 8.0).
        time_init (str): how the profiles start, ``"zero"`` or ``"centred"`` (default
            ``"zero"``).

    Shapes:
        ``sequences[m]`` ``(N, L_m, H)``, ``masks[m]`` ``(N, L_m)`` bool, ``present[m]`` ``(N,)``
        bool, for the same ``N`` utterances in every modality -> :class:`MoAOutput`.
    """

    def __init__(self, modalities: Sequence[str], hidden: int, *, num_experts: int = 4,
                 top_k: int = 2, heads: int = 4, dropout: float = 0.1, routing: bool = True,
                 max_shift: int = 4, conv_kernel: int = 9, low_rank: int = 16,
                 edges: str = "replicate", init: str = "uniform", time_bias: bool = False,
                 time_knots: int = 33, time_gain: float = 8.0, time_init: str = "zero") -> None:
        super().__init__()
        modalities = list(modalities)
        if len(modalities) < 2:
            raise ValueError(f"MixtureOfAligners: needs at least two modalities to align, got "
                             f"{modalities}; with one modality the model must skip MoA")
        if len(set(modalities)) != len(modalities):
            raise ValueError(f"MixtureOfAligners: modalities must be distinct, got {modalities}")
        if any(not name or "." in name for name in modalities):
            raise ValueError(f"MixtureOfAligners: modality names must be non-empty and contain "
                             f"no '.', got {modalities}")
        if hidden % heads != 0:
            raise ValueError(f"MixtureOfAligners: heads ({heads}) must divide hidden ({hidden})")
        if routing and not 1 <= top_k <= num_experts:
            raise ValueError(f"MixtureOfAligners: top_k must be in 1..num_experts "
                             f"({num_experts}), got {top_k}")
        self.modalities = modalities
        self.hidden = hidden
        self.num_experts = num_experts
        self.top_k = top_k
        self.routing = routing
        self.pairs = [(source, target) for target in modalities for source in modalities
                      if source != target]
        self.aligners = nn.ModuleDict({
            self._pair_key(source, target): PairAligner(
                hidden, num_experts=num_experts, top_k=top_k, heads=heads, dropout=dropout,
                routing=routing, max_shift=max_shift, conv_kernel=conv_kernel,
                low_rank=min(low_rank, hidden), edges=edges, init=init, time_bias=time_bias,
                time_knots=time_knots, time_gain=time_gain, time_init=time_init)
            for source, target in self.pairs})
        self.pools = nn.ModuleDict({m: AttentionPool(hidden) for m in modalities})

    @staticmethod
    def _pair_key(source: str, target: str) -> str:
        return f"{source}_to_{target}"

    def aligner(self, source: str, target: str) -> PairAligner:
        """The experts, router and cross-attention of the pair ``source -> target``."""
        return self.aligners[self._pair_key(source, target)]

    @property
    def expert_kinds(self) -> list[str]:
        """The kind of each expert index (the same layout for every pair); empty without
        routing."""
        if not self.routing:
            return []
        return [expert.kind for expert in self.aligner(*self.pairs[0]).experts]

    def _check_inputs(self, sequences: dict[str, Tensor], masks: dict[str, Tensor],
                      present: dict[str, Tensor]) -> int:
        expected = set(self.modalities)
        for field, values in (("sequences", sequences), ("masks", masks), ("present", present)):
            if set(values) != expected:
                raise ValueError(f"MixtureOfAligners.forward: {field} has modalities "
                                 f"{sorted(values)}, expected {sorted(expected)}")
        num_utterances = sequences[self.modalities[0]].shape[0]
        for m in self.modalities:
            x, mask, flag = sequences[m], masks[m], present[m]
            if x.ndim != 3 or x.shape[0] != num_utterances or x.shape[2] != self.hidden:
                raise ValueError(f"MixtureOfAligners.forward: sequences[{m!r}] must be "
                                 f"(N={num_utterances}, L, H={self.hidden}), "
                                 f"got {tuple(x.shape)}")
            if mask.dtype != torch.bool or mask.shape != x.shape[:2]:
                raise ValueError(f"MixtureOfAligners.forward: masks[{m!r}] must be bool "
                                 f"{tuple(x.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}")
            if flag.dtype != torch.bool or flag.shape != (num_utterances,):
                raise ValueError(f"MixtureOfAligners.forward: present[{m!r}] must be bool "
                                 f"({num_utterances},), got {flag.dtype} {tuple(flag.shape)}")
        return num_utterances

    def forward(self, sequences: dict[str, Tensor], masks: dict[str, Tensor],
                present: dict[str, Tensor]) -> MoAOutput:
        self._check_inputs(sequences, masks, present)
        valid_masks = {m: masks[m] & present[m].unsqueeze(1) for m in self.modalities}
        available = {m: valid_masks[m].any(dim=1) for m in self.modalities}  # (N,)
        clean = {m: _zero_padding(sequences[m], valid_masks[m]) for m in self.modalities}
        means = ({m: masked_mean(clean[m], valid_masks[m], dim=1) for m in self.modalities}
                 if self.routing else {})  # (N, H) each, shared by all pairs of the modality

        pooled: dict[str, Tensor] = {}
        aligned_sequences: dict[str, Tensor] = {}
        routing: dict[tuple[str, str], RoutingInfo] = {}
        balance_loss = clean[self.modalities[0]].new_zeros(())
        for target in self.modalities:
            target_seq, target_mask = clean[target], valid_masks[target]
            sources = [m for m in self.modalities if m != target]
            valid = {source: available[source] & available[target] for source in sources}  # (N,)
            source_count = sum(valid[source].to(target_seq.dtype) for source in sources)  # (N,)
            # Step 4 as one weighted sum: source k weighs valid_k / count at the target's valid
            # positions and 0 elsewhere, so the mean and the padding mask cost one pass per
            # source. An utterance without a source keeps its (already clean) target sequence.
            position_weight = (target_mask.to(target_seq.dtype)
                               / source_count.clamp(min=1.0)[:, None])  # (N, Lj)
            lacks_source = (source_count == 0).to(target_seq.dtype)[:, None, None]  # (N, 1, 1)
            combined = (target_seq * lacks_source if bool(lacks_source.any())
                        else target_seq.new_zeros(()))  # broadcasts to (N, Lj, H) below
            for source in sources:
                summaries = (means[target], means[source]) if self.routing else None
                aligned, info = self.aligner(source, target)(
                    target_seq, target_mask, clean[source], valid_masks[source], valid[source],
                    summaries)  # (N, Lj, H)
                # An absent source's row is finite (it attended to zeroed keys), so weight 0
                # removes it exactly.
                source_weight = position_weight * valid[source].to(target_seq.dtype)[:, None]
                combined = torch.addcmul(combined, aligned, source_weight[..., None])
                if info is not None:
                    routing[(source, target)] = info
                    balance_loss = balance_loss + switch_balance_loss(
                        info.probs, info.selected, valid[source], self.num_experts)
            aligned_sequences[target] = combined  # (N, Lj, H), zero at the target's padding
            pooled[target] = self.pools[target](combined, target_mask)  # (N, H)
        return MoAOutput(pooled=pooled, sequences=aligned_sequences, balance_loss=balance_loss,
                         routing=routing)
