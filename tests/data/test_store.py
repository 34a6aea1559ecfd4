from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from hotspot_erc.data import store as store_module
from hotspot_erc.data.dialogue import (
    MODALITIES,
    DataFormatError,
    Dataset,
    Dialogue,
    FeatureSpec,
    ModalityFeatures,
    ModalitySpec,
    Utterance,
)
from hotspot_erc.data.store import FeatureStore, load_store, save_dataset
from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset

ARRAYS = ("global_vector", "local", "local_mask", "prior", "hotspot_truth", "position_times")


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    data = generate_dataset(SyntheticConfig(num_train=3, num_valid=1, num_test=1,
                                            min_utterances=4, max_utterances=6,
                                            missing_rate=0.2))
    # Exercise what synthetic data lacks: media paths, unscored and unlabelled utterances,
    # a record without optional arrays, and an id that is not a safe file name.
    first = data.dialogues[0]
    first.media["audio"] = "wav/first.wav"
    first.utterances[0].scored = False
    first.utterances[1].label = None
    first.utterances[2].features["text"] = ModalityFeatures(
        global_vector=np.arange(32, dtype=np.float32))
    return data


def assert_same_dialogue(expected: Dialogue, found: Dialogue, modalities, half=False) -> None:
    assert (expected.did, expected.media) == (found.did, found.media)
    for a, b in zip(expected.utterances, found.utterances, strict=True):
        assert (a.uid, a.speaker, a.text, a.start, a.end, a.label, a.scored, a.extra) == (
            b.uid, b.speaker, b.text, b.start, b.end, b.label, b.scored, b.extra)
        for modality in modalities:
            assert a.has(modality) == b.has(modality)
            if not a.has(modality):
                continue
            ra, rb = a.features[modality], b.features[modality]
            for name in ARRAYS:
                va, vb = getattr(ra, name), getattr(rb, name)
                assert (va is None) == (vb is None), name
                if va is None:
                    continue
                assert vb.dtype == va.dtype, name
                if half and name == "local":
                    np.testing.assert_allclose(vb, va, rtol=1e-3, atol=1e-3)
                else:
                    np.testing.assert_array_equal(vb, va, err_msg=name)


def test_round_trip_keeps_every_array_and_the_metadata(tmp_path, dataset):
    save_dataset(dataset, tmp_path)
    loaded = load_store(tmp_path)
    assert (loaded.name, loaded.label_names, loaded.splits, loaded.description) == (
        dataset.name, dataset.label_names, dataset.splits, dataset.description)
    assert loaded.feature_spec.to_dict() == dataset.feature_spec.to_dict()
    assert list(loaded.feature_spec.modalities) == list(MODALITIES)  # canonical order
    for expected, found in zip(dataset, loaded, strict=True):
        assert_same_dialogue(expected, found, MODALITIES)
    spec_file = tmp_path / "audio" / "synthetic@1" / "spec.json"
    assert json.loads(spec_file.read_text()) == dataset.feature_spec.modalities["audio"].to_dict()


def test_records_as_stored_are_what_a_store_gives_back_without_the_disk(tmp_path, dataset):
    save_dataset(dataset, tmp_path)
    loaded = load_store(tmp_path)
    for modality in MODALITIES:
        spec = dataset.feature_spec.modalities[modality]
        for expected, found in zip(loaded, dataset, strict=True):
            uids = [u.uid for u in found.utterances]
            records = store_module.records_as_stored(
                [u.features.get(modality, ModalityFeatures.missing()) for u in found.utterances],
                uids, spec, found.did, modality)
            shell = dataclasses.replace(found, utterances=[
                dataclasses.replace(u, features={modality: r})
                for u, r in zip(found.utterances, records, strict=True)])
            assert_same_dialogue(expected, shell, [modality])
    spec = dataset.feature_spec.modalities["text"]
    with pytest.raises(DataFormatError, match="dialogue d, modality text: got 1 records, "
                                              "expected 2"):
        store_module.records_as_stored([ModalityFeatures.missing()], ["a", "b"], spec, "d",
                                       "text")
    wrong = ModalityFeatures(global_vector=np.zeros(spec.global_dim + 1, np.float32))
    with pytest.raises(DataFormatError, match="utterance a, modality text: field "
                                              "global_vector"):
        store_module.records_as_stored([wrong], ["a"], spec, "d", "text")


def test_half_precision_stores_float16_and_loads_float32(tmp_path, dataset):
    save_dataset(dataset, tmp_path, half=True)
    with np.load(tmp_path / "audio" / "synthetic@1" / f"{dataset.dialogues[0].did}.npz") as npz:
        assert npz["local"].dtype == np.float16
        assert npz["global_vector"].dtype == np.float32
    loaded = load_store(tmp_path)
    for expected, found in zip(dataset, loaded, strict=True):
        assert_same_dialogue(expected, found, MODALITIES, half=True)


