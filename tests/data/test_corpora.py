"""Loading datasets by name, with the corpus root from the argument or the environment."""

from __future__ import annotations

import pytest

from hotspot_erc.data.corpora import DATASET_NAMES, format_options, load_dataset, load_path
from hotspot_erc.data.dialogue import Dataset
from hotspot_erc.data.paths import DATA_ENV


def test_names():
    assert DATASET_NAMES == ("iemocap6", "iemocap4", "meld", "synthetic", "ravdess", "crema-d")


@pytest.mark.parametrize("name, label_count, test_dialogues", [
    ("iemocap6", 6, 31), ("iemocap4", 4, 31), ("meld", 7, 280)])
def test_real_corpora_by_name(shared_data, name, label_count, test_dialogues):
    dataset = load_dataset(name, shared_data)
    assert isinstance(dataset, Dataset)
    assert dataset.name == name
    assert len(dataset.label_names) == label_count
    assert len(dataset.splits["test"]) == test_dialogues


def test_root_from_the_environment(shared_data, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(shared_data))
    assert load_dataset("iemocap4").stats()["valid"]["utterances"] == 326


def test_no_root_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=DATA_ENV):
        load_dataset("meld")


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="iemocap6, iemocap4, meld, synthetic"):
        load_dataset("iemocap5")


def test_synthetic_needs_no_root(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    dataset = load_dataset("synthetic")
    assert isinstance(dataset, Dataset)
    assert set(dataset.splits) >= {"train", "valid", "test"}
    assert dataset.modalities


def test_an_unknown_format_option_names_it_and_the_accepted_ones(tmp_path):
    pack = tmp_path / "pack.pkl"
    pack.write_bytes(b"not read: the options are checked first")
    with pytest.raises(ValueError, match=r"format corect-pack: unknown option\(s\) bogus; it "
                                         r"accepts label_set$"):
        load_path(pack, "corect-pack", bogus=1)
    with pytest.raises(ValueError, match="format manifest: unknown option.*accepts no options"):
        load_path(pack, "manifest", label_set="meld")


@pytest.mark.parametrize("fmt, options", [
    ("store", ["features"]), ("manifest", []), ("corect-pack", ["label_set"]),
    ("mmgcn-pack", ["label_set", "valid_fraction"]),
    ("iemocap-release", ["ways", "keep_other_as_context"]),
    ("cosmic-meld", ["utterance_ids_path"])])
def test_format_options_are_the_loaders_keywords(fmt, options):
    assert format_options(fmt) == options


def test_what_a_path_holds_decides_its_format(tmp_path):
    from hotspot_erc.data.corpora import detect_format

    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "store.json").write_text("{}")
    (tmp_path / "release" / "Session1").mkdir(parents=True)
    (tmp_path / "calls.json").write_text("{}")
    assert detect_format(tmp_path / "store") == "store"
    assert detect_format(tmp_path / "release") == "iemocap-release"
    assert detect_format(tmp_path / "calls.json") == "manifest"
    with pytest.raises(ValueError, match=r"pack\.pkl: a pickle can hold several layouts; name it "
                                         r"with --format \(corect-pack, mmgcn-pack, cosmic-"):
        detect_format(tmp_path / "pack.pkl")
    with pytest.raises(ValueError, match="a folder without store.json"):
        detect_format(tmp_path)
