"""Dialogue context encoder: masking of missing utterances, order, speakers, model wiring."""

from __future__ import annotations

import pytest
import torch

from hotspot_erc.model.dialogue_context import DialogueContext


@pytest.fixture
def module():
    torch.manual_seed(0)
    return DialogueContext(2, 8, max_speakers=3).eval()


def inputs(batch=2, width=5, modalities=2, hidden=8, seed=1):
    generator = torch.Generator().manual_seed(seed)
    nodes = torch.randn(batch, width, modalities, hidden, generator=generator)
    present = torch.ones(batch, width, modalities, dtype=torch.bool)
    mask = torch.ones(batch, width, dtype=torch.bool)
    speakers = torch.tensor([[0, 1, 0, 1, 0]] * batch)
    return nodes, present, mask, speakers


def test_missing_utterances_are_skipped_not_read(module):
    nodes, present, mask, speakers = inputs()
    present[0, 2, 1] = False
    out = module(nodes, present, mask, speakers)
    assert torch.all(out[0, 2, 1] == 0)
    # The missing row's stored values change nothing.
    changed = nodes.clone()
    changed[0, 2, 1] = 1e3
    assert torch.allclose(module(changed, present, mask, speakers), out)
    # And the present rows equal a dialogue where the missing utterance never existed.
    keep = [0, 1, 3, 4]
    small = DialogueContext(1, 8, max_speakers=3).eval()
    small.load_state_dict({k.replace("grus.1", "grus.0").replace("norms.1", "norms.0"): v
                           for k, v in module.state_dict().items()
                           if not k.startswith(("grus.0", "norms.0"))})
    short = small(nodes[:1, keep][:, :, 1:], present[:1, keep][:, :, 1:], mask[:1, keep],
                  speakers[:1, keep])
    assert torch.allclose(short[0, :, 0], out[0, keep, 1], atol=1e-6)


def test_padding_and_empty_dialogues_give_zeros(module):
    nodes, present, mask, speakers = inputs()
    mask[1, 3:] = False
    speakers[1, 3:] = -1
    present[1, :, 0] = False  # no utterance of dialogue 1 has modality 0
    out = module(nodes, present, mask, speakers)
    assert torch.all(out[1, 3:] == 0) and torch.all(out[1, :, 0] == 0)
    assert torch.all(out[1, :3, 1].abs().sum(-1) > 0)


def test_order_of_turns_matters(module):
    nodes, present, mask, speakers = inputs(batch=1)
    out = module(nodes, present, mask, speakers)
    swapped = nodes[:, [1, 0, 2, 3, 4]]
    out_swapped = module(swapped, present, mask, speakers[:, [1, 0, 2, 3, 4]])
    # The last utterance's own input is unchanged, but what came before it is reordered.
    assert not torch.allclose(out[0, 4], out_swapped[0, 4])


def test_speakers_enter_and_extra_speakers_share_one_embedding(module):
    nodes, present, mask, speakers = inputs(batch=1)
    out = module(nodes, present, mask, speakers)
    other = speakers.clone()
    other[0, 0] = 1
    assert not torch.allclose(module(nodes, present, mask, other), out)
    many = torch.tensor([[0, 1, 2, 3, 4]])
    capped = torch.tensor([[0, 1, 2, 2, 2]])
    assert torch.allclose(module(nodes, present, mask, many), module(nodes, present, mask, capped))
    no_speaker = DialogueContext(2, 8, speaker_embedding=False).eval()
    assert no_speaker.speakers is None


def test_the_model_uses_it_only_when_asked():
    from hotspot_erc.model.config import ModelConfig
    from hotspot_erc.model.model import HotspotERC

    base = ModelConfig(input_dims={"text": (6, 4)}, hidden=8, heads=2, num_classes=3)
    assert HotspotERC(base).context is None
    with_context = base.override({"graph.dialogue_context": True})
    assert isinstance(HotspotERC(with_context).context, DialogueContext)
    assert HotspotERC(base.override({"graph.dialogue_context": True,
                                     "use_graph": False})).context is None
