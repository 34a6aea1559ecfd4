"""Several conversations with one predictor: which transcripts, which recordings, which folders,
and predictions.csv; then end to end with a small real checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hotspot_erc.cli import main
from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.engine.batch_predict import (
    CSV_NAME,
    csv_header,
    csv_rows,
    load_conversations,
    predict_many,
    transcript_files,
)
from hotspot_erc.engine.demo import build_demo
from hotspot_erc.engine.predict import Predictor
from hotspot_erc.engine.prediction import ConversationPrediction, UtterancePrediction
from hotspot_erc.features.synth_media import silence, write_wav

LABELS = ["neutral", "happy"]
SRT = ("1\n00:00:00,100 --> 00:00:00,900\nAnn: Hello.\n\n"
       "2\n00:00:01,000 --> 00:00:01,800\nBob: Hi.\n")
UNLABELLED_SRT = "1\n00:00:00,100 --> 00:00:00,900\nHello, \"you\", there.\n"
CSV = "Utterance,Speaker,Start,End\nyes,A,0.1,0.5\nno,B,0.6,0.9\n"


def write(folder: Path, name: str, content: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content, encoding="utf-8")
    return path


class CountingPredictor:
    """Labels every utterance ``happy`` when its text has an "h", else ``neutral``, and records
    each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, Path]] = []

    def predict(self, dialogue, notices, feature_folder, progress):
        self.calls.append((dialogue.did, dict(dialogue.media), Path(feature_folder)))
        utterances = []
        for utterance in dialogue.utterances:
            happy = 0.75 if "h" in utterance.text.lower() else 0.25
            utterances.append(UtterancePrediction(
                id=utterance.uid, speaker=utterance.speaker, start=utterance.start,
                end=utterance.end, text=utterance.text,
                label="happy" if happy > 0.5 else "neutral",
                probabilities={"neutral": 1 - happy, "happy": happy}))
        return ConversationPrediction(name=dialogue.did, label_names=list(LABELS),
                                      notices=list(notices), utterances=utterances)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_folder_stands_for_its_transcript_files_in_name_order(tmp_path):
    folder = tmp_path / "calls"
    for name in ("b.srt", "a.csv", "c.vtt", "notes.txt", ".hidden.srt", "d.JSON"):
        write(folder, name, "x")
    (folder / "sub.srt").mkdir()
    single = write(tmp_path, "e.srt", "x")
    assert [p.name for p in transcript_files([folder, single])] == [
        "a.csv", "b.srt", "c.vtt", "d.JSON", "e.srt"]
    assert [p.name for p in transcript_files([folder], fmt="srt")] == ["b.srt"]
    # The same file named twice (as itself and through its folder) is read once.
    assert [p.name for p in transcript_files([folder / "b.srt", folder], fmt="srt")] == ["b.srt"]


def test_missing_paths_and_empty_folders_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"--transcript .*nowhere\.srt: no such file or folder"):
        transcript_files([tmp_path / "nowhere.srt"])
    write(tmp_path / "empty", "notes.txt", "x")
    with pytest.raises(ValueError, match=r"empty: the folder holds no transcript file "
                                         r"\(\.csv, \.json, \.srt, \.vtt\)"):
        transcript_files([tmp_path / "empty"])


def test_one_transcript_file_is_alone_a_folder_of_one_is_not(tmp_path):
    path = write(tmp_path / "calls", "call1.srt", SRT)
    [alone] = load_conversations([str(path)])
    assert alone.alone and alone.name == "call1" and len(alone.dialogue) == 2
    [in_folder] = load_conversations([str(tmp_path / "calls")])
    assert not in_folder.alone


def test_two_transcripts_with_one_stem_are_refused(tmp_path):
    first = write(tmp_path / "a", "call.srt", SRT)
    second = write(tmp_path / "b", "call.csv", CSV)
    with pytest.raises(ValueError, match=f"{first} and {second} would share the output folder "
                                         "'call': rename one"):
        load_conversations([str(first), str(second)])


def test_a_bad_transcript_fails_before_any_prediction_naming_file_and_line(tmp_path):
    write(tmp_path / "calls", "a.srt", SRT)
    bad = write(tmp_path / "calls", "b.srt", "1\n00:00:01,000 --> soon\nAnn: hi\n")
    with pytest.raises(DataFormatError, match=f"{bad}: cue 1 \\(line 2\\): malformed time"):
        load_conversations([str(tmp_path / "calls")])


