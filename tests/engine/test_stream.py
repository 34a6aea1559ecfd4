"""Streaming: one utterance at a time, the same answers as offline, revisions only where the
model reads the future."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hotspot_erc.data.dialogue import Dialogue, Utterance
from hotspot_erc.data.transcript import load_transcript
from hotspot_erc.engine.demo import build_demo
from hotspot_erc.engine.predict import Predictor
from hotspot_erc.engine.stream import StreamingPredictor


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("demo")
    return build_demo(folder, dialogues={"train": 3, "valid": 1, "test": 1}, utterances=4,
                      epochs=2, workers=1, progress=False)


@pytest.fixture(scope="module")
def causal_checkpoint(demo, tmp_path_factory) -> Path:
    """The demo's weights under the causal variant's config: the causal variant differs from
    full only in its graph window (no future edges), so the same weights fit it."""
    folder = tmp_path_factory.mktemp("causal") / "checkpoint"
    shutil.copytree(Path(demo["checkpoint"]) / "checkpoint", folder)
    meta = json.loads((folder / "checkpoint.json").read_text())
    meta["model_config"].update(variant="causal", causal=True)
    meta["model_config"]["graph"]["future"] = 0
    (folder / "checkpoint.json").write_text(json.dumps(meta))
    return folder


def text_only(demo) -> Dialogue:
    dialogue, _ = load_transcript(demo["transcript"])
    return Dialogue(dialogue.did, [Utterance(u.uid, u.speaker, u.text, u.start, u.end)
                                   for u in dialogue.utterances])


def stream_all(predictor: Predictor, dialogue: Dialogue, window: int | None = None):
    stream = StreamingPredictor(predictor, name=dialogue.did, window=window)
    return stream, [stream.push(u) for u in dialogue.utterances]


def test_a_causal_stream_gives_the_offline_labels_at_once_and_never_revises(causal_checkpoint,
                                                                             demo):
    predictor = Predictor.load(causal_checkpoint, workers=1)
    dialogue = text_only(demo)
    _, updates = stream_all(predictor, dialogue)
    offline = predictor.predict(dialogue)
    assert [update.utterance.id for update in updates] == [u.uid for u in dialogue.utterances]
    assert all(update.revisions == [] for update in updates)
    for update, expected in zip(updates, offline.utterances, strict=True):
        assert update.utterance.label == expected.label
        assert update.utterance.probabilities == pytest.approx(expected.probabilities, abs=1e-4)
        assert update.utterance.modalities["text"].present
        assert not update.utterance.modalities["audio"].present  # no recording was pushed
        assert set(update.timings) == {"extract_s", "model_s"}


def test_an_offline_stream_ends_where_offline_prediction_is_and_says_what_it_revised(demo):
    predictor = Predictor.load(demo["checkpoint"], workers=1)
    dialogue = text_only(demo)
    stream, updates = stream_all(predictor, dialogue)
    final = {u.id: u.label for u in predictor.predict(dialogue).utterances}
    assert {u.id: u.label for u in stream.conversation.utterances} == final
    # Replaying the updates (first labels, then each revision in order) gives the final labels.
    shown = {}
    for update in updates:
        for revision in update.revisions:
            assert shown[revision.id] == revision.previous != revision.label
            shown[revision.id] = revision.label
        shown[update.utterance.id] = update.utterance.label
    assert shown == final


def test_the_window_bounds_what_the_model_reads(causal_checkpoint, demo):
    predictor = Predictor.load(causal_checkpoint, workers=1)
    stream, _ = stream_all(predictor, text_only(demo), window=2)
    assert len(stream.conversation.utterances) == 2
    assert stream.causal is True


def test_the_default_window_is_the_models_reach_and_changes_no_output(causal_checkpoint, demo,
                                                                      tmp_path):
    """With graph.past=1 an output reads two utterances back (two graph layers): a window of
    three gives every newest output as the whole history does."""
    folder = tmp_path / "checkpoint"
    shutil.copytree(causal_checkpoint, folder)
    meta = json.loads((folder / "checkpoint.json").read_text())
    meta["model_config"]["graph"]["past"] = 1
    (folder / "checkpoint.json").write_text(json.dumps(meta))
    predictor = Predictor.load(folder, workers=1)
    dialogue = text_only(demo)
    assert len(dialogue.utterances) > 3
    windowed, updates = stream_all(predictor, dialogue)
    assert windowed.reach == (2, 0) and windowed.window == 3
    _, whole = stream_all(predictor, dialogue, window=10_000)
    for short, long in zip(updates, whole, strict=True):
        assert short.utterance.probabilities == pytest.approx(long.utterance.probabilities,
                                                              abs=1e-5)
    assert all(update.revisions == [] for update in updates)


@pytest.mark.parametrize("utterance, message", [
    (Utterance("", "Ana", "hi"), "utterance.id: expected a non-empty string"),
    (Utterance("x", " ", "hi"), "field speaker: expected a non-empty string"),
])
def test_bad_utterances_are_refused_naming_the_field(causal_checkpoint, utterance, message):
    stream = StreamingPredictor(Predictor.load(causal_checkpoint, workers=1))
    with pytest.raises(ValueError, match=message):
        stream.push(utterance)
    stream.push(Utterance("a", "Ana", "Hello there."))
    with pytest.raises(ValueError, match="'a' was pushed before"):
        stream.push(Utterance("a", "Ben", "Again?"))
    assert len(stream.utterances) == 1
