"""The assembled hotspot-centric ERC model; the whole forward pass reads top to bottom here.

For every utterance ``i`` and modality ``m`` present in it::

    F[i,m]     = HGF_m(X[i,m], g[i,m], prior[i,m])      (Proj_m(g[i,m]) as one position without
                 HGF; Proj_m(g[i,m]) + gamma_m * HGF_m(...) with the neutral start, or
                 Proj_m(g[i,m]) + HGF_m(...) W_m with its zero-initialised map)
    z_moa[i]   = [ MoA({F[i,m]})_m  |  e_m if m is missing ]_m    (concatenated over modalities)
    n[i,m]     = pool(F[i,m])   or  Proj'_m(g[i,m])  (option graph.nodes="global")
    n[i,m]     <- DialogueContext_m(n[., m], speakers)[i]                     (option)
    z_graph[i] = [ Graph({n[., m]})[i,m]  |  e_m if m is missing ]_m
    logits[i]  = MLP([z_moa[i] ; z_graph[i]])
    loss       = CE(logits, y; class weights) + lambda * sum_pairs L_bal

**Neutral start** (option ``neutral_start``; without it ``F = HGF(...)`` and the aligners read
zeros beyond a sequence). ``gamma_m`` (one scale per channel), or with ``neutral_map`` the
``(H, H)`` map ``W_m``, starts at zero, so at initialisation each sequence is the utterance's
global projection repeated over its valid positions, and the model
computes exactly what ``no_hgf`` computes from the same weights: pooling a constant sequence
gives the constant, and the aligners read a constant sequence as the one position it repeats
(:mod:`hotspot_erc.model.aligners`). Training then adds hotspot evidence only where it helps.
A scale's gradient is one number per channel, the HGF output's projection on the loss
gradient, and the HGF weights learn only as fast as the scale grows; a map's gradient is the
full outer product ``HGF(...)^T dL/dF``, so the path opens from the first step (the zero-init
of a residual branch's last layer, as in Fixup and SkipInit).

``e_m`` is a learned "modality missing" embedding: a missing modality is masked end to end (its
feature values never enter any computation) and the classifier is told explicitly that it is
missing, instead of receiving zeros it would read as data. With a single modality MoA is skipped
explicitly (there is no pair to align); ``z_moa`` is then the attention-pooled HGF output.

The ``corect`` variant replaces HGF by a projection of the global vector, MoA by CORECT's
pairwise cross-modal transformers over the dialogue, and keeps the relational graph.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hotspot_erc.data.batch import IGNORE_INDEX, Batch
from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.dialogue_context import DialogueContext
from hotspot_erc.model.graph import CrossModalGraph
from hotspot_erc.model.hgf import HotspotGatedFusion
from hotspot_erc.model.moa import MixtureOfAligners
from hotspot_erc.model.pairwise_crossmodal import PairwiseCrossModalTransformer
from hotspot_erc.model.pooling import AttentionPool
from hotspot_erc.model.standardise import InputStandardiser


@dataclass
class ModalityExplanation:
    """Per-position evidence of one modality, laid out like the batch: ``(B, U, L)``."""

    hotspot_weights: Tensor  # (B, U, L) in [0, 1]; zero on padding and missing modality
    gate: Tensor  # (B, U, L) mean gate alpha over channels
    local_mask: Tensor  # (B, U, L) bool
    present: Tensor  # (B, U) bool


@dataclass
class RoutingExplanation:
    """MoA routing of one ordered pair, laid out like the batch."""

    probs: Tensor  # (B, U, E)
    weights: Tensor  # (B, U, E) renormalised TopK mixing weights
    selected: Tensor  # (B, U, K) long, -1 where invalid
    valid: Tensor  # (B, U) bool


@dataclass
class ModelOutput:
    logits: Tensor  # (B, U, C)
    balance_loss: Tensor  # scalar
    hotspots: dict[str, ModalityExplanation] = field(default_factory=dict)
    routing: dict[tuple[str, str], RoutingExplanation] = field(default_factory=dict)


class HotspotERC(nn.Module):
    """HGF -> (MoA | cross-modal graph) -> classifier, configured by :class:`ModelConfig`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not config.input_dims:
            raise ValueError("ModelConfig.input_dims is empty: the model needs at least one "
                             "modality (fill it from the dataset's feature spec)")
        self.config = config
        self.modalities = config.modalities
        hidden = config.hidden
        self.encoders = nn.ModuleDict()
        # With the neutral start: the global path Proj_m and the scale gamma_m of the hotspot path.
        neutral = config.use_hgf and config.neutral_start
        self.global_projections = nn.ModuleDict() if neutral else None
        self.hotspot_scales = nn.ParameterDict() if neutral and not config.neutral_map else None
        self.hotspot_maps = nn.ModuleDict() if neutral and config.neutral_map else None
        for m in self.modalities:
            global_dim, local_dim = config.input_dims[m]
            if config.use_hgf:
                self.encoders[m] = HotspotGatedFusion(
                    local_dim, global_dim, hidden, heads=config.heads, dropout=config.dropout,
                    **dataclasses.asdict(config.hgf))
            if not config.use_hgf or neutral:
                projection = nn.Sequential(nn.Linear(global_dim, hidden), nn.GELU(),
                                           nn.Dropout(config.dropout))
                if neutral:
                    self.global_projections[m] = projection
                    if config.neutral_map:
                        self.hotspot_maps[m] = nn.Linear(hidden, hidden, bias=False)
                        nn.init.zeros_(self.hotspot_maps[m].weight)
                    else:
                        self.hotspot_scales[m] = nn.Parameter(torch.zeros(hidden))
                else:
                    self.encoders[m] = projection
        multimodal = len(self.modalities) > 1
        moa = config.moa
        self.moa = (MixtureOfAligners(self.modalities, hidden, num_experts=moa.num_experts,
                                      top_k=moa.top_k, heads=config.heads,
                                      dropout=config.dropout, routing=moa.routing,
                                      max_shift=moa.max_shift, conv_kernel=moa.conv_kernel,
                                      edges="replicate" if config.neutral_start else "zero",
                                      init=moa.init, time_bias=moa.time_bias,
                                      time_knots=moa.time_knots, time_gain=moa.time_gain,
                                      time_init=moa.time_init)
                    if config.use_moa and multimodal else None)
        # Without MoA (ablation, corect, or one modality) each modality is pooled on its own.
        self.pools = (nn.ModuleDict({m: AttentionPool(hidden) for m in self.modalities})
                      if self.moa is None else None)
        self.node_pools = nn.ModuleDict({m: AttentionPool(hidden) for m in self.modalities})
        # Graph nodes from the global vectors instead of the pooled HGF output (option). The
        # node pools above then go unused; they are still created so that the initialisation of
        # every other parameter (the random stream) does not depend on this option.
        self.node_encoders = (nn.ModuleDict({
            m: nn.Sequential(nn.Linear(config.input_dims[m][0], hidden), nn.GELU(),
                             nn.Dropout(config.dropout)) for m in self.modalities})
            if config.use_hgf and config.graph.nodes == "global" else None)
        graph = config.graph
        self.context = (DialogueContext(len(self.modalities), hidden,
                                        speaker_embedding=graph.speaker_embedding,
                                        max_speakers=graph.max_speakers, dropout=config.dropout)
                        if graph.dialogue_context and config.use_graph else None)
        self.pairwise = (PairwiseCrossModalTransformer(len(self.modalities), hidden,
                                                       heads=config.heads,
                                                       layers=config.pairwise_layers,
                                                       dropout=config.dropout)
                         if config.pairwise_crossmodal and multimodal else None)
        self.graph = (CrossModalGraph(len(self.modalities), hidden, past=graph.past,
                                      future=graph.future, temporal_edges=graph.temporal_edges,
                                      cross_edges=graph.cross_edges,
                                      speaker_relations=graph.speaker_relations,
                                      heads=config.heads, dropout=config.dropout)
                      if config.use_graph else None)
        self.standardisers = nn.ModuleDict({
            m: InputStandardiser(*config.input_dims[m]) for m in self.modalities
            if m in (config.standardise or [])})
        self.missing = nn.ParameterDict({
            m: nn.Parameter(torch.randn(2, hidden) * 0.02) for m in self.modalities})
        paths = 1 + int(self.graph is not None)
        width = paths * len(self.modalities) * hidden
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(width, hidden),
                                        nn.GELU(), nn.Dropout(config.dropout),
                                        nn.Linear(hidden, config.num_classes))
        weights = config.class_weights
        self.register_buffer("class_weights",
                             None if weights is None else torch.tensor(weights, dtype=torch.float))

    def forward(self, batch: Batch) -> ModelOutput:
        utterance_mask = batch.utterance_mask  # (B, U)
        num_dialogues, width = utterance_mask.shape
        flat_valid = utterance_mask.reshape(-1)  # (B*U,)
        count = int(flat_valid.sum())

        # 1. Per modality: HGF over the local sequence, or the projected global vector.
        sequences, masks, present, hotspots, node_inputs = {}, {}, {}, {}, {}
        for m in self.modalities:
            if m in batch.modalities:
                mb = batch.modalities[m]
                is_present = (mb.present & utterance_mask).reshape(-1)[flat_valid]  # (N,)
            else:
                mb, is_present = None, torch.zeros(count, dtype=torch.bool,
                                                   device=utterance_mask.device)
            globals_ = self._globals(m, mb, flat_valid) if mb is not None else None  # (N, G)
            sequences[m], masks[m], hotspots[m] = self._encode(
                m, mb, globals_, flat_valid, is_present, (num_dialogues, width))
            present[m] = is_present
            if self.node_encoders is not None:
                node_inputs[m] = self._project_global(m, globals_, is_present)

        # 2. Local-global cross-modal alignment (MoA), or each modality pooled on its own.
        balance_loss = utterance_mask.new_zeros((), dtype=torch.float)
        routing = {}
        if self.moa is not None:
            moa = self.moa(sequences, masks, present)
            pooled = moa.pooled
            balance_loss = moa.balance_loss
            routing = {pair: _scatter_routing(info, flat_valid, num_dialogues, width)
                       for pair, info in moa.routing.items()}
        else:
            pooled = {m: self.pools[m](sequences[m], masks[m]) for m in self.modalities}
        moa_vector = torch.cat([self._or_missing(m, pooled[m], present[m], 0)
                                for m in self.modalities], dim=-1)  # (N, M*H)
        parts = [moa_vector]

        # 3. Relational cross-modal conversation graph over (utterance, modality) nodes.
        if self.graph is not None:
            if not node_inputs:
                node_inputs = {m: self.node_pools[m](sequences[m], masks[m])
                               for m in self.modalities}
            node_features = torch.stack(
                [self._to_batch(node_inputs[m], flat_valid, num_dialogues, width)
                 for m in self.modalities], dim=2)  # (B, U, M, H)
            node_present = torch.stack([self._to_batch(present[m], flat_valid, num_dialogues,
                                                       width) for m in self.modalities], dim=2)
            if self.context is not None:
                node_features = self.context(node_features, node_present, utterance_mask,
                                             batch.speakers)
            if self.pairwise is not None:
                node_features = self.pairwise(node_features, node_present, utterance_mask)
            graph = self.graph(node_features, node_present, utterance_mask, batch.speakers)
            nodes = graph.node_embeddings.reshape(num_dialogues * width, len(self.modalities),
                                                  -1)[flat_valid]  # (N, M, H)
            parts.append(torch.cat([self._or_missing(m, nodes[:, k], present[m], 1)
                                    for k, m in enumerate(self.modalities)], dim=-1))

        # 4. Classifier over [MoA ; graph].
        logits_flat = self.classifier(torch.cat(parts, dim=-1))  # (N, C)
        logits = logits_flat.new_zeros(num_dialogues * width, logits_flat.shape[-1])
        logits[flat_valid] = logits_flat
        return ModelOutput(logits.reshape(num_dialogues, width, -1), balance_loss,
                           {m: e for m, e in hotspots.items() if e is not None}, routing)

    def loss(self, output: ModelOutput, labels: Tensor) -> Tensor:
        """Cross-entropy over scored utterances plus ``balance_weight`` x MoA balance loss."""
        scored = labels != IGNORE_INDEX
        if not bool(scored.any()):
            cross_entropy = output.logits.sum() * 0.0
        else:
            cross_entropy = F.cross_entropy(output.logits[scored], labels[scored],
                                            weight=self.class_weights)
        return cross_entropy + self.config.moa.balance_weight * output.balance_loss

    # -- helpers -------------------------------------------------------------------------------

    def _encode(self, m: str, mb, globals_: Tensor | None, flat_valid: Tensor,
                is_present: Tensor, shape):
        """Encode modality ``m`` for the N valid utterances -> (sequence, mask, explanation);
        ``globals_`` are their (standardised) global vectors, None when the batch lacks ``m``.

        Only rows where the modality is present are computed; the others stay zero and fully
        masked, so their stored values never reach the model.
        """
        count, hidden = int(flat_valid.sum()), self.config.hidden
        device = flat_valid.device
        standardiser = self.standardisers[m] if m in self.standardisers else None
        if not self.config.use_hgf or mb is None:
            sequence = torch.zeros(count, 1, hidden, device=device)
            mask = is_present[:, None].clone()  # (N, 1)
            if mb is not None and bool(is_present.any()):
                sequence[is_present, 0] = self.encoders[m](globals_[is_present])
            return sequence, mask, None
        positions = mb.local.shape[2]
        local = mb.local.reshape(-1, positions, mb.local.shape[-1])[flat_valid]  # (N, L, D)
        local_mask = mb.local_mask.reshape(-1, positions)[flat_valid] & is_present[:, None]
        if standardiser is not None:
            # Masked positions are zeroed again so that padding stays exactly zero.
            local = standardiser.forward_local(local) * local_mask[..., None]
        prior = mb.prior.reshape(-1, positions)[flat_valid]
        has_prior = mb.has_prior.reshape(-1)[flat_valid]
        sequence = torch.zeros(count, positions, hidden, device=device)
        weights = torch.zeros(count, positions, device=device)
        gate = torch.zeros(count, positions, device=device)
        rows = is_present.nonzero(as_tuple=True)[0]
        if rows.numel():
            out = self.encoders[m](local[rows], local_mask[rows], globals_[rows],
                                   prior[rows], has_prior[rows])
            fused = out.fused  # (n, L, H)
            if self.global_projections is not None:
                base = self.global_projections[m](globals_[rows])  # (n, H)
                hotspots = (self.hotspot_maps[m](fused) if self.hotspot_maps is not None
                            else self.hotspot_scales[m] * fused)
                fused = base[:, None, :] * local_mask[rows, :, None] + hotspots
            sequence = sequence.index_copy(0, rows, fused)
            weights = weights.index_copy(0, rows, out.hotspot_weights)
            gate = gate.index_copy(0, rows, out.gate.mean(dim=-1) * local_mask[rows])
        num_dialogues, width = shape
        explanation = ModalityExplanation(
            self._to_batch(weights, flat_valid, num_dialogues, width),
            self._to_batch(gate, flat_valid, num_dialogues, width),
            self._to_batch(local_mask, flat_valid, num_dialogues, width),
            self._to_batch(is_present, flat_valid, num_dialogues, width))
        return sequence, local_mask, explanation

    def _globals(self, m: str, mb, flat_valid: Tensor) -> Tensor:
        """The (standardised) global vectors of modality ``m`` for the N valid utterances."""
        globals_ = mb.global_vector.reshape(-1, mb.global_vector.shape[-1])[flat_valid]
        if m in self.standardisers:
            globals_ = self.standardisers[m].forward_global(globals_)
        return globals_

    def _project_global(self, m: str, globals_: Tensor | None, is_present: Tensor) -> Tensor:
        """Graph node input ``Proj'_m(g)`` (N, H); zero rows where ``m`` is absent."""
        out = torch.zeros(is_present.shape[0], self.config.hidden, device=is_present.device)
        if globals_ is not None and bool(is_present.any()):
            out[is_present] = self.node_encoders[m](globals_[is_present])
        return out

    def _or_missing(self, m: str, vectors: Tensor, is_present: Tensor, path: int) -> Tensor:
        """Replace the rows of absent modality ``m`` by its learned missing embedding."""
        return torch.where(is_present[:, None], vectors, self.missing[m][path].expand_as(vectors))

    @staticmethod
    def _to_batch(values: Tensor, flat_valid: Tensor, num_dialogues: int, width: int) -> Tensor:
        """Scatter (N, ...) rows of valid utterances back to (B, U, ...), zero elsewhere."""
        out = values.new_zeros((num_dialogues * width, *values.shape[1:]))
        out[flat_valid] = values
        return out.reshape(num_dialogues, width, *values.shape[1:])


def _scatter_routing(info, flat_valid: Tensor, num_dialogues: int, width: int):
    to_batch = HotspotERC._to_batch
    # -1 marks "no selection" (invalid pair or padded utterance).
    selected = torch.where(info.valid[:, None], info.selected, torch.full_like(info.selected, -1))
    return RoutingExplanation(to_batch(info.probs, flat_valid, num_dialogues, width),
                              to_batch(info.weights, flat_valid, num_dialogues, width),
                              to_batch(selected + 1, flat_valid, num_dialogues, width) - 1,
                              to_batch(info.valid, flat_valid, num_dialogues, width))
