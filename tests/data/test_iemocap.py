"""IEMOCAP 6-way and 4-way on the real files (exact protocol counts), and malformed joins."""

from __future__ import annotations

import json
import pickle

import pytest

from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.data.iemocap import load_iemocap

TEST_LABELS_6 = {"hap": 144, "sad": 245, "neu": 384, "ang": 170, "exc": 299, "fru": 381}


@pytest.fixture(scope="module")
def iemocap6(shared_data):
    return load_iemocap(shared_data)


@pytest.fixture(scope="module")
def iemocap4(shared_data):
    return load_iemocap(shared_data, ways=4)


def _counts(dataset):
    return {split: (row["dialogues"], row["utterances"])
            for split, row in dataset.stats().items()}


def test_six_way_split_sizes(iemocap6):
    assert iemocap6.name == "iemocap6"
    assert list(iemocap6.splits) == ["train", "valid", "test"]
    assert _counts(iemocap6) == {"train": (108, 5163), "valid": (12, 647), "test": (31, 1623)}
    assert len(iemocap6.dialogues) == 151


def test_six_way_labels(iemocap6):
    assert iemocap6.label_names == ["hap", "sad", "neu", "ang", "exc", "fru"]
    assert iemocap6.stats()["test"]["labels"] == TEST_LABELS_6
    assert all(u.scored and u.label is not None for d in iemocap6 for u in d.utterances)


def test_test_split_is_session_five(iemocap6):
    assert all(d.did.startswith("Ses05") for d in iemocap6.split("test"))
    assert not any(d.did.startswith("Ses05")
                   for split in ("train", "valid") for d in iemocap6.split(split))


def test_official_utterance_ids_speakers_and_text(iemocap6):
    dialogue = iemocap6.dialogue("Ses05F_impro01")
    first = dialogue.utterances[0]
    assert first.uid == "Ses05F_impro01_F000"
    assert first.speaker == "F"
    assert first.text == "Hi, I need an ID."
    assert first.label == "neu"
    assert (first.start, first.end) == (3.6132, 6.17)
    assert [u.uid for u in dialogue.utterances[:3]] == [
        "Ses05F_impro01_F000", "Ses05F_impro01_M000", "Ses05F_impro01_F001"]
    uids = [u.uid for d in iemocap6 for u in d.utterances]
    assert len(set(uids)) == len(uids) == 7433
    # The speaker letter is the one in the official id (Ses.._F000 is spoken by F).
    assert all(u.uid.rsplit("_", 1)[1][0] == u.speaker for d in iemocap6 for u in d.utterances)
    assert {u.speaker for d in iemocap6 for u in d.utterances} == {"M", "F"}


def test_timing_and_media(iemocap6):
    for dialogue in iemocap6:
        assert dialogue.media == {}
        for utt in dialogue.utterances:
            assert 0 <= utt.start < utt.end
            assert not utt.features


def test_description(iemocap6, iemocap4):
    for dataset in (iemocap6, iemocap4):
        assert "IEMOCAP" in dataset.description
        assert "text only" in dataset.description
        assert "train 108, valid 12, test 31" in dataset.description


def test_four_way_split_sizes_and_labels(iemocap4):
    assert iemocap4.name == "iemocap4"
    assert iemocap4.label_names == ["hap", "sad", "neu", "ang"]
    assert _counts(iemocap4) == {"train": (108, 3274), "valid": (12, 326), "test": (31, 943)}
    assert iemocap4.stats()["test"]["labels"] == {
        name: TEST_LABELS_6[name] for name in ("hap", "sad", "neu", "ang")}
    assert all(u.label in iemocap4.label_names and u.scored
               for d in iemocap4 for u in d.utterances)


def test_four_way_keeps_order_and_ids(iemocap6, iemocap4):
    for dialogue in iemocap4:
        six = [u.uid for u in iemocap6.dialogue(dialogue.did).utterances
               if u.label in ("hap", "sad", "neu", "ang")]
        assert [u.uid for u in dialogue.utterances] == six


def test_four_way_with_context(shared_data):
    dataset = load_iemocap(shared_data, ways=4, keep_other_as_context=True)
    stats = dataset.stats()
    assert {split: (row["utterances"], row["scored"]) for split, row in stats.items()} == {
        "train": (5163, 3274), "valid": (647, 326), "test": (1623, 943)}
    context = [u for d in dataset for u in d.utterances if not u.scored]
    assert len(context) == 7433 - 4543
    assert all(u.label is None and u.start is not None for u in context)
    assert "kept as unscored context" in dataset.description


