"""Mixture-of-Aligners: shapes, routing, the balance loss, masking, independence and gradients."""

from __future__ import annotations

import pytest
import torch

from hotspot_erc.model.aligners import mix_experts
from hotspot_erc.model.attention import multi_head_attention
from hotspot_erc.model.moa import MixtureOfAligners, MoAOutput, switch_balance_loss
from hotspot_erc.model.pooling import masked_mean

HIDDEN = 8
LENGTHS = {"text": 7, "audio": 11, "video": 5}


def make_inputs(modalities, num_utterances=4, seed=0, absent=()):
    """Random sequences with a different L per modality and ragged valid lengths per row.

    ``absent`` lists ``(modality, row)`` pairs to mark missing: present False, mask all False.
    """
    generator = torch.Generator().manual_seed(seed)
    sequences, masks, present = {}, {}, {}
    for m in modalities:
        length = LENGTHS[m]
        sequences[m] = torch.randn(num_utterances, length, HIDDEN, generator=generator)
        valid_lengths = torch.randint(1, length + 1, (num_utterances,), generator=generator)
        valid_lengths[0] = length  # one row without padding
        masks[m] = torch.arange(length).unsqueeze(0) < valid_lengths.unsqueeze(1)
        present[m] = torch.ones(num_utterances, dtype=torch.bool)
    for m, row in absent:
        masks[m][row] = False
        present[m][row] = False
    return sequences, masks, present


def build(modalities=("text", "audio"), seed=0, **options) -> MixtureOfAligners:
    torch.manual_seed(seed)
    options.setdefault("max_shift", 2)
    options.setdefault("conv_kernel", 5)
    options.setdefault("low_rank", 3)
    moa = MixtureOfAligners(list(modalities), HIDDEN, heads=2, **options).eval()
    if options.get("time_bias"):
        # Trained-looking lag profiles: zero ones would make every time-bias test vacuous.
        with torch.no_grad():
            for source, target in moa.pairs:
                moa.aligner(source, target).time_bias.table.normal_()
    return moa


def assert_same_valid_outputs(first: MoAOutput, second: MoAOutput, masks, rows=None):
    rows = slice(None) if rows is None else rows
    for m, pooled in first.pooled.items():
        torch.testing.assert_close(pooled[rows], second.pooled[m][rows])
        valid = masks[m][rows]
        torch.testing.assert_close(first.sequences[m][rows][valid],
                                   second.sequences[m][rows][valid])
    for pair, info in first.routing.items():
        torch.testing.assert_close(info.weights[rows], second.routing[pair].weights[rows])


# --- the Switch load-balancing loss -----------------------------------------------------------


def test_balance_loss_matches_a_hand_computed_example():
    probs = torch.tensor([[0.5, 0.3, 0.2],
                          [0.1, 0.6, 0.3],
                          [0.9, 0.05, 0.05]])  # the last row is invalid and must not count
    selected = torch.tensor([[0, 1], [1, 2], [0, 1]])
    valid = torch.tensor([True, True, False])
    # 4 slots: expert 0 once, 1 twice, 2 once -> f = (0.25, 0.5, 0.25)
    # P = mean of the two valid rows = (0.3, 0.45, 0.25)
    # L = 3 * (0.25 * 0.3 + 0.5 * 0.45 + 0.25 * 0.25) = 3 * 0.3625 = 1.0875
    loss = switch_balance_loss(probs, selected, valid, num_experts=3)
    torch.testing.assert_close(loss, torch.tensor(1.0875))


@pytest.mark.parametrize("top_k", [1, 2])
def test_balance_loss_is_one_for_uniform_routing_and_larger_when_collapsed(top_k):
    num_experts, rows = 4, 8
    uniform = torch.full((rows, num_experts), 1.0 / num_experts)
    round_robin = (torch.arange(rows).unsqueeze(1) + torch.arange(top_k)) % num_experts
    valid = torch.ones(rows, dtype=torch.bool)
    torch.testing.assert_close(switch_balance_loss(uniform, round_robin, valid, num_experts),
                               torch.tensor(1.0))

    collapsed = torch.zeros(rows, num_experts)
    collapsed[:, 0] = 1.0
    always_first = torch.arange(top_k).expand(rows, top_k)
    loss = switch_balance_loss(collapsed, always_first, valid, num_experts)
    torch.testing.assert_close(loss, torch.tensor(num_experts / top_k))
    assert loss > 1.0


