"""Tests of conversation manifests: the documented example, defaults, paths and every error."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from hotspot_erc.data.dialogue import DataFormatError, Dataset
from hotspot_erc.data.manifest import load_manifest, manifest_dict, parse_manifest

EXAMPLE = {
    "name": "my-corpus",
    "label_names": ["neutral", "happy", "sad", "angry"],
    "splits": {"train": ["call1"], "valid": ["call2"], "test": ["call3"]},
    "dialogues": [
        {"id": "call1",
         "media": {"audio": "call1.wav", "video": "call1.mp4"},
         "utterances": [
             {"id": "call1_0", "speaker": "A", "text": "Hi!", "start": 0.0, "end": 1.2,
              "label": "happy"},
             {"speaker": "B", "text": "Oh no.", "start": 1.4, "end": 2.0,
              "media": {"audio": "clips/b0.flac"}}]},
        {"id": "call2",
         "utterances": [
             {"speaker": "A", "text": "Fine.", "label": "neutral",
              "extra": {"sentiment": "neutral"}},
             {"speaker": "B", "text": "Great", "label": "happy", "media": {"video": "v.mp4"}}]},
        {"id": "call3",
         "utterances": [{"speaker": "C", "text": "Why?", "start": 0, "end": 3, "label": "angry"}]},
    ],
}


@pytest.fixture
def example() -> dict:
    return copy.deepcopy(EXAMPLE)


def test_example_is_read_as_documented(tmp_path, example):
    dataset = parse_manifest(example, tmp_path / "corpus.json")
    assert isinstance(dataset, Dataset)
    assert dataset.name == "my-corpus"
    assert dataset.label_names == ["neutral", "happy", "sad", "angry"]
    assert dataset.splits == {"train": ["call1"], "valid": ["call2"], "test": ["call3"]}
    assert [d.did for d in dataset] == ["call1", "call2", "call3"]
    call1 = dataset.dialogue("call1")
    assert call1.media == {"audio": str(tmp_path / "call1.wav"),
                           "video": str(tmp_path / "call1.mp4")}
    first, second = call1.utterances
    assert (first.uid, first.speaker, first.text, first.start, first.end, first.label) == (
        "call1_0", "A", "Hi!", 0.0, 1.2, "happy")
    assert first.media == {}
    assert second.uid == "call1_1"  # default id: <dialogue id>_<index>
    assert second.label is None
    assert second.media == {"audio": str(tmp_path / "clips" / "b0.flac")}
    call2 = dataset.dialogue("call2")
    assert call2.utterances[0].extra == {"sentiment": "neutral"}
    assert call2.utterances[0].start is None and call2.utterances[0].end is None
    assert call2.utterances[1].media == {"video": str(tmp_path / "v.mp4")}
    call3 = dataset.dialogue("call3").utterances[0]
    assert isinstance(call3.start, float) and (call3.start, call3.end) == (0.0, 3.0)


def test_round_trip_through_manifest_dict(tmp_path, example):
    dataset = parse_manifest(example, tmp_path / "corpus.json")
    written = manifest_dict(dataset)
    json.dumps(written)  # plain JSON types only
    again = parse_manifest(written, tmp_path / "elsewhere" / "copy.json")
    assert manifest_dict(again) == written  # absolute media paths survive a new folder
    assert again.name == dataset.name and again.label_names == dataset.label_names
    assert again.splits == dataset.splits and again.description == dataset.description
    for before, after in zip(dataset, again, strict=True):
        assert before.did == after.did and before.media == after.media
        assert before.utterances == after.utterances


def test_load_manifest_resolves_media_against_its_folder(tmp_path, example):
    folder = tmp_path / "project" / "manifests"
    folder.mkdir(parents=True)
    example["dialogues"][0]["media"] = {"audio": "../audio/call1.wav",
                                        "video": str(tmp_path / "abs.mp4")}
    path = folder / "calls.json"
    path.write_text(json.dumps(example), encoding="utf-8")
    dataset = load_manifest(path)
    media = dataset.dialogue("call1").media
    assert media["audio"] == str(tmp_path / "project" / "audio" / "call1.wav")
    assert media["video"] == str(tmp_path / "abs.mp4")
    assert Path(dataset.dialogue("call1").utterances[1].media["audio"]).is_absolute()
    assert dataset.dialogue("call1").utterances[1].media["audio"] == str(
        folder / "clips" / "b0.flac")


def test_defaults_ids_splits_labels_and_name(tmp_path):
    data = {"dialogues": [
        {"utterances": [{"speaker": "A", "label": "sad"}, {"speaker": "B", "label": "calm"},
                        {"speaker": "A"}]},
        {"utterances": [{"speaker": "C", "label": "calm"}, {"speaker": "C", "label": "joy"}]}]}
    dataset = parse_manifest(data, tmp_path / "talks.json")
    assert [d.did for d in dataset] == ["dialogue0", "dialogue1"]
    assert [u.uid for u in dataset.dialogue("dialogue0").utterances] == [
        "dialogue0_0", "dialogue0_1", "dialogue0_2"]
    assert dataset.splits == {"all": ["dialogue0", "dialogue1"]}
    assert dataset.label_names == ["sad", "calm", "joy"]  # order of first appearance
    assert dataset.name == "talks"
    assert dataset.dialogue("dialogue0").utterances[2].text == ""
    assert dataset.dialogue("dialogue0").utterances[2].label is None


def test_explicit_label_names_may_list_unused_labels(tmp_path):
    data = {"label_names": ["a", "b", "c"],
            "dialogues": [{"utterances": [{"speaker": "X", "label": "b"}]}]}
    assert parse_manifest(data, tmp_path / "m.json").label_names == ["a", "b", "c"]


def test_utterance_media_spares_times_under_a_dialogue_recording(tmp_path):
    data = {"dialogues": [{"id": "d", "media": {"audio": "d.wav"},
                           "utterances": [{"speaker": "A", "media": {"audio": "own.wav"}}]}]}
    utterance = parse_manifest(data, tmp_path / "m.json").dialogue("d").utterances[0]
    assert utterance.start is None and utterance.media == {"audio": str(tmp_path / "own.wav")}


def _error(data: object, path: Path) -> str:
    with pytest.raises(DataFormatError) as caught:
        parse_manifest(data, path)
    message = str(caught.value)
    assert str(path) in message
    return message


def _set(data: dict, keys: tuple, value) -> None:
    target = data
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value


DELETE = object()

# (where to change the example, the new value or DELETE, the field the error must name, words)
BAD_FIELDS = [
    (("dialogues", 0, "utterances", 1, "speaker"), DELETE,
     "dialogues[0].utterances[1].speaker", "missing"),
    (("dialogues", 0, "utterances", 1, "speaker"), "", "dialogues[0].utterances[1].speaker",
     "non-empty string"),
    (("dialogues", 0, "utterances", 1, "end"), 1.4, "dialogues[0].utterances[1].end",
     "not after"),
    (("dialogues", 0, "utterances", 1, "end"), 0.5, "dialogues[0].utterances[1].end",
     "not after"),
    (("dialogues", 0, "utterances", 0, "start"), -0.1, "dialogues[0].utterances[0].start",
     ">= 0"),
    (("dialogues", 0, "utterances", 0, "start"), float("nan"),
     "dialogues[0].utterances[0].start", "finite"),
    (("dialogues", 0, "utterances", 0, "end"), float("inf"), "dialogues[0].utterances[0].end",
     "finite"),
    (("dialogues", 0, "utterances", 0, "end"), True, "dialogues[0].utterances[0].end",
     "True"),
    (("dialogues", 2, "utterances", 0, "start"), "0.5", "dialogues[2].utterances[0].start",
     "seconds"),
    (("dialogues", 1, "utterances", 0, "mood"), "x", "dialogues[1].utterances[0].mood",
     "unknown field"),
    (("dialogues", 1, "speakers"), [], "dialogues[1].speakers", "unknown field"),
    (("title",), "x", "field title", "unknown field"),
    (("dialogues", 0, "media", "text"), "t.txt", "dialogues[0].media.text", "unknown modality"),
    (("dialogues", 0, "utterances", 1, "media", "depth"), "d.png",
     "dialogues[0].utterances[1].media.depth", "unknown modality"),
    (("dialogues", 0, "media", "audio"), "", "dialogues[0].media.audio", "non-empty string"),
    (("dialogues", 0, "media"), ["call1.wav"], "dialogues[0].media", "expected an object"),
    (("dialogues", 1, "id"), "call1", "dialogues[1].id", "duplicate dialogue id"),
    (("dialogues", 0, "utterances", 1, "id"), "call1_0", "dialogues[0].utterances[1].id",
     "duplicate utterance id"),
    (("dialogues", 2, "utterances", 0, "label"), "bored", "label_names", "bored"),
    (("dialogues", 2, "utterances", 0, "label"), 3, "dialogues[2].utterances[0].label",
     "string"),
    (("dialogues", 2, "utterances", 0, "text"), 3, "dialogues[2].utterances[0].text", "string"),
    (("dialogues", 1, "utterances", 0, "extra"), {"score": 1},
     "dialogues[1].utterances[0].extra", "strings"),
    (("splits", "test"), ["call3", "call9"], "splits.test", "call9"),
    (("splits",), ["call1"], "field splits", "expected an object"),
    (("label_names",), "happy", "field label_names", "list of strings"),
    (("dialogues", 0, "utterances", 0, "end"), DELETE, "dialogues[0].utterances[0].start",
     "required to cut"),
    (("dialogues", 0, "utterances"), [], "dialogues[0].utterances", "non-empty list"),
    (("dialogues", 1, "utterances", 0), "Fine.", "dialogues[1].utterances[0]",
     "expected an object"),
    (("dialogues", 1), "call2", "dialogues[1]", "expected an object"),
    (("dialogues",), [], "field dialogues", "non-empty list"),
    (("dialogues",), DELETE, "field dialogues", "non-empty list"),
    (("name",), 7, "field name", "non-empty string"),
]


@pytest.mark.parametrize("keys, value, field, words", BAD_FIELDS,
                         ids=[case[2] + "-" + case[3] for case in BAD_FIELDS])
def test_errors_name_the_file_and_the_field(tmp_path, example, keys, value, field, words):
    if value is DELETE:
        target = example
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    else:
        _set(example, keys, value)
    message = _error(example, tmp_path / "bad.json")
    assert field in message, message
    assert words in message, message


def test_top_level_must_be_an_object(tmp_path):
    assert "JSON object" in _error([{"utterances": []}], tmp_path / "list.json")


def test_load_manifest_reports_json_errors_with_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"dialogues": [\n  {"utterances": [}\n]}', encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        load_manifest(path)
    message = str(caught.value)
    assert str(path) in message and "not valid JSON" in message and "line 2" in message


def test_load_manifest_rejects_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"dialogues": [{"utterances": [{"speaker": "Zoë"}]}]}'.encode("latin-1"))
    with pytest.raises(DataFormatError) as caught:
        load_manifest(path)
    assert str(path) in str(caught.value) and "UTF-8" in str(caught.value)


def test_load_manifest_reads_utf8_text(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps({"dialogues": [{"utterances": [
        {"speaker": "Zoë", "text": "Ça va ?"}]}]}, ensure_ascii=False), encoding="utf-8")
    utterance = load_manifest(path).dialogue("dialogue0").utterances[0]
    assert (utterance.speaker, utterance.text) == ("Zoë", "Ça va ?")


def test_load_manifest_rejects_nan_written_in_the_file(tmp_path):
    # Python's json accepts the non-standard NaN literal; the time check must still catch it.
    path = tmp_path / "nan.json"
    path.write_text('{"dialogues": [{"utterances": [{"speaker": "A", "start": NaN}]}]}',
                    encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        load_manifest(path)
    assert str(path) in str(caught.value)
    assert "dialogues[0].utterances[0].start" in str(caught.value)


def test_load_manifest_missing_file(tmp_path):
    path = tmp_path / "absent.json"
    with pytest.raises(DataFormatError) as caught:
        load_manifest(path)
    assert str(path) in str(caught.value) and "no such manifest" in str(caught.value)


def test_a_dialogue_in_two_splits_is_refused(tmp_path):
    from hotspot_erc.data.dialogue import DataFormatError
    from hotspot_erc.data.manifest import parse_manifest

    data = {"splits": {"train": ["d"], "test": ["d"]},
            "dialogues": [{"id": "d", "utterances": [{"speaker": "A", "text": "hi"}]}]}
    with pytest.raises(DataFormatError, match=r"m\.json: field splits\.test: .*already in split"):
        parse_manifest(data, tmp_path / "m.json")
