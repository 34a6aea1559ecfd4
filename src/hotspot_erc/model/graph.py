"""Cross-modal relational conversation graph (docs/method.md, section 3).

Nodes
    One node per (dialogue ``b``, utterance ``u``, modality ``m``) where the utterance is real and
    the modality is present. Nodes are numbered in row-major order of ``(b, u, m)`` over the
    present ones, so ``node_features[node_mask]`` is exactly the flat node feature matrix and the
    dialogues of a batch are disjoint components of one graph.

Edges (message flows from the *context* node ``j`` to the node ``i`` being updated, ``j -> i``)
    * self-loop ``i -> i`` for every node, always kept (also without temporal edges), so every node
      has an incoming edge and sees itself in the attention layer;
    * temporal, within modality ``m`` of one dialogue: utterance ``i`` receives from every
      utterance ``j`` with ``i - past <= j <= i + future``, ``j != i``, where modality ``m`` is
      present. The edge is **past** when the context precedes the target (``j < i``) and
      **future** when it follows it (``j > i``);
    * cross-modal, within one utterance: ``(u, s) -> (u, t)`` for every ordered pair of present
      modalities ``s != t``.

Relation numbering (``M`` modalities; ``K`` temporal kinds per modality)
    Temporal kinds, per modality: ``0`` self; then, when ``temporal``, either ``1`` past and
    ``2`` future (``K = 3``) or, with ``speaker_relations``, ``1`` past same-speaker, ``2`` past
    other-speaker, ``3`` future same-speaker, ``4`` future other-speaker (``K = 5``). Without
    temporal edges ``K = 1`` (self only). The relation of a temporal or self edge in modality
    ``m`` is ``m * K + kind``. Cross-modal relations follow: source ``s`` -> target ``t`` is
    ``M * K + s * (M - 1) + (t if t < s else t - 1)``. In total
    ``relation_count = M * K + (M * (M - 1) if cross else 0)``.

Network (``x`` the node features, ``N_r(i)`` the sources of ``i`` under relation ``r``)
    ``r_i = dropout(relu(W_0 x_i + sum_r mean_{j in N_r(i)} W_r x_j))``       (RGCN, Schlichtkrull
    et al. 2018; ``W_r`` optionally a combination of ``num_bases`` shared bases),
    ``a_i = W_s r_i + mean_heads sum_{j in N(i)} softmax_j(q_i . k_j / sqrt(d)) v_j``  (graph
    transformer, Shi et al. 2021, ``TransformerConv`` with ``concat=False``),
    ``out_i = LayerNorm(x_i + dropout(a_i))``.
    The residual from the input keeps each node's own pooled HGF evidence in the output even when
    its context is uninformative. The transformer layer attends over the same edges without edge
    types (as in CORECT); relation awareness comes from the RGCN layer before it.

Edge construction is vectorised over the batch, utterances, window offsets and modalities: all
(target, offset, modality) candidates are built by broadcasting and filtered by masks; there is no
Python loop at all in :func:`build_edges`. :func:`build_edges_reference` is the naive per-pair loop
used only to test it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import RGCNConv, TransformerConv

# Temporal kinds within one modality's block of relations.
SELF_KIND = 0
PAST_KIND = 1
FUTURE_KIND = 2
PAST_SAME_SPEAKER_KIND = 1
PAST_OTHER_SPEAKER_KIND = 2
FUTURE_SAME_SPEAKER_KIND = 3
FUTURE_OTHER_SPEAKER_KIND = 4


@dataclass
class GraphEdges:
    node_index: Tensor  # (B, U, M) long: node id, -1 where there is no node
    edge_index: Tensor  # (2, E) long, source -> target
    edge_type: Tensor  # (E,) long relation ids
    num_nodes: int
    num_relations: int


@dataclass
class GraphOutput:
    node_embeddings: Tensor  # (B, U, M, H) zero where there is no node
    node_mask: Tensor  # (B, U, M) bool
    edges: GraphEdges


def temporal_kinds(*, temporal: bool, speaker_relations: bool) -> int:
    """Number ``K`` of temporal relation kinds per modality (self, and past/future if temporal)."""
    if not temporal:
        return 1
    return 5 if speaker_relations else 3


def relation_count(num_modalities: int, *, temporal: bool, cross: bool,
                   speaker_relations: bool) -> int:
    """Number of relation types; see the module docstring for the numbering."""
    kinds = temporal_kinds(temporal=temporal, speaker_relations=speaker_relations)
    cross_relations = num_modalities * (num_modalities - 1) if cross else 0
    return num_modalities * kinds + cross_relations


def _check_inputs(utterance_mask: Tensor, present: Tensor, speakers: Tensor, past: int,
                  future: int, speaker_relations: bool) -> None:
    if utterance_mask.dim() != 2 or utterance_mask.dtype != torch.bool:
        raise ValueError(f"graph edges: utterance_mask must be a (B, U) bool tensor, got "
                         f"{tuple(utterance_mask.shape)} {utterance_mask.dtype}")
    if (present.dim() != 3 or present.dtype != torch.bool
            or present.shape[:2] != utterance_mask.shape):
        raise ValueError(f"graph edges: present must be a (B, U, M) bool tensor with (B, U) = "
                         f"{tuple(utterance_mask.shape)}, got {tuple(present.shape)} "
                         f"{present.dtype}")
    if speakers.shape != utterance_mask.shape:
        raise ValueError(f"graph edges: speakers must have shape {tuple(utterance_mask.shape)}, "
                         f"got {tuple(speakers.shape)}")
    if past < 0 or future < 0:
        raise ValueError(f"graph edges: past and future must be >= 0, got {past}, {future}")
    if bool((present & ~utterance_mask.unsqueeze(-1)).any()):
        raise ValueError("graph edges: present is True on a padded utterance "
                         "(utterance_mask False); expected False there")
    if speaker_relations and bool((speakers[utterance_mask] < 0).any()):
        raise ValueError("graph edges: speakers must be >= 0 on every real utterance when "
                         "speaker_relations is on")


def _number_nodes(present: Tensor) -> Tensor:
    """Node ids in row-major (b, u, m) order over present slots, -1 elsewhere."""
    flat = present.reshape(-1)
    ids = torch.cumsum(flat.long(), dim=0) - 1
    ids = torch.where(flat, ids, torch.full_like(ids, -1))
    return ids.view(present.shape)


def build_edges(utterance_mask: Tensor, present: Tensor, speakers: Tensor, *, past: int,
                future: int, temporal: bool = True, cross: bool = True,
                speaker_relations: bool = False) -> GraphEdges:
    """Build the batched relational graph; see the module docstring for nodes, edges, relations.

    ``utterance_mask`` ``(B, U)`` bool, ``present`` ``(B, U, M)`` bool (False on padding),
    ``speakers`` ``(B, U)`` long (-1 on padding; only read when ``speaker_relations``).
    """
    _check_inputs(utterance_mask, present, speakers, past, future, speaker_relations)
    batch, width, num_modalities = present.shape
    device = present.device
    kinds = temporal_kinds(temporal=temporal, speaker_relations=speaker_relations)
    node_index = _number_nodes(present)  # (B, U, M)
    modality_ids = torch.arange(num_modalities, device=device)

    sources, targets, types = [], [], []

    # Self-loops: one per node, relation m * K + SELF_KIND.
    self_ids = node_index[present]  # row-major order, so ids are 0..N-1
    self_modality = modality_ids.expand(batch, width, num_modalities)[present]
    sources.append(self_ids)
    targets.append(self_ids)
    types.append(self_modality * kinds + SELF_KIND)

    offsets = torch.cat([torch.arange(-past, 0, device=device),
                         torch.arange(1, future + 1, device=device)])  # (D,)
    if temporal and offsets.numel() > 0:
        target_utt = torch.arange(width, device=device).view(width, 1)  # (U, 1)
        context_utt = target_utt + offsets.view(1, -1)  # (U, D)
        in_dialogue = (context_utt >= 0) & (context_utt < width)  # (U, D)
        context_clamped = context_utt.clamp(0, width - 1)
        # (B, U, D, M): node of the context utterance in the same modality as the target.
        context_nodes = node_index[:, context_clamped]
        target_nodes = node_index.unsqueeze(2).expand_as(context_nodes)
        valid = (context_nodes >= 0) & (target_nodes >= 0) & in_dialogue.view(1, width, -1, 1)

        is_past = (offsets < 0).view(1, 1, -1, 1)
        if speaker_relations:
            same_speaker = (speakers[:, context_clamped] == speakers.unsqueeze(2)).unsqueeze(-1)
            kind = torch.where(
                is_past,
                torch.where(same_speaker, PAST_SAME_SPEAKER_KIND, PAST_OTHER_SPEAKER_KIND),
                torch.where(same_speaker, FUTURE_SAME_SPEAKER_KIND, FUTURE_OTHER_SPEAKER_KIND))
        else:
            kind = torch.where(is_past, PAST_KIND, FUTURE_KIND)
        relation = modality_ids.view(1, 1, 1, -1) * kinds + kind  # broadcasts to (B, U, D, M)
        sources.append(context_nodes[valid])
        targets.append(target_nodes[valid])
        types.append(relation.expand_as(context_nodes)[valid])

    if cross and num_modalities > 1:
        source_modality = modality_ids.view(-1, 1)  # (M, 1)
        target_modality = modality_ids.view(1, -1)  # (1, M)
        pair_relation = (num_modalities * kinds + source_modality * (num_modalities - 1)
                         + torch.where(target_modality < source_modality, target_modality,
                                       target_modality - 1))  # (M, M)
        # (B, U, M_source, M_target)
        source_nodes = node_index.unsqueeze(-1).expand(-1, -1, -1, num_modalities)
        target_nodes = node_index.unsqueeze(-2).expand(-1, -1, num_modalities, -1)
        valid = ((source_nodes >= 0) & (target_nodes >= 0)
                 & (source_modality != target_modality).view(1, 1, num_modalities, -1))
        sources.append(source_nodes[valid])
        targets.append(target_nodes[valid])
        types.append(pair_relation.expand_as(source_nodes)[valid])

    edge_index = torch.stack([torch.cat(sources), torch.cat(targets)])
    return GraphEdges(node_index=node_index, edge_index=edge_index, edge_type=torch.cat(types),
                      num_nodes=int(self_ids.numel()),
                      num_relations=relation_count(num_modalities, temporal=temporal, cross=cross,
                                                   speaker_relations=speaker_relations))


def build_edges_reference(utterance_mask: Tensor, present: Tensor, speakers: Tensor, *,
                          past: int, future: int, temporal: bool = True, cross: bool = True,
                          speaker_relations: bool = False) -> GraphEdges:
    """Naive per-pair loop building the same graph as :func:`build_edges`; for tests only."""
    _check_inputs(utterance_mask, present, speakers, past, future, speaker_relations)
    batch, width, num_modalities = present.shape
    kinds = temporal_kinds(temporal=temporal, speaker_relations=speaker_relations)
    node_index = torch.full((batch, width, num_modalities), -1, dtype=torch.long)
    next_id = 0
    for b in range(batch):
        for u in range(width):
            for m in range(num_modalities):
                if present[b, u, m]:
                    node_index[b, u, m] = next_id
                    next_id += 1

    triples = []
    for b in range(batch):
        for i in range(width):
            for m in range(num_modalities):
                target = int(node_index[b, i, m])
                if target < 0:
                    continue
                triples.append((target, target, m * kinds + SELF_KIND))
                if temporal:
                    for j in range(max(0, i - past), min(width, i + future + 1)):
                        source = int(node_index[b, j, m])
                        if j == i or source < 0:
                            continue
                        if speaker_relations:
                            same = bool(speakers[b, j] == speakers[b, i])
                            if j < i:
                                kind = PAST_SAME_SPEAKER_KIND if same else PAST_OTHER_SPEAKER_KIND
                            else:
                                kind = (FUTURE_SAME_SPEAKER_KIND if same
                                        else FUTURE_OTHER_SPEAKER_KIND)
                        else:
                            kind = PAST_KIND if j < i else FUTURE_KIND
                        triples.append((source, target, m * kinds + kind))
                if cross:
                    for s in range(num_modalities):
                        source = int(node_index[b, i, s])
                        if s == m or source < 0:
                            continue
                        pair = s * (num_modalities - 1) + (m if m < s else m - 1)
                        triples.append((source, target, num_modalities * kinds + pair))

    edges = torch.tensor(triples, dtype=torch.long).view(-1, 3)
    return GraphEdges(node_index=node_index, edge_index=edges[:, :2].t().contiguous(),
                      edge_type=edges[:, 2].contiguous(), num_nodes=next_id,
                      num_relations=relation_count(num_modalities, temporal=temporal, cross=cross,
                                                   speaker_relations=speaker_relations))


class CrossModalGraph(nn.Module):
    """Relational graph over (utterance, modality) nodes: RGCN, then a graph transformer layer.

    Args:
        num_modalities (int): ``M``, modality slots per utterance.
        hidden (int): node feature size ``H`` in and out.
        past (int): context utterances before the target in temporal edges (default 11).
        future (int): context utterances after the target in temporal edges (default 5).
        temporal_edges (bool): add temporal edges (self-loops are always added).
        cross_edges (bool): add cross-modal edges within each utterance.
        speaker_relations (bool): split past/future relations into same/other speaker.
        heads (int): attention heads of the transformer layer (averaged, ``concat=False``).
        dropout (float): dropout after each layer and on the attention weights.
        num_bases (int | None): basis decomposition of the RGCN relation weights.

    ``forward(node_features (B, U, M, H), present (B, U, M) bool, utterance_mask (B, U) bool,
    speakers (B, U) long)`` returns a :class:`GraphOutput` with ``node_embeddings`` ``(B, U, M,
    H)``, zero where there is no node. Features at absent nodes are never read.
    """

    # Message-passing layers (RGCN, then the transformer layer): an output reads nodes up to
    # this many edges away, so up to HOPS * past utterances back and HOPS * future ahead.
    HOPS = 2

    def __init__(self, num_modalities: int, hidden: int, *, past: int = 11, future: int = 5,
                 temporal_edges: bool = True, cross_edges: bool = True,
                 speaker_relations: bool = False, heads: int = 4, dropout: float = 0.1,
                 num_bases: int | None = None) -> None:
        super().__init__()
        if num_modalities < 1 or hidden < 1 or heads < 1:
            raise ValueError(f"CrossModalGraph: num_modalities, hidden and heads must be >= 1, "
                             f"got {num_modalities}, {hidden}, {heads}")
        if past < 0 or future < 0:
            raise ValueError(f"CrossModalGraph: past and future must be >= 0, got {past}, "
                             f"{future}")
        self.num_modalities = num_modalities
        self.hidden = hidden
        self.past = past
        self.future = future
        self.temporal_edges = temporal_edges
        self.cross_edges = cross_edges
        self.speaker_relations = speaker_relations
        num_relations = relation_count(num_modalities, temporal=temporal_edges,
                                       cross=cross_edges, speaker_relations=speaker_relations)
        if num_bases is not None and not 1 <= num_bases <= num_relations:
            raise ValueError(f"CrossModalGraph: num_bases must be in [1, {num_relations}] "
                             f"(the relation count), got {num_bases}")
        self.relational = RGCNConv(hidden, hidden, num_relations, num_bases=num_bases)
        self.attention = TransformerConv(hidden, hidden, heads=heads, concat=False,
                                         dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, node_features: Tensor, present: Tensor, utterance_mask: Tensor,
                speakers: Tensor) -> GraphOutput:
        expected = (*present.shape, self.hidden)
        if tuple(node_features.shape) != expected or present.shape[-1] != self.num_modalities:
            raise ValueError(f"CrossModalGraph: node_features must have shape (B, U, "
                             f"M={self.num_modalities}, H={self.hidden}) matching present "
                             f"{tuple(present.shape)}, got {tuple(node_features.shape)}")
        edges = build_edges(utterance_mask, present, speakers, past=self.past,
                            future=self.future, temporal=self.temporal_edges,
                            cross=self.cross_edges, speaker_relations=self.speaker_relations)
        node_mask = edges.node_index >= 0
        node_embeddings = node_features.new_zeros(node_features.shape)
        if edges.num_nodes == 0:
            return GraphOutput(node_embeddings, node_mask, edges)

        # Boolean indexing is row-major, matching the node numbering of build_edges.
        nodes = node_features[node_mask]  # (N, H)
        relational = self.dropout(torch.relu(
            self.relational(nodes, edges.edge_index, edges.edge_type)))
        attended = self.attention(relational, edges.edge_index)  # (N, H)
        updated = self.norm(nodes + self.dropout(attended))
        node_embeddings[node_mask] = updated
        return GraphOutput(node_embeddings, node_mask, edges)
