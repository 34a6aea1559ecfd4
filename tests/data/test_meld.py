"""MELD from the official CSVs: exact split sizes, ids, order, timing, and malformed files."""

from __future__ import annotations

import csv

import pytest

from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.data.meld import REQUIRED_COLUMNS, load_meld, parse_meld_time, read_meld_csv

HEADER = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
          "Utterance_ID", "Season", "Episode", "StartTime", "EndTime"]


@pytest.fixture(scope="module")
def meld(shared_data):
    return load_meld(shared_data)


def test_split_sizes(meld):
    assert meld.name == "meld"
    assert list(meld.splits) == ["train", "valid", "test"]
    assert {split: (row["dialogues"], row["utterances"]) for split, row in meld.stats().items()} \
        == {"train": (1038, 9989), "valid": (114, 1109), "test": (280, 2610)}


def test_labels_and_sentiment(meld):
    assert meld.label_names == ["neutral", "surprise", "fear", "sadness", "joy", "disgust",
                                "anger"]
    assert meld.stats()["test"]["labels"] == {"neutral": 1256, "surprise": 281, "fear": 50,
                                              "sadness": 208, "joy": 402, "disgust": 68,
                                              "anger": 345}
    sentiments = [u.extra["sentiment"] for d in meld.split("test") for u in d.utterances]
    assert {name: sentiments.count(name) for name in ("neutral", "positive", "negative")} == {
        "neutral": 1256, "positive": 521, "negative": 833}


def test_first_dialogue(meld):
    first = meld.split("train")[0]
    assert first.did == "train_dia0"
    utt = first.utterances[0]
    assert utt.uid == "train_dia0_utt0"
    assert utt.speaker == "Chandler"
    assert utt.text == ("also I was the point person on my company\u2019s transition from the "
                        "KL-5 to GR-6 system.")
    assert utt.label == "neutral"
    assert utt.extra == {"sentiment": "neutral", "season": "8", "episode": "21"}
    assert utt.start == pytest.approx(16 * 60 + 16.059)
    assert utt.end == pytest.approx(16 * 60 + 21.731)
    assert first.utterances[1].speaker == "The Interviewer"
    assert meld.split("valid")[0].did == "dev_dia0"
    assert meld.split("test")[0].utterances[0].uid == "test_dia0_utt0"


def test_order_and_gaps(meld):
    # Dialogue 1 of train skips Utterance_IDs 6 and 7 in the release; the gap is kept.
    dialogue = meld.dialogue("train_dia1")
    assert [u.uid.rsplit("utt", 1)[1] for u in dialogue.utterances] == [
        "0", "1", "2", "3", "4", "5", "8"]
    for split in meld.splits:
        numbers = [int(d.did.rsplit("dia", 1)[1]) for d in meld.split(split)]
        assert numbers == sorted(numbers)
    for dialogue in meld:
        numbers = [int(u.uid.rsplit("utt", 1)[1]) for u in dialogue.utterances]
        assert numbers == sorted(numbers)


def test_times(meld):
    assert all(0 <= u.start <= u.end for d in meld for u in d.utterances)
    # An unpadded millisecond field: EndTime "00:06:47,28" is 6:47.028.
    assert meld.dialogue("train_dia437").utterances[2].end == pytest.approx(6 * 60 + 47.028)
    # The release has one zero-length utterance; it is kept as it is.
    zero = [u.uid for d in meld for u in d.utterances if u.start == u.end]
    assert zero == ["test_dia155_utt3"]


def test_text_only_and_description(meld):
    assert all(not u.features for d in meld for u in d.utterances)
    assert all(d.media == {} for d in meld)
    assert "episode" in meld.description and "text only" in meld.description


@pytest.mark.parametrize("text, seconds", [
    ("00:16:16,059", 976.059), ("0:12:32,632", 752.632), ("01:00:00,000", 3600.0),
    ("00:05:11,82", 311.082), (" 00:00:01,5 ", 1.005)])
def test_parse_meld_time(text, seconds):
    assert parse_meld_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["00:16:16.059", "16:16,059", "00:61:00,000", "00:00:00,1234",
                                  "", "aa:bb:cc,ddd"])
def test_parse_meld_time_rejects(text):
    with pytest.raises(DataFormatError, match="is not a time HH:MM:SS,mmm"):
        parse_meld_time(text, "somewhere")


