"""The assembled model: shapes, masking, modality subsets, gradients, determinism."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

from hotspot_erc.data.batch import IGNORE_INDEX, collate
from hotspot_erc.data.dialogue import (
    Dialogue,
    FeatureSpec,
    ModalityFeatures,
    ModalitySpec,
    Utterance,
)
from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.model import HotspotERC
from hotspot_erc.model.variants import build_model, list_variants

DIMS = {"text": (12, 10), "audio": (9, 7), "video": (6, 5)}
POSITIONS = {"text": 6, "audio": 11, "video": 8}
LABELS = ["a", "b", "c"]


def make_dialogue(did: str, length: int, rng: np.random.Generator,
                  modalities=("text", "audio", "video"), missing_rate: float = 0.0) -> Dialogue:
    utterances = []
    for u in range(length):
        features = {}
        for m in modalities:
            if rng.random() < missing_rate:
                features[m] = ModalityFeatures.missing()
                continue
            global_dim, local_dim = DIMS[m]
            positions = int(rng.integers(2, POSITIONS[m] + 1))
            features[m] = ModalityFeatures(
                global_vector=rng.normal(size=global_dim),
                local=rng.normal(size=(positions, local_dim)),
                prior=rng.random(positions))
        utterances.append(Utterance(f"{did}_{u}", speaker=f"s{u % 2}", label=LABELS[u % 3],
                                    features=features))
    return Dialogue(did, utterances)


def spec_for(modalities) -> FeatureSpec:
    return FeatureSpec({m: ModalitySpec("test", "1", *DIMS[m]) for m in modalities})


def config_for(modalities, changes: dict | None = None) -> ModelConfig:
    """A small config reading ``modalities``, with ``changes`` keyed by path."""
    return ModelConfig(input_dims={m: DIMS[m] for m in modalities}, num_classes=len(LABELS),
                       hidden=16, heads=2, dropout=0.1).override(
        {"graph.past": 2, "graph.future": 1, **(changes or {})})


def with_hotspots(model: HotspotERC, scale: float = 0.5) -> HotspotERC:
    """``model`` with its hotspot path switched on: at initialisation its scales are zero
    (neutral start), and a test of what local evidence does needs them to be otherwise."""
    with torch.no_grad():
        for value in (model.hotspot_scales or {}).values():
            value.fill_(scale)
        for linear in (model.hotspot_maps or {}).values():
            linear.weight.copy_(scale * torch.eye(linear.weight.shape[0]))
    return model


def batch_of(dialogues, modalities=("text", "audio", "video")):
    return collate(dialogues, LABELS, spec_for(modalities))


@pytest.fixture
def dialogues():
    rng = np.random.default_rng(0)
    return [make_dialogue("d0", 5, rng, missing_rate=0.2), make_dialogue("d1", 3, rng)]


@pytest.mark.parametrize("variant", list_variants())
@pytest.mark.parametrize("modalities", [("text",), ("audio",), ("text", "audio", "video")])
def test_every_variant_runs_forward_and_backward(variant, modalities):
    rng = np.random.default_rng(1)
    batch = batch_of([make_dialogue("d0", 4, rng, modalities),
                      make_dialogue("d1", 2, rng, modalities)], modalities)
    torch.manual_seed(0)
    model = build_model(variant, config_for(modalities))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HGF's "nothing to localise" warnings are not tested here
        output = model(batch)
    assert output.logits.shape == (2, 4, len(LABELS))
    loss = model.loss(output, batch.labels)
    assert torch.isfinite(loss)
    loss.backward()
    if model.config.use_hgf:
        assert set(output.hotspots) == set(modalities)
        for m, explanation in output.hotspots.items():
            assert explanation.hotspot_weights.shape == batch.modalities[m].local_mask.shape
    else:
        assert output.hotspots == {}


def test_single_modality_skips_moa_explicitly():
    model = HotspotERC(config_for(("text",)))
    assert model.moa is None
    assert HotspotERC(config_for(("text", "audio"))).moa is not None


def test_padding_does_not_change_valid_outputs(dialogues):
    torch.manual_seed(0)
    model = build_model("full", config_for(("text", "audio", "video"))).eval()
    batch = batch_of(dialogues)
    reference = model(batch).logits
    noisy = copy.deepcopy(batch)
    for mb in noisy.modalities.values():
        invalid = ~mb.local_mask
        mb.local[invalid] = torch.randn(int(invalid.sum()), mb.local.shape[-1]) * 100
        absent = ~mb.present
        mb.global_vector[absent] = torch.randn(int(absent.sum()), mb.global_vector.shape[-1]) * 100
        mb.prior[invalid] = 0.9
    perturbed = model(noisy).logits
    valid = batch.utterance_mask
    assert torch.allclose(reference[valid], perturbed[valid], atol=1e-5)
    # A dialogue's outputs do not depend on the other dialogues of the batch.
    alone = model(batch_of(dialogues[1:])).logits[0, :3]
    assert torch.allclose(reference[1, :3], alone, atol=1e-5)


def test_missing_modality_has_no_influence(dialogues):
    torch.manual_seed(0)
    model = build_model("full", config_for(("text", "audio", "video"))).eval()
    batch = batch_of(dialogues)
    # Mark audio missing for utterance 1 of dialogue 0, then scramble its values.
    dropped = copy.deepcopy(batch)
    audio = dropped.modalities["audio"]
    audio.present[0, 1] = False
    audio.local_mask[0, 1] = False
    reference = model(dropped).logits
    audio.local[0, 1] = torch.randn_like(audio.local[0, 1]) * 50
    audio.global_vector[0, 1] = torch.randn_like(audio.global_vector[0, 1]) * 50
    assert torch.allclose(model(dropped).logits, reference, atol=1e-5)
    # ...and the flag matters: with audio present the output differs.
    assert not torch.allclose(model(batch).logits[0, 1], reference[0, 1], atol=1e-4)


def test_gradients_reach_every_parameter(dialogues):
    torch.manual_seed(0)
    config = config_for(("text", "audio", "video"), {"moa.num_experts": 4, "moa.top_k": 4})
    model = HotspotERC(config)
    # At initialisation the hotspot path is scaled by zero (neutral start) and its own weights
    # get no gradient until the scales move.
    with_hotspots(model, 0.1)
    batch = batch_of(dialogues)
    # The missing-modality embeddings learn only from utterances that miss that modality.
    for u, m in enumerate(("text", "audio", "video")):
        batch.modalities[m].present[1, u] = False
        batch.modalities[m].local_mask[1, u] = False
    model.loss(model(batch), batch.labels).backward()
    silent = [name for name, p in model.named_parameters()
              if p.grad is None or float(p.grad.abs().sum()) == 0.0]
    assert silent == []


def test_same_seed_same_outputs(dialogues):
    batch = batch_of(dialogues)
    outputs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = build_model("full", config_for(("text", "audio", "video")))
        torch.manual_seed(4)
        outputs.append(model(batch).logits)  # train mode: dropout draws from the seeded stream
    assert torch.equal(outputs[0], outputs[1])


def test_loss_ignores_unscored_and_uses_class_weights(dialogues):
    torch.manual_seed(0)
    model = HotspotERC(config_for(("text",), {"class_weights": [1.0, 2.0, 0.5]})).eval()
    batch = batch_of([make_dialogue("d", 4, np.random.default_rng(2), ("text",))], ("text",))
    output = model(batch)
    labels = batch.labels.clone()
    expected = torch.nn.functional.cross_entropy(output.logits[0], labels[0],
                                                 weight=torch.tensor([1.0, 2.0, 0.5]))
    assert torch.allclose(model.loss(output, labels), expected + 0.0)
    labels[0, 0] = IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(output.logits[0, 1:], labels[0, 1:],
                                                 weight=torch.tensor([1.0, 2.0, 0.5]))
    assert torch.allclose(model.loss(output, labels), expected)


def test_routing_explanations_are_laid_out_like_the_batch(dialogues):
    torch.manual_seed(0)
    model = build_model("full", config_for(("text", "audio", "video"))).eval()
    batch = batch_of(dialogues)
    output = model(batch)
    assert len(output.routing) == 6
    for info in output.routing.values():
        assert info.probs.shape == (2, 5, model.config.moa.num_experts)
        assert info.selected.shape == (2, 5, model.config.moa.top_k)
        padded = ~batch.utterance_mask
        assert bool((info.selected[padded] == -1).all())
        assert not bool(info.valid[padded].any())


def test_utterance_level_features_warn_once():
    rng = np.random.default_rng(0)
    utterances = [Utterance(f"u{i}", "s", label="a", features={
        "text": ModalityFeatures(global_vector=rng.normal(size=12))}) for i in range(3)]
    spec = FeatureSpec({"text": ModalitySpec("pack", "1", 12, 12)})
    batch = collate([Dialogue("d", utterances)], LABELS, spec)
    model = HotspotERC(ModelConfig(input_dims={"text": (12, 12)}, num_classes=3, hidden=16,
                                   heads=2))
    with pytest.warns(UserWarning, match="localise"):
        model(batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(batch)


def test_global_graph_nodes_keep_each_utterances_local_evidence_to_itself():
    """graph.nodes="global": utterance i's local sequence reaches only utterance i's logits,
    while its global vector still reaches its neighbours through the graph."""
    rng = np.random.default_rng(3)
    dialogue = make_dialogue("d", 5, rng, modalities=("text",))
    torch.manual_seed(0)
    model = with_hotspots(HotspotERC(config_for(("text",), {"graph.nodes": "global"})).eval())
    base = model(batch_of([dialogue], ("text",))).logits[0]
    local = copy.deepcopy(dialogue)
    record = local.utterances[2].features["text"]
    local.utterances[2].features["text"] = ModalityFeatures(
        record.global_vector, rng.normal(size=record.local.shape), record.prior)
    changed = model(batch_of([local], ("text",))).logits[0]
    assert not torch.allclose(changed[2], base[2])
    assert torch.allclose(changed[[0, 1, 3, 4]], base[[0, 1, 3, 4]], atol=1e-6)
    moved = copy.deepcopy(dialogue)
    moved.utterances[2].features["text"] = ModalityFeatures(
        record.global_vector + 5.0, record.local, record.prior)
    assert not torch.allclose(model(batch_of([moved], ("text",))).logits[0, 1], base[1])
    with pytest.raises(ValueError, match="nodes: expected one of 'hgf', 'global', got 'tokens'"):
        config_for(("text",), {"graph.nodes": "tokens"})


# -- neutral start (issue 14): the hotspot path adds to what no_hgf computes -------------------

@pytest.mark.parametrize("neutral_map", [False, True])
@pytest.mark.parametrize("modalities", [("text",), ("text", "audio", "video")])
def test_at_initialisation_full_computes_what_no_hgf_computes(dialogues, modalities,
                                                              neutral_map):
    """With the hotspot scales (or maps) at zero, full's logits equal those of no_hgf holding
    the same weights (its global projections as no_hgf's encoders), MoA and graph included."""
    from hotspot_erc.model.variants import variant_config

    torch.manual_seed(0)
    base = config_for(modalities, {"moa.num_experts": 4, "moa.top_k": 2, "neutral_start": True,
                                   "neutral_map": neutral_map})
    full = HotspotERC(variant_config("full", base)).eval()
    no_hgf = HotspotERC(variant_config("no_hgf", base)).eval()
    shared = {name.replace("global_projections.", "encoders."): value
              for name, value in full.state_dict().items()
              if not name.startswith(("encoders.", "hotspot_scales.", "hotspot_maps."))}
    no_hgf.load_state_dict(shared, strict=True)
    batch = batch_of(dialogues, modalities)
    with torch.no_grad():
        expected = no_hgf(batch).logits
        torch.testing.assert_close(full(batch).logits, expected, atol=1e-5, rtol=1e-5)
        # ...and the hotspot path does matter once its scale moves.
        with_hotspots(full, 0.5)
        assert not torch.allclose(full(batch).logits, expected, atol=1e-3)


@pytest.mark.parametrize("neutral_map", [False, True])
def test_the_hotspot_path_learns_from_the_first_step(dialogues, neutral_map):
    torch.manual_seed(0)
    model = HotspotERC(config_for(("text", "audio", "video"),
                                  {"neutral_start": True, "neutral_map": neutral_map}))
    batch = batch_of(dialogues)
    model.loss(model(batch), batch.labels).backward()
    grads = ([linear.weight.grad for linear in model.hotspot_maps.values()] if neutral_map
             else [scale.grad for scale in model.hotspot_scales.values()])
    assert all(float(g.abs().sum()) > 0 for g in grads)
    if neutral_map:  # every entry of the map learns, not one number per channel
        assert all(float((g != 0).float().mean()) > 0.9 for g in grads)


def test_the_map_is_a_form_of_the_neutral_start():
    with pytest.raises(ValueError, match="neutral_map: .*neutral_start=true"):
        config_for(("text",), {"neutral_map": True})


def test_without_the_neutral_start_the_model_is_the_plain_hgf_one():
    """The default (and every checkpoint written before the option existed, whose config lacks
    the key): F = HGF(...) and zero-edged aligners, with the old parameter names."""
    legacy = config_for(("text", "audio")).to_dict()
    del legacy["neutral_start"]
    config = ModelConfig.from_dict(legacy)
    assert config.neutral_start is False
    model = HotspotERC(config)
    assert model.global_projections is None and model.hotspot_scales is None
    assert all(aligner.edges == "zero" for aligner in model.moa.aligners.values())
    neutral = HotspotERC(config.replace(neutral_start=True))
    assert all(aligner.edges == "replicate" for aligner in neutral.moa.aligners.values())


# -- the causal variant (issue 16): an utterance's output never depends on later ones ----------

@pytest.mark.parametrize("modalities", [("text",), ("text", "audio", "video")])
def test_causal_outputs_of_a_prefix_do_not_change_as_the_dialogue_grows(modalities):
    """What streaming relies on: the logits of utterances 0..k are the same whether the dialogue
    ends at k or goes on; with future edges (full) they are not."""
    from hotspot_erc.model.variants import variant_config

    rng = np.random.default_rng(1)
    dialogue = make_dialogue("d", 7, rng, modalities, missing_rate=0.2)
    base = config_for(modalities)
    for variant, unchanged in (("causal", True), ("full", False)):
        torch.manual_seed(0)
        model = with_hotspots(HotspotERC(variant_config(variant, base))).eval()
        same = []
        with torch.no_grad():
            whole = model(batch_of([dialogue], modalities)).logits[0]
            for k in range(1, 7):
                prefix = Dialogue("d", dialogue.utterances[:k])
                alone = model(batch_of([prefix], modalities)).logits[0, :k]
                same.append(torch.allclose(whole[:k], alone, atol=1e-5))
        assert all(same) if unchanged else not all(same), (variant, same)


@pytest.mark.parametrize("changes, message", [
    ({"graph.future": 2}, "graph edges may not reach future utterances"),
    ({"graph.dialogue_context": True}, "the dialogue context reads the dialogue in both"),
])
def test_the_causal_variant_refuses_what_would_read_the_future(changes, message):
    from hotspot_erc.model.variants import variant_config

    with pytest.raises(ValueError, match=f"causal: {message}"):
        variant_config("causal", config_for(("text",)), changes)