def test_recordings_of_one_conversation_are_refused_for_several(tmp_path):
    first = write(tmp_path, "a.srt", SRT)
    second = write(tmp_path, "b.srt", SRT)
    with pytest.raises(ValueError, match=r"--media: the recordings of one conversation go with "
                                         r"a single transcript file, not 2 transcripts; .* "
                                         r"--media-folder"):
        load_conversations([str(first), str(second)], media="call.mp4")
    write(tmp_path, "c.csv", CSV)
    with pytest.raises(ValueError, match=r"--audio, --video: .* not a folder of transcripts"):
        load_conversations([str(tmp_path)], fmt="csv", audio="a.wav", video="v.mp4")
    with pytest.raises(ValueError, match=r"--media and --media-folder: give the recordings of "
                                         r"one transcript, or a folder of recordings, not both"):
        load_conversations([str(first)], media="call.mp4", media_folder=str(tmp_path))


def test_media_folder_matches_recordings_by_stem(tmp_path):
    calls, recordings = tmp_path / "calls", tmp_path / "recordings"
    write(calls, "call1.srt", SRT)
    write(calls, "call2.csv", CSV)
    recordings.mkdir()
    write_wav(recordings / "call1.wav", silence(2.0))
    write(recordings, "call1.srt", SRT)  # a transcript beside it is no recording
    conversations = load_conversations([str(calls)], media_folder=str(recordings))
    first, second = conversations
    assert first.dialogue.media == {"audio": str((recordings / "call1.wav").resolve())}
    assert second.dialogue.media == {}
    assert second.notices == [f"{calls / 'call2.csv'}: no recording named call2.* in "
                              f"{recordings}: text only"]
    write_wav(recordings / "call1.take2.wav", silence(1.0))  # stem "call1.take2": no match
    write_wav(recordings / "call1.mp3", silence(1.0))
    with pytest.raises(ValueError, match=r"several recordings are named like call1\.srt: "
                                         r"call1\.mp3, call1\.wav; keep one per conversation"):
        load_conversations([str(calls)], media_folder=str(recordings))
    with pytest.raises(ValueError, match=r"--media-folder .*nowhere: not a folder"):
        load_conversations([str(calls)], media_folder=str(tmp_path / "nowhere"))


def test_a_recording_shorter_than_the_transcript_is_an_error_at_loading(tmp_path):
    calls, recordings = tmp_path / "calls", tmp_path / "recordings"
    write(calls, "call1.srt", SRT)
    recordings.mkdir()
    write_wav(recordings / "call1.wav", silence(0.5))
    with pytest.raises(DataFormatError, match=r"call1\.srt: cue 2 \(line 6\): utterance call1_1 "
                                              r"starts at 1\.000 s, at or after the end of the "
                                              r"recording"):
        load_conversations([str(calls)], media_folder=str(recordings))


def test_csv_rows_in_utterance_order_with_empty_times():
    prediction = ConversationPrediction(label_names=["sad", "text"], utterances=[
        UtterancePrediction(id="u0", speaker="A", start=0.5, end=1.25, text='say "hi", ok',
                            label="text", probabilities={"sad": 0.4, "text": 0.6}),
        UtterancePrediction(id="u1", speaker="B", text="", label="sad",
                            probabilities={"text": 0.1, "sad": 0.9})])
    # A label may be named like a column: its probability column is p_<label>.
    assert csv_header(prediction.label_names) == [
        "conversation", "id", "speaker", "start", "end", "text", "label", "p_sad", "p_text"]
    assert csv_rows("call", prediction) == [
        ["call", "u0", "A", 0.5, 1.25, 'say "hi", ok', "text", 0.4, 0.6],
        ["call", "u1", "B", "", "", "", "sad", 0.9, 0.1]]


