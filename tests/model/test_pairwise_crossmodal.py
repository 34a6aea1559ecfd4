"""Tests of the pairwise cross-modal transformers (CORECT's P-CM)."""

from __future__ import annotations

import pytest
import torch

from hotspot_erc.model.pairwise_crossmodal import PairwiseCrossModalTransformer

HIDDEN = 16


def make_model(num_modalities: int, seed: int = 0, dropout: float = 0.0,
               **kwargs) -> PairwiseCrossModalTransformer:
    torch.manual_seed(seed)
    return PairwiseCrossModalTransformer(num_modalities, HIDDEN, heads=4, layers=2,
                                         dropout=dropout, **kwargs)


def make_inputs(num_modalities: int, lengths: tuple[int, ...], seed: int = 1):
    """Random vectors, a ragged batch of dialogues and absent modalities at a few utterances."""
    generator = torch.Generator().manual_seed(seed)
    batch, width = len(lengths), max(lengths)
    vectors = torch.randn(batch, width, num_modalities, HIDDEN, generator=generator)
    utterance_mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]  # (B, U)
    present = torch.rand(batch, width, num_modalities, generator=generator) > 0.3
    present[:, 0, :] = True  # every modality usable in every dialogue
    present &= utterance_mask[:, :, None]
    return vectors, present, utterance_mask


@pytest.mark.parametrize("num_modalities", [2, 3])
def test_shape_and_zero_outside_valid(num_modalities):
    model = make_model(num_modalities).eval()
    vectors, present, utterance_mask = make_inputs(num_modalities, (5, 3))
    output = model(vectors, present, utterance_mask)
    assert output.shape == (2, 5, num_modalities, HIDDEN)
    valid = present & utterance_mask[:, :, None]
    assert torch.isfinite(output).all()
    assert (output[~valid] == 0).all()
    assert (output[valid].abs().sum(dim=-1) > 0).all()


@pytest.mark.parametrize("bad", [1e6, float("nan")])
def test_padding_and_absent_values_do_not_change_valid_outputs(bad):
    model = make_model(3).eval()
    vectors, present, utterance_mask = make_inputs(3, (6, 4))
    valid = present & utterance_mask[:, :, None]
    reference = model(vectors, present, utterance_mask)
    perturbed = torch.where(valid[..., None], vectors, torch.full_like(vectors, bad))
    assert torch.equal(model(perturbed, present, utterance_mask)[valid], reference[valid])
    # More padding at the end of the batch changes nothing either.
    extra = 3
    padded = model(torch.cat([vectors, torch.full((2, extra, 3, HIDDEN), bad)], dim=1),
                   torch.cat([present, torch.zeros(2, extra, 3, dtype=torch.bool)], dim=1),
                   torch.cat([utterance_mask, torch.zeros(2, extra, dtype=torch.bool)], dim=1))
    torch.testing.assert_close(padded[:, :6][valid], reference[valid])


def test_present_source_values_do_change_the_target():
    model = make_model(2).eval()
    vectors, present, utterance_mask = make_inputs(2, (5,))
    reference = model(vectors, present, utterance_mask)
    changed = vectors.clone()
    # A random direction: a constant shift would be erased by the source LayerNorm.
    changed[0, 0, 1] += 3.0 * torch.randn(HIDDEN, generator=torch.Generator().manual_seed(3))
    output = model(changed, present, utterance_mask)
    target_valid = present[0, :, 0]
    assert not torch.allclose(output[0, target_valid, 0], reference[0, target_valid, 0])


def test_dialogues_in_a_batch_are_independent():
    model = make_model(3).eval()
    vectors, present, utterance_mask = make_inputs(3, (4, 7))
    batched = model(vectors, present, utterance_mask)
    for b, length in enumerate((4, 7)):
        alone = model(vectors[b:b + 1, :length], present[b:b + 1, :length],
                      utterance_mask[b:b + 1, :length])
        torch.testing.assert_close(alone[0], batched[b, :length])


