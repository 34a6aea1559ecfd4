"""Batching: pad dialogues (utterances) and positions, and return masks.

For ``B`` dialogues with at most ``U`` utterances, and per modality at most ``L`` positions:

* ``utterance_mask`` ``(B, U)``: True for real utterances;
* ``labels`` ``(B, U)``: class index, or ``IGNORE_INDEX`` for padding, unlabelled and unscored
  utterances (so no loss or metric ever sees them);
* ``speakers`` ``(B, U)``: speaker index within its dialogue (order of first appearance), -1 on
  padding;
* per modality a :class:`ModalityBatch` with ``global_vector`` ``(B, U, Dg)``, ``local``
  ``(B, U, L, Dl)``, ``local_mask`` ``(B, U, L)``, ``present`` ``(B, U)``, ``prior`` ``(B, U, L)``
  with ``has_prior`` ``(B, U)``, and ``hotspot_truth`` ``(B, U, L)`` with ``has_truth`` ``(B, U)``.

Padding and missing modalities are zeros in the value tensors *and* False in the masks; the masks
are the only truth. ``local_mask`` is False everywhere for a missing modality or a padded
utterance, and ``present`` implies at least one True position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hotspot_erc.data.dialogue import DataFormatError, Dialogue, FeatureSpec

IGNORE_INDEX = -100


@dataclass
class ModalityBatch:
    global_vector: torch.Tensor  # (B, U, Dg)
    local: torch.Tensor  # (B, U, L, Dl)
    local_mask: torch.Tensor  # (B, U, L) bool
    present: torch.Tensor  # (B, U) bool
    prior: torch.Tensor  # (B, U, L) float in [0, 1], zero where has_prior is False
    has_prior: torch.Tensor  # (B, U) bool
    hotspot_truth: torch.Tensor  # (B, U, L) bool
    has_truth: torch.Tensor  # (B, U) bool

    def to(self, device: torch.device | str) -> ModalityBatch:
        return ModalityBatch(**{k: v.to(device) for k, v in vars(self).items()})

    @property
    def num_positions(self) -> int:
        return int(self.local.shape[2])


@dataclass
class Batch:
    dialogue_ids: list[str]
    utterance_ids: list[list[str]]
    utterance_mask: torch.Tensor  # (B, U) bool
    labels: torch.Tensor  # (B, U) long
    speakers: torch.Tensor  # (B, U) long
    modalities: dict[str, ModalityBatch]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.dialogue_ids, self.utterance_ids, self.utterance_mask.to(device),
                     self.labels.to(device), self.speakers.to(device),
                     {m: b.to(device) for m, b in self.modalities.items()})

    @property
    def num_dialogues(self) -> int:
        return int(self.utterance_mask.shape[0])

    @property
    def num_utterances(self) -> int:
        return int(self.utterance_mask.shape[1])


def collate(dialogues: Sequence[Dialogue], label_names: Sequence[str],
            feature_spec: FeatureSpec, max_positions: dict[str, int] | None = None) -> Batch:
    """Pad ``dialogues`` into one :class:`Batch` with the modalities of ``feature_spec``.

    ``max_positions`` optionally caps the positions per modality (longer sequences are cut at the
    end, a deliberate, documented truncation); a cut sequence starts at its first valid position,
    so leading silence or faceless frames never turn a present modality into a missing one. A
    modality of the spec that a dialogue lacks is simply marked not present.
    """
    if not dialogues:
        raise ValueError("collate: no dialogues")
    max_positions = max_positions or {}
    label_to_index = {name: i for i, name in enumerate(label_names)}
    num = len(dialogues)
    width = max(len(d) for d in dialogues)

    utterance_mask = torch.zeros(num, width, dtype=torch.bool)
    labels = torch.full((num, width), IGNORE_INDEX, dtype=torch.long)
    speakers = torch.full((num, width), -1, dtype=torch.long)
    for b, dialogue in enumerate(dialogues):
        speaker_index = {s: i for i, s in enumerate(dialogue.speakers)}
        for u, utt in enumerate(dialogue.utterances):
            utterance_mask[b, u] = True
            speakers[b, u] = speaker_index[utt.speaker]
            if utt.label is not None and utt.scored:
                if utt.label not in label_to_index:
                    raise DataFormatError(
                        f"dialogue {dialogue.did}, utterance {utt.uid}: label {utt.label!r} "
                        f"is not in the label set {list(label_names)}")
                labels[b, u] = label_to_index[utt.label]

    modalities = {name: _collate_modality(dialogues, name, spec.global_dim, spec.local_dim,
                                          max_positions.get(name), width)
                  for name, spec in feature_spec.modalities.items()}
    return Batch([d.did for d in dialogues], [[u.uid for u in d.utterances] for d in dialogues],
                 utterance_mask, labels, speakers, modalities)


def _collate_modality(dialogues: Sequence[Dialogue], name: str, global_dim: int, local_dim: int,
                      cap: int | None, width: int) -> ModalityBatch:
    lengths = [u.features[name].num_positions for d in dialogues for u in d.utterances
               if u.has(name)]
    positions = max(lengths, default=1)
    if cap is not None:
        positions = min(positions, cap)
    num = len(dialogues)
    global_vector = np.zeros((num, width, global_dim), dtype=np.float32)
    local = np.zeros((num, width, positions, local_dim), dtype=np.float32)
    local_mask = np.zeros((num, width, positions), dtype=bool)
    present = np.zeros((num, width), dtype=bool)
    prior = np.zeros((num, width, positions), dtype=np.float32)
    has_prior = np.zeros((num, width), dtype=bool)
    truth = np.zeros((num, width, positions), dtype=bool)
    has_truth = np.zeros((num, width), dtype=bool)
    for b, dialogue in enumerate(dialogues):
        for u, utt in enumerate(dialogue.utterances):
            if not utt.has(name):
                continue
            record = utt.features[name]
            if record.global_vector.shape[0] != global_dim or record.local.shape[1] != local_dim:
                raise DataFormatError(
                    f"dialogue {dialogue.did}, utterance {utt.uid}, modality {name}: dimensions "
                    f"global {record.global_vector.shape[0]} / local {record.local.shape[1]}, "
                    f"expected {global_dim} / {local_dim} from the feature spec")
            first = 0
            if record.num_positions > positions:
                first = int(np.argmax(record.local_mask))  # the cut starts at a valid position
            kept = slice(first, first + positions)
            mask = record.local_mask[kept]
            n = mask.shape[0]
            if not mask.any():
                continue  # no valid position at all: the modality is effectively missing
            present[b, u] = True
            global_vector[b, u] = record.global_vector
            local[b, u, :n] = np.where(mask[:, None], record.local[kept], 0.0)
            local_mask[b, u, :n] = mask
            if record.prior is not None:
                has_prior[b, u] = True
                prior[b, u, :n] = np.where(mask, record.prior[kept], 0.0)
            if record.hotspot_truth is not None:
                has_truth[b, u] = True
                truth[b, u, :n] = record.hotspot_truth[kept] & mask
    return ModalityBatch(torch.from_numpy(global_vector), torch.from_numpy(local),
                         torch.from_numpy(local_mask), torch.from_numpy(present),
                         torch.from_numpy(prior), torch.from_numpy(has_prior),
                         torch.from_numpy(truth), torch.from_numpy(has_truth))


def iterate_batches(dialogues: Sequence[Dialogue], label_names: Sequence[str],
                    feature_spec: FeatureSpec, batch_size: int, shuffle: bool = False,
                    generator: np.random.Generator | None = None,
                    max_positions: dict[str, int] | None = None):
    """Yield :class:`Batch` objects of ``batch_size`` dialogues (shuffled with ``generator``)."""
    order = np.arange(len(dialogues))
    if shuffle:
        if generator is None:
            raise ValueError("iterate_batches: shuffle needs a seeded generator")
        order = generator.permutation(len(dialogues))
    for start in range(0, len(order), batch_size):
        chunk = [dialogues[i] for i in order[start:start + batch_size]]
        yield collate(chunk, label_names, feature_spec, max_positions)