def test_half_precision_refuses_values_beyond_float16(tmp_path, dataset):
    store = FeatureStore.create(tmp_path, dataset, half=True)
    dialogue = dataset.dialogues[0]
    spec = ModalitySpec("big", "1", global_dim=2, local_dim=2)
    records = [ModalityFeatures(global_vector=np.zeros(2), local=np.full((3, 2), 1e6))
               for _ in dialogue.utterances]
    with pytest.raises(DataFormatError, match="float16"):
        store.write("audio", spec, dialogue.did, records)


def test_lazy_iteration_equals_eager_load(tmp_path, dataset):
    store = save_dataset(dataset, tmp_path)
    eager = store.load_dataset()
    for split in dataset.splits:
        lazy = list(store.iter_dialogues(split))
        assert [d.did for d in lazy] == dataset.splits[split]
        for found, expected in zip(lazy, eager.split(split), strict=True):
            assert_same_dialogue(expected, found, MODALITIES)
    shells = store.metadata_dataset()
    assert shells.feature_spec.to_dict() == eager.feature_spec.to_dict()
    assert all(not u.features for d in shells for u in d.utterances)
    with pytest.raises(KeyError, match="no split"):
        next(store.iter_dialogues("dev"))


def test_features_subset_and_odd_dialogue_ids(tmp_path):
    utterances = [Utterance(uid="a/1", speaker="M", label="neu", features={
        "text": ModalityFeatures(global_vector=np.ones(4))})]
    odd = Dataset("odd", [Dialogue("ses 1/a:b", utterances), Dialogue("ses 1_a_b", [])],
                  ["neu"], {"all": ["ses 1/a:b", "ses 1_a_b"]},
                  FeatureSpec({"text": ModalitySpec("lex", "2", 4, 4)}))
    store = save_dataset(odd, tmp_path)
    assert store.has("text", "lex@2", "ses 1/a:b") and store.has("text", "lex@2", "ses 1_a_b")
    assert len(list((tmp_path / "text" / "lex@2").glob("*.npz"))) == 2
    loaded = store.load_dataset({"text": "lex@2"})
    np.testing.assert_array_equal(loaded.dialogue("ses 1/a:b").utterances[0]
                                  .features["text"].local, np.ones((1, 4)))
    assert len(loaded.dialogue("ses 1_a_b")) == 0
    with pytest.raises(DataFormatError, match="no features 'lex@9'"):
        store.load_dataset({"text": "lex@9"})


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, dataset,
                                                                   monkeypatch):
    store = save_dataset(dataset, tmp_path)
    did = dataset.dialogues[0].did
    folder = tmp_path / "text" / "synthetic@1"
    before = (folder / f"{did}.npz").read_bytes()

    def crash_mid_write(handle, arrays):
        handle.write(b"PK\x03\x04 half an archive")
        raise RuntimeError("disk full")

    monkeypatch.setattr(store_module, "_write_npz", crash_mid_write)
    records = [u.features.get("text") or ModalityFeatures.missing()
               for u in dataset.dialogues[0].utterances]
    with pytest.raises(RuntimeError, match="disk full"):
        store.write("text", dataset.feature_spec.modalities["text"], did, records)
    assert (folder / f"{did}.npz").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["spec.json"] + [f"{d.did}.npz" for d in dataset])

    # A dialogue never written stays absent rather than half written.
    second = dataset.dialogues[1].did
    (folder / f"{second}.npz").unlink()
    with pytest.raises(RuntimeError):
        store.write("text", dataset.feature_spec.modalities["text"], second,
                    [ModalityFeatures.missing() for _ in dataset.dialogues[1].utterances])
    assert not store.has("text", "synthetic@1", second)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_create_resumes_an_existing_store(tmp_path, dataset):
    first = FeatureStore.create(tmp_path, dataset)
    spec = dataset.feature_spec.modalities["video"]
    done = dataset.dialogues[0]
    first.write("video", spec, done.did, [u.features.get("video") or ModalityFeatures.missing()
                                           for u in done.utterances])
    resumed = FeatureStore.create(tmp_path, dataset)
    assert resumed.has("video", "synthetic@1", done.did)
    assert not resumed.has("video", "synthetic@1", dataset.dialogues[1].did)
    with pytest.raises(DataFormatError, match="extraction is incomplete"):
        resumed.load_dataset()
    with pytest.raises(DataFormatError, match="half"):
        FeatureStore.create(tmp_path, dataset, half=True)
    other = generate_dataset(SyntheticConfig(seed=9, num_train=1, num_valid=0, num_test=0))
    with pytest.raises(DataFormatError, match="other dialogues"):
        FeatureStore.create(tmp_path, other)


def test_open_needs_store_json(tmp_path):
    with pytest.raises(DataFormatError, match="store.json"):
        FeatureStore(tmp_path)


