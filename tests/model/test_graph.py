"""Tests for the cross-modal relational graph: edge construction and the RGCN + transformer net."""

from __future__ import annotations

import random

import pytest
import torch

from hotspot_erc.model.graph import (
    CrossModalGraph,
    GraphEdges,
    build_edges,
    build_edges_reference,
    relation_count,
)


def random_dialogues(rng: random.Random, batch: int, width: int, num_modalities: int,
                     present_probability: float = 0.7):
    """Random lengths (at least one utterance each), speakers and present patterns."""
    lengths = [rng.randint(1, width) for _ in range(batch)]
    lengths[rng.randrange(batch)] = width
    utterance_mask = torch.zeros(batch, width, dtype=torch.bool)
    present = torch.zeros(batch, width, num_modalities, dtype=torch.bool)
    speakers = torch.full((batch, width), -1, dtype=torch.long)
    num_speakers = rng.randint(1, 3)
    for b, length in enumerate(lengths):
        utterance_mask[b, :length] = True
        for u in range(length):
            speakers[b, u] = rng.randrange(num_speakers)
            for m in range(num_modalities):
                present[b, u, m] = rng.random() < present_probability
    return utterance_mask, present, speakers


def triples(edges: GraphEdges) -> set[tuple[int, int, int]]:
    source, target = edges.edge_index.tolist()
    return set(zip(source, target, edges.edge_type.tolist(), strict=True))


def full_coverage_dialogue(num_modalities: int):
    """One dialogue with every modality present and both speakers on both sides of each turn."""
    utterance_mask = torch.ones(1, 6, dtype=torch.bool)
    present = torch.ones(1, 6, num_modalities, dtype=torch.bool)
    speakers = torch.tensor([[0, 0, 1, 1, 0, 0]])
    return utterance_mask, present, speakers


def test_build_edges_matches_naive_reference_on_random_cases():
    rng = random.Random(0)
    for _ in range(150):
        num_modalities = rng.randint(1, 3)
        utterance_mask, present, speakers = random_dialogues(
            rng, rng.randint(1, 3), rng.randint(1, 8), num_modalities,
            present_probability=rng.choice([0.3, 0.7, 1.0]))
        options = dict(past=rng.randint(0, 9), future=rng.randint(0, 9),
                       temporal=rng.random() < 0.7, cross=rng.random() < 0.7,
                       speaker_relations=rng.random() < 0.5)
        fast = build_edges(utterance_mask, present, speakers, **options)
        naive = build_edges_reference(utterance_mask, present, speakers, **options)
        assert torch.equal(fast.node_index, naive.node_index), options
        assert fast.num_nodes == naive.num_nodes == int(present.sum())
        assert fast.num_relations == naive.num_relations
        assert fast.edge_index.shape[1] == len(triples(fast)), "duplicate edges"
        assert triples(fast) == triples(naive), options
        if fast.edge_type.numel():
            assert int(fast.edge_type.max()) < relation_count(
                num_modalities, temporal=options["temporal"], cross=options["cross"],
                speaker_relations=options["speaker_relations"])


@pytest.mark.parametrize("num_modalities", [1, 2, 3])
@pytest.mark.parametrize("temporal", [True, False])
@pytest.mark.parametrize("cross", [True, False])
@pytest.mark.parametrize("speaker_relations", [True, False])
def test_relation_count_is_max_edge_type_plus_one_and_every_relation_is_used(
        num_modalities, temporal, cross, speaker_relations):
    utterance_mask, present, speakers = full_coverage_dialogue(num_modalities)
    edges = build_edges(utterance_mask, present, speakers, past=2, future=2, temporal=temporal,
                        cross=cross, speaker_relations=speaker_relations)
    count = relation_count(num_modalities, temporal=temporal, cross=cross,
                           speaker_relations=speaker_relations)
    assert edges.num_relations == count
    assert int(edges.edge_type.max()) + 1 == count
    assert set(edges.edge_type.tolist()) == set(range(count))


def test_relation_count_values():
    assert relation_count(3, temporal=True, cross=True, speaker_relations=False) == 9 + 6
    assert relation_count(3, temporal=True, cross=True, speaker_relations=True) == 15 + 6
    assert relation_count(3, temporal=False, cross=False, speaker_relations=True) == 3
    assert relation_count(1, temporal=True, cross=True, speaker_relations=False) == 3


