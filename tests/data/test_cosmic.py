"""The COSMIC pickle loader on small fixture pickles of each layout, and on the real IEMOCAP one."""

from __future__ import annotations

import json
import pickle

import pytest

from hotspot_erc.data.cosmic import (
    COSMIC_LAYOUTS,
    EMORYNLP_LABELS,
    IEMOCAP_LABELS,
    MELD_LABELS,
    load_cosmic,
)
from hotspot_erc.data.dialogue import DataFormatError, Dataset


def _one_hot(index: int, size: int = 9) -> list[int]:
    return [1 if k == index else 0 for k in range(size)]


def _meld_payload() -> list:
    # MELD's COSMIC pickle keys dialogues by integer and holds the splits as lists of them.
    speakers = {0: [_one_hot(0), _one_hot(3), _one_hot(0)], 1: [_one_hot(1), _one_hot(2)],
                2: [_one_hot(4)]}
    emotion = {0: [0, 4, 6], 1: [3, 1], 2: [5]}
    sentiment = {0: [0, 1, 2], 1: [2, 0], 2: [2]}
    sentences = {0: ["Hi.", "Great!", "Get out."], 1: ["Oh no.", "Really?"], 2: ["Ew."]}
    return [speakers, emotion, sentiment, sentences, [0], [2], [1]]


def _emorynlp_payload() -> list:
    speakers = {"d1": [_one_hot(8), _one_hot(2)], "d2": [_one_hot(5)], "d3": [_one_hot(0)]}
    labels = {"d1": [0, 6], "d2": [3], "d3": [5]}
    sentences = {"d1": ["Yay!", "Help."], "d2": ["Okay."], "d3": ["I can do it."]}
    return [speakers, labels, sentences, ["d1"], ["d3"], ["d2"]]


def _iemocap_payload() -> list:
    speakers = {"Ses01F_a": ["F", "M", "F"], "Ses01F_b": ["M"], "Ses05F_c": ["F", "M"]}
    labels = {"Ses01F_a": [0, 5, 4], "Ses01F_b": [2], "Ses05F_c": [3, 1]}
    sentences = {"Ses01F_a": ["a", "b", "c"], "Ses01F_b": ["d"], "Ses05F_c": ["e", "f"]}
    return [speakers, labels, sentences, ["Ses01F_a"], ["Ses05F_c"], ["Ses01F_b"]]


def _write_pickle(tmp_path, payload, name: str = "corpus.pkl", protocol: int = 2):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    return path


def test_layouts_cover_the_three_corpora():
    assert sorted(COSMIC_LAYOUTS) == ["emorynlp", "iemocap", "meld"]
    assert IEMOCAP_LABELS == ("hap", "sad", "neu", "ang", "exc", "fru")
    assert MELD_LABELS == ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
    assert EMORYNLP_LABELS == ("Joyful", "Mad", "Peaceful", "Neutral", "Sad", "Powerful",
                               "Scared")


def test_meld_pickle(tmp_path):
    dataset = load_cosmic(_write_pickle(tmp_path, _meld_payload()), "meld")
    assert isinstance(dataset, Dataset)
    assert dataset.name == "meld"
    assert dataset.label_names == list(MELD_LABELS)
    assert dataset.splits == {"train": ["0"], "valid": ["1"], "test": ["2"]}
    first = dataset.dialogue("0")
    assert [u.uid for u in first.utterances] == ["0_0", "0_1", "0_2"]
    assert [u.speaker for u in first.utterances] == ["speaker0", "speaker3", "speaker0"]
    assert [u.label for u in first.utterances] == ["neutral", "joy", "anger"]
    assert [u.extra["sentiment"] for u in first.utterances] == ["neutral", "positive", "negative"]
    assert [u.text for u in first.utterances] == ["Hi.", "Great!", "Get out."]
    assert all(not u.features and u.start is None for d in dataset for u in d.utterances)
    assert dataset.stats()["valid"]["labels"]["sadness"] == 1
    assert "text" in dataset.description and "no audio or video" in dataset.description


def test_emorynlp_pickle(tmp_path):
    dataset = load_cosmic(_write_pickle(tmp_path, _emorynlp_payload(), protocol=4), "emorynlp")
    assert dataset.label_names == list(EMORYNLP_LABELS)
    assert dataset.splits == {"train": ["d1"], "valid": ["d2"], "test": ["d3"]}
    d1 = dataset.dialogue("d1")
    assert [u.speaker for u in d1.utterances] == ["speaker8", "speaker2"]
    assert [u.label for u in d1.utterances] == ["Joyful", "Scared"]
    assert d1.utterances[1].uid == "d1_1"
    assert dataset.dialogue("d3").utterances[0].label == "Powerful"
    assert all(u.extra == {} for d in dataset for u in d.utterances)


def test_iemocap_layout_with_official_ids(tmp_path):
    ids = {"Ses01F_a": ["Ses01F_a_F000", "Ses01F_a_M000", "Ses01F_a_F001"],
           "Ses01F_b": ["Ses01F_b_M000"], "Ses05F_c": ["Ses05F_c_F000", "Ses05F_c_M000"]}
    ids_path = tmp_path / "ids.json"
    ids_path.write_text(json.dumps(ids))
    dataset = load_cosmic(_write_pickle(tmp_path, _iemocap_payload()), "iemocap",
                          utterance_ids_path=ids_path)
    a = dataset.dialogue("Ses01F_a")
    assert [u.uid for u in a.utterances] == ids["Ses01F_a"]
    assert [u.speaker for u in a.utterances] == ["F", "M", "F"]
    assert [u.label for u in a.utterances] == ["hap", "fru", "exc"]
    assert a.speakers == ["F", "M"]