def test_balance_loss_without_valid_rows_is_zero():
    probs = torch.softmax(torch.randn(3, 4), -1)
    loss = switch_balance_loss(probs, probs.topk(2, -1).indices, torch.zeros(3, dtype=torch.bool),
                               num_experts=4)
    assert loss.item() == 0.0


# --- shapes and routing -----------------------------------------------------------------------


@pytest.mark.parametrize("modalities", [("text", "audio"), ("text", "audio", "video")])
@pytest.mark.parametrize(("num_experts", "top_k"), [(3, 1), (3, 2), (4, 1), (4, 2)])
@pytest.mark.parametrize("routing", [True, False])
def test_output_shapes(modalities, num_experts, top_k, routing):
    moa = build(modalities, num_experts=num_experts, top_k=top_k, routing=routing)
    sequences, masks, present = make_inputs(modalities, num_utterances=3)
    out = moa(sequences, masks, present)
    for m in modalities:
        assert out.pooled[m].shape == (3, HIDDEN)
        assert out.sequences[m].shape == (3, LENGTHS[m], HIDDEN)
        assert torch.isfinite(out.sequences[m]).all() and torch.isfinite(out.pooled[m]).all()
    assert out.balance_loss.shape == ()
    if not routing:
        assert out.routing == {} and out.balance_loss.item() == 0.0
        return
    pairs = {(s, t) for s in modalities for t in modalities if s != t}
    assert set(out.routing) == pairs
    for info in out.routing.values():
        assert info.probs.shape == info.weights.shape == (3, num_experts)
        assert info.selected.shape == (3, top_k) and info.selected.dtype == torch.long
        assert info.valid.all()
    assert out.balance_loss.item() >= 0.0


@pytest.mark.parametrize(("num_experts", "top_k"), [(3, 1), (4, 2), (4, 3)])
def test_topk_keeps_exactly_k_experts_with_renormalised_weights(num_experts, top_k):
    moa = build(("text", "audio", "video"), num_experts=num_experts, top_k=top_k)
    out = moa(*make_inputs(moa.modalities, num_utterances=6))
    for info in out.routing.values():
        nonzero = info.weights != 0
        assert (nonzero.sum(-1) == top_k).all()
        torch.testing.assert_close(info.weights.sum(-1), torch.ones(6))
        # the kept experts are the most probable ones, and the only ones with weight
        assert torch.equal(nonzero, torch.zeros_like(nonzero).scatter(-1, info.selected, True))
        kept_probs = info.probs.gather(-1, info.selected)
        best_dropped = info.probs.masked_fill(nonzero, -1).max(-1).values
        assert (kept_probs.min(-1).values >= best_dropped).all()
        torch.testing.assert_close(info.weights.gather(-1, info.selected),
                                   kept_probs / kept_probs.sum(-1, keepdim=True))


def test_expert_kinds_are_reported():
    assert build(num_experts=4).expert_kinds == ["identity", "shift", "conv", "low_rank"]
    assert build(routing=False).expert_kinds == []


# --- masking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("routing", [True, False])
@pytest.mark.parametrize("time_bias", [False, True])
def test_padding_positions_change_no_valid_output(routing, time_bias):
    moa = build(("text", "audio", "video"), routing=routing, time_bias=time_bias)
    sequences, masks, present = make_inputs(moa.modalities, num_utterances=5)
    reference = moa(sequences, masks, present)
    generator = torch.Generator().manual_seed(1)
    perturbed = {m: torch.where(masks[m].unsqueeze(-1), x,
                                1e4 * torch.randn(x.shape, generator=generator))
                 for m, x in sequences.items()}
    out = moa(perturbed, masks, present)
    assert_same_valid_outputs(reference, out, masks)
    for m in moa.modalities:
        assert out.sequences[m][~masks[m]].abs().sum() == 0
    torch.testing.assert_close(reference.balance_loss, out.balance_loss)