def test_direction_convention_past_edges_come_from_earlier_utterances():
    # One modality, three utterances, window past=1 future=0: 0 -> 1 and 1 -> 2 are "past" (1).
    utterance_mask = torch.ones(1, 3, dtype=torch.bool)
    present = torch.ones(1, 3, 1, dtype=torch.bool)
    speakers = torch.tensor([[0, 1, 0]])
    edges = build_edges(utterance_mask, present, speakers, past=1, future=0)
    assert triples(edges) == {(0, 0, 0), (1, 1, 0), (2, 2, 0), (0, 1, 1), (1, 2, 1)}
    edges = build_edges(utterance_mask, present, speakers, past=0, future=1)
    assert triples(edges) == {(0, 0, 0), (1, 1, 0), (2, 2, 0), (1, 0, 2), (2, 1, 2)}
    # With speakers: 0 -> 1 changes speaker (past other = 2); with past=2, 0 -> 2 is past same (1).
    edges = build_edges(utterance_mask, present, speakers, past=2, future=0,
                        speaker_relations=True)
    assert triples(edges) == {(0, 0, 0), (1, 1, 0), (2, 2, 0), (0, 1, 2), (1, 2, 2), (0, 2, 1)}


def test_cross_relations_distinguish_ordered_pairs():
    utterance_mask = torch.ones(1, 1, dtype=torch.bool)
    present = torch.ones(1, 1, 3, dtype=torch.bool)
    speakers = torch.zeros(1, 1, dtype=torch.long)
    edges = build_edges(utterance_mask, present, speakers, past=0, future=0, temporal=False)
    # K = 1, so cross relations start at 3: (0->1)=3, (0->2)=4, (1->0)=5, (1->2)=6, ...
    assert triples(edges) == {(0, 0, 0), (1, 1, 1), (2, 2, 2), (0, 1, 3), (0, 2, 4),
                              (1, 0, 5), (1, 2, 6), (2, 0, 7), (2, 1, 8)}


def test_every_node_has_a_self_loop_even_without_temporal_edges():
    utterance_mask, present, speakers = random_dialogues(random.Random(1), 3, 6, 3)
    edges = build_edges(utterance_mask, present, speakers, past=3, future=3, temporal=False,
                        cross=False)
    assert edges.edge_index.shape[1] == edges.num_nodes
    assert torch.equal(edges.edge_index[0], edges.edge_index[1])
    assert torch.equal(edges.edge_index[0].sort().values, torch.arange(edges.num_nodes))


def test_bad_inputs_are_rejected_with_the_field_named():
    utterance_mask = torch.tensor([[True, False]])
    present = torch.tensor([[[True], [True]]])
    speakers = torch.tensor([[0, -1]])
    with pytest.raises(ValueError, match="present is True on a padded utterance"):
        build_edges(utterance_mask, present, speakers, past=1, future=1)
    with pytest.raises(ValueError, match="past and future must be >= 0"):
        build_edges(utterance_mask, present & utterance_mask.unsqueeze(-1), speakers, past=-1,
                    future=1)
    with pytest.raises(ValueError, match="speakers must be >= 0"):
        build_edges(utterance_mask, present & utterance_mask.unsqueeze(-1),
                    torch.tensor([[-1, -1]]), past=1, future=1, speaker_relations=True)
    graph = CrossModalGraph(2, 8)
    with pytest.raises(ValueError, match="node_features must have shape"):
        graph(torch.zeros(1, 2, 2, 4), torch.ones(1, 2, 2, dtype=torch.bool),
              torch.ones(1, 2, dtype=torch.bool), torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="num_bases"):
        CrossModalGraph(2, 8, num_bases=100)


HIDDEN = 8


def make_inputs(seed: int, batch: int = 3, width: int = 7, num_modalities: int = 3):
    utterance_mask, present, speakers = random_dialogues(random.Random(seed), batch, width,
                                                         num_modalities)
    features = torch.randn(batch, width, num_modalities, HIDDEN,
                           generator=torch.Generator().manual_seed(seed))
    return features, present, utterance_mask, speakers


def make_graph(num_modalities: int = 3, **options) -> CrossModalGraph:
    torch.manual_seed(0)
    options = {"past": 2, "future": 1, "heads": 2, **options}
    return CrossModalGraph(num_modalities, HIDDEN, **options).eval()


@pytest.mark.parametrize("num_modalities", [1, 2, 3])
@pytest.mark.parametrize("options", [
    {},
    {"temporal_edges": False},
    {"cross_edges": False},
    {"speaker_relations": True, "num_bases": 2},
    {"temporal_edges": False, "cross_edges": False},
])
def test_output_shapes_and_zeros_where_there_is_no_node(num_modalities, options):
    features, present, utterance_mask, speakers = make_inputs(2, num_modalities=num_modalities)
    output = make_graph(num_modalities, **options)(features, present, utterance_mask, speakers)
    assert output.node_embeddings.shape == features.shape
    assert torch.equal(output.node_mask, present)
    assert torch.isfinite(output.node_embeddings).all()
    assert (output.node_embeddings[~present] == 0).all()
    assert (output.node_embeddings[present].abs().sum(-1) > 0).all()


