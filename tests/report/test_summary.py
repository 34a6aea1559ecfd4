import copy

from hotspot_erc.engine.prediction import ConversationPrediction
from hotspot_erc.report.summary import Moment, summarise


def _relabel(conversation, labels: dict[int, tuple[str, float]]):
    changed = copy.deepcopy(conversation)
    for index, (label, probability) in labels.items():
        utterance = changed.utterances[index]
        utterance.label = label
        utterance.probabilities = {**utterance.probabilities, label: probability}
    return changed


def test_counts_per_speaker_and_overall(example_conversation):
    summary = summarise(_relabel(example_conversation(), {1: ("angry", 0.7)}))
    assert summary.speakers == ["Ana", "Ben"]
    assert summary.counts["Ana"] == {"neutral": 1, "happy": 0, "sad": 0, "angry": 1,
                                     "excited": 0, "frustrated": 1}
    assert summary.counts["Ben"]["angry"] == 1 and sum(summary.counts["Ben"].values()) == 3
    assert summary.totals["angry"] == 2 and sum(summary.totals.values()) == 6
    assert summary.dominant == summary.dominant_emotion == ["angry"]


def test_dominant_lists_ties_and_sets_neutral_apart(example_conversation):
    conversation = _relabel(example_conversation(), {0: ("neutral", 0.9), 1: ("neutral", 0.8)})
    summary = summarise(conversation)
    assert summary.dominant == ["neutral"]
    assert summary.dominant_emotion == ["happy", "sad", "frustrated"]
    everyone_neutral = _relabel(conversation, {i: ("neutral", 0.5) for i in range(6)})
    summary = summarise(everyone_neutral)
    assert summary.dominant == ["neutral"] and summary.dominant_emotion == []
    assert summary.intense == []


def test_moments_rank_by_the_probability_of_the_predicted_label(example_conversation):
    conversation = _relabel(example_conversation(), {
        0: ("angry", 0.99), 4: ("neutral", 0.97), 3: ("sad", 0.21), 5: ("happy", 0.35)})
    summary = summarise(conversation, top=2)
    assert summary.confident == [Moment(0, "Ana", "angry", 0.99),
                                 Moment(4, "Ana", "neutral", 0.97)]
    assert [m.index for m in summary.intense] == [0, 2]  # the neutral one is left out
    assert summary.uncertain == [Moment(3, "Ben", "sad", 0.21), Moment(5, "Ben", "happy", 0.35)]


def test_an_empty_conversation_has_an_empty_summary():
    summary = summarise(ConversationPrediction(label_names=["neutral", "sad"]))
    assert summary.speakers == [] and summary.totals == {"neutral": 0, "sad": 0}
    assert summary.dominant == [] and summary.confident == []
