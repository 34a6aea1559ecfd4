import math

import pytest

from hotspot_erc.engine.prediction import (
    ConversationPrediction,
    ModalityEvidence,
    TimeSpan,
    UtterancePrediction,
)
from hotspot_erc.model.aligners import EXPERT_KINDS
from hotspot_erc.report.conversation import (
    HOTSPOT_MIN_WEIGHT,
    UNKNOWN_LABEL_COLOUR,
    ReportInputError,
    check_conversation,
    highlight_opacity,
    ink_on,
    is_neutral,
    label_colours,
    masked_weights,
    modality_evidence,
    read_modalities,
    shown_hotspots,
    time_ticks,
    timeline,
)


def test_an_emotion_keeps_its_colour_across_corpora():
    iemocap = label_colours(["hap", "sad", "neu", "ang", "exc", "fru"])
    meld = label_colours(["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"])
    ravdess = label_colours(["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                             "surprised"])
    assert iemocap["hap"] == meld["joy"] == ravdess["happy"]
    assert iemocap["ang"] == meld["anger"] == ravdess["angry"]
    assert meld["fear"] == ravdess["fearful"] and meld["surprise"] == ravdess["surprised"]
    for colours in (iemocap, meld, ravdess):
        assert len(set(colours.values())) == len(colours)


def test_other_labels_take_spare_colours_in_order_then_grey():
    names = ["positive", "negative"] + [f"class{i}" for i in range(8)]
    colours = label_colours(["neutral"] + names)
    spare = [colours[n] for n in names]
    assert len(set(spare[:8])) == 8 and colours["neutral"] not in spare
    assert spare[8:] == [UNKNOWN_LABEL_COLOUR, UNKNOWN_LABEL_COLOUR]
    assert label_colours(names) == {n: colours[n] for n in names}


def test_ink_contrasts_with_the_fill():
    assert ink_on("#332288") == "#FFFFFF" and ink_on("#DDDDDD") == "#000000"
    assert ink_on("#000000") == "#FFFFFF" and ink_on("#FFFFFF") == "#000000"


def test_timeline_uses_seconds_only_when_every_utterance_has_times(example_conversation):
    conversation = example_conversation(4)
    timed = timeline(conversation)
    assert timed.in_seconds and timed.speakers == ["Ana", "Ben"]
    assert timed.spans[1] == (conversation.utterances[1].start, conversation.utterances[1].end)
    conversation.utterances[2].end = None
    untimed = timeline(conversation)
    assert not untimed.in_seconds and untimed.spans == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert untimed.extent == (0, 4)


def test_masked_weights_turn_invalid_positions_into_gaps():
    values = masked_weights([0.1, 0.5, float("inf"), 0.2], [True, False, True, True])
    assert values[0] == 0.1 and values[3] == 0.2
    assert math.isnan(values[1]) and math.isnan(values[2])
    assert masked_weights(None, [True]) == []
    assert masked_weights([0.3, 0.4], None) == [0.3, 0.4]


def test_modality_evidence_only_for_present_modalities(example_conversation):
    utterance = example_conversation(3).utterances[2]
    assert modality_evidence(utterance, "video") is None  # camera off
    assert modality_evidence(utterance, "audio").present is True
    del utterance.modalities["audio"]
    assert modality_evidence(utterance, "audio") is None


def test_example_passes_the_checks_and_holds_what_the_report_needs(example_conversation):
    conversation = example_conversation()
    check_conversation(conversation)
    utterances = conversation.utterances
    assert len(utterances) == 6 and {u.speaker for u in utterances} == {"Ana", "Ben"}
    assert [u.modalities["video"].present for u in utterances].count(False) == 1
    assert all(u.modalities[m].hotspots for u in utterances for m in ("text", "audio"))
    assert {e for u in utterances for r in u.routing.values() for e in r.experts} \
        <= set(EXPERT_KINDS)


def test_check_accepts_the_minimal_record_and_rejects_what_is_not_a_prediction(
        example_conversation):
    check_conversation(ConversationPrediction(label_names=["a"], utterances=[
        UtterancePrediction(id="1", speaker="s", label="a", probabilities={"a": 1.0})]))
    with pytest.raises(ReportInputError, match=r"^conversation: expected a ConversationPred"):
        check_conversation({"label_names": ["a"], "utterances": []})
    broken = example_conversation(1)
    broken.utterances[0].modalities["audio"].hotspots[0].end = "soon"
    with pytest.raises(ReportInputError,
                       match=r"modalities\.audio\.hotspots\[0\]\.end: expected a finite"):
        check_conversation(broken)
    broken.utterances[0].modalities["audio"].hotspots = [TimeSpan(start=1.0, end=1.5, weight=0.2)]
    broken.utterances[0].modalities["text"] = ModalityEvidence(present=True, weights=[0.5])
    with pytest.raises(ReportInputError,
                       match=r"modalities\.text\.tokens: expected a list of strings, got None"):
        check_conversation(broken)


@pytest.mark.parametrize("low, high, expected", [
    (0.0, 14.53, [0, 2, 4, 6, 8, 10, 12, 14]),
    (3.2, 3.9, [3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8, 3.9]),
    (0.0, 95.0, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]),
    (12.3, 17.0, [12.5, 13, 13.5, 14, 14.5, 15, 15.5, 16, 16.5, 17]),
    (0.0, 600.0, [0, 100, 200, 300, 400, 500, 600]),
    (5.0, 5.0, []),
])
def test_time_ticks_fall_on_round_seconds(low, high, expected):
    ticks = time_ticks(low, high)
    assert ticks == pytest.approx(expected)
    assert len(ticks) <= 10 and all(low - 1e-9 <= t <= high + 1e-9 for t in ticks)


def test_highlight_is_the_weight_on_a_fixed_scale():
    assert highlight_opacity(0.02) == 0.02 and highlight_opacity(0.9) == 0.9
    assert highlight_opacity(1.7) == 1.0 and highlight_opacity(-0.1) == 0.0
    assert highlight_opacity(math.nan) == 0.0


def test_only_hotspots_reaching_the_threshold_are_shown():
    evidence = ModalityEvidence(present=True, weights=[0.5, 0.0, 0.3], times=[0.1, 0.2, 0.3],
                                hotspots=[TimeSpan(start=0, end=1, weight=0.5),
                                          TimeSpan(start=1, end=2, weight=0.0),
                                          TimeSpan(start=2, end=3, weight=HOTSPOT_MIN_WEIGHT)])
    assert [span.weight for span in shown_hotspots(evidence)] == [0.5, HOTSPOT_MIN_WEIGHT]


def test_read_modalities_come_from_the_card_and_the_utterances(example_conversation):
    conversation = example_conversation(2)
    assert read_modalities(conversation) == ["text", "audio", "video"]
    for utterance in conversation.utterances:
        del utterance.modalities["video"]
    assert read_modalities(conversation) == ["text", "audio", "video"]  # the card says so
    conversation.model_card = None
    assert read_modalities(conversation) == ["text", "audio"]


def test_neutral_is_recognised_by_its_family():
    assert is_neutral("neutral") and is_neutral("NEU") and is_neutral(" Neutral ")
    assert not is_neutral("calm") and not is_neutral("sad")


def test_check_rejects_a_model_card_that_is_not_one(example_conversation):
    conversation = example_conversation(1)
    conversation.model_card = {"dataset": "meld"}
    with pytest.raises(ReportInputError, match=r"^conversation\.model_card: expected a "
                                               r"ModelCard or None, got dict"):
        check_conversation(conversation)
