"""Checkpoints: round trip, feature-spec checks, malformed folders."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from hotspot_erc.data.batch import collate
from hotspot_erc.data.dialogue import DataFormatError, FeatureSpec, ModalitySpec
from hotspot_erc.engine.checkpoint import (
    FeatureSpecMismatch,
    load_checkpoint,
    save_checkpoint,
    save_model_card,
)
from hotspot_erc.engine.model_card import ModelCard
from hotspot_erc.engine.train import train
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


# -- issue 12: a checkpoint is untrusted input -----------------------------------------------

def _edit_meta(folder, edit):
    path = folder / "checkpoint.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_a_config_asking_for_a_huge_model_is_refused_before_building_it(saved):
    """The reported case: ``hidden: 16384`` made ``evaluate`` allocate 21.7 GB first."""
    import tracemalloc

    _, folder = saved
    _edit_meta(folder, lambda meta: meta["model_config"].update(hidden=16384))
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match=r"checkpoint\.json: field model_config: the "
                                                  r"model's parameters: [\d,]+ is above the "
                                                  r"limit model_params"):
            load_checkpoint(folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 2**20


@pytest.mark.parametrize("change, message", [
    ({"hidden": "sixty-four"}, "hidden: expected an integer, got 'sixty-four'"),
    ({"hidden": 3.7}, "hidden: expected an integer, got 3.7"),
    ({"hidden": -4}, "hidden: expected an integer >= 1, got -4"),
    ({"dropout": None}, "dropout: expected a finite number, got None"),
    ({"heads": 5}, "hidden=16 must be divisible by heads=5"),
    ({"bogus": 1}, r"unknown keys \['bogus'\]"),
])
def test_a_malformed_model_config_names_the_field(saved, change, message):
    _, folder = saved
    _edit_meta(folder, lambda meta: meta["model_config"].update(change))
    with pytest.raises(DataFormatError, match=r"checkpoint\.json: field 'model_config': .*"
                                              + message):
        load_checkpoint(folder)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["feature_spec"]["text"].pop("version"),
     r"field 'feature_spec': modality 'text': field 'version' is missing"),
    (lambda m: m["feature_spec"]["text"].update(global_dim="32"),
     r"field 'feature_spec': modality 'text': field 'global_dim': expected an integer >= 1"),
    (lambda m: m.update(label_names="hap"), r"field 'label_names': expected list, got str"),
    (lambda m: m.update(label_names=[1, 2]), r"field 'label_names': expected a non-empty list"),
    (lambda m: m.update(epoch="four"), r"field 'epoch': expected an integer or null"),
    (lambda m: m.pop("model_config"), r"missing field 'model_config'"),
])
def test_malformed_metadata_names_the_field(saved, edit, message):
    """A spec without ``version`` said only ``error: 'version'``."""
    _, folder = saved
    _edit_meta(folder, edit)
    with pytest.raises(DataFormatError, match=r"checkpoint\.json: " + message):
        load_checkpoint(folder)


def test_nan_weights_are_an_error_not_an_output(saved):
    """The reported case: NaN weights, and ``evaluate`` exited 0 with accuracy 0.3125."""
    import numpy as np

    _, folder = saved
    with np.load(folder / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    name = next(n for n, a in arrays.items() if a.dtype.kind == "f" and a.size)
    arrays[name] = np.full_like(arrays[name], np.nan)
    np.savez(folder / "weights.npz", **arrays)
    with pytest.raises(DataFormatError, match=rf"weights\.npz: member {name} holds NaN or "
                                              "infinite weights"):
        load_checkpoint(folder)


def test_wrongly_shaped_or_foreign_weights_are_named(saved):
    import numpy as np

    _, folder = saved
    with np.load(folder / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    name = next(n for n, a in arrays.items() if a.ndim == 2)
    np.savez(folder / "weights.npz", **{**arrays, name: np.zeros((3, 3), np.float32)})
    with pytest.raises(DataFormatError, match=rf"weights\.npz: member {name}: shape \(3, 3\), "
                                              "expected"):
        load_checkpoint(folder)
    torch.save({"w": torch.zeros(2)}, folder / "weights.npz")
    with pytest.raises(DataFormatError, match=r"weights\.npz: member .* is not an \.npy array"):
        load_checkpoint(folder)


def test_speaker_normalised_checkpoint_says_to_add_the_flag(saved):
    _, folder = saved
    checkpoint = load_checkpoint(folder)
    spec = checkpoint.feature_spec.modalities["audio"]
    checkpoint.feature_spec.modalities["audio"] = dataclasses.replace(
        spec, recipe={**spec.recipe, "speaker_norm": "dialogue"})
    raw = FeatureSpec({**checkpoint.feature_spec.modalities, "audio": spec})
    with pytest.raises(FeatureSpecMismatch, match="trained on per-speaker normalised audio "
                                                  "features: add --speaker-norm audio "
                                                  "--speaker-norm-scope dialogue"):
        checkpoint.check_features(raw)
    with pytest.raises(FeatureSpecMismatch, match="trained without per-speaker normalisation: "
                                                  "drop --speaker-norm"):
        load_checkpoint(folder).check_features(checkpoint.feature_spec)


# -- issue 15: every checkpoint carries a model card ------------------------------------------

def test_a_checkpoint_written_before_cards_loads_with_a_card_of_what_it_holds(saved,
                                                                             tiny_dataset):
    _, folder = saved
    assert not (folder / "model_card.json").exists()
    card = load_checkpoint(folder).card
    assert card.dataset == "unknown" and card.domain == "unknown"
    assert card.label_names == tiny_dataset.label_names
    assert card.modalities == list(tiny_dataset.feature_spec.modalities)
    assert card.scores == {} and card.demonstration is False


def test_the_card_is_written_beside_checkpoint_json_and_read_back(saved, tiny_dataset):
    model, folder = saved
    card = ModelCard.trained_on("meld", tiny_dataset.label_names, ["text"],
                                {"test": {"weighted_f1": 0.5}})
    save_checkpoint(folder, model, tiny_dataset.label_names, tiny_dataset.feature_spec,
                    card=card)
    assert json.loads((folder / "model_card.json").read_text()) == card.to_json()
    assert load_checkpoint(folder).card == card
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("content, message", [
    ("{not json", r"model_card\.json: not valid JSON"),
    ('{"dataset": "x", "label_names": ["a"], "modalities": [], "demonstration": "no"}',
     r"model_card\.json: field demonstration: expected true or false, got 'no'"),
    ("[]", r"model_card\.json: model card: expected an object, got \[\]"),
])
def test_a_malformed_card_names_the_file_and_the_field(saved, content, message):
    _, folder = saved
    (folder / "model_card.json").write_text(content)
    with pytest.raises(DataFormatError, match=message):
        load_checkpoint(folder)


def test_a_card_of_other_labels_is_refused(saved, tiny_dataset):
    _, folder = saved
    save_model_card(folder, ModelCard.trained_on("meld", ["joy", "anger"], ["text"]))
    with pytest.raises(DataFormatError, match=r"model_card\.json: field label_names: expected "
                                              r"the label names of checkpoint\.json"):
        load_checkpoint(folder)


def test_training_writes_the_card_with_corpus_and_selected_scores(
        tiny_dataset, tiny_model_config, tiny_train_config, tmp_path):
    run = tmp_path / "run"
    first = train(tiny_dataset, tiny_model_config, tiny_train_config, run, progress=False,
                  stop_after_epoch=0)
    assert first.metrics == {}
    # Written with the checkpoint: the validation score of the epoch it was selected at.
    interrupted = load_checkpoint(run).card
    assert interrupted.dataset == "synthetic" and interrupted.domain.startswith("synthetic")
    assert list(interrupted.scores) == ["valid"]
    result = train(tiny_dataset, tiny_model_config, tiny_train_config, run, progress=False)
    card = load_checkpoint(run).card
    for split in ("valid", "test"):
        assert card.scores[split] == {name: result.metrics[split][name]
                                      for name in ("weighted_f1", "accuracy", "macro_f1")}
    assert card.label_names == tiny_dataset.label_names
    assert card.modalities == ["text", "audio", "video"] and not card.demonstration
