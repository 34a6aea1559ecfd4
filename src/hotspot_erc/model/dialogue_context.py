"""Dialogue context encoder: each modality's utterance vectors read in conversation order.

For dialogue ``b`` and modality ``m``, let ``u_1 < ... < u_n`` be the utterances where ``m`` is
present and ``x_k`` their pooled vectors (``H``), ``s_k`` the speaker of ``u_k`` (index of first
appearance in the dialogue)::

    z_k = x_k + E_spk[min(s_k, S - 1)]                    (speaker embedding, option)
    h_k = LayerNorm(z_k + BiGRU_m(z_1 .. z_n)_k)           (H/2 per direction)

Utterances without the modality are skipped, not fed as zeros: the present ones of each dialogue
are packed in order, so a missing utterance is neither data nor a step of the recurrence.

Why: the relational graph sees a fixed window of neighbours through mean aggregation and
attention, which is blind to how far back a neighbour is and to the order of the turns. A
recurrent pass over the whole dialogue gives each node that order before the graph mixes it.
CORECT (whose baseline we reproduce) runs a sequence encoder over each modality's utterances and
adds a speaker embedding for the same reason; without them our ``corect`` reached 60.5 weighted
F1 on IEMOCAP 6-way against 62.3 for the original code on the same sentence vectors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class DialogueContext(nn.Module):
    """Per-modality BiGRU over the utterances of each dialogue, with a speaker embedding."""

    def __init__(self, num_modalities: int, hidden: int, *, speaker_embedding: bool = True,
                 max_speakers: int = 8, dropout: float = 0.0):
        super().__init__()
        if hidden % 2:
            raise ValueError(f"DialogueContext: hidden must be even, got {hidden}")
        self.max_speakers = max_speakers
        self.speakers = nn.Embedding(max_speakers, hidden) if speaker_embedding else None
        self.grus = nn.ModuleList(nn.GRU(hidden, hidden // 2, batch_first=True,
                                         bidirectional=True) for _ in range(num_modalities))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(num_modalities))
        self.dropout = nn.Dropout(dropout)

    def forward(self, nodes: Tensor, present: Tensor, utterance_mask: Tensor,
                speakers: Tensor) -> Tensor:
        """``nodes`` (B, U, M, H), ``present`` (B, U, M) bool, ``utterance_mask`` (B, U) bool,
        ``speakers`` (B, U) long (-1 on padding) -> (B, U, M, H), zero where there is no node."""
        valid = present & utterance_mask[..., None]
        if self.speakers is not None:
            index = speakers.clamp(min=0, max=self.max_speakers - 1)
            nodes = nodes + self.speakers(index)[:, :, None, :]
        out = torch.zeros_like(nodes)
        for m, (gru, norm) in enumerate(zip(self.grus, self.norms, strict=True)):
            out[:, :, m] = self._encode(gru, norm, nodes[:, :, m], valid[:, :, m])
        return out

    def _encode(self, gru: nn.GRU, norm: nn.LayerNorm, x: Tensor, valid: Tensor) -> Tensor:
        """Run ``gru`` over the valid positions of each row of ``x`` (B, U, H), in order."""
        lengths = valid.sum(dim=1)  # (B,)
        rows = (lengths > 0).nonzero(as_tuple=True)[0]
        out = torch.zeros_like(x)
        if rows.numel() == 0:
            return out
        x, valid, lengths = x[rows], valid[rows], lengths[rows]
        # Stable sort puts each row's valid positions first, in their original order.
        order = torch.sort((~valid).to(torch.int8), dim=1, stable=True).indices  # (R, U)
        packed_in = torch.gather(x, 1, order[..., None].expand_as(x))
        packed = pack_padded_sequence(packed_in, lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        states, _ = pad_packed_sequence(gru(packed)[0], batch_first=True,
                                        total_length=x.shape[1])
        encoded = norm(packed_in + self.dropout(states))
        keep = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        encoded = encoded * keep[..., None]
        # Scatter back to the original utterance positions.
        restored = torch.zeros_like(encoded).scatter(1, order[..., None].expand_as(encoded),
                                                     encoded)
        out[rows] = restored
        return out