def test_gradients_reach_every_parameter():
    model = make_model(3, dropout=0.1).train()
    vectors, present, utterance_mask = make_inputs(3, (5, 4))
    output = model(vectors, present, utterance_mask)
    # A random projection: the plain sum of a LayerNorm output has no gradient w.r.t. its input.
    projection = torch.randn(HIDDEN, generator=torch.Generator().manual_seed(2))
    (output @ projection).pow(2).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_same_seed_gives_identical_outputs_in_training_mode():
    vectors, present, utterance_mask = make_inputs(3, (5, 4))
    outputs = []
    for _ in range(2):
        model = make_model(3, seed=7, dropout=0.3).train()
        torch.manual_seed(11)
        outputs.append(model(vectors, present, utterance_mask))
    assert torch.equal(outputs[0], outputs[1])
    other = make_model(3, seed=8, dropout=0.3).train()
    torch.manual_seed(11)
    assert not torch.allclose(other(vectors, present, utterance_mask), outputs[0])


def attention_free_reference(model: PairwiseCrossModalTransformer, target: int,
                             target_vectors: torch.Tensor) -> torch.Tensor:
    """The documented fallback, written out: mean over sources of the feed-forward-only stacks."""
    stream = target_vectors + model.position_embedding.weight[:target_vectors.shape[0]]  # (U, H)
    outputs = []
    for source in range(model.num_modalities):
        if source == target:
            continue
        transformer = model.pair_transformers[f"{source}_to_{target}"]
        state = stream
        for block in transformer.blocks:
            state = state + block.feed_forward(block.feed_forward_norm(state))
        outputs.append(transformer.output_norm(state))
    return torch.stack(outputs).mean(dim=0)


@pytest.mark.parametrize("num_modalities", [2, 3])
def test_target_without_any_usable_source_falls_back_to_attention_free_stacks(num_modalities):
    model = make_model(num_modalities).eval()
    vectors, present, utterance_mask = make_inputs(num_modalities, (5, 6))
    present[0, :, 1:] = False  # dialogue 0: only modality 0, no source for it anywhere
    output = model(vectors, present, utterance_mask)
    target_valid = present[0, :5, 0]
    expected = attention_free_reference(model, 0, vectors[0, :5, 0])
    torch.testing.assert_close(output[0, :5, 0][target_valid], expected[target_valid])
    assert torch.isfinite(output).all()
    # Dialogue 1 still reads its sources: the fallback is confined to dialogue 0.
    assert not torch.allclose(output[1, :5, 0], attention_free_reference(model, 0,
                                                                         vectors[1, :5, 0]))


def test_unusable_source_is_left_out_of_the_average():
    model = make_model(3).eval()
    vectors, present, utterance_mask = make_inputs(3, (5,))
    present[0, :, 2] = False  # modality 2 absent throughout: target 0 reads modality 1 alone
    output = model(vectors, present, utterance_mask)
    stream = vectors[0] + model.position_embedding.weight[:5, None, :]  # (U, M, H)
    only_pair = model.pair_transformers["1_to_0"](stream[None, :, 0], stream[None, :, 1],
                                                  present[:, :, 1])
    target_valid = present[0, :, 0]
    torch.testing.assert_close(output[0, target_valid, 0], only_pair[0, target_valid])


def test_invalid_configuration_and_inputs_raise():
    with pytest.raises(ValueError, match="num_modalities"):
        PairwiseCrossModalTransformer(1, HIDDEN)
    with pytest.raises(ValueError, match="heads"):
        PairwiseCrossModalTransformer(2, 10, heads=4)
    model = make_model(2, max_utterances=4)
    vectors, present, utterance_mask = make_inputs(2, (5,))
    with pytest.raises(ValueError, match="max_utterances"):
        model(vectors, present, utterance_mask)
    with pytest.raises(ValueError, match="present"):
        model(vectors[:, :4], present[:, :4].float(), utterance_mask[:, :4])
    with pytest.raises(ValueError, match="utterance_vectors"):
        model(vectors[:, :4, :, :8], present[:, :4], utterance_mask[:, :4])
