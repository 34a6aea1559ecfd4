"""Model cards: the JSON form, its checks, the domain of known corpora, the terminal summary."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hotspot_erc.engine.model_card import (
    FORMAT,
    UNKNOWN,
    ModelCard,
    ModelCardError,
    card_scores,
    training_domain,
)


@pytest.fixture
def card() -> ModelCard:
    return ModelCard.trained_on(
        "meld", ["neutral", "joy", "anger"], ["text", "audio"],
        {"best_epoch": 7, "valid": {"weighted_f1": 0.61, "accuracy": 0.64, "per_class_f1": {}},
         "test": {"weighted_f1": 0.58, "accuracy": 0.6, "macro_f1": 0.4, "num_samples": 2610}})


def test_json_form_round_trips_and_holds_every_field(card):
    data = card.to_json()
    assert list(data) == ["format", "dataset", "domain", "label_names", "modalities", "scores",
                          "intended_use", "demonstration"]
    assert data["format"] == FORMAT and data["demonstration"] is False
    assert json.loads(json.dumps(data)) == data
    assert ModelCard.from_json(data) == card
    assert ModelCard.from_json(data).to_json() == data


def test_trained_on_keeps_only_the_scores_a_card_shows(card):
    assert card.dataset == "meld" and card.domain.startswith("TV-series dialogue")
    assert card.scores == {"valid": {"weighted_f1": 0.61, "accuracy": 0.64},
                           "test": {"weighted_f1": 0.58, "accuracy": 0.6, "macro_f1": 0.4}}
    assert "TV-series dialogue" in card.intended_use
    assert card_scores({"test": {"accuracy": float("nan"), "weighted_f1": True}}) == {}


@pytest.mark.parametrize("dataset, domain", [
    ("iemocap4", "acted dyadic conversations"),
    ("IEMOCAP6", "acted dyadic conversations"),
    ("meld", "TV-series dialogue"),
    ("ravdess", "acted speech"),
    ("crema-d", "acted speech"),
    ("mosei-sentiment", "online monologue videos"),
    ("synthetic", "synthetic features"),
    ("my-call-centre", UNKNOWN),
])
def test_domain_of_known_corpora(dataset, domain):
    assert training_domain(dataset).startswith(domain)


def test_a_card_of_an_unknown_corpus_says_so():
    card = ModelCard.trained_on("calls", ["a", "b"], ["text"])
    assert card.domain == UNKNOWN and "those of calls" in card.intended_use
    assert card.scores == {} and card.headline_score() is None
    before_cards = ModelCard(label_names=["a"], modalities=["text"])
    assert before_cards.dataset == before_cards.domain == UNKNOWN
    assert "before model cards" in before_cards.intended_use


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("dataset"), "model_card.dataset: expected a non-empty string, got None"),
    (lambda d: d.update(dataset=" "), "model_card.dataset: expected a non-empty string"),
    (lambda d: d.update(label_names=[]), "model_card.label_names: expected a non-empty list"),
    (lambda d: d.update(label_names=["a", 3]), "model_card.label_names: expected a non-empty"),
    (lambda d: d.update(modalities="text"), "model_card.modalities: expected a list of names"),
    (lambda d: d.update(demonstration="yes"),
     "model_card.demonstration: expected true or false, got 'yes'"),
    (lambda d: d.pop("demonstration"), "model_card.demonstration: expected true or false"),
    (lambda d: d["scores"]["test"].update(accuracy="0.5"),
     "model_card.scores.test.accuracy: expected a number in [0, 1], got '0.5'"),
    (lambda d: d["scores"]["test"].update(accuracy=58.0),
     "model_card.scores.test.accuracy: expected a number in [0, 1], got 58.0"),
    (lambda d: d["scores"].update(test=[0.5]),
     "model_card.scores.test: expected an object of metric -> value"),
    (lambda d: d.update(format="hotspot-erc-model-card/9"), "model_card.format: expected"),
    (lambda d: d.update(demostration=True), "model_card: expected only the keys"),
])
def test_malformed_card_names_the_field(card, edit, message):
    data = card.to_json()
    edit(data)
    with pytest.raises(ModelCardError) as error:
        ModelCard.from_json(data)
    assert str(error.value).startswith(message)


def test_errors_without_a_prefix_name_the_bare_field():
    with pytest.raises(ModelCardError, match=r"^field demonstration: expected true or false"):
        ModelCard.from_json({"dataset": "x", "label_names": ["a"], "modalities": []}, where="")
    with pytest.raises(ModelCardError, match=r"^model card: expected an object, got \[1\]"):
        ModelCard.from_json([1], where="")


def test_optional_fields_take_their_defaults():
    card = ModelCard.from_json({"dataset": "x", "label_names": ["a"], "modalities": [],
                                "demonstration": False})
    assert card.domain == UNKNOWN and card.scores == {} and "before model cards" in \
        card.intended_use


def test_summary_leads_with_the_test_score_and_warns_for_demonstrations(card):
    lines = card.summary_lines()
    assert lines == [
        f"model: trained on meld ({card.domain}); reads text, audio",
        "labels: neutral, joy, anger",
        "test score: weighted F1 58.0 (accuracy 60.0, macro F1 40.0)"]
    card.scores.pop("test")
    assert card.summary_lines()[2] == "validation score: weighted F1 61.0 (accuracy 64.0)"
    card.scores.clear()
    assert card.summary_lines()[2].startswith("score: not measured")
    card.demonstration = True
    card.intended_use = "Demonstration only: synthetic voices."
    lines = card.summary_lines()
    assert 2 <= len(lines) <= 4
    assert lines[-1] == "WARNING: DEMONSTRATION checkpoint. Demonstration only: synthetic voices."


def test_module_needs_neither_torch_nor_numpy():
    code = ("import sys; import hotspot_erc.engine.model_card, hotspot_erc.engine.prediction; "
            "print(sorted({'torch', 'numpy'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