@pytest.mark.parametrize("routing", [True, False])
@pytest.mark.parametrize("time_bias", [False, True])
def test_cutting_the_padding_off_gives_the_same_outputs(routing, time_bias):
    # Zeroed padding is not enough: attending to zero keys would still dilute the attention, so
    # a row fed with its padding cut off must give exactly what it gives inside the batch (and
    # the clock of the time bias counts valid positions only).
    moa = build(("text", "audio", "video"), routing=routing, time_bias=time_bias)
    sequences, masks, present = make_inputs(moa.modalities, absent=[("video", 3)])
    batched = moa(sequences, masks, present)
    for row in range(4):
        lengths = {m: max(1, int(masks[m][row].sum())) for m in moa.modalities}
        one = moa({m: x[row:row + 1, :lengths[m]] for m, x in sequences.items()},
                  {m: x[row:row + 1, :lengths[m]] for m, x in masks.items()},
                  {m: x[row:row + 1] for m, x in present.items()})
        for m in moa.modalities:
            valid = masks[m][row, :lengths[m]]
            torch.testing.assert_close(one.pooled[m][0], batched.pooled[m][row],
                                       atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(one.sequences[m][0][valid],
                                       batched.sequences[m][row, :lengths[m]][valid],
                                       atol=1e-5, rtol=1e-5)


def test_values_of_an_absent_source_change_nothing():
    moa = build(("text", "audio", "video"))
    sequences, masks, present = make_inputs(moa.modalities, absent=[("audio", 1)])
    reference = moa(sequences, masks, present)
    perturbed = dict(sequences, audio=sequences["audio"].clone())
    perturbed["audio"][1] = 1e4 * torch.randn(LENGTHS["audio"], HIDDEN)
    out = moa(perturbed, masks, present)
    assert_same_valid_outputs(reference, out, masks)
    torch.testing.assert_close(reference.balance_loss, out.balance_loss)
    assert not out.routing[("audio", "text")].valid[1]
    assert out.routing[("video", "text")].valid[1]


def test_a_target_averages_only_over_its_present_sources():
    moa = build(("text", "audio", "video"))
    sequences, masks, present = make_inputs(moa.modalities, absent=[("audio", 1)])
    out = moa(sequences, masks, present)
    # Row 1 of text has only video as a source; rows 0, 2, 3 average audio and video.
    text, text_mask = sequences["text"], masks["text"]
    from_video, _ = moa.aligner("video", "text")(text, text_mask, sequences["video"],
                                                 masks["video"], torch.ones(4, dtype=torch.bool))
    from_audio, _ = moa.aligner("audio", "text")(text, text_mask, sequences["audio"],
                                                 masks["audio"], torch.ones(4, dtype=torch.bool))
    torch.testing.assert_close(out.sequences["text"][1][text_mask[1]],
                               from_video[1][text_mask[1]])
    both = (from_video + from_audio) / 2
    for row in (0, 2, 3):
        torch.testing.assert_close(out.sequences["text"][row][text_mask[row]],
                                   both[row][text_mask[row]])


def test_a_target_without_any_present_source_keeps_its_input():
    moa = build(("text", "audio"))
    sequences, masks, present = make_inputs(moa.modalities, absent=[("audio", 2)])
    out = moa(sequences, masks, present)
    text_mask = masks["text"][2]
    torch.testing.assert_close(out.sequences["text"][2][text_mask], sequences["text"][2][text_mask])
    # the absent modality itself: nothing to align, zero sequence and zero pooled vector
    assert out.sequences["audio"][2].abs().sum() == 0
    assert out.pooled["audio"][2].abs().sum() == 0


def test_absent_modality_with_uncleared_mask_is_still_ignored():
    moa = build(("text", "audio"))
    sequences, masks, present = make_inputs(moa.modalities, absent=[("audio", 2)])
    reference = moa(sequences, masks, present)
    stale_masks = dict(masks, audio=masks["audio"].clone())
    stale_masks["audio"][2] = True
    out = moa(sequences, stale_masks, present)
    assert_same_valid_outputs(reference, out, masks)


def test_shared_summaries_give_what_each_pair_computes_on_its_own():
    moa = build(("text", "audio"))
    sequences, masks, present = make_inputs(moa.modalities)
    text, audio = sequences["text"], sequences["audio"]
    valid = torch.ones(4, dtype=torch.bool)
    pair = moa.aligner("audio", "text")
    alone, alone_info = pair(text, masks["text"], audio, masks["audio"], valid)
    summaries = (masked_mean(text, masks["text"], dim=1), masked_mean(audio, masks["audio"], dim=1))
    shared, shared_info = pair(text, masks["text"], audio, masks["audio"], valid, summaries)
    assert torch.equal(alone, shared) and torch.equal(alone_info.weights, shared_info.weights)


def test_dropout_acts_on_the_attention_output_only():
    moa = build(("text", "audio"), dropout=0.5).train()
    sequences, masks, present = make_inputs(moa.modalities)
    text, audio, text_mask, audio_mask = (sequences["text"], sequences["audio"], masks["text"],
                                          masks["audio"])
    pair = moa.aligner("audio", "text")
    valid = torch.ones(4, dtype=torch.bool)
    torch.manual_seed(0)
    out, info = pair(text, text_mask, audio, audio_mask, valid)
    # The same step by hand, with the only random draw on the attention output.
    keys = mix_experts(pair.experts, info.weights, audio, audio_mask)
    attended = multi_head_attention(pair.cross_attention, text, keys, ~audio_mask)
    torch.manual_seed(0)
    expected = pair.norm(text + pair.dropout(attended))
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, pair.norm(text + attended))  # dropout did act


