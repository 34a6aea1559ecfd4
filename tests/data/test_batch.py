"""Batching: shapes, zero padding under False masks, ignored labels, missing modalities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hotspot_erc.data.batch import IGNORE_INDEX, Batch, collate, iterate_batches
from hotspot_erc.data.dialogue import (
    DataFormatError,
    Dialogue,
    FeatureSpec,
    ModalityFeatures,
    ModalitySpec,
    Utterance,
)

LABELS = ["neg", "neu", "pos"]
SPEC = FeatureSpec({"text": ModalitySpec("toy", "1", global_dim=3, local_dim=2),
                    "audio": ModalitySpec("toy", "1", global_dim=4, local_dim=5)})


def _text(positions: int, value: float = 1.0, **kwargs) -> ModalityFeatures:
    return ModalityFeatures(global_vector=np.full(3, value), local=np.full((positions, 2), value),
                            **kwargs)


def _audio(positions: int, value: float = 2.0, **kwargs) -> ModalityFeatures:
    return ModalityFeatures(global_vector=np.full(4, value), local=np.full((positions, 5), value),
                            **kwargs)


@pytest.fixture
def dialogues() -> list[Dialogue]:
    long = Dialogue("long", [
        Utterance("l0", "Ann", label="pos",
                  features={"text": _text(4, prior=[0.1, 0.9, 0.5, 0.0],
                                          hotspot_truth=[0, 1, 0, 0]),
                            "audio": _audio(6)}),
        Utterance("l1", "Bob", label="neg",
                  features={"text": _text(2, 3.0), "audio": ModalityFeatures.missing()}),
        Utterance("l2", "Ann", label="neu", scored=False, features={"text": _text(3)}),
        Utterance("l3", "Cid", label=None,
                  features={"text": _text(1), "audio": _audio(2, local_mask=[True, False])}),
    ])
    short = Dialogue("short", [
        Utterance("s0", "Bob", label="neu", features={"text": _text(2, 5.0)}),
    ])
    return [long, short]


def test_shapes_and_ids(dialogues):
    batch = collate(dialogues, LABELS, SPEC)
    assert isinstance(batch, Batch)
    assert batch.dialogue_ids == ["long", "short"]
    assert batch.utterance_ids == [["l0", "l1", "l2", "l3"], ["s0"]]
    assert batch.num_dialogues == 2 and batch.num_utterances == 4
    assert batch.utterance_mask.tolist() == [[True] * 4, [True, False, False, False]]
    text, audio = batch.modalities["text"], batch.modalities["audio"]
    assert text.global_vector.shape == (2, 4, 3)
    assert text.local.shape == (2, 4, 4, 2) and text.num_positions == 4
    assert text.local_mask.shape == text.prior.shape == text.hotspot_truth.shape == (2, 4, 4)
    assert text.present.shape == text.has_prior.shape == text.has_truth.shape == (2, 4)
    assert audio.global_vector.shape == (2, 4, 4)
    assert audio.local.shape == (2, 4, 6, 5)
    assert text.local.dtype == torch.float32 and text.local_mask.dtype == torch.bool


def test_labels_ignore_padding_unscored_and_unlabelled(dialogues):
    batch = collate(dialogues, LABELS, SPEC)
    assert batch.labels.dtype == torch.long
    assert batch.labels.tolist() == [[2, 0, IGNORE_INDEX, IGNORE_INDEX],
                                     [1, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]]


def test_speakers_are_indexed_per_dialogue(dialogues):
    batch = collate(dialogues, LABELS, SPEC)
    assert batch.speakers.tolist() == [[0, 1, 0, 2], [0, -1, -1, -1]]


def test_padding_is_zero_and_masked(dialogues):
    batch = collate(dialogues, LABELS, SPEC)
    text = batch.modalities["text"]
    # Utterance l1 has 2 of 4 text positions: the rest are zero and masked out.
    assert text.local_mask[0, 1].tolist() == [True, True, False, False]
    assert torch.all(text.local[0, 1, :2] == 3.0)
    assert torch.all(text.local[0, 1, 2:] == 0.0)
    # Padded utterances of the short dialogue: nothing present, everything zero.
    for modality in batch.modalities.values():
        assert not modality.local_mask[1, 1:].any()
        assert not modality.present[1, 1:].any()
        assert torch.all(modality.local[1, 1:] == 0)
        assert torch.all(modality.global_vector[1, 1:] == 0)
    # Every value outside the masks is zero.
    for modality in batch.modalities.values():
        assert torch.all(modality.local[~modality.local_mask] == 0)


def test_missing_modality_is_not_present_and_fully_masked(dialogues):
    audio = collate(dialogues, LABELS, SPEC).modalities["audio"]
    # l1 marks audio missing, l2 lacks it entirely, s0 too: the same result for all three.
    assert audio.present.tolist() == [[True, False, False, True], [False] * 4]
    for b, u in [(0, 1), (0, 2), (1, 0)]:
        assert not audio.local_mask[b, u].any()
        assert torch.all(audio.local[b, u] == 0) and torch.all(audio.global_vector[b, u] == 0)
    assert audio.local_mask[0, 3].tolist() == [True, False, False, False, False, False]


def test_a_modality_no_dialogue_has_is_all_absent(dialogues):
    spec = FeatureSpec({"video": ModalitySpec("toy", "1", global_dim=7, local_dim=8)})
    video = collate(dialogues, LABELS, spec).modalities["video"]
    assert video.local.shape == (2, 4, 1, 8)
    assert not video.present.any() and not video.local_mask.any()


def test_prior_and_truth(dialogues):
    text = collate(dialogues, LABELS, SPEC).modalities["text"]
    assert text.has_prior.tolist() == [[True, False, False, False], [False] * 4]
    assert text.prior[0, 0].tolist() == pytest.approx([0.1, 0.9, 0.5, 0.0])
    assert torch.all(text.prior[0, 1:] == 0)
    assert text.has_truth[0].tolist() == [True, False, False, False]
    assert text.hotspot_truth[0, 0].tolist() == [False, True, False, False]
    assert not text.hotspot_truth[0, 1:].any()


def test_max_positions_cap(dialogues):
    batch = collate(dialogues, LABELS, SPEC, max_positions={"text": 2, "audio": 3})
    text, audio = batch.modalities["text"], batch.modalities["audio"]
    assert text.local.shape == (2, 4, 2, 2) and audio.local.shape == (2, 4, 3, 5)
    # The cut keeps the first positions, and the prior and truth with them.
    assert text.local_mask[0, 0].tolist() == [True, True]
    assert text.prior[0, 0].tolist() == pytest.approx([0.1, 0.9])
    assert text.hotspot_truth[0, 0].tolist() == [False, True]
    assert text.local_mask[0, 3].tolist() == [True, False]


def test_a_capped_record_whose_first_positions_are_invalid_stays_present():
    record = _audio(3, local_mask=[False, False, True])
    dialogue = Dialogue("d", [Utterance("u", "A", label="neu", features={"audio": record})])
    audio = collate([dialogue], LABELS, SPEC, max_positions={"audio": 2}).modalities["audio"]
    assert audio.present.tolist() == [[True]]
    assert audio.local_mask[0, 0].tolist() == [True, False]
    assert torch.equal(audio.local[0, 0, 0], torch.from_numpy(record.local[2]))


def test_unknown_label_is_an_error(dialogues):
    with pytest.raises(DataFormatError, match=r"dialogue long, utterance l0: label 'pos' is not "
                                              r"in the label set"):
        collate(dialogues, ["neg", "neu"], SPEC)


def test_dimension_mismatch_names_dialogue_utterance_and_modality(dialogues):
    spec = FeatureSpec({"text": ModalitySpec("toy", "1", global_dim=3, local_dim=9)})
    with pytest.raises(DataFormatError, match=r"dialogue long, utterance l0, modality text: "
                                              r"dimensions global 3 / local 2, expected 3 / 9"):
        collate(dialogues, LABELS, spec)


def test_no_dialogues_is_an_error():
    with pytest.raises(ValueError, match="no dialogues"):
        collate([], LABELS, SPEC)


def test_to_moves_every_tensor(dialogues):
    moved = collate(dialogues, LABELS, SPEC).to("cpu")
    assert moved.labels.device.type == "cpu"
    assert set(moved.modalities) == {"text", "audio"}
    assert moved.modalities["audio"].local.shape == (2, 4, 6, 5)


def test_iterate_batches_covers_every_dialogue_once():
    many = [Dialogue(f"d{i}", [Utterance(f"d{i}_0", "A", label="neu",
                                         features={"text": _text(1)})]) for i in range(5)]
    ordered = [b.dialogue_ids for b in iterate_batches(many, LABELS, SPEC, batch_size=2)]
    assert ordered == [["d0", "d1"], ["d2", "d3"], ["d4"]]
    shuffled = [did for b in iterate_batches(many, LABELS, SPEC, 2, shuffle=True,
                                             generator=np.random.default_rng(0))
                for did in b.dialogue_ids]
    assert sorted(shuffled) == [d.did for d in many]
    again = [did for b in iterate_batches(many, LABELS, SPEC, 2, shuffle=True,
                                          generator=np.random.default_rng(0))
             for did in b.dialogue_ids]
    assert again == shuffled
    with pytest.raises(ValueError, match="seeded generator"):
        next(iterate_batches(many, LABELS, SPEC, 2, shuffle=True))


def test_a_cut_sequence_starts_at_its_first_valid_position():
    """Leading invalid positions (silence, faceless frames) must not make a capped modality
    missing: a model without HGF reads one position per utterance."""
    from hotspot_erc.data.batch import collate
    from hotspot_erc.data.dialogue import (
        Dialogue,
        FeatureSpec,
        ModalityFeatures,
        ModalitySpec,
        Utterance,
    )

    local = np.arange(12, dtype=np.float32).reshape(6, 2)
    mask = np.array([False, False, True, True, False, True])
    record = ModalityFeatures(global_vector=np.ones(3), local=local, local_mask=mask,
                              prior=np.linspace(0, 1, 6))
    dialogue = Dialogue("d", [Utterance("u", "A", label="x", features={"audio": record})])
    spec = FeatureSpec({"audio": ModalitySpec("a", "1", 3, 2)})
    capped = collate([dialogue], ["x"], spec, max_positions={"audio": 1}).modalities["audio"]
    assert capped.present[0, 0]
    np.testing.assert_array_equal(capped.local[0, 0, 0].numpy(), local[2])
    two = collate([dialogue], ["x"], spec, max_positions={"audio": 3}).modalities["audio"]
    np.testing.assert_array_equal(two.local_mask[0, 0].numpy(), [True, True, False])
    # Uncapped batches keep every position where it was (explanations map back by index).
    full = collate([dialogue], ["x"], spec).modalities["audio"]
    np.testing.assert_array_equal(full.local_mask[0, 0].numpy(), mask)
