"""Per-speaker feature normalisation, from each speaker's own unlabelled recordings.

Voices differ more between speakers than between one speaker's emotions (pitch range, loudness,
timbre), so emotion models are usually fed features relative to the speaker. For every speaker
``s`` and every column ``d`` of a modality:

    x_hat = (x - mu_s,d) / max(sd_s,d, eps)

with ``mu_s``, ``sd_s`` computed over *all* of that speaker's utterances that have the modality,
in every split, without looking at any label: global vectors over utterances, local sequences
over valid positions (padding and faceless frames excluded). This is legitimate on a test
speaker because it uses only that speaker's unlabelled audio or video, as a deployed system
could after hearing a person for a while. ``scope="dialogue"`` keys speakers by (dialogue,
speaker) for corpora whose speaker names are only local ("A", "B").

The normalisation is part of the feature recipe: the modality's spec gains the recipe entry
``speaker_norm: <scope>``, so a checkpoint trained on normalised features refuses raw ones (and
``predict`` applies the same normalisation to a new conversation).
"""

from __future__ import annotations

import copy
import dataclasses
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from hotspot_erc.data.dialogue import Dataset, FeatureSpec, ModalitySpec

EPSILON = 1e-4
SCOPES = ("dataset", "dialogue")
RECIPE_KEY = "speaker_norm"


def speaker_norm_scope(spec: ModalitySpec) -> str | None:
    """The scope recorded in a spec's recipe, or None for raw features."""
    return spec.recipe.get(RECIPE_KEY)


def without_speaker_norm(spec: ModalitySpec) -> ModalitySpec:
    """``spec`` as the extractor made it, before any per-speaker normalisation."""
    recipe = {key: value for key, value in spec.recipe.items() if key != RECIPE_KEY}
    return dataclasses.replace(spec, recipe=recipe)


def _moments(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    stacked = np.concatenate(rows).astype(np.float64)
    std = stacked.std(axis=0)
    return stacked.mean(axis=0), np.where(std < EPSILON, 1.0, std)


def normalise_speakers(dataset: Dataset, modalities: Sequence[str], scope: str = "dataset"
                       ) -> Dataset:
    """A copy of ``dataset`` with ``modalities`` normalised per speaker (module docstring)."""
    if scope not in SCOPES:
        raise ValueError(f"speaker normalisation scope {scope!r}: expected one of {SCOPES}")
    unknown = [m for m in modalities if m not in dataset.feature_spec.modalities]
    if unknown:
        raise ValueError(f"dataset {dataset.name} has no features for {unknown} to normalise "
                         "per speaker")
    dialogues = copy.deepcopy(dataset.dialogues)
    specs = dict(dataset.feature_spec.modalities)
    for modality in modalities:
        if speaker_norm_scope(specs[modality]) is not None:
            raise ValueError(f"dataset {dataset.name}: {modality} is already normalised per "
                             "speaker")
        records = defaultdict(list)
        for dialogue in dialogues:
            for utterance in dialogue.utterances:
                if utterance.has(modality):
                    key = utterance.speaker if scope == "dataset" else (dialogue.did,
                                                                        utterance.speaker)
                    records[key].append(utterance.features[modality])
        for group in records.values():
            global_mean, global_scale = _moments([r.global_vector[None] for r in group])
            local_mean, local_scale = _moments([r.local[r.local_mask] for r in group])
            for record in group:
                record.global_vector = ((record.global_vector - global_mean) / global_scale
                                        ).astype(np.float32)
                scaled = (record.local - local_mean) / local_scale
                record.local = np.where(record.local_mask[:, None], scaled, 0.0).astype(
                    np.float32)
        spec = specs[modality]
        specs[modality] = dataclasses.replace(spec, recipe={**spec.recipe, RECIPE_KEY: scope})
    return Dataset(dataset.name, dialogues, list(dataset.label_names), dict(dataset.splits),
                   FeatureSpec(specs), dataset.description)