# --- independence, determinism, gradients -------------------------------------------------------


def test_batch_rows_are_independent():
    moa = build(("text", "audio", "video"), top_k=1)
    sequences, masks, present = make_inputs(moa.modalities, absent=[("video", 3)])
    batched = moa(sequences, masks, present)
    for row in range(4):
        one = moa({m: x[row:row + 1] for m, x in sequences.items()},
                  {m: x[row:row + 1] for m, x in masks.items()},
                  {m: x[row:row + 1] for m, x in present.items()})
        for m in moa.modalities:
            torch.testing.assert_close(one.pooled[m][0], batched.pooled[m][row],
                                       atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(one.sequences[m][0], batched.sequences[m][row],
                                       atol=1e-5, rtol=1e-5)
        for pair, info in one.routing.items():
            torch.testing.assert_close(info.probs[0], batched.routing[pair].probs[row])


def test_same_seed_gives_identical_outputs():
    inputs = make_inputs(("text", "audio", "video"))
    first = build(("text", "audio", "video"), seed=3)(*inputs)
    second = build(("text", "audio", "video"), seed=3)(*inputs)
    for m in first.pooled:
        assert torch.equal(first.pooled[m], second.pooled[m])
        assert torch.equal(first.sequences[m], second.sequences[m])
    assert torch.equal(first.balance_loss, second.balance_loss)


def _projected_loss(out: MoAOutput, seed: int = 0) -> torch.Tensor:
    # A random projection: a plain sum of LayerNorm outputs would have zero gradient.
    generator = torch.Generator().manual_seed(seed)
    loss = out.balance_loss
    for m in out.pooled:
        loss = loss + (out.pooled[m] * torch.randn(out.pooled[m].shape, generator=generator)).sum()
        loss = loss + (out.sequences[m] * torch.randn(out.sequences[m].shape,
                                                      generator=generator)).sum()
    return loss


@pytest.mark.parametrize("routing", [True, False])
@pytest.mark.parametrize("time_bias", [False, True])
def test_gradients_reach_every_parameter(routing, time_bias):
    # K = E so that every expert of every pair is selected and must learn.
    moa = build(("text", "audio", "video"), num_experts=4, top_k=4, routing=routing,
                time_bias=time_bias)
    _projected_loss(moa(*make_inputs(moa.modalities))).backward()
    silent = [name for name, p in moa.named_parameters()
              if p.grad is None or p.grad.abs().sum() == 0]
    assert silent == []


@pytest.mark.parametrize("routing", [True, False])
def test_zero_lag_profiles_compute_exactly_the_content_only_attention(routing):
    plain = build(("text", "audio", "video"), routing=routing)
    timed = build(("text", "audio", "video"), routing=routing, time_bias=True)
    with torch.no_grad():
        for source, target in timed.pairs:
            timed.aligner(source, target).time_bias.table.zero_()
    missing, unexpected = timed.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and all(name.endswith("time_bias.table") for name in missing)
    inputs = make_inputs(plain.modalities, absent=[("video", 2)])
    reference, out = plain(*inputs), timed(*inputs)
    assert_same_valid_outputs(reference, out, inputs[1])


def test_the_routing_weights_mix_the_lag_profiles():
    # One expert kept per utterance: its profile alone shapes that utterance's attention, so
    # moving only the other experts' profiles changes nothing in it, and moving its own does.
    moa = build(("text", "audio"), num_experts=3, top_k=1, time_bias=True)
    inputs = make_inputs(moa.modalities)
    reference = moa(*inputs)
    table = moa.aligner("audio", "text").time_bias.table
    chosen = int(reference.routing[("audio", "text")].selected[0, 0])
    with torch.no_grad():
        for expert in set(range(3)) - {chosen}:
            table[expert].add_(5.0 * torch.randn_like(table[expert]))
    assert_same_valid_outputs(reference, moa(*inputs), inputs[1], rows=slice(0, 1))
    with torch.no_grad():
        table[chosen].add_(torch.linspace(-3.0, 3.0, table.shape[-1]))
    moved = moa(*inputs)
    assert not torch.allclose(moved.pooled["text"][0], reference.pooled["text"][0])


def test_router_learns_from_the_task_even_with_top1():
    moa = build(("text", "audio"), num_experts=3, top_k=1)
    out = moa(*make_inputs(moa.modalities))
    _projected_loss(MoAOutput(out.pooled, out.sequences, torch.zeros(()), out.routing)).backward()
    assert moa.aligner("audio", "text").router.weight.grad.abs().sum() > 0


def test_no_nan_gradients_with_absent_modalities():
    moa = build(("text", "audio", "video"), top_k=4)
    inputs = make_inputs(moa.modalities, absent=[("audio", 1), ("video", 1), ("text", 2)])
    _projected_loss(moa(*inputs)).backward()
    assert all(torch.isfinite(p.grad).all() for p in moa.parameters() if p.grad is not None)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    (dict(modalities=["text"]), "at least two modalities"),
    (dict(modalities=["text", "text"]), "distinct"),
    (dict(top_k=5), "top_k must be in 1..num_experts"),
    (dict(num_experts=2, top_k=1), "num_experts must be at least 3"),
    (dict(heads=3), "must divide hidden"),
])
def test_bad_options_are_rejected(options, message):
    modalities = options.pop("modalities", ["text", "audio"])
    with pytest.raises(ValueError, match=message):
        MixtureOfAligners(modalities, HIDDEN, **options)


def test_bad_inputs_name_the_field():
    moa = build(("text", "audio"))
    sequences, masks, present = make_inputs(moa.modalities)
    with pytest.raises(ValueError, match="masks has modalities"):
        moa(sequences, {"text": masks["text"]}, present)
    with pytest.raises(ValueError, match=r"sequences\['audio'\] must be"):
        moa(dict(sequences, audio=sequences["audio"][..., :3]), masks, present)
    with pytest.raises(ValueError, match=r"present\['text'\] must be bool"):
        moa(sequences, masks, dict(present, text=present["text"].float()))