def test_predict_many_writes_a_folder_per_conversation_and_one_table(tmp_path):
    calls = tmp_path / "calls"
    write(calls, "call1.srt", SRT)
    write(calls, "call2.srt", UNLABELLED_SRT)
    write(calls, "call3.csv", CSV)
    conversations = load_conversations([str(calls)])
    predictor = CountingPredictor()
    seen = []
    out = tmp_path / "out"
    result = predict_many(predictor, conversations, out, report=False,
                          on_conversation=lambda c, p, paths: seen.append((c.name, p.notices)))
    assert [name for name, _ in seen] == ["call1", "call2", "call3"]
    # The notice of the transcript without speakers travels into its prediction.
    assert seen[0][1] == [] and "speakers are not labelled" in seen[1][1][0]
    assert [call[2] for call in predictor.calls] == [out / name / "features"
                                                     for name in ("call1", "call2", "call3")]
    for name in ("call1", "call2", "call3"):
        assert result.outputs[name] == {"predictions": out / name / "predictions.jsonl"}
        assert (out / name / "predictions.jsonl").is_file()
    assert result.csv == out / CSV_NAME
    rows = read_csv(result.csv)
    assert list(rows[0]) == ["conversation", "id", "speaker", "start", "end", "text", "label",
                             "p_neutral", "p_happy"]
    assert [(r["conversation"], r["id"], r["speaker"], r["text"], r["label"]) for r in rows] == [
        ("call1", "call1_0", "Ann", "Hello.", "happy"),
        ("call1", "call1_1", "Bob", "Hi.", "happy"),
        ("call2", "call2_0", "speaker", 'Hello, "you", there.', "happy"),
        ("call3", "call3_0", "A", "yes", "neutral"),
        ("call3", "call3_1", "B", "no", "neutral")]
    assert (rows[0]["start"], rows[0]["end"]) == ("0.1", "0.9")
    for row in rows:
        assert float(row["p_neutral"]) + float(row["p_happy"]) == pytest.approx(1)


def test_a_single_transcript_file_writes_into_out_itself(tmp_path):
    conversations = load_conversations([str(write(tmp_path, "call1.srt", SRT))])
    predictor = CountingPredictor()
    result = predict_many(predictor, conversations, tmp_path / "out", report=False)
    assert result.outputs == {"call1": {"predictions": tmp_path / "out" / "predictions.jsonl"}}
    assert predictor.calls[0][2] == tmp_path / "out" / "features"
    assert [row["id"] for row in read_csv(tmp_path / "out" / CSV_NAME)] == ["call1_0", "call1_1"]


# -- end to end: a small real checkpoint -------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("demo")
    return build_demo(folder, dialogues={"train": 3, "valid": 1, "test": 1}, utterances=4,
                      epochs=2, workers=1, progress=False)


def test_cli_predicts_several_transcripts_loading_the_model_once(demo, tmp_path, capsys,
                                                                 monkeypatch):
    calls, recordings = tmp_path / "calls", tmp_path / "recordings"
    calls.mkdir()
    recordings.mkdir()
    transcript = json.loads(Path(demo["transcript"]).read_text())
    (calls / "unseen.json").write_text(json.dumps(transcript))
    (recordings / "unseen.mp4").symlink_to(demo["media"])
    write(calls, "plain.srt", UNLABELLED_SRT)
    loads = []
    real_load = Predictor.load.__func__

    def counted_load(cls, folder, workers=2):
        loads.append(folder)
        return real_load(cls, folder, workers=workers)

    monkeypatch.setattr(Predictor, "load", classmethod(counted_load))
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", demo["checkpoint"], "--transcript", str(calls),
                 "--media-folder", str(recordings), "--out", str(out), "--workers", "1",
                 "--threads", "1", "--quiet"]) == 0, capsys.readouterr().err
    assert loads == [demo["checkpoint"]]
    printed = capsys.readouterr().out
    assert "plain: 1 utterance (" in printed and "unseen: 8 utterances (" in printed
    assert f"no recording named plain.* in {recordings}: text only" in printed
    assert "speakers are not labelled" in printed
    rows = read_csv(out / CSV_NAME)
    truth = demo["true_labels"]
    assert [(r["conversation"], r["id"]) for r in rows] == (
        [("plain", "plain_0")] + [("unseen", uid) for uid in truth])
    labels = ["neutral", "happy", "sad", "angry"]
    for row in rows:
        probabilities = {label: float(row[f"p_{label}"]) for label in labels}
        assert row["label"] == max(probabilities, key=probabilities.get)
        assert sum(probabilities.values()) == pytest.approx(1, abs=1e-4)
    for name in ("plain", "unseen"):
        assert (out / name / "predictions.jsonl").is_file()
        assert (out / name / "report.html").is_file()
    unseen = [json.loads(line) for line in
              (out / "unseen" / "predictions.jsonl").read_text().splitlines()]
    # The recording matched by its stem was read: the unseen conversation has audio and video.
    assert all(row["modalities"]["audio"]["present"] for row in unseen)
    assert all(row["modalities"]["video"]["present"] for row in unseen)
