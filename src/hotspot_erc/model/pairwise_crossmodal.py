"""Pairwise cross-modal transformers (P-CM) of the CORECT baseline, at dialogue level.

CORECT (Nguyen et al., EMNLP 2023) lets every modality read every other modality before its
relational graph. For each ordered pair of modalities, source ``k`` -> target ``j``, the sequence
of target utterance vectors of a dialogue queries the sequence of source utterance vectors with a
small "cross-modal transformer". Written by us from the published description, not from CORECT's
code.

For one dialogue of ``U`` utterances, with ``X_m`` ``(U, H)`` the utterance vectors of modality
``m`` and ``P`` ``(U, H)`` learned embeddings of the utterance index:

    Z^0      = X_j + P,        S = X_k + P
    Z^l      = Z^(l-1) + Attn(LN_q(Z^(l-1)), LN_s(S), LN_s(S); keys where v_k)   for l = 1..layers
    Z^l      = Z^l + FFN(LN_f(Z^l))
    Y_(k->j) = LN_out(Z^layers)

with ``v_k[u]`` = "utterance ``u`` is real and modality ``k`` is present at ``u``" (the key
padding mask) and ``FFN`` a two-layer ReLU network of width ``4 H``. The residual blocks are
pre-norm, as in MulT whose cross-modal transformer CORECT adopts: they train stably with few
layers and no warm-up.

Combining sources (our choice: the average, not the concatenation). The output of target ``j`` is
the mean of ``Y_(k->j)`` over the sources ``k`` that are *usable* in the dialogue, i.e. present at
one utterance at least. The mean keeps the width at ``H`` whatever the number of sources, and an
unusable source is left out of the mean instead of contributing a slot of meaningless values.

Empty key set. A source absent at every utterance of a dialogue gives attention nothing to read;
its attention term is then defined as zero (the empty sum), so each block reduces to its residual
feed-forward path. When no source of a target is usable, the output of the target is the mean over
all its sources of these attention-free stacks: a representation of the target alone, finite and
independent of every source value, rather than zeros that a caller would mistake for data.

Outputs at padded utterances and where the target modality itself is absent are zero; the caller
masks them with ``present``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CrossModalBlock(nn.Module):
    """One pre-norm block: target queries source (cross-attention), then a feed-forward layer."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.query_norm = nn.LayerNorm(hidden)
        self.source_norm = nn.LayerNorm(hidden)
        self.attention = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.feed_forward_norm = nn.LayerNorm(hidden)
        self.feed_forward = nn.Sequential(
            nn.Linear(hidden, 4 * hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4 * hidden, hidden))
        self.dropout = nn.Dropout(dropout)

    def forward(self, target: Tensor, source: Tensor, source_valid: Tensor,
                has_source: Tensor) -> Tensor:
        # target, source (B, U, H); source_valid (B, U) bool; has_source (B,) bool
        # A dialogue without any valid key would take a softmax over nothing (NaN). It attends to
        # every key instead and the result is then discarded: the empty-sum convention, NaN-free.
        key_padding_mask = ~(source_valid | ~has_source[:, None])  # True = ignore this key
        source = self.source_norm(source)
        attended, _ = self.attention(self.query_norm(target), source, source,
                                     key_padding_mask=key_padding_mask, need_weights=False)
        attended = torch.where(has_source[:, None, None], attended, torch.zeros_like(attended))
        target = target + self.dropout(attended)
        return target + self.dropout(self.feed_forward(self.feed_forward_norm(target)))


