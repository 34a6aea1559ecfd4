"""The context-free linear probe: fits on train, selects C on validation only."""

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
from hotspot_erc.engine.probe import linear_probe, probe_inputs


def _dataset(test_labels_shuffled: bool = False, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 6)) * 2
    dialogues, splits = [], {"train": [], "valid": [], "test": []}
    for split, count in (("train", 60), ("valid", 30), ("test", 30)):
        for index in range(count):
            label = index % 3
            vector = centres[label] + rng.normal(size=6)
            shown = int(rng.integers(3)) if (split == "test" and test_labels_shuffled) else label
            features = {"audio": ModalityFeatures(global_vector=vector)}
            if index % 10 == 0:
                features = {}  # a missing modality: zeros plus the missing flag
            did = f"{split}{index}"
            dialogues.append(Dialogue(did, [Utterance(did, "A", label="abc"[shown],
                                                      features=features)]))
            splits[split].append(did)
    spec = FeatureSpec({"audio": ModalitySpec("toy", "1", 6, 6)})
    return Dataset("toy", dialogues, ["a", "b", "c"], splits, spec)


def test_inputs_flag_missing_modalities():
    x, y = probe_inputs(_dataset(), "train", ["audio"])
    assert x.shape == (60, 7) and y.shape == (60,)
    assert x[0, -1] == 1.0 and not x[0, :6].any()
    assert (x[1:10, -1] == 0).all()


def test_separable_classes_are_learned():
    result = linear_probe(_dataset())
    assert result["test"]["accuracy"] > 0.8
    assert result["C"] in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def test_test_labels_do_not_influence_selection():
    clean, shuffled = linear_probe(_dataset()), linear_probe(_dataset(test_labels_shuffled=True))
    assert clean["C"] == shuffled["C"]
    assert clean["valid"] == shuffled["valid"]
    assert clean["test"]["accuracy"] != shuffled["test"]["accuracy"]


def test_unknown_modality_is_refused():
    with pytest.raises(ValueError, match="no features for \\['video'\\]"):
        linear_probe(_dataset(), ["video"])