def test_set_valued_splits_are_sorted(tmp_path):
    payload = _emorynlp_payload()
    payload[3] = {"d1", "d2"}
    payload[5] = set()
    dataset = load_cosmic(_write_pickle(tmp_path, payload), "emorynlp")
    assert dataset.splits["train"] == ["d1", "d2"]
    assert dataset.splits["valid"] == []


def test_real_iemocap_pickle_without_ids(shared_data):
    dataset = load_cosmic(shared_data / "iemocap" / "cosmic_iemocap.pkl", "iemocap")
    assert len(dataset.dialogues) == 151
    assert {split: len(ids) for split, ids in dataset.splits.items()} == {
        "train": 108, "valid": 12, "test": 31}
    first = dataset.dialogue("Ses05F_impro01")
    assert first.utterances[0].uid == "Ses05F_impro01_0"
    assert first.utterances[0].text == "Hi, I need an ID."
    assert {u.speaker for d in dataset for u in d.utterances} == {"M", "F"}


def test_unknown_corpus_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'emorynlp', 'iemocap', 'meld'"):
        load_cosmic(_write_pickle(tmp_path, _meld_payload()), "dailydialog")


def test_wrong_number_of_entries(tmp_path):
    path = _write_pickle(tmp_path, _meld_payload()[:6], "short.pkl")
    with pytest.raises(DataFormatError, match=r"short\.pkl.*expected a list of 7 entries"):
        load_cosmic(path, "meld")


def test_ragged_dialogue_names_file_dialogue_and_field(tmp_path):
    payload = _meld_payload()
    payload[2][1] = [2]  # sentiment of dialogue 1: one value for two utterances
    path = _write_pickle(tmp_path, payload, "ragged.pkl")
    with pytest.raises(DataFormatError,
                       match=r"ragged\.pkl: dialogue 1: field 'sentiments' has 1 entries"):
        load_cosmic(path, "meld")


def test_ragged_sentences_in_iemocap_layout(tmp_path):
    payload = _iemocap_payload()
    payload[2]["Ses05F_c"] = ["e"]
    path = _write_pickle(tmp_path, payload, "ragged.pkl")
    with pytest.raises(DataFormatError,
                       match=r"ragged\.pkl: dialogue Ses05F_c: field 'sentences' has 1 entries"):
        load_cosmic(path, "iemocap")


def test_field_missing_a_dialogue(tmp_path):
    payload = _emorynlp_payload()
    del payload[1]["d2"]
    with pytest.raises(DataFormatError, match=r"field 'labels' does not cover.*'d2'"):
        load_cosmic(_write_pickle(tmp_path, payload), "emorynlp")


@pytest.mark.parametrize("bad_label", [7, -1, 2.0, True])
def test_unknown_label_index(tmp_path, bad_label):
    payload = _emorynlp_payload()
    payload[1]["d1"] = [0, bad_label]
    path = _write_pickle(tmp_path, payload, "labels.pkl")
    with pytest.raises(DataFormatError,
                       match=r"labels\.pkl: dialogue d1, utterance 1: field 'labels' value"):
        load_cosmic(path, "emorynlp")


def test_unknown_sentiment_index(tmp_path):
    payload = _meld_payload()
    payload[2][2] = [3]
    with pytest.raises(DataFormatError, match=r"dialogue 2, utterance 0: field 'sentiments'"):
        load_cosmic(_write_pickle(tmp_path, payload), "meld")


@pytest.mark.parametrize("speaker", [[0] * 9, [1, 1] + [0] * 7, [0, 2] + [0] * 7, "Joey"])
def test_speaker_that_is_not_one_hot(tmp_path, speaker):
    payload = _emorynlp_payload()
    payload[0]["d2"] = [speaker]
    with pytest.raises(DataFormatError, match=r"dialogue d2, utterance 0: field 'speakers'"):
        load_cosmic(_write_pickle(tmp_path, payload), "emorynlp")


def test_split_id_not_in_the_dicts(tmp_path):
    payload = _meld_payload()
    payload[5] = [2, 99]  # test ids
    path = _write_pickle(tmp_path, payload, "splits.pkl")
    with pytest.raises(DataFormatError, match=r"splits\.pkl: field 'test_ids' names .*\[99\]"):
        load_cosmic(path, "meld")


def test_dialogue_in_two_splits(tmp_path):
    payload = _emorynlp_payload()
    payload[4] = ["d3", "d1"]  # test ids repeat a train dialogue
    with pytest.raises(DataFormatError, match=r"dialogue d1 is in both the train and the test"):
        load_cosmic(_write_pickle(tmp_path, payload), "emorynlp")


def test_official_ids_of_the_wrong_length(tmp_path):
    ids_path = tmp_path / "ids.json"
    ids_path.write_text(json.dumps({"Ses01F_a": ["x", "y"], "Ses01F_b": ["z"],
                                    "Ses05F_c": ["v", "w"]}))
    with pytest.raises(DataFormatError, match=r"ids\.json: dialogue Ses01F_a: 2 utterance ids "
                                              r"for 3 utterances"):
        load_cosmic(_write_pickle(tmp_path, _iemocap_payload()), "iemocap",
                    utterance_ids_path=ids_path)


def test_official_ids_missing_a_dialogue(tmp_path):
    ids_path = tmp_path / "ids.json"
    ids_path.write_text(json.dumps({"Ses01F_a": ["x", "y", "z"]}))
    with pytest.raises(DataFormatError, match=r"ids\.json: dialogue Ses01F_b: expected a list"):
        load_cosmic(_write_pickle(tmp_path, _iemocap_payload()), "iemocap",
                    utterance_ids_path=ids_path)


def test_tampered_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(DataFormatError, match=r"evil\.pkl.*os\.system"):
        load_cosmic(path, "meld")
