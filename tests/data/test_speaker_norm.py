"""Per-speaker normalisation: each speaker's own statistics, labels unused, recorded in the spec."""

from __future__ import annotations

import numpy as np
import pytest

from hotspot_erc.data.dialogue import (
    Dataset,
    Dialogue,
    FeatureSpec,
    ModalityFeatures,
    ModalitySpec,
    Utterance,
)
from hotspot_erc.data.speaker_norm import normalise_speakers, speaker_norm_scope


def _dataset(labels: str = "xy") -> Dataset:
    rng = np.random.default_rng(0)
    dialogues = []
    for d in range(4):
        utterances = []
        for u, speaker in enumerate(["ann", "bob", "ann", "bob"]):
            offset = 100.0 if speaker == "ann" else -50.0
            local = rng.normal(offset, 3.0, size=(5, 2)).astype(np.float32)
            mask = np.array([True, True, True, False, True])
            local[~mask] = 1e6
            utterances.append(Utterance(f"d{d}u{u}", speaker, label=labels[(d + u) % 2],
                                        features={"audio": ModalityFeatures(
                                            global_vector=rng.normal(offset, 2.0, 3),
                                            local=local, local_mask=mask)}))
        dialogues.append(Dialogue(f"d{d}", utterances))
    spec = FeatureSpec({"audio": ModalitySpec("audio-prosody", "v1", 3, 2, 50.0)})
    return Dataset("toy", dialogues, ["x", "y"], {"train": ["d0", "d1"], "test": ["d2", "d3"]},
                   spec)


def _records(dataset, speaker):
    return [u.features["audio"] for d in dataset for u in d.utterances if u.speaker == speaker]


def test_each_speaker_is_standardised_with_its_own_statistics():
    dataset = _dataset()
    normalised = normalise_speakers(dataset, ["audio"])
    for speaker in ("ann", "bob"):
        records = _records(normalised, speaker)
        globals_ = np.stack([r.global_vector for r in records])
        np.testing.assert_allclose(globals_.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(globals_.std(0), 1, atol=1e-4)
        valid = np.concatenate([r.local[r.local_mask] for r in records])
        np.testing.assert_allclose(valid.mean(0), 0, atol=1e-4)
        assert all((r.local[~r.local_mask] == 0).all() for r in records)
    # The input is untouched and the spec records the recipe.
    assert _records(dataset, "ann")[0].global_vector.mean() > 50
    spec = normalised.feature_spec.modalities["audio"]
    assert spec.version == "v1" and spec.recipe == {"speaker_norm": "dataset"}
    assert speaker_norm_scope(spec) == "dataset"
    assert speaker_norm_scope(dataset.feature_spec.modalities["audio"]) is None


def test_labels_are_never_read():
    first = normalise_speakers(_dataset("xy"), ["audio"])
    second = normalise_speakers(_dataset("yx"), ["audio"])
    for a, b in zip(_records(first, "ann"), _records(second, "ann"), strict=True):
        np.testing.assert_array_equal(a.local, b.local)


def test_dialogue_scope_and_errors():
    normalised = normalise_speakers(_dataset(), ["audio"], scope="dialogue")
    ann = [u.features["audio"].global_vector for u in normalised.dialogues[0].utterances
           if u.speaker == "ann"]
    np.testing.assert_allclose(np.mean(ann, axis=0), 0, atol=1e-5)
    with pytest.raises(ValueError, match="no features for \\['video'\\]"):
        normalise_speakers(_dataset(), ["video"])
    with pytest.raises(ValueError, match="already normalised"):
        normalise_speakers(normalised, ["audio"])
    with pytest.raises(ValueError, match="scope"):
        normalise_speakers(_dataset(), ["audio"], scope="world")
