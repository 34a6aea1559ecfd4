from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from hotspot_erc.data.batch import IGNORE_INDEX, Batch, ModalityBatch
from hotspot_erc.engine.diagnostics import DiagnosticsAccumulator, auroc, format_diagnostics
from hotspot_erc.model.model import ModalityExplanation, ModelOutput, RoutingExplanation

LABELS = ["neutral", "happy", "sad"]


def make_modality(local_mask, prior=None, has_prior=None, truth=None, has_truth=None):
    num_dialogues, width, positions = local_mask.shape
    zeros = torch.zeros(num_dialogues, width, positions)
    no_utterance = torch.zeros(num_dialogues, width, dtype=torch.bool)
    return ModalityBatch(
        global_vector=torch.zeros(num_dialogues, width, 2),
        local=torch.zeros(num_dialogues, width, positions, 2), local_mask=local_mask,
        present=local_mask.any(dim=-1),
        prior=zeros if prior is None else prior,
        has_prior=no_utterance if has_prior is None else has_prior,
        hotspot_truth=zeros.bool() if truth is None else truth,
        has_truth=no_utterance if has_truth is None else has_truth)


def make_batch(utterance_mask, labels, modalities):
    num_dialogues, width = utterance_mask.shape
    return Batch([f"d{b}" for b in range(num_dialogues)],
                 [[f"d{b}_u{u}" for u in range(width)] for b in range(num_dialogues)],
                 utterance_mask, labels, torch.zeros(num_dialogues, width, dtype=torch.long),
                 modalities)


def make_output(hotspots, routing=None):
    return ModelOutput(logits=torch.zeros(1, 1, len(LABELS)), balance_loss=torch.zeros(()),
                       hotspots=hotspots, routing=routing or {})


def explain(gate, weights, local_mask):
    return ModalityExplanation(weights, gate, local_mask, local_mask.any(dim=-1))


def test_gate_statistics_exact():
    # One dialogue, two utterances of 3 positions; the second has a padded last position.
    local_mask = torch.tensor([[[True, True, True], [True, True, False]]])
    gate = torch.tensor([[[0.05, 0.5, 0.95], [0.2, 1.0, 0.7]]])
    weights = torch.tensor([[[0.1, 0.2, 0.3], [0.4, 0.5, 0.9]]])
    batch = make_batch(torch.tensor([[True, True]]), torch.tensor([[0, 1]]),
                       {"text": make_modality(local_mask)})
    accumulator = DiagnosticsAccumulator(["text"], LABELS)
    accumulator.update(batch, make_output({"text": explain(gate, weights, local_mask)}))
    result = accumulator.result()["modalities"]["text"]

    values = np.array([0.05, 0.5, 0.95, 0.2, 1.0])
    assert result["positions"] == 5
    assert result["gate"]["mean"] == pytest.approx(values.mean())
    assert result["gate"]["std"] == pytest.approx(values.std())  # population std
    assert result["gate"]["near_zero"] == pytest.approx(1 / 5)
    assert result["gate"]["near_one"] == pytest.approx(2 / 5)
    expected_bins = [1, 0, 1, 0, 0, 1, 0, 0, 0, 2]  # 1.0 falls into the last bin
    assert result["gate"]["histogram"]["fractions"] == pytest.approx(
        [c / 5 for c in expected_bins])
    assert result["gate"]["histogram"]["edges"] == pytest.approx(np.linspace(0, 1, 11).tolist())
    assert result["hotspot_weight_mean"] == pytest.approx((0.1 + 0.2 + 0.3 + 0.4 + 0.5) / 5)