class CrossModalTransformer(nn.Module):
    """A stack of :class:`CrossModalBlock` for one ordered pair (source -> target)."""

    def __init__(self, hidden: int, heads: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(CrossModalBlock(hidden, heads, dropout) for _ in range(layers))
        self.output_norm = nn.LayerNorm(hidden)

    def forward(self, target: Tensor, source: Tensor, source_valid: Tensor) -> Tensor:
        # target, source (B, U, H); source_valid (B, U) bool -> (B, U, H)
        has_source = source_valid.any(dim=1)  # (B,)
        for block in self.blocks:
            target = block(target, source, source_valid, has_source)
        return self.output_norm(target)


class PairwiseCrossModalTransformer(nn.Module):
    """CORECT's pairwise cross-modal interaction over the utterances of each dialogue.

    Args:
        num_modalities (int): number of modalities ``M``; at least 2, since one modality has no
            pair (a variant without pairs must skip this block explicitly).
        hidden (int): width ``H`` of the utterance vectors and of every layer.
        heads (int, optional): attention heads; must divide ``hidden``. (default: ``4``)
        layers (int, optional): blocks per ordered pair. (default: ``2``)
        dropout (float, optional): dropout on the inputs, attention weights and residual branches.
            (default: ``0.1``)
        max_utterances (int, optional): longest dialogue the position embeddings cover.
            (default: ``512``)

    Shapes:
        - utterance_vectors ``(B, U, M, H)``, present ``(B, U, M)`` bool, utterance_mask
          ``(B, U)`` bool
        - output ``(B, U, M, H)``: per target modality its cross-modal representation; zero at
          padded utterances and where the target is absent.

    The pair ``source -> target`` lives in ``pair_transformers[f"{source}_to_{target}"]``.
    """

    def __init__(self, num_modalities: int, hidden: int, *, heads: int = 4, layers: int = 2,
                 dropout: float = 0.1, max_utterances: int = 512) -> None:
        super().__init__()
        if num_modalities < 2:
            raise ValueError(
                f"PairwiseCrossModalTransformer: num_modalities must be at least 2 to form a "
                f"pair, got {num_modalities}; skip the pairwise block for a single modality")
        if hidden < 1 or heads < 1 or hidden % heads:
            raise ValueError(f"PairwiseCrossModalTransformer: hidden ({hidden}) must be a positive "
                             f"multiple of heads ({heads})")
        if layers < 1:
            raise ValueError(f"PairwiseCrossModalTransformer: layers must be >= 1, got {layers}")
        if max_utterances < 1:
            raise ValueError(f"PairwiseCrossModalTransformer: max_utterances must be >= 1, got "
                             f"{max_utterances}")
        self.num_modalities = num_modalities
        self.hidden = hidden
        self.max_utterances = max_utterances
        self.position_embedding = nn.Embedding(max_utterances, hidden)
        nn.init.normal_(self.position_embedding.weight, std=0.02)
        self.input_dropout = nn.Dropout(dropout)
        self.pair_transformers = nn.ModuleDict({
            f"{source}_to_{target}": CrossModalTransformer(hidden, heads, layers, dropout)
            for target in range(num_modalities) for source in range(num_modalities)
            if source != target})

    def forward(self, utterance_vectors: Tensor, present: Tensor, utterance_mask: Tensor) -> Tensor:
        self._check_inputs(utterance_vectors, present, utterance_mask)
        num_utterances = utterance_vectors.shape[1]
        valid = present & utterance_mask[:, :, None]  # (B, U, M)
        # Values behind a mask are replaced, not multiplied, so that no padding or absent value,
        # however large or even NaN, reaches the arithmetic.
        vectors = torch.where(valid[..., None], utterance_vectors,
                              torch.zeros_like(utterance_vectors))
        positions = self.position_embedding(
            torch.arange(num_utterances, device=utterance_vectors.device))  # (U, H)
        streams = self.input_dropout(vectors + positions[:, None, :])  # (B, U, M, H)
        usable = valid.any(dim=1)  # (B, M): the modality is present somewhere in the dialogue

        per_target = []
        for target in range(self.num_modalities):
            sources = [k for k in range(self.num_modalities) if k != target]
            pair_outputs = torch.stack([
                self.pair_transformers[f"{source}_to_{target}"](
                    streams[:, :, target], streams[:, :, source], valid[:, :, source])
                for source in sources], dim=2)  # (B, U, M-1, H)
            source_usable = usable[:, sources]  # (B, M-1)
            # Without any usable source every pair output is its attention-free stack: average
            # them all (the documented fallback) instead of dividing by zero.
            weights = torch.where(source_usable.any(dim=1, keepdim=True), source_usable,
                                  torch.ones_like(source_usable)).to(pair_outputs.dtype)
            weights = weights / weights.sum(dim=1, keepdim=True)
            per_target.append(torch.einsum("bush,bs->buh", pair_outputs, weights))
        output = torch.stack(per_target, dim=2)  # (B, U, M, H)
        return torch.where(valid[..., None], output, torch.zeros_like(output))

    def _check_inputs(self, utterance_vectors: Tensor, present: Tensor,
                      utterance_mask: Tensor) -> None:
        name = "PairwiseCrossModalTransformer"
        if utterance_vectors.dim() != 4 or tuple(utterance_vectors.shape[2:]) != (
                self.num_modalities, self.hidden):
            raise ValueError(
                f"{name}: utterance_vectors: expected shape (batch, utterances, "
                f"{self.num_modalities}, {self.hidden}), got {tuple(utterance_vectors.shape)}")
        batch, num_utterances = utterance_vectors.shape[:2]
        if present.dtype != torch.bool or tuple(present.shape) != (
                batch, num_utterances, self.num_modalities):
            raise ValueError(
                f"{name}: present: expected a bool tensor of shape ({batch}, {num_utterances}, "
                f"{self.num_modalities}), got {present.dtype} {tuple(present.shape)}")
        if utterance_mask.dtype != torch.bool or tuple(utterance_mask.shape) != (
                batch, num_utterances):
            raise ValueError(
                f"{name}: utterance_mask: expected a bool tensor of shape ({batch}, "
                f"{num_utterances}), got {utterance_mask.dtype} {tuple(utterance_mask.shape)}")
        if num_utterances > self.max_utterances:
            raise ValueError(
                f"{name}: utterance_vectors: {num_utterances} utterances exceed max_utterances "
                f"({self.max_utterances}); raise max_utterances")
