"""Each aligner expert on its own: what it computes and that padding never leaks into it."""

from __future__ import annotations

import pytest
import torch

from hotspot_erc.model.aligners import (
    DepthwiseConvAligner,
    IdentityAligner,
    LowRankAligner,
    ShiftAligner,
    build_aligner_experts,
    mix_experts,
    mix_experts_reference,
)

HIDDEN = 6


def _inputs(lengths: list[int], max_len: int = 10,
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max_len, HIDDEN, generator=generator)
    mask = torch.arange(max_len).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return x, mask


def _perturb_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.unsqueeze(-1), x, 1e4 * torch.randn_like(x))


def test_identity_returns_input_at_valid_positions_and_zero_at_padding():
    x, mask = _inputs([10, 4])
    out = IdentityAligner()(x, mask)
    assert torch.equal(out[mask], x[mask])
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))


@pytest.mark.parametrize("offset", [-3, -1, 0, 2, 4])
def test_shift_moves_an_impulse_by_the_offset_its_logits_select(offset):
    shift = ShiftAligner(max_shift=4)
    with torch.no_grad():
        shift.shift_logits.fill_(-50.0)
        shift.shift_logits[offset + shift.max_shift] = 50.0
    x = torch.zeros(1, 12, HIDDEN)
    x[0, 5] = torch.arange(1.0, HIDDEN + 1)  # a one-hot impulse in time with distinct channels
    mask = torch.ones(1, 12, dtype=torch.bool)
    out = shift(x, mask)
    expected = torch.zeros_like(x)
    expected[0, 5 + offset] = x[0, 5]
    torch.testing.assert_close(out, expected)


def test_shift_offsets_match_logit_indices():
    assert ShiftAligner(max_shift=2).offsets().tolist() == [-2, -1, 0, 1, 2]


def test_shift_with_uniform_logits_averages_the_window_and_learns():
    shift = ShiftAligner(max_shift=1)
    x = torch.zeros(1, 5, HIDDEN)
    x[0, 2] = 3.0
    out = shift(x, torch.ones(1, 5, dtype=torch.bool))
    torch.testing.assert_close(out[0, 1:4], torch.ones(3, HIDDEN))
    assert out[0, [0, 4]].abs().sum() == 0
    (out[0, 1].sum() * 2 + out[0, 3].sum()).backward()
    assert shift.shift_logits.grad is not None and shift.shift_logits.grad.abs().sum() > 0


def test_shift_does_not_carry_content_into_or_out_of_padding():
    shift = ShiftAligner(max_shift=3)
    with torch.no_grad():
        shift.shift_logits.normal_()
    x, mask = _inputs([10, 6, 2])
    out = shift(x, mask)
    torch.testing.assert_close(out, shift(_perturb_padding(x, mask), mask))
    assert out[~mask].abs().sum() == 0


def test_conv_respects_the_mask_and_spans_its_kernel():
    conv = DepthwiseConvAligner(HIDDEN, kernel_size=5)
    x, mask = _inputs([10, 7, 1])
    out = conv(x, mask)
    torch.testing.assert_close(out, conv(_perturb_padding(x, mask), mask))
    assert out[~mask].abs().sum() == 0

    impulse = torch.zeros(1, 11, HIDDEN)
    impulse[0, 5] = 1.0
    response = conv(impulse, torch.ones(1, 11, dtype=torch.bool)) - conv.conv.bias
    reached = response.abs().sum(-1)[0] > 0  # (11,)
    assert reached.tolist() == [False] * 3 + [True] * 5 + [False] * 3


def test_low_rank_respects_the_mask_and_its_rank():
    low_rank = LowRankAligner(HIDDEN, rank=2)
    x, mask = _inputs([10, 3])
    out = low_rank(x, mask)
    torch.testing.assert_close(out, low_rank(_perturb_padding(x, mask), mask))
    assert out[~mask].abs().sum() == 0
    # The map applied to the identity basis is its matrix; a rank-2 map has rank 2.
    matrix = low_rank(torch.eye(HIDDEN).unsqueeze(0), torch.ones(1, HIDDEN, dtype=torch.bool))[0]
    assert torch.linalg.matrix_rank(matrix).item() == 2


@pytest.mark.parametrize(("num_experts", "kinds"), [
    (3, ["identity", "shift", "conv"]),
    (4, ["identity", "shift", "conv", "low_rank"]),
    (6, ["identity", "shift", "conv", "low_rank", "shift", "conv"]),
])
def test_build_lays_out_kinds_in_order(num_experts, kinds):
    experts = build_aligner_experts(num_experts, HIDDEN, max_shift=2, conv_kernel=5, low_rank=3)
    assert [expert.kind for expert in experts] == kinds


def test_repeated_kinds_have_their_own_parameters():
    experts = build_aligner_experts(6, HIDDEN, max_shift=2, conv_kernel=5, low_rank=3)
    assert experts[1].shift_logits is not experts[4].shift_logits
    assert experts[2].conv.weight is not experts[5].conv.weight