def test_running_moments_match_one_pass_over_many_batches():
    generator = torch.Generator().manual_seed(0)
    accumulator = DiagnosticsAccumulator(["audio"], LABELS)
    seen = []
    for _ in range(7):
        local_mask = torch.rand(2, 3, 5, generator=generator) > 0.3
        gate = torch.rand(2, 3, 5, generator=generator, dtype=torch.float64) * 0.3 + 0.6
        batch = make_batch(torch.ones(2, 3, dtype=torch.bool), torch.zeros(2, 3).long(),
                           {"audio": make_modality(local_mask)})
        accumulator.update(batch, make_output({"audio": explain(gate, gate, local_mask)}))
        seen.append(gate[local_mask & local_mask.any(-1, keepdim=True)].numpy())
    gate_result = accumulator.result()["modalities"]["audio"]["gate"]
    values = np.concatenate(seen)
    assert gate_result["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert gate_result["std"] == pytest.approx(values.std(), rel=1e-9)


def _random_case(seed):
    """A batch with padding, absent modalities, truth, priors and routing, plus its output."""
    generator = torch.Generator().manual_seed(seed)
    num_dialogues, width, positions, experts, top_k = 3, 4, 6, 4, 1
    utterance_mask = torch.tensor([[True] * 4, [True, True, True, False], [True, False] * 2])
    labels = torch.randint(0, len(LABELS), (num_dialogues, width), generator=generator)
    labels[~utterance_mask] = IGNORE_INDEX
    labels[0, 1] = IGNORE_INDEX  # a real but unscored utterance
    local_mask = (torch.rand(num_dialogues, width, positions, generator=generator) > 0.3)
    local_mask[:, :, 0] = True
    local_mask[0, 2] = False  # the modality is missing in this utterance
    local_mask &= utterance_mask[..., None]
    truth = (torch.rand(num_dialogues, width, positions, generator=generator) > 0.6) & local_mask
    has_truth = utterance_mask.clone()
    has_prior = torch.rand(num_dialogues, width, generator=generator) > 0.3
    prior = torch.rand(num_dialogues, width, positions, generator=generator) * local_mask
    prior = prior * has_prior[..., None]
    gate = torch.rand(num_dialogues, width, positions, generator=generator) * local_mask
    weights = torch.rand(num_dialogues, width, positions, generator=generator) * local_mask
    probs = torch.softmax(torch.randn(num_dialogues, width, experts, generator=generator), -1)
    selected = probs.topk(top_k, dim=-1).indices
    routing_valid = utterance_mask.clone()
    routing_valid[1, 0] = False  # e.g. the source modality is missing here
    selected[~routing_valid] = -1
    batch = make_batch(utterance_mask, labels,
                       {"text": make_modality(local_mask, prior, has_prior, truth, has_truth)})
    output = make_output({"text": explain(gate, weights, local_mask)},
                         {("audio", "text"): RoutingExplanation(probs, probs, selected,
                                                                routing_valid)})
    return batch, output


def _summarise(batch, output, modalities=("text", "video")):
    accumulator = DiagnosticsAccumulator(list(modalities), LABELS)
    accumulator.update(batch, output)
    return accumulator.result()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_values_under_false_masks_change_nothing(seed):
    batch, output = _random_case(seed)
    reference = _summarise(batch, output)

    explanation = output.hotspots["text"]
    data = batch.modalities["text"]
    routing = output.routing[("audio", "text")]
    invalid_position = ~explanation.local_mask
    explanation.gate[invalid_position] = 0.99
    explanation.hotspot_weights[invalid_position] = 5.0
    data.hotspot_truth[invalid_position] = True
    data.prior[invalid_position] = 0.77
    data.prior[~data.has_prior] = 0.5
    invalid_utterance = ~(routing.valid & batch.utterance_mask)
    routing.probs[invalid_utterance] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    routing.selected[invalid_utterance] = 0
    batch.labels[~batch.utterance_mask] = 2
    assert _summarise(batch, output) == reference

    # The truth of an utterance without ground truth is never read.
    data.has_truth[0, 3] = False
    without_truth = _summarise(batch, output)
    data.hotspot_truth[0, 3] = ~data.hotspot_truth[0, 3]
    assert _summarise(batch, output) == without_truth
    assert (without_truth["modalities"]["text"]["localisation"]["utterances_with_truth"]
            == reference["modalities"]["text"]["localisation"]["utterances_with_truth"] - 1)
    # The modality absent from the output is reported as null with a reason.
    assert reference["modalities"]["video"]["gate"] is None
    assert any(note.startswith("video:") for note in reference["notes"])


def test_localisation_matches_scikit_learn():
    batch, output = _random_case(3)
    result = _summarise(batch, output)["modalities"]["text"]["localisation"]
    data, explanation = batch.modalities["text"], output.hotspots["text"]
    valid = explanation.local_mask
    scored = data.has_truth & (data.hotspot_truth & valid).any(-1)
    scores, prior_scores, labels, prior_labels = [], [], [], []
    utterance_aurocs, prior_aurocs = [], []
    for b, u in scored.nonzero().tolist():
        positions = valid[b, u]
        y = data.hotspot_truth[b, u][positions].numpy()
        w = explanation.hotspot_weights[b, u][positions].numpy()
        p = data.prior[b, u][positions].numpy()
        scores.append(w)
        labels.append(y)
        if data.has_prior[b, u]:
            prior_scores.append(p)
            prior_labels.append(y)
        if not y.all():
            utterance_aurocs.append(roc_auc_score(y, w))
            if data.has_prior[b, u]:
                prior_aurocs.append(roc_auc_score(y, p))
    assert result["utterances_scored"] == int(scored.sum())
    assert result["auroc"] == pytest.approx(
        roc_auc_score(np.concatenate(labels), np.concatenate(scores)))
    assert result["mean_utterance_auroc"] == pytest.approx(np.mean(utterance_aurocs))
    assert result["prior"]["auroc"] == pytest.approx(
        roc_auc_score(np.concatenate(prior_labels), np.concatenate(prior_scores)))
    assert result["prior"]["mean_utterance_auroc"] == pytest.approx(np.mean(prior_aurocs))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=2, max_size=60))
