import contextlib
import math
import warnings

import pytest
import torch
from torch import nn

from hotspot_erc.model.hgf import (
    HotspotGatedFusion,
    _window_sum,
)
from hotspot_erc.model.pooling import masked_mean

INPUT_DIM, GLOBAL_DIM, HIDDEN = 6, 5, 16


def _inputs(lengths: list[int], num_positions: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    rows = len(lengths)
    local = torch.randn(rows, num_positions, INPUT_DIM, generator=generator)
    mask = torch.arange(num_positions)[None, :] < torch.tensor(lengths)[:, None]
    local = local * mask[..., None]  # padding is zero, as batches store it
    global_vector = torch.randn(rows, GLOBAL_DIM, generator=generator)
    prior = torch.rand(rows, num_positions, generator=generator) * mask
    has_prior = torch.arange(rows) % 2 == 0
    return local, mask, global_vector, prior, has_prior


def _model(seed: int = 0, **options) -> HotspotGatedFusion:
    torch.manual_seed(seed)
    return HotspotGatedFusion(INPUT_DIM, GLOBAL_DIM, HIDDEN, **options).eval()


def _single_position_warning(num_positions: int):
    if num_positions == 1:
        return pytest.warns(UserWarning, match="nothing to localise")
    return contextlib.nullcontext()


@pytest.mark.parametrize("encoder", ["transformer", "gru"])
@pytest.mark.parametrize("weighting", ["sigmoid", "topk_softmax"])
@pytest.mark.parametrize("num_positions", [1, 7, 33])
@pytest.mark.parametrize("use_prior", [True, False])
def test_shapes_ranges_and_fusion_equation(encoder, weighting, num_positions, use_prior):
    model = _model(encoder=encoder, weighting=weighting, use_prior=use_prior)
    lengths = [num_positions, max(1, num_positions // 2), 1]
    local, mask, global_vector, prior, has_prior = _inputs(lengths, num_positions)
    with _single_position_warning(num_positions):
        out = model(local, mask, global_vector, prior, has_prior)
    rows = len(lengths)
    for name in ("fused", "content", "gate"):
        assert getattr(out, name).shape == (rows, num_positions, HIDDEN), name
    assert out.hotspot_weights.shape == out.hotspot_scores.shape == (rows, num_positions)

    valid = mask
    assert torch.all((out.hotspot_weights >= 0) & (out.hotspot_weights <= 1))
    assert torch.all(out.hotspot_weights[~valid] == 0)
    assert torch.isfinite(out.hotspot_scores[valid]).all()
    assert torch.all(out.hotspot_scores[~valid] == float("-inf"))
    for name in ("fused", "content", "gate"):
        assert torch.all(getattr(out, name)[~valid] == 0), name
    assert torch.all((out.gate[valid] > 0) & (out.gate[valid] < 1))

    hotspots = out.hotspot_weights[..., None] * out.content
    expected = out.gate * hotspots + (1 - out.gate) * out.content
    assert torch.allclose(out.fused, expected, atol=1e-6)
    if weighting == "sigmoid":
        weights = torch.sigmoid(out.hotspot_scores).masked_fill(~valid, 0.0)
        assert torch.allclose(out.hotspot_weights, weights, atol=1e-6)


def test_gate_varies_over_positions_and_channels():
    local, mask, global_vector, prior, has_prior = _inputs([7, 5], 7)
    gate = _model()(local, mask, global_vector, prior, has_prior).gate[mask]  # (valid, H)
    assert gate.std(dim=0).min() > 1e-3 and gate.std(dim=1).min() > 1e-3


def test_single_position_warns_once_per_instance():
    local, mask, global_vector, _, _ = _inputs([1, 1], 1)
    model = _model()
    with pytest.warns(UserWarning, match="nothing to localise"):
        first = model(local, mask, global_vector)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = model(local, mask, global_vector)
    assert not caught
    assert torch.allclose(first.fused, second.fused)
    assert torch.isfinite(first.fused).all()
    with pytest.warns(UserWarning, match="nothing to localise"):
        _model()(local, mask, global_vector)


@pytest.mark.parametrize("encoder", ["transformer", "gru"])
@pytest.mark.parametrize("weighting", ["sigmoid", "topk_softmax"])
def test_padding_values_do_not_change_valid_outputs(encoder, weighting):
    model = _model(encoder=encoder, weighting=weighting)
    local, mask, global_vector, prior, has_prior = _inputs([9, 4, 1], 9)
    mask[0, 3] = False  # a hole inside a sequence, not only trailing padding
    local = local * mask[..., None]
    reference = model(local, mask, global_vector, prior, has_prior)

    generator = torch.Generator().manual_seed(1)
    noisy_local = local.clone()
    noisy_local[~mask] = 1e3 * torch.randn(int((~mask).sum()), INPUT_DIM, generator=generator)
    noisy_prior = torch.where(mask, prior, torch.rand(prior.shape, generator=generator))
    noisy = model(noisy_local, mask, global_vector, noisy_prior, has_prior)
    nan_local = local.masked_fill(~mask[..., None], float("nan"))
    with_nan = model(nan_local, mask, global_vector, noisy_prior, has_prior)

    for perturbed in (noisy, with_nan):
        for name in ("fused", "content", "gate", "hotspot_weights"):
            assert torch.allclose(getattr(reference, name), getattr(perturbed, name),
                                  atol=1e-5), name
        assert torch.allclose(reference.hotspot_scores[mask], perturbed.hotspot_scores[mask],
                              atol=1e-5)


@pytest.mark.parametrize("encoder", ["transformer", "gru"])
@pytest.mark.parametrize("weighting", ["sigmoid", "topk_softmax"])
def test_amount_of_padding_changes_nothing(encoder, weighting):
    model = _model(encoder=encoder, weighting=weighting)
    local, mask, global_vector, prior, has_prior = _inputs([5, 3], 5)
    tight = model(local, mask, global_vector, prior, has_prior)
    extra = 7
    padded = model(nn.functional.pad(local, (0, 0, 0, extra)),
                   nn.functional.pad(mask, (0, extra)), global_vector,
                   nn.functional.pad(prior, (0, extra)), has_prior)
    for name in ("fused", "content", "gate", "hotspot_weights", "hotspot_scores"):
        assert torch.allclose(getattr(tight, name), getattr(padded, name)[:, :5], atol=1e-5), name


@pytest.mark.parametrize("encoder", ["transformer", "gru"])
@pytest.mark.parametrize("weighting", ["sigmoid", "topk_softmax"])
def test_rows_are_independent(encoder, weighting):
    model = _model(encoder=encoder, weighting=weighting)
    local, mask, global_vector, prior, has_prior = _inputs([8, 3, 6], 8)
    batched = model(local, mask, global_vector, prior, has_prior)
    for row in range(3):
        alone = model(local[row:row + 1], mask[row:row + 1], global_vector[row:row + 1],
                      prior[row:row + 1], has_prior[row:row + 1])
        assert torch.allclose(batched.fused[row], alone.fused[0], atol=1e-5)
        assert torch.allclose(batched.hotspot_weights[row], alone.hotspot_weights[0], atol=1e-5)


@pytest.mark.parametrize("encoder", ["transformer", "gru"])
def test_prior_moves_weights_in_its_direction(encoder):
    model = _model(encoder=encoder)
    local, mask, global_vector, _, _ = _inputs([9, 9], 9)
    has_prior = torch.tensor([True, False])
    neutral = torch.full((2, 9), 0.5)
    salient = neutral.clone()
    salient[:, 4] = 0.95
    base = model(local, mask, global_vector, neutral, has_prior).hotspot_weights
    raised = model(local, mask, global_vector, salient, has_prior).hotspot_weights
    assert raised[0, 4] > base[0, 4]
    # The box smoothing (3 taps) reaches one neighbour each side and no further.
    assert torch.all(raised[0, 3:6] > base[0, 3:6])
    assert torch.allclose(raised[0, :3], base[0, :3]) and torch.allclose(raised[0, 6:], base[0, 6:])
    assert torch.allclose(raised[1], base[1])  # has_prior False: the prior is ignored

    with torch.no_grad():
        model.prior_scale.fill_(-1.0)
    lowered = model(local, mask, global_vector, salient, has_prior).hotspot_weights
    assert lowered[0, 4] < base[0, 4]


def test_without_use_prior_there_is_no_beta_and_priors_are_ignored():
    model = _model(use_prior=False)
    assert not hasattr(model, "prior_scale")
    local, mask, global_vector, prior, has_prior = _inputs([7, 4], 7)
    with_prior = model(local, mask, global_vector, prior, has_prior)
    without = model(local, mask, global_vector)
    assert torch.equal(with_prior.fused, without.fused)


def test_smoothing_is_a_masked_renormalised_box_average():
    model = _model()
    with torch.no_grad():
        model.score.weight.zero_()
        model.score.bias.zero_()
    local, mask, global_vector, _, _ = _inputs([4], 6)
    prior = torch.full((1, 6), 0.5)
    prior[0, 3] = 0.9  # a spike on the last valid position; positions 4 and 5 are padding
    prior[0, 0] = 0.8
    scores = model(local, mask, global_vector, prior, torch.tensor([True])).hotspot_scores[0]
    spike, edge = math.log(0.9 / 0.1), math.log(0.8 / 0.2)
    # Position 0 and 3 each have one missing neighbour, so they average over two positions.
    expected = torch.tensor([edge / 2, edge / 3, spike / 3, spike / 2])
    assert torch.allclose(scores[:4], expected, atol=1e-5)
    assert torch.all(scores[4:] == float("-inf"))


def test_kernel_of_one_does_not_smooth():
    model = _model(smoothing_kernel=1)
    with torch.no_grad():
        model.score.weight.zero_()
        model.score.bias.zero_()
    local, mask, global_vector, _, _ = _inputs([5], 5)
    prior = torch.tensor([[0.5, 0.5, 0.9, 0.5, 0.5]])
    scores = model(local, mask, global_vector, prior, torch.tensor([True])).hotspot_scores[0]
    assert torch.allclose(scores, torch.tensor([0, 0, math.log(9), 0, 0]), atol=1e-5)


def test_topk_softmax_is_a_distribution_over_k_positions_with_kernel_one():
    model = _model(weighting="topk_softmax", top_k=2, smoothing_kernel=1)
    local, mask, global_vector, prior, has_prior = _inputs([9, 5, 1], 9)
    out = model(local, mask, global_vector, prior, has_prior)
    weights = out.hotspot_weights
    assert torch.allclose(weights.sum(dim=1), torch.ones(3), atol=1e-6)
    assert ((weights > 0).sum(dim=1) <= 2).all()
    best = out.hotspot_scores.argmax(dim=1)
    assert torch.equal(weights.argmax(dim=1), best)


def test_topk_softmax_windows_cover_short_spans():
    model = _model(weighting="topk_softmax", top_k=2, smoothing_kernel=3)
    out = model(*_inputs([20, 11], 20))
    nonzero = (out.hotspot_weights > 0).sum(dim=1)
    assert (nonzero >= 2).all() and (nonzero <= 2 * 3).all()
    assert (out.hotspot_weights.max(dim=1).values <= 1).all()


@pytest.mark.parametrize("encoder", ["transformer", "gru"])
@pytest.mark.parametrize("weighting", ["sigmoid", "topk_softmax"])
def test_gradients_reach_every_parameter(encoder, weighting):
    model = _model(encoder=encoder, weighting=weighting, layers=2).train()
    local, mask, global_vector, prior, has_prior = _inputs([7, 5, 3], 7)
    out = model(local, mask, global_vector, prior, has_prior)
    # A random read-out: a plain sum is blind to anything a LayerNorm normalises away.
    read_out = torch.randn(out.fused.shape, generator=torch.Generator().manual_seed(2))
    (out.fused * read_out).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 1e-6, name


def test_same_seed_gives_identical_outputs_in_training_mode():
    outputs = []
    for _ in range(2):
        model = _model(seed=3, dropout=0.3).train()
        torch.manual_seed(4)
        outputs.append(model(*_inputs([7, 4], 7)))
    for name in ("fused", "hotspot_weights", "gate"):
        assert torch.equal(getattr(outputs[0], name), getattr(outputs[1], name))


@pytest.mark.parametrize(("hidden", "options", "message"), [
    (HIDDEN, {"encoder": "lstm"}, "encoder='lstm'"),
    (HIDDEN, {"weighting": "softmax"}, "weighting='softmax'"),
    (HIDDEN, {"smoothing_kernel": 4}, "smoothing_kernel=4"),
    (HIDDEN, {"heads": 3}, "divisible by heads=3"),
    (HIDDEN, {"top_k": 0}, ">= 1"),
    (15, {"encoder": "gru"}, "must be even"),
])
def test_constructor_rejects_bad_options(hidden, options, message):
    with pytest.raises(ValueError, match=message):
        HotspotGatedFusion(INPUT_DIM, GLOBAL_DIM, hidden, **options)


def test_forward_rejects_bad_inputs():
    model = _model(max_positions=8)
    local, mask, global_vector, prior, has_prior = _inputs([5, 3], 5)
    empty_row = mask.clone()
    empty_row[1] = False
    with pytest.raises(ValueError, match="at least one valid position"):
        model(local, empty_row, global_vector)
    with pytest.raises(ValueError, match=r"local has shape .* expected \(N, L, 6\)"):
        model(local[..., :4], mask, global_vector)
    with pytest.raises(ValueError, match="local_mask"):
        model(local, mask.float(), global_vector)
    with pytest.raises(ValueError, match="global_vector"):
        model(local, mask, global_vector[:, :2])
    with pytest.raises(ValueError, match="prior has shape"):
        model(local, mask, global_vector, prior[:, :3], has_prior)
    with pytest.raises(ValueError, match="has_prior"):
        model(local, mask, global_vector, prior, has_prior.float())
    with pytest.raises(ValueError, match="max_positions=8"):
        model(*_inputs([9], 9)[:3])


def test_hotspot_weights_learn_the_signature_position():
    """The label is the sign of feature 0 at one marked position; other positions carry random
    signs there. The scoring path (projection, score, smoothing, gate) is trained from the label
    alone and must put more weight on the marked position than elsewhere.

    The encoder is frozen here on purpose: trained too, its attention can copy the marked
    position's evidence to every position and solve this toy task with flat weights, so the
    weights would be legitimately unidentified rather than unlearnable.
    """
    torch.manual_seed(0)
    rows, positions, dim = 64, 12, 8

    def make_task(count: int):
        local = torch.randn(count, positions, dim)
        local[..., 0] = 3.0 * torch.sign(torch.randn(count, positions))
        lengths = torch.randint(6, positions + 1, (count,))
        mask = torch.arange(positions)[None, :] < lengths[:, None]
        hotspot = (torch.rand(count) * lengths).long()
        labels = torch.randint(0, 2, (count,))
        local[torch.arange(count), hotspot, 0] = torch.where(labels == 1, 3.0, -3.0)
        local[torch.arange(count), hotspot, 1] = 4.0  # the signature's marker
        return local, mask, hotspot, labels

    model = HotspotGatedFusion(dim, 4, 16, heads=2, dropout=0.0, use_prior=False)
    model.encoder.requires_grad_(False)
    head = nn.Linear(16, 2)
    trainable = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimiser = torch.optim.Adam(trainable, lr=1e-2)
    no_global = torch.zeros(rows, 4)
    for _ in range(100):
        local, mask, _, labels = make_task(rows)
        fused = model(local, mask, no_global).fused
        loss = nn.functional.cross_entropy(head(masked_mean(fused, mask, dim=1)), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    model.eval()
    with torch.no_grad():
        local, mask, hotspot, labels = make_task(256)
        out = model(local, mask, torch.zeros(256, 4))
        accuracy = (head(masked_mean(out.fused, mask, dim=1)).argmax(1) == labels).float().mean()
        weights = out.hotspot_weights
        at_hotspot = weights[torch.arange(256), hotspot]
        elsewhere = mask.clone()
        elsewhere[torch.arange(256), hotspot] = False
    assert accuracy > 0.9
    assert at_hotspot.mean() > 2 * weights[elsewhere].mean()


# --- the fast paths against PyTorch's own modules -------------------------------------------------


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("training", [False, True])
def test_encoder_forward_equals_pytorchs_transformer_encoder(layers, training):
    model = _model(layers=layers, dropout=0.3).train(training)
    x = torch.randn(3, 9, HIDDEN, generator=torch.Generator().manual_seed(1))
    padding = torch.arange(9)[None, :] >= torch.tensor([9, 4, 1])[:, None]
    torch.manual_seed(7)  # in training both draw the same dropout masks in the same order
    fast = model._encode_transformer(x, padding)
    torch.manual_seed(7)
    reference = model.encoder(x, src_key_padding_mask=padding)
    torch.testing.assert_close(fast[~padding], reference[~padding], atol=1e-5, rtol=1e-5)


def test_gate_reads_content_and_hotspots_as_the_equation_says():
    model = _model()
    local, mask, global_vector, prior, has_prior = _inputs([7, 3], 7)
    out = model(local, mask, global_vector, prior, has_prior)
    hotspots = out.hotspot_weights[..., None] * out.content
    expected = torch.sigmoid(model.gate(torch.cat([out.content, hotspots], dim=-1)))
    torch.testing.assert_close(out.gate[mask], expected[mask], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("taps", [1, 3, 5])
def test_window_sum_is_a_zero_padded_correlation(taps):
    generator = torch.Generator().manual_seed(taps)
    values = torch.randn(4, 8, generator=generator)
    kernel = torch.randn(taps, generator=generator)
    reference = nn.functional.conv1d(values[:, None, :], kernel.view(1, 1, -1),
                                     padding=taps // 2)[:, 0]
    torch.testing.assert_close(_window_sum(values, kernel), reference)