def _row(**overrides) -> dict[str, str]:
    row = {"Sr No.": "1", "Utterance": "Hi.", "Speaker": "Ross", "Emotion": "joy",
           "Sentiment": "positive", "Dialogue_ID": "0", "Utterance_ID": "0", "Season": "1",
           "Episode": "2", "StartTime": "00:00:01,000", "EndTime": "00:00:02,500"}
    row.update(overrides)
    return row


def _write_csv(path, rows, header=HEADER):
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_read_small_csv_orders_by_ids(tmp_path):
    rows = [_row(Dialogue_ID="3", Utterance_ID="1", Utterance="second"),
            _row(Dialogue_ID="1", Utterance_ID="0"),
            _row(Dialogue_ID="3", Utterance_ID="0", Utterance="first", Speaker="Monica")]
    dialogues = read_meld_csv(_write_csv(tmp_path / "x.csv", rows), "dev")
    assert [d.did for d in dialogues] == ["dev_dia1", "dev_dia3"]
    assert [u.text for u in dialogues[1].utterances] == ["first", "second"]
    assert dialogues[1].speakers == ["Monica", "Ross"]
    assert dialogues[0].utterances[0].end == 2.5


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_missing_column(tmp_path, column):
    header = [name for name in HEADER if name != column]
    path = _write_csv(tmp_path / "nocol.csv", [_row()], header)
    with pytest.raises(DataFormatError, match=rf"nocol\.csv: missing column\(s\) \['{column}'\]"):
        read_meld_csv(path, "train")


def test_unknown_emotion(tmp_path):
    path = _write_csv(tmp_path / "emo.csv", [_row(), _row(Utterance_ID="1", Emotion="happy")])
    with pytest.raises(DataFormatError, match=r"emo\.csv, row 2 \(line 3\): field 'Emotion' is "
                                              r"'happy'"):
        read_meld_csv(path, "train")


def test_unknown_sentiment(tmp_path):
    path = _write_csv(tmp_path / "sent.csv", [_row(Sentiment="mixed")])
    with pytest.raises(DataFormatError, match=r"sent\.csv, row 1 \(line 2\): field 'Sentiment'"):
        read_meld_csv(path, "train")


@pytest.mark.parametrize("field", ["StartTime", "EndTime"])
def test_bad_time_string(tmp_path, field):
    path = _write_csv(tmp_path / "time.csv", [_row(), _row(Utterance_ID="1", **{field: "1:2"})])
    with pytest.raises(DataFormatError, match=rf"time\.csv, row 2 \(line 3\), field '{field}': "
                                              r"'1:2' is not a time"):
        read_meld_csv(path, "train")


def test_end_before_start(tmp_path):
    path = _write_csv(tmp_path / "order.csv", [_row(EndTime="00:00:00,500")])
    with pytest.raises(DataFormatError, match=r"order\.csv, row 1 \(line 2\): field 'EndTime'"):
        read_meld_csv(path, "train")


@pytest.mark.parametrize("field, value", [("Dialogue_ID", "x"), ("Utterance_ID", "-1"),
                                          ("Dialogue_ID", "")])
def test_bad_integer_id(tmp_path, field, value):
    path = _write_csv(tmp_path / "ids.csv", [_row(**{field: value})])
    with pytest.raises(DataFormatError, match=rf"ids\.csv, row 1 \(line 2\): field '{field}'"):
        read_meld_csv(path, "train")


def test_duplicate_utterance_id(tmp_path):
    path = _write_csv(tmp_path / "dup.csv", [_row(), _row()])
    with pytest.raises(DataFormatError, match=r"dup\.csv, row 2 .*duplicate Utterance_ID 0"):
        read_meld_csv(path, "train")


def test_short_row(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text(",".join(HEADER) + "\n1,Hi.,Ross,joy,positive,0,0\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"short\.csv, row 1 \(line 2\): field "
                                              r"'StartTime' is missing"):
        read_meld_csv(path, "train")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes((",".join(HEADER) + "\n").encode() + b"1,caf\xe9\n")
    with pytest.raises(DataFormatError, match=r"latin\.csv: not UTF-8"):
        read_meld_csv(path, "train")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_sent_emo.csv"):
        load_meld(tmp_path)
