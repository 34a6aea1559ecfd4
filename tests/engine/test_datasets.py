"""Dataset resolution: by name, by path (format named or detected), with features."""

from __future__ import annotations

import pytest

from hotspot_erc.data.speaker_norm import speaker_norm_scope
from hotspot_erc.data.store import save_dataset
from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset
from hotspot_erc.engine.datasets import resolve_dataset

from .conftest import TINY


def test_synthetic_with_knobs():
    dataset = resolve_dataset("synthetic", synthetic_overrides={**TINY, "num_train": 4})
    assert len(dataset.splits["train"]) == 4 and dataset.feature_spec.modalities


def test_a_store_path_is_detected_and_read_as_saved(tmp_path):
    saved = generate_dataset(SyntheticConfig(**TINY))
    save_dataset(saved, tmp_path / "store")
    loaded = resolve_dataset(str(tmp_path / "store"))
    assert [d.did for d in loaded] == [d.did for d in saved]
    assert loaded.feature_spec == saved.feature_spec


def test_a_path_of_unknown_kind_asks_for_its_format(tmp_path):
    (tmp_path / "features.bin").write_bytes(b"?")
    with pytest.raises(ValueError, match=r"features\.bin: cannot tell its format; name it with "
                                         "--format"):
        resolve_dataset(str(tmp_path / "features.bin"))


def test_speaker_normalisation_is_applied_on_request():
    dataset = resolve_dataset("synthetic", synthetic_overrides=TINY, speaker_norm=["audio"],
                              speaker_norm_scope="dialogue")
    specs = dataset.feature_spec.modalities
    assert speaker_norm_scope(specs["audio"]) == "dialogue"
    assert speaker_norm_scope(specs["video"]) is None


def test_one_cache_folder_per_corpus_name_or_per_content(tmp_path):
    from hotspot_erc.engine.datasets import feature_cache

    dataset = generate_dataset(SyntheticConfig(**TINY))
    assert feature_cache(dataset, tmp_path, corpus="iemocap6") == tmp_path / "features/iemocap6"
    by_content = feature_cache(dataset, tmp_path)
    assert by_content.parent == tmp_path / "features"
    assert by_content.name.startswith(f"{dataset.name}-")
    edited = generate_dataset(SyntheticConfig(**TINY))
    edited.dialogues[0].utterances[0].text += " (edited)"
    assert feature_cache(edited, tmp_path) != by_content
    assert feature_cache(generate_dataset(SyntheticConfig(**TINY)), tmp_path) == by_content


def test_tuned_text_with_media_is_refused_before_any_work(tmp_path):
    from hotspot_erc.engine.datasets import with_features
    from hotspot_erc.features.extract import ExtractConfig

    dataset = generate_dataset(SyntheticConfig(**TINY))
    with pytest.raises(ValueError, match="text setting 'tuned' is for text-only datasets"):
        with_features(dataset, ExtractConfig(modalities=("text", "audio"), text_setting="tuned"),
                      tmp_path)
    assert not (tmp_path / "features").exists()
