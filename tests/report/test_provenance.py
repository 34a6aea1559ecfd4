import copy

import pytest

from hotspot_erc.engine.model_card import ModelCard
from hotspot_erc.engine.prediction import ModalityEvidence
from hotspot_erc.report.provenance import provenance


@pytest.fixture
def conversation(example_conversation):
    return example_conversation()


def test_a_card_of_a_known_corpus_and_a_full_input_gives_no_warning(conversation):
    origin = provenance(conversation)
    assert origin.warnings == []
    assert origin.trained_on.startswith("iemocap6: acted dyadic conversations")
    assert origin.your_input == ("a transcript of 6 utterances by 2 speakers with audio and "
                                 "video recordings")
    assert origin.reads == origin.received == ["text", "audio", "video"]
    assert origin.scores == ["test: weighted F1 63.1 \u00b7 accuracy 64.0 \u00b7 macro F1 60.2",
                             "validation: weighted F1 65.2 \u00b7 accuracy 66.1"]


def test_a_demonstration_always_warns_with_its_intended_use(conversation):
    conversation.model_card.demonstration = True
    conversation.model_card.intended_use = "Demonstration only: synthetic voices."
    assert provenance(conversation).warnings == [
        "DEMONSTRATION model. Demonstration only: synthetic voices."]


def test_an_unknown_model_or_domain_warns(conversation):
    conversation.model_card = ModelCard(label_names=conversation.label_names,
                                        modalities=["text", "audio", "video"])
    (warning,) = provenance(conversation).warnings
    assert "kind of conversations this model learned from is unknown" in warning
    conversation.model_card = None
    origin = provenance(conversation)
    assert origin.trained_on == "unknown" and origin.scores == []
    assert origin.warnings[0].startswith("Nothing is known about this model")


def test_a_modality_the_input_lacks_entirely_warns(conversation):
    changed = copy.deepcopy(conversation)
    changed.media = {"audio": "call.wav"}
    for utterance in changed.utterances:
        utterance.modalities["video"] = ModalityEvidence.absent()
    origin = provenance(changed)
    assert origin.received == ["text", "audio"]
    assert origin.your_input.endswith("with audio recordings")
    assert origin.warnings == ["The model reads text, audio and video, but your input has no "
                               "video: it judged without it, which its scores do not cover."]
    # Missing for one utterance only is not a warning about the input.
    assert provenance(conversation).warnings == []