def test_auroc_matches_scikit_learn_with_ties(pairs):
    scores = np.array([s for s, _ in pairs], dtype=np.float64) / 4  # few values: many ties
    labels = np.array([y for _, y in pairs])
    if labels.all() or not labels.any():
        with pytest.raises(ValueError, match="both classes"):
            auroc(scores, labels)
    else:
        assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


@pytest.mark.parametrize("invert, expected", [(False, 1.0), (True, 0.0)])
def test_perfect_and_inverted_hotspot_weights(invert, expected):
    truth = torch.tensor([[[False, True, True, False], [True, False, False, False]]])
    local_mask = torch.ones(1, 2, 4, dtype=torch.bool)
    weights = truth.float() * 0.8 + 0.1
    if invert:
        weights = 1.0 - weights
    batch = make_batch(torch.ones(1, 2, dtype=torch.bool), torch.tensor([[0, 1]]),
                       {"text": make_modality(local_mask, truth=truth,
                                              has_truth=torch.ones(1, 2, dtype=torch.bool))})
    result = _summarise(batch, make_output({"text": explain(weights, weights, local_mask)}),
                        ["text"])
    localisation = result["modalities"]["text"]["localisation"]
    assert localisation["auroc"] == expected
    assert localisation["mean_utterance_auroc"] == expected
    assert localisation["prior"] is None
    assert any("no scored utterance has a rule-based prior" in n for n in result["notes"])


def test_no_ground_truth_gives_null_with_a_reason():
    local_mask = torch.ones(1, 1, 3, dtype=torch.bool)
    batch = make_batch(torch.ones(1, 1, dtype=torch.bool), torch.tensor([[0]]),
                       {"text": make_modality(local_mask)})
    gate = torch.full((1, 1, 3), 0.5)
    result = _summarise(batch, make_output({"text": explain(gate, gate, local_mask)}), ["text"])
    assert result["modalities"]["text"]["localisation"] is None
    assert any("no utterance has hotspot ground truth" in n for n in result["notes"])


def _routing_batch(probs, selected, valid, labels):
    utterance_mask = torch.ones(labels.shape, dtype=torch.bool)
    utterance_mask[labels == IGNORE_INDEX] = False
    batch = make_batch(utterance_mask, labels, {})
    return batch, make_output({}, {("text", "audio"): RoutingExplanation(probs, probs, selected,
                                                                         valid)})


