import json

import pytest

from hotspot_erc.engine.prediction import (
    ConversationPrediction,
    PredictionFormatError,
    UtterancePrediction,
)
from hotspot_erc.report.html import render_report
from hotspot_erc.report.outputs import read_predictions, write_outputs


def test_predictions_jsonl_holds_each_utterance_and_reads_back(example_conversation, tmp_path):
    conversation = example_conversation()
    paths = write_outputs(conversation, tmp_path / "run", report=False)
    lines = paths["predictions"].read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [u.to_json() for u in conversation.utterances]
    back = read_predictions(tmp_path / "run")
    assert back.utterances == conversation.utterances
    assert back.label_names == conversation.label_names and back.name == "run"
    # The report rendered from the file alone differs only in the header's run details.
    original = ConversationPrediction(name="run", label_names=conversation.label_names,
                                      utterances=conversation.utterances)
    assert render_report(back, figures=False) == render_report(original, figures=False)


def test_json_form_round_trips(example_conversation):
    conversation = example_conversation(3)
    conversation.timings = {"model_s": 0.01}
    data = conversation.to_json()
    assert ConversationPrediction.from_json(data) == conversation
    assert ConversationPrediction.from_json(data).to_json() == data
    row = data["utterances"][2]
    assert row["modalities"]["video"] == {"present": False}
    assert UtterancePrediction.from_json(row) == conversation.utterances[2]
    # The JSON form is a copy: changing it leaves the prediction alone.
    row["modalities"]["audio"]["weights"][0] = 99.0
    assert conversation.utterances[2].modalities["audio"].weights[0] != 99.0


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 2: not JSON"),
    ('{"id": "x", "speaker": "s", "label": "bored", "probabilities": {"sad": 1.0}}',
     "line 2.label: expected one of label_names"),
    ('["a list"]', "line 2: expected an object"),
])
def test_a_malformed_line_names_file_line_and_field(example_conversation, tmp_path, line,
                                                    message):
    path = tmp_path / "predictions.jsonl"
    first = json.dumps(example_conversation(1).utterances[0].to_json())
    path.write_text(first + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(PredictionFormatError) as error:
        read_predictions(path)
    assert str(error.value).startswith(f"{path} {message}")


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(PredictionFormatError, match="no predictions"):
        read_predictions(path)


def test_from_json_names_the_wrong_field():
    with pytest.raises(PredictionFormatError, match=r"^conversation\.utterances\[0\]: expected an"):
        ConversationPrediction.from_json({"label_names": ["a"], "utterances": ["text"]})
    with pytest.raises(PredictionFormatError, match=r"^conversation\.label_names: expected a non"):
        ConversationPrediction.from_json({"label_names": [], "utterances": []})
    minimal = ConversationPrediction.from_json({"label_names": ["a"], "utterances": [
        {"id": "1", "speaker": "s", "label": "a", "probabilities": {"a": 1.0}}]})
    assert minimal.utterances[0].text == "" and minimal.utterances[0].modalities == {}


def test_the_model_card_travels_in_the_header_only(example_conversation, tmp_path):
    conversation = example_conversation(2)
    data = conversation.to_json()
    assert data["model_card"] == conversation.model_card.to_json()
    assert ConversationPrediction.from_json(data).model_card == conversation.model_card
    paths = write_outputs(conversation, tmp_path, report=False)
    assert "model_card" not in paths["predictions"].read_text(encoding="utf-8")
    assert read_predictions(tmp_path).model_card is None
    data["model_card"]["scores"]["test"]["accuracy"] = "64%"
    with pytest.raises(PredictionFormatError, match=r"^conversation\.model_card\.scores\.test\."
                                                    r"accuracy: expected a number in \[0, 1\]"):
        ConversationPrediction.from_json(data)