@pytest.mark.parametrize(("build", "message"), [
    (lambda: build_aligner_experts(2, HIDDEN, max_shift=2, conv_kernel=5, low_rank=3),
     "num_experts must be at least 3"),
    (lambda: ShiftAligner(0), "max_shift must be at least 1"),
    (lambda: DepthwiseConvAligner(HIDDEN, 4), "kernel_size must be odd"),
    (lambda: LowRankAligner(HIDDEN, HIDDEN + 1), "rank must be in 1..hidden"),
])
def test_bad_options_are_rejected(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# --- the one-pass mixture against running every expert on its own -------------------------------


def _randomised_experts(num_experts: int, max_shift: int, conv_kernel: int):
    experts = build_aligner_experts(num_experts, HIDDEN, max_shift=max_shift,
                                    conv_kernel=conv_kernel, low_rank=3)
    generator = torch.Generator().manual_seed(num_experts)
    with torch.no_grad():  # non-trivial shift logits and a non-zero conv bias
        for parameter in experts.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return experts


@pytest.mark.parametrize("num_experts", [3, 4, 6])
@pytest.mark.parametrize(("max_shift", "conv_kernel"), [(2, 5), (4, 3)])  # either one widest
def test_one_pass_mixture_equals_the_per_expert_sum_with_gradients(num_experts, max_shift,
                                                                  conv_kernel):
    experts = _randomised_experts(num_experts, max_shift, conv_kernel)
    x, mask = _inputs([10, 7, 1, 4])
    x = _perturb_padding(x, mask).requires_grad_()
    generator = torch.Generator().manual_seed(5)
    weights = torch.softmax(torch.randn(4, num_experts, generator=generator), dim=-1)
    weights = weights.masked_fill(torch.rand(4, num_experts, generator=generator) < 0.3, 0.0)
    weights.requires_grad_()
    read_out = torch.randn(4, 10, HIDDEN, generator=generator)

    results = []
    for mix in (mix_experts, mix_experts_reference):
        out = mix(experts, weights, x, mask)
        inputs = [x, weights, *experts.parameters()]
        results.append((out, torch.autograd.grad((out * read_out).sum(), inputs)))
    (fast, fast_grads), (reference, reference_grads) = results
    torch.testing.assert_close(fast, reference, atol=1e-4, rtol=1e-5)
    assert fast[~mask].abs().sum() == 0
    for fast_grad, reference_grad in zip(fast_grads, reference_grads, strict=True):
        torch.testing.assert_close(fast_grad, reference_grad, atol=1e-3, rtol=1e-4)
    assert fast_grads[0][~mask].abs().sum() == 0  # padding is never read


@pytest.mark.parametrize("length", [1, 2, 3])
def test_one_pass_mixture_of_sequences_shorter_than_the_kernel(length):
    experts = _randomised_experts(4, 4, 7)  # 9 and 7 taps against 1 to 3 positions
    x, mask = _inputs([length, 1], max_len=length)
    weights = torch.softmax(torch.randn(2, 4, generator=torch.Generator().manual_seed(3)), -1)
    torch.testing.assert_close(mix_experts(experts, weights, x, mask),
                               mix_experts_reference(experts, weights, x, mask))


def test_an_expert_nobody_selects_gets_an_exactly_zero_gradient():
    experts = _randomised_experts(4, 2, 5)
    x, mask = _inputs([10, 6])
    weights = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.7, 0.0, 0.3]])
    mix_experts(experts, weights, x, mask).pow(2).sum().backward()
    conv, low_rank = experts[2], experts[3]
    assert conv.conv.weight.grad.abs().sum() == 0 and conv.conv.bias.grad.abs().sum() == 0
    assert low_rank.up.weight.grad.abs().sum() > 0 and experts[1].shift_logits.grad.abs().sum() > 0


def test_one_pass_mixture_of_no_rows_is_empty():
    experts = _randomised_experts(4, 2, 5)
    out = mix_experts(experts, torch.zeros(0, 4), torch.zeros(0, 5, HIDDEN),
                      torch.zeros(0, 5, dtype=torch.bool))
    assert out.shape == (0, 5, HIDDEN)


def test_identity_initialised_experts_start_by_passing_the_source_through():
    x, mask = _inputs([10, 6, 3])
    conv = DepthwiseConvAligner(HIDDEN, kernel_size=5, init="identity")
    torch.testing.assert_close(conv(x, mask), x * mask[..., None])
    shift = ShiftAligner(max_shift=3, init="identity")
    torch.testing.assert_close(shift(x, mask), x * mask[..., None], atol=0.05, rtol=0.05)
    assert torch.softmax(shift.shift_logits, 0)[3] > 0.98
    with pytest.raises(ValueError, match="aligner init='bogus'"):
        ShiftAligner(max_shift=3, init="bogus")


def test_a_constant_sequence_is_aligned_as_its_single_position():
    """Edge-replicating experts map a constant sequence to the constant one position gives:
    what lets the full model start as no_hgf (model.py, neutral start)."""
    torch.manual_seed(0)
    experts = build_aligner_experts(4, HIDDEN, max_shift=2, conv_kernel=5, low_rank=3)
    with torch.no_grad():
        experts[1].shift_logits.normal_()
    value = torch.randn(2, 1, HIDDEN)
    weights = torch.softmax(torch.randn(2, 4), dim=-1)
    one = mix_experts(experts, weights, value, torch.ones(2, 1, dtype=torch.bool))
    mask = torch.tensor([[True] * 7, [True, False, True, True, False, False, False]])
    many = mix_experts(experts, weights, value.expand(2, 7, HIDDEN), mask)
    torch.testing.assert_close(many[mask], one[:, 0][[0] * 7 + [1] * 3], atol=1e-5, rtol=1e-5)
