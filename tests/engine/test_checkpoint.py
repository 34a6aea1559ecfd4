"""Checkpoints: round trip, feature-spec checks, malformed folders."""

from __future__ import annotations

import json

import pytest
import torch

from hotspot_erc.data.batch import collate
from hotspot_erc.data.dialogue import DataFormatError, FeatureSpec, ModalitySpec
from hotspot_erc.engine.checkpoint import FeatureSpecMismatch, load_checkpoint, save_checkpoint
from hotspot_erc.model.model import HotspotERC


@pytest.fixture
def saved(tiny_dataset, tiny_model_config, tmp_path):
    torch.manual_seed(0)
    model = HotspotERC(tiny_model_config).eval()
    folder = save_checkpoint(tmp_path / "ckpt", model, tiny_dataset.label_names,
                             tiny_dataset.feature_spec, {"lr": 0.1}, epoch=4)
    return model, folder


def test_round_trip_gives_identical_outputs(saved, tiny_dataset):
    model, folder = saved
    loaded = load_checkpoint(folder)
    assert loaded.label_names == tiny_dataset.label_names
    assert loaded.feature_spec == tiny_dataset.feature_spec
    assert loaded.config == model.config and loaded.epoch == 4
    assert loaded.train_config == {"lr": 0.1}
    assert not loaded.model.training
    batch = collate(tiny_dataset.split("test"), tiny_dataset.label_names, tiny_dataset.feature_spec)
    assert torch.equal(model(batch).logits, loaded.model(batch).logits)


def test_weights_file_is_plain_arrays(saved):
    _, folder = saved
    with open(folder / "weights.npz", "rb") as stream:
        assert stream.read(2) == b"PK"  # a zip of .npy files, loaded with allow_pickle=False
    meta = json.loads((folder / "checkpoint.json").read_text())
    assert meta["feature_spec"]["text"]["extractor"] == "synthetic"


def test_feature_spec_mismatch_names_the_field(saved):
    _, folder = saved
    checkpoint = load_checkpoint(folder)
    wrong = FeatureSpec({**checkpoint.feature_spec.modalities,
                         "text": ModalitySpec("text-minilm", "1", 384, 384)})
    with pytest.raises(FeatureSpecMismatch, match=r"text\.extractor: expected 'synthetic'.*"
                                                  r"text\.global_dim: expected 32, found 384"):
        checkpoint.check_features(wrong, "my features")


def test_missing_and_unknown_modalities_give_notices(saved):
    _, folder = saved
    checkpoint = load_checkpoint(folder)
    spec = checkpoint.feature_spec.modalities
    found = FeatureSpec({"text": spec["text"], "audio": spec["audio"]})
    notices = checkpoint.check_features(found)
    assert notices == ["modality video is missing from the dataset: it is masked"]


def test_malformed_checkpoint_folders(tmp_path, saved):
    with pytest.raises(FileNotFoundError, match="not a checkpoint"):
        load_checkpoint(tmp_path)
    _, folder = saved
    meta = json.loads((folder / "checkpoint.json").read_text())
    del meta["label_names"]
    (folder / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(DataFormatError, match="checkpoint.json: missing field 'label_names'"):
        load_checkpoint(folder)
    (folder / "checkpoint.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="checkpoint.json: not valid JSON"):
        load_checkpoint(folder)