def test_routing_usage_and_entropy_exact():
    probs = torch.tensor([[[0.5, 0.5, 0.0], [0.25, 0.25, 0.5], [1.0, 0.0, 0.0],
                           [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]])
    selected = torch.tensor([[[0, 1], [2, 0], [0, 1], [-1, -1], [2, 0]]])
    valid = torch.tensor([[True, True, True, False, True]])
    # The last utterance is padding (its routing must be ignored although valid says True).
    labels = torch.tensor([[0, 1, 0, 2, IGNORE_INDEX]])
    batch, output = _routing_batch(probs, selected, valid, labels)
    result = _summarise(batch, output, [])["routing"]["text->audio"]

    entropies = [math.log(2), 1.5 * math.log(2), 0.0]
    assert result["num_experts"] == 3 and result["top_k"] == 2
    assert result["utterances"] == 3
    assert result["usage"] == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    assert result["mean_probability"] == pytest.approx([1.75 / 3, 0.75 / 3, 0.5 / 3])
    assert result["entropy"] == pytest.approx(sum(entropies) / 3)
    assert result["max_entropy"] == pytest.approx(math.log(3))
    per_class = result["per_class"]
    assert per_class["neutral"]["utterances"] == 2
    assert per_class["neutral"]["usage"] == pytest.approx([0.5, 0.5, 0.0])
    assert per_class["neutral"]["entropy"] == pytest.approx(math.log(2) / 2)
    assert per_class["happy"]["usage"] == pytest.approx([0.5, 0.0, 0.5])
    assert per_class["happy"]["entropy"] == pytest.approx(1.5 * math.log(2))
    assert per_class["sad"] == {"utterances": 0, "usage": None, "entropy": None}


def _routing_with(selections, num_experts):
    count = len(selections)
    selected = torch.tensor(selections).reshape(1, count, -1)
    probs = torch.full((1, count, num_experts), 1.0 / num_experts)
    labels = torch.zeros(1, count, dtype=torch.long)
    batch, output = _routing_batch(probs, selected, torch.ones(1, count, dtype=torch.bool),
                                   labels)
    return _summarise(batch, output, [])


@pytest.mark.parametrize("selections, collapsed", [
    ([[0]] * 20, True),  # one expert takes every slot
    ([[0]] * 17 + [[1]] * 3, True),  # 85% on one expert
    ([[0]] * 15 + [[1]] * 5, False),  # 75% / 25%: skewed but two experts in use
    ([[0], [1], [2], [3]] * 5, False),  # balanced
    ([[0, 1]] * 20, True),  # TopK 2 always picks the same pair: no routing left
    ([[0, 1], [2, 3], [1, 2]] * 5, False),
])
def test_collapse_detection(selections, collapsed):
    result = _routing_with(selections, num_experts=4)
    assert result["routing"]["text->audio"]["collapsed"] is collapsed
    warned = any(n.startswith("WARNING MoA text->audio: routing collapsed")
                 for n in result["notes"])
    assert warned is collapsed
    assert ("COLLAPSED" in format_diagnostics(result)) is collapsed


def test_single_expert_is_not_judged():
    result = _routing_with([[0]] * 3, num_experts=1)
    assert result["routing"]["text->audio"]["collapsed"] is None
    assert result["routing"]["text->audio"]["max_entropy"] == 0.0


def test_changing_number_of_experts_is_an_error():
    accumulator = DiagnosticsAccumulator([], LABELS)
    for num_experts in (4, 3):
        batch, output = _routing_batch(torch.full((1, 1, num_experts), 1 / num_experts),
                                       torch.zeros(1, 1, 1, dtype=torch.long),
                                       torch.ones(1, 1, dtype=torch.bool),
                                       torch.zeros(1, 1, dtype=torch.long))
        if num_experts == 4:
            accumulator.update(batch, output)
        else:
            with pytest.raises(ValueError, match="text->audio has 3 experts"):
                accumulator.update(batch, output)


def test_result_is_json_ready_and_formats():
    batch, output = _random_case(4)
    accumulator = DiagnosticsAccumulator(["text", "video"], LABELS)
    accumulator.update(batch, output)
    accumulator.update(batch, output)
    result = accumulator.result()
    assert json.loads(json.dumps(result)) == result
    assert accumulator.result() == result  # result() does not consume the state
    text = format_diagnostics(result)
    assert text.startswith("text: gate mean")
    assert "localisation AUROC" in text and "audio->text: usage [" in text
    assert "note: video:" in text
