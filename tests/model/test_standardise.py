"""InputStandardiser: training-split statistics, identity before fitting, kept in checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hotspot_erc.data.batch import collate
from hotspot_erc.data.dialogue import (
    Dataset,
    Dialogue,
    FeatureSpec,
    ModalityFeatures,
    ModalitySpec,
    Utterance,
)
from hotspot_erc.engine.train import fit_standardisers
from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.model import HotspotERC
from hotspot_erc.model.standardise import InputStandardiser


def test_identity_until_fitted_then_standardises():
    standardiser = InputStandardiser(3, 2)
    x = torch.randn(5, 3)
    assert torch.equal(standardiser.forward_global(x), x)
    rng = np.random.default_rng(0)
    global_rows = rng.normal([10.0, -3.0, 7.0], [5.0, 0.1, 0.0], size=(400, 3))
    local_rows = rng.normal([100.0, 0.0], [20.0, 1.0], size=(1000, 2))
    standardiser.fit(global_rows, local_rows)
    out = standardiser.forward_global(torch.tensor(global_rows, dtype=torch.float)).numpy()
    np.testing.assert_allclose(out[:, :2].mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(out[:, :2].std(0), 1, atol=1e-3)
    # A constant column is centred but not divided by ~0.
    assert standardiser.global_scale[2] == 1.0
    np.testing.assert_allclose(out[:, 2], 0, atol=1e-4)
    local = standardiser.forward_local(torch.tensor(local_rows, dtype=torch.float)).numpy()
    np.testing.assert_allclose(local.std(0), 1, atol=1e-3)


def _dataset() -> Dataset:
    rng = np.random.default_rng(1)
    dialogues = []
    for d in range(3):
        utterances = []
        for u in range(4):
            local = rng.normal(50.0, 10.0, size=(6, 4)).astype(np.float32)
            mask = np.array([True] * 4 + [False] * 2)
            local[~mask] = 1e6  # must never enter the statistics
            utterances.append(Utterance(f"d{d}u{u}", "AB"[u % 2], label="x", features={
                "audio": ModalityFeatures(global_vector=rng.normal(-30, 4, 5), local=local,
                                          local_mask=mask)}))
        dialogues.append(Dialogue(f"d{d}", utterances))
    spec = FeatureSpec({"audio": ModalitySpec("a", "1", 5, 4)})
    return Dataset("toy", dialogues, ["x", "y"], {"train": ["d0", "d1", "d2"]}, spec)


def test_fit_uses_valid_positions_only_and_padding_stays_zero():
    dataset = _dataset()
    config = ModelConfig(input_dims={"audio": (5, 4)}, num_classes=2, standardise=["audio"])
    model = HotspotERC(config)
    fit_standardisers(model, dataset.split("train"))
    standardiser = model.standardisers["audio"]
    valid = np.concatenate([u.features["audio"].local[:4] for d in dataset for u in d.utterances])
    np.testing.assert_allclose(standardiser.local_mean.numpy(), valid.mean(0), rtol=1e-5)
    assert standardiser.local_scale.max() < 100  # the 1e6 padding values were ignored
    model.eval()
    output = model(collate(dataset.dialogues, dataset.label_names, dataset.feature_spec))
    assert torch.isfinite(output.logits).all()
    # The buffers are part of the state dict, hence of every checkpoint.
    state = model.state_dict()
    assert "standardisers.audio.local_mean" in state and "standardisers.audio.global_scale" in state
    fresh = HotspotERC(config)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.standardisers["audio"].local_scale, standardiser.local_scale)


def test_raw_media_features_are_standardised_text_and_generated_ones_not():
    from hotspot_erc.engine.train import model_config_for

    spec = FeatureSpec({"text": ModalitySpec("text-minilm", "1", 8, 8),
                        "audio": ModalitySpec("audio-prosody", "1", 5, 4),
                        "video": ModalitySpec("synthetic", "1", 3, 3)})
    dataset = Dataset("toy", [], ["x", "y"], {}, spec)
    config = model_config_for(dataset, ModelConfig())
    assert config.standardise == ["audio"]
    assert sorted(HotspotERC(config).standardisers) == ["audio"]
    # An explicit choice wins; a config saved before the option existed had none.
    assert model_config_for(dataset, ModelConfig(standardise=[])).standardise == []
    assert ModelConfig.from_dict({"input_dims": {"audio": [5, 4]}}).standardise == []
    with pytest.raises(ValueError, match="standardise"):
        ModelConfig(standardise=["smell"])