def test_ways_must_be_four_or_six(shared_data):
    with pytest.raises(ValueError, match="ways must be 4 or 6"):
        load_iemocap(shared_data, ways=7)


@pytest.fixture
def tiny_root(tmp_path):
    """A two-dialogue IEMOCAP folder; tests break one file and expect a precise error."""
    folder = tmp_path / "iemocap"
    folder.mkdir()
    speakers = {"Ses01F_a": ["F", "M"], "Ses05M_b": ["M"]}
    labels = {"Ses01F_a": [0, 4], "Ses05M_b": [5]}
    sentences = {"Ses01F_a": ["Hello.", "Wow!"], "Ses05M_b": ["Ugh."]}
    payload = [speakers, labels, sentences, ["Ses01F_a"], ["Ses05M_b"], []]
    (folder / "cosmic_iemocap.pkl").write_bytes(pickle.dumps(payload, protocol=2))
    ids = {"Ses01F_a": ["Ses01F_a_F000", "Ses01F_a_M000"], "Ses05M_b": ["Ses05M_b_M000"]}
    (folder / "cosmic_utterance_ids.json").write_text(json.dumps(ids))
    timing = {"Ses01F_a_F000": {"start": 0.5, "end": 1.5, "speaker": "Female"},
              "Ses01F_a_M000": {"start": 1.2, "end": 2.0, "speaker": "Male"},
              "Ses05M_b_M000": {"start": 3.0, "end": 4.25, "speaker": "Male"}}
    (folder / "iemocap_utterances.json").write_text(json.dumps(timing))
    return tmp_path, timing


def _rewrite_timing(root, timing):
    (root / "iemocap" / "iemocap_utterances.json").write_text(json.dumps(timing))


def test_tiny_root_loads(tiny_root):
    root, _ = tiny_root
    six = load_iemocap(root)
    assert six.splits == {"train": ["Ses01F_a"], "valid": [], "test": ["Ses05M_b"]}
    assert six.dialogue("Ses05M_b").utterances[0].end == 4.25
    # Ses05M_b holds only a fru utterance: with no 4-way utterance left it is dropped.
    four = load_iemocap(root, ways=4)
    assert four.splits == {"train": ["Ses01F_a"], "valid": [], "test": []}
    assert [d.did for d in four] == ["Ses01F_a"]
    assert [u.uid for u in four.dialogue("Ses01F_a").utterances] == ["Ses01F_a_F000"]
    context = load_iemocap(root, ways=4, keep_other_as_context=True)
    assert context.splits["test"] == ["Ses05M_b"]
    assert context.stats()["test"] == {"dialogues": 1, "utterances": 1, "scored": 0,
                                       "labels": {"hap": 0, "sad": 0, "neu": 0, "ang": 0}}


def test_missing_timing_record(tiny_root):
    root, timing = tiny_root
    del timing["Ses01F_a_M000"]
    _rewrite_timing(root, timing)
    with pytest.raises(DataFormatError, match=r"iemocap_utterances\.json: no record for "
                                              r"utterance Ses01F_a_M000 of dialogue Ses01F_a"):
        load_iemocap(root)


@pytest.mark.parametrize("start, end", [(2.0, 1.0), (-1.0, 1.0), ("0.5", 1.0), (0.5, None)])
def test_bad_timing(tiny_root, start, end):
    root, timing = tiny_root
    timing["Ses05M_b_M000"].update(start=start, end=end)
    _rewrite_timing(root, timing)
    with pytest.raises(DataFormatError, match=r"iemocap_utterances\.json: utterance "
                                              r"Ses05M_b_M000: fields 'start'/'end'"):
        load_iemocap(root)


def test_speaker_disagreement(tiny_root):
    root, timing = tiny_root
    timing["Ses01F_a_F000"]["speaker"] = "Male"
    _rewrite_timing(root, timing)
    with pytest.raises(DataFormatError, match=r"Ses01F_a_F000: field 'speaker' is 'Male' but "
                                              r"the pickle has 'F'"):
        load_iemocap(root)


def test_ids_file_that_does_not_match(tiny_root):
    root, _ = tiny_root
    (root / "iemocap" / "cosmic_utterance_ids.json").write_text(
        json.dumps({"Ses01F_a": ["Ses01F_a_F000"], "Ses05M_b": ["Ses05M_b_M000"]}))
    with pytest.raises(DataFormatError, match=r"cosmic_utterance_ids\.json: dialogue Ses01F_a: "
                                              r"1 utterance ids for 2 utterances"):
        load_iemocap(root)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="cosmic_iemocap.pkl"):
        load_iemocap(tmp_path)