def test_wrong_record_count_or_dimensions_are_refused(tmp_path, dataset):
    store = FeatureStore.create(tmp_path, dataset)
    dialogue = dataset.dialogues[0]
    spec = dataset.feature_spec.modalities["text"]
    records = [u.features.get("text") or ModalityFeatures.missing() for u in dialogue.utterances]
    with pytest.raises(DataFormatError, match=rf"{dialogue.did}.*expected {len(records)}"):
        store.write("text", spec, dialogue.did, records[:-1])
    wrong = ModalitySpec("synthetic", "1", global_dim=spec.global_dim, local_dim=7)
    present = next(u for u in dialogue.utterances if u.has("text"))
    with pytest.raises(DataFormatError, match=rf"utterance {present.uid}.*field local"):
        store.write("text", wrong, dialogue.did, records)
    assert store.available() == {}  # a refused write leaves nothing behind, not even a spec
    store.write("text", spec, dialogue.did, records)
    with pytest.raises(DataFormatError, match="spec.json.*new version"):
        store.write("text", ModalitySpec("synthetic", "1", 8, 8), dialogue.did,
                    [ModalityFeatures(global_vector=np.zeros(8)) for _ in records])


def test_corrupt_npz_is_named(tmp_path, dataset):
    save_dataset(dataset, tmp_path)
    broken = dataset.splits["test"][0]
    path = tmp_path / "audio" / "synthetic@1" / f"{broken}.npz"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(DataFormatError, match=rf"{path.name}.*not a readable npz"):
        load_store(tmp_path)
    # Lazy reading only opens the files of the split it walks.
    assert len(list(FeatureStore(tmp_path).iter_dialogues("train"))) == len(
        dataset.splits["train"])


def test_wrong_array_shape_in_npz_is_named(tmp_path, dataset):
    save_dataset(dataset, tmp_path)
    path = tmp_path / "video" / "synthetic@1" / f"{dataset.dialogues[0].did}.npz"
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["global_vector"] = arrays["global_vector"][:, :3]
    np.savez(path, **arrays)
    with pytest.raises(DataFormatError, match=rf"{path.name}: field global_vector has shape"):
        load_store(tmp_path)


def test_missing_metadata_field_is_named(tmp_path, dataset):
    save_dataset(dataset, tmp_path)
    metadata = json.loads((tmp_path / "store.json").read_text())
    del metadata["dialogues"][1]["utterances"][0]["speaker"]
    (tmp_path / "store.json").write_text(json.dumps(metadata))
    with pytest.raises(DataFormatError, match=r"store.json: field dialogues\[1\]"
                                              r"\.utterances\[0\]\.speaker is missing"):
        FeatureStore(tmp_path)


def test_ambiguous_features_key_lists_the_keys(tmp_path, dataset):
    store = save_dataset(dataset, tmp_path)
    newer = ModalitySpec("synthetic", "2", global_dim=24, local_dim=24)
    for dialogue in dataset:
        store.write("audio", newer, dialogue.did,
                    [u.features.get("audio") or ModalityFeatures.missing()
                     for u in dialogue.utterances])
    assert store.available()["audio"] == ["synthetic@1", "synthetic@2"]
    with pytest.raises(DataFormatError, match="audio: synthetic@1, synthetic@2"):
        store.load_dataset()
    chosen = store.load_dataset({"audio": "synthetic@2", "text": "synthetic@1"})
    assert chosen.feature_spec.modalities["audio"].version == "2"
    assert list(chosen.feature_spec.modalities) == ["text", "audio"]
    assert chosen.modalities == ["text", "audio"]


def test_features_key_refuses_path_separators():
    from hotspot_erc.data.dialogue import ModalitySpec

    assert FeatureStore.features_key(ModalitySpec("text-minilm", "1_a", 3, 3)) == "text-minilm@1_a"
    with pytest.raises(DataFormatError, match="must not contain '/'"):
        FeatureStore.features_key(ModalitySpec("text", "v1/2", 3, 3))


def test_features_key_changes_with_the_recipe_and_only_with_it(tmp_path, dataset):
    recipe = {"hop_seconds": 0.02, "packages": {"silero-vad": "6.2.3"}}
    key = FeatureStore.features_key(ModalitySpec("audio-prosody", "audio1", 3, 3, None, recipe))
    assert re.fullmatch(r"audio-prosody@audio1\+[0-9a-f]{12}", key)
    reordered = {"packages": {"silero-vad": "6.2.3"}, "hop_seconds": 0.02}
    assert FeatureStore.features_key(
        ModalitySpec("audio-prosody", "audio1", 3, 3, None, reordered)) == key
    other = {**recipe, "packages": {"silero-vad": "6.2.4"}}
    assert FeatureStore.features_key(
        ModalitySpec("audio-prosody", "audio1", 3, 3, None, other)) != key
    # The recipe is stored in spec.json and read back.
    spec = dataclasses.replace(dataset.feature_spec.modalities["text"],
                               recipe={"max_tokens": 8, "speaker_norm": "dataset"})
    save_dataset(Dataset(dataset.name, dataset.dialogues, dataset.label_names, dataset.splits,
                         FeatureSpec({"text": spec})), tmp_path / "store")
    stored = json.loads((tmp_path / "store" / "text" / FeatureStore.features_key(spec)
                         / "spec.json").read_text())
    assert stored["recipe"] == spec.recipe
    assert load_store(tmp_path / "store").feature_spec.modalities["text"] == spec
