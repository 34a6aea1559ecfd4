"""Robustness: dropping, noising and delaying one modality of a split."""

from __future__ import annotations

import numpy as np
import pytest

from hotspot_erc.engine.checkpoint import load_checkpoint
from hotspot_erc.engine.evaluate import evaluate_model
from hotspot_erc.engine.robustness import (
    corrupt,
    robustness,
    robustness_figure,
    robustness_table,
)
from hotspot_erc.engine.train import train


def test_drop_removes_the_modality_and_leaves_the_rest(tiny_dataset):
    dropped = corrupt(tiny_dataset, "test", "audio", "drop")
    for original, copy in zip(tiny_dataset.split("test"), dropped, strict=True):
        for before, after in zip(original.utterances, copy.utterances, strict=True):
            assert not after.has("audio")
            assert before.has("audio")  # the dataset itself is untouched
            np.testing.assert_array_equal(after.features["text"].local,
                                          before.features["text"].local)


def test_noise_touches_valid_positions_only_and_is_seeded(tiny_dataset):
    first = corrupt(tiny_dataset, "test", "video", "noise", 1.0, seed=3)
    again = corrupt(tiny_dataset, "test", "video", "noise", 1.0, seed=3)
    other = corrupt(tiny_dataset, "test", "video", "noise", 1.0, seed=4)
    original = tiny_dataset.split("test")[0].utterances[0].features["video"]
    noised = first[0].utterances[0].features["video"]
    valid = original.local_mask
    assert not np.allclose(noised.local[valid], original.local[valid])
    np.testing.assert_array_equal(noised.local[~valid], original.local[~valid])
    np.testing.assert_array_equal(noised.local, again[0].utterances[0].features["video"].local)
    assert not np.allclose(noised.local, other[0].utterances[0].features["video"].local)


def test_shift_delays_the_sequence(tiny_dataset):
    shifted = corrupt(tiny_dataset, "test", "audio", "shift", 0.25)
    original = tiny_dataset.split("test")[0].utterances[0].features["audio"]
    moved = shifted[0].utterances[0].features["audio"]
    delay = int(np.ceil(0.25 * original.num_positions))
    assert not moved.local_mask[:delay].any()
    np.testing.assert_array_equal(moved.local[delay:], original.local[:-delay])
    np.testing.assert_array_equal(moved.local_mask[delay:], original.local_mask[:-delay])
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(tiny_dataset, "test", "audio", "melt")


def test_robustness_report(tiny_dataset, tiny_model_config, tiny_train_config, tmp_path):
    train(tiny_dataset, tiny_model_config, tiny_train_config, tmp_path / "run", progress=False)
    checkpoint = load_checkpoint(tmp_path / "run")
    result = robustness(checkpoint, tiny_dataset, "test", noise_levels=(1.0,),
                        shift_levels=(0.5,))
    clean = evaluate_model(checkpoint.model, tiny_dataset.split("test"),
                           tiny_dataset.label_names, tiny_dataset.feature_spec)["metrics"]
    assert result["clean"]["accuracy"] == clean["accuracy"]
    assert set(result["modalities"]) == {"text", "audio", "video"}
    for entry in result["modalities"].values():
        assert 0 <= entry["drop"]["accuracy"] <= 1
        assert [row["level"] for row in entry["noise"]] == [1.0]
    table = robustness_table(result)
    assert "| audio |" in table and "noise 1" in table and "shift 0.5" in table
    assert robustness_figure(result)[:8] == b"\x89PNG\r\n\x1a\n"