def test_absent_node_features_do_not_influence_any_output():
    features, present, utterance_mask, speakers = make_inputs(3)
    graph = make_graph(speaker_relations=True)
    reference = graph(features, present, utterance_mask, speakers).node_embeddings
    garbage = features.clone()
    garbage[~present] = 1e6 * torch.randn_like(garbage[~present])
    perturbed = graph(garbage, present, utterance_mask, speakers).node_embeddings
    assert torch.equal(reference, perturbed)


def test_padded_utterances_change_nothing():
    features, present, utterance_mask, speakers = make_inputs(4, width=5)
    graph = make_graph()
    reference = graph(features, present, utterance_mask, speakers).node_embeddings
    extra = 4
    padded = graph(
        torch.cat([features, 1e3 * torch.randn(3, extra, 3, HIDDEN)], dim=1),
        torch.cat([present, torch.zeros(3, extra, 3, dtype=torch.bool)], dim=1),
        torch.cat([utterance_mask, torch.zeros(3, extra, dtype=torch.bool)], dim=1),
        torch.cat([speakers, torch.full((3, extra), -1)], dim=1)).node_embeddings
    assert torch.allclose(padded[:, :5], reference, atol=1e-6)
    assert (padded[:, 5:] == 0).all()


def test_dialogues_in_a_batch_are_independent():
    features, present, utterance_mask, speakers = make_inputs(5, batch=4)
    graph = make_graph(speaker_relations=True)
    batched = graph(features, present, utterance_mask, speakers).node_embeddings
    for b in range(4):
        alone = graph(features[b:b + 1], present[b:b + 1], utterance_mask[b:b + 1],
                      speakers[b:b + 1]).node_embeddings
        assert torch.allclose(batched[b:b + 1], alone, atol=1e-5)


@pytest.mark.parametrize("options", [{}, {"speaker_relations": True, "num_bases": 3}])
def test_gradients_reach_every_parameter(options):
    utterance_mask, present, speakers = full_coverage_dialogue(3)
    features = torch.randn(1, 6, 3, HIDDEN, requires_grad=True)
    graph = make_graph(**options)
    output = graph(features, present, utterance_mask, speakers).node_embeddings
    # A random projection, since the plain sum of a LayerNorm output has no gradient.
    (output * torch.randn_like(output)).sum().backward()
    for name, parameter in graph.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert features.grad.abs().sum() > 0


def test_without_temporal_and_cross_edges_a_node_sees_only_itself():
    features, present, utterance_mask, speakers = make_inputs(6)
    graph = make_graph(temporal_edges=False, cross_edges=False)
    reference = graph(features, present, utterance_mask, speakers).node_embeddings
    b, u, m = present.nonzero()[0].tolist()
    others = features + 10 * torch.randn_like(features)
    others[b, u, m] = features[b, u, m]
    changed = graph(others, present, utterance_mask, speakers).node_embeddings
    assert torch.allclose(changed[b, u, m], reference[b, u, m], atol=1e-6)
    assert not torch.allclose(changed[present], reference[present])


def test_context_does_reach_a_node_when_edges_are_on():
    features, present, utterance_mask, speakers = make_inputs(6)
    graph = make_graph()
    reference = graph(features, present, utterance_mask, speakers).node_embeddings
    b, u, m = present.nonzero()[0].tolist()
    others = features + 10 * torch.randn_like(features)
    others[b, u, m] = features[b, u, m]
    changed = graph(others, present, utterance_mask, speakers).node_embeddings
    neighbours = build_edges(utterance_mask, present, speakers, past=2, future=1)
    target = int(neighbours.node_index[b, u, m])
    has_context = bool((neighbours.edge_index[1] == target).sum() > 1)
    assert has_context == (not torch.allclose(changed[b, u, m], reference[b, u, m]))


def test_same_seed_gives_identical_outputs_in_training_mode():
    features, present, utterance_mask, speakers = make_inputs(7)
    outputs = []
    for _ in range(2):
        torch.manual_seed(123)
        graph = CrossModalGraph(3, HIDDEN, heads=2, dropout=0.3, speaker_relations=True)
        outputs.append(graph.train()(features, present, utterance_mask, speakers)
                       .node_embeddings)
    assert torch.equal(outputs[0], outputs[1])


def test_a_batch_without_any_node_gives_zeros():
    graph = make_graph()
    output = graph(torch.randn(2, 3, 3, HIDDEN), torch.zeros(2, 3, 3, dtype=torch.bool),
                   torch.ones(2, 3, dtype=torch.bool), torch.zeros(2, 3, dtype=torch.long))
    assert output.edges.num_nodes == 0 and output.edges.edge_index.shape == (2, 0)
    assert (output.node_embeddings == 0).all()
