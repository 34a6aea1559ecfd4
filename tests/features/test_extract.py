"""The extraction pipeline: manifest + media -> feature store, failures, resume, workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hotspot_erc.data.manifest import load_manifest
from hotspot_erc.data.store import FeatureStore
from hotspot_erc.features.audio import NO_SPEECH, TOO_SHORT
from hotspot_erc.features.extract import (
    FAILURES_FILE,
    ExtractConfig,
    extract_features,
    load_extracted,
    media_modalities,
)
from hotspot_erc.features.synth_media import face_frames, silence, speak, write_video, write_wav
from hotspot_erc.features.video import NO_FACE

from .conftest import kill_once_written, store_arrays

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """A 4 s video with speech (two utterances), a wav per utterance, a corrupt file."""
    folder = tmp_path_factory.mktemp("media")
    first = speak("Hello, how are you today?", voice="en-us+m3", pitch=40)
    second = speak("I am really very well, thanks!", voice="en-us+f3", pitch=70)
    gap = np.zeros(3200, dtype=np.float32)
    track = np.concatenate([gap, first, gap, second, gap])
    seconds = len(track) / 16000
    write_video(folder / "talk.mp4", face_frames(seconds, fps=15, bursts=[seconds * 0.7]), 15,
                audio=track)
    write_wav(folder / "first.wav", first)
    write_wav(folder / "second.wav", second)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    times = {"first": (0.2, 0.2 + len(first) / 16000),
             "second": (0.4 + len(first) / 16000, 0.4 + (len(first) + len(second)) / 16000)}
    (folder / "times.json").write_text(json.dumps(times))
    return folder


def _manifest(folder: Path, dialogues: list[dict], name: str = "m.json") -> Path:
    path = folder / name
    path.write_text(json.dumps({"name": "test", "dialogues": dialogues}))
    return path


def _conversation(media: Path) -> dict:
    times = json.loads((media / "times.json").read_text())
    return {"id": "talk", "media": {"video": "talk.mp4"}, "utterances": [
        {"id": "t0", "speaker": "A", "text": "Hello, how are you today?",
         "start": times["first"][0], "end": times["first"][1]},
        {"id": "t1", "speaker": "B", "text": "I am really very well, thanks!",
         "start": times["second"][0], "end": times["second"][1]}]}


def test_conversation_video_gives_all_three_modalities(media, tmp_path):
    dataset = load_manifest(_manifest(media, [_conversation(media)]))
    assert media_modalities(dataset) == ["audio", "video"]
    report = extract_features(dataset, tmp_path / "store", ExtractConfig(workers=1),
                              progress=False)
    assert report.failures == [] and report.extracted == 1
    assert set(report.keys) == {"text", "audio", "video"}
    loaded = load_extracted(tmp_path / "store", report)
    for utterance in loaded.dialogues[0].utterances:
        assert all(utterance.has(m) for m in ("text", "audio", "video"))
        duration = utterance.end - utterance.start
        for modality in ("audio", "video"):
            times = utterance.features[modality].position_times
            # Positions are timed from the utterance start and stay inside the utterance.
            assert times.min() >= -1e-3 and times.max() <= duration + 0.05
    assert loaded.feature_spec.modalities["video"].rate_hz == 15.0
    again = extract_features(dataset, tmp_path / "store", ExtractConfig(workers=1),
                             progress=False)
    assert again.extracted == 0 and again.already_done == 1


def test_bad_media_is_reported_and_the_run_goes_on(media, tmp_path):
    times = json.loads((media / "times.json").read_text())
    dialogues = [
        _conversation(media),
        {"id": "broken", "media": {"video": "broken.mp4"}, "utterances": [
            {"id": "b0", "speaker": "A", "text": "hi", "start": 0.0, "end": 1.0}]},
        {"id": "gone", "utterances": [
            {"id": "g0", "speaker": "A", "text": "x", "media": {"audio": "nowhere.wav"}}]},
        {"id": "late", "media": {"video": "talk.mp4"}, "utterances": [
            {"id": "l0", "speaker": "A", "text": "ok", "start": times["first"][0],
             "end": times["first"][1]},
            {"id": "l1", "speaker": "A", "text": "too late", "start": 50.0, "end": 51.0}]},
    ]
    dataset = load_manifest(_manifest(media, dialogues, "bad.json"))
    report = extract_features(dataset, tmp_path / "store",
                              ExtractConfig(modalities=("audio", "video"), workers=1),
                              progress=False)
    by_utterance = {}
    for failure in report.failures:
        for uid in failure.utterances:
            by_utterance.setdefault(uid, []).append(failure)
    assert {f.modality for f in by_utterance["b0"]} == {"audio", "video"}
    assert all(f.path.endswith("broken.mp4") for f in by_utterance["b0"])
    assert [f.modality for f in by_utterance["g0"]] == ["audio"]
    assert "no such file" in by_utterance["g0"][0].reason
    assert {f.modality for f in by_utterance["l1"]} == {"audio", "video"}
    assert "l0" not in by_utterance and "t0" not in by_utterance
    summary = report.summary()
    assert "broken.mp4" in summary and "nowhere.wav" in summary
    loaded = load_extracted(tmp_path / "store", report)
    utterances = {u.uid: u for d in loaded for u in d.utterances}
    assert not utterances["b0"].has("audio") and not utterances["b0"].has("video")
    assert not utterances["g0"].has("audio")
    assert utterances["l0"].has("audio") and not utterances["l1"].has("audio")
    assert utterances["t0"].has("audio") and utterances["t1"].has("video")
    # The failure log survives for a later (resumed) run's summary.
    logged = json.loads((tmp_path / "store" / FAILURES_FILE).read_text())
    assert {entry["utterances"][0] for entry in logged} >= {"b0", "g0", "l1"}
    rerun = extract_features(dataset, tmp_path / "store",
                             ExtractConfig(modalities=("audio", "video"), workers=1),
                             progress=False)
    assert rerun.extracted == 0 and len(rerun.failures) == len(report.failures)


def test_media_with_nothing_to_describe_are_reported_once_per_dialogue(media, tmp_path):
    # A 1-sample wav, 10 s of digital silence and a plain-colour video with a silent track all
    # decode; the extractors find nothing in them. The utterances lose that modality, and the
    # report says so: one entry per dialogue, modality and reason, listing the utterances.
    write_wav(tmp_path / "one_sample.wav", np.array([0.5], np.float32))
    write_wav(tmp_path / "zeros.wav", silence(10.0))
    plain = np.full((45, 120, 160, 3), (40, 90, 160), np.uint8)  # 3 s of one colour
    write_video(tmp_path / "plain.mp4", plain, 15, audio=silence(3.0))
    dialogues = [
        {"id": "quiet", "utterances": [
            {"id": "q0", "speaker": "A", "media": {"audio": str(media / "first.wav")}},
            {"id": "q1", "speaker": "B", "media": {"audio": "zeros.wav"}},
            {"id": "q2", "speaker": "A", "media": {"audio": "zeros.wav"}},
            {"id": "q3", "speaker": "B", "media": {"audio": "one_sample.wav"}}]},
        {"id": "blank", "media": {"video": "plain.mp4"}, "utterances": [
            {"id": "p0", "speaker": "A", "text": "hi", "start": 0.0, "end": 1.5},
            {"id": "p1", "speaker": "B", "text": "ho", "start": 1.5, "end": 3.0}]}]
    dataset = load_manifest(_manifest(tmp_path, dialogues, "nothing.json"))
    config = ExtractConfig(modalities=("audio", "video"), workers=1)
    report = extract_features(dataset, tmp_path / "store", config, progress=False)
    found = {(f.modality, Path(f.path).name, f.reason, tuple(f.utterances))
             for f in report.failures}
    assert found == {("audio", "zeros.wav", NO_SPEECH, ("q1", "q2")),
                     ("audio", "one_sample.wav", TOO_SHORT, ("q3",)),
                     ("audio", "plain.mp4", NO_SPEECH, ("p0", "p1")),
                     ("video", "plain.mp4", NO_FACE, ("p0", "p1"))}
    summary = report.summary().splitlines()
    assert len([line for line in summary if "zeros.wav" in line]) == 1
    assert any("video: " in line and "plain.mp4" in line and NO_FACE in line
               and "2 utterance(s)" in line for line in summary)
    loaded = load_extracted(tmp_path / "store", report)
    has = {u.uid: (u.has("audio"), u.has("video")) for d in loaded for u in d.utterances}
    assert has == {"q0": (True, False), "q1": (False, False), "q2": (False, False),
                   "q3": (False, False), "p0": (False, False), "p1": (False, False)}
    # Kept in the failure log, so a resumed run reports them too.
    rerun = extract_features(dataset, tmp_path / "store", config, progress=False)
    assert rerun.extracted == 0
    assert {(f.modality, f.reason, tuple(f.utterances)) for f in rerun.failures} == \
        {(modality, reason, uids) for modality, _, reason, uids in found}


def test_a_damaged_sample_rate_is_blamed_on_the_file_not_the_utterance_times(media, tmp_path):
    # ffmpeg believes a header claiming 4 MHz and decodes 2 s of speech as 8 ms: the report must
    # name the header, not the utterance times that then seem to lie past the end.
    path = write_wav(tmp_path / "damaged.wav", speak("Hello there, how are you?"))
    data = bytearray(path.read_bytes())
    data[24:28] = (4_000_000).to_bytes(4, "little")  # the fmt chunk's sample rate
    path.write_bytes(bytes(data))
    dialogues = [{"id": "damaged", "media": {"audio": "damaged.wav"}, "utterances": [
        {"id": "d0", "speaker": "A", "text": "hello", "start": 0.1, "end": 0.9},
        {"id": "d1", "speaker": "B", "text": "there", "start": 1.0, "end": 1.5}]}]
    dataset = load_manifest(_manifest(tmp_path, dialogues, "damaged.json"))
    report = extract_features(dataset, tmp_path / "store", ExtractConfig(modalities=("audio",),
                                                                         workers=1),
                              progress=False)
    (failure,) = report.failures
    assert failure.path == str(path) and failure.utterances == ["d0", "d1"]
    assert "sample rate 4000000 Hz" in failure.reason and "utterance" not in failure.reason


def _many_dialogues(media: Path, count: int) -> Path:
    dialogues = [{"id": f"d{index:02d}", "utterances": [
        {"id": f"d{index:02d}_0", "speaker": "A", "media": {"audio": "first.wav"}},
        {"id": f"d{index:02d}_1", "speaker": "B", "media": {"audio": "second.wav"}}]}
        for index in range(count)]
    return _manifest(media, dialogues, f"many{count}.json")


def test_two_workers_equal_one(media, tmp_path):
    dataset = load_manifest(_many_dialogues(media, 4))
    for workers in (1, 2):
        extract_features(dataset, tmp_path / f"w{workers}",
                         ExtractConfig(modalities=("audio",), workers=workers), progress=False)
    one, two = store_arrays(tmp_path / "w1"), store_arrays(tmp_path / "w2")
    assert one.keys() == two.keys() and len(one) == 4
    for name in one:
        for key in one[name]:
            np.testing.assert_array_equal(one[name][key], two[name][key])


def test_in_this_process_audio_and_video_run_at_once_and_equal_one_at_a_time(media, tmp_path,
                                                                           monkeypatch):
    import threading

    import torch

    from hotspot_erc.features import audio as audio_module
    from hotspot_erc.features import video as video_module

    conversation = _conversation(media)
    again = {**conversation, "id": "again", "utterances": [
        {**u, "id": f"again_{u['id']}"} for u in conversation["utterances"]]}
    dataset = load_manifest(_manifest(media, [conversation, again], "lanes.json"))
    config = ExtractConfig(modalities=("audio", "video"), workers=1)
    threads_seen: dict[str, set[str]] = {"audio": set(), "video": set()}
    for module, name, modality in ((audio_module, "AudioExtractor", "audio"),
                                   (video_module, "VideoExtractor", "video")):
        original = getattr(module, name).extract_dialogue_with_reasons

        def recorded(self, segments, original=original, modality=modality):
            threads_seen[modality].add(threading.current_thread().name)
            return original(self, segments)

        monkeypatch.setattr(getattr(module, name), "extract_dialogue_with_reasons", recorded)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # one thread: one task after the other, here
        extract_features(dataset, tmp_path / "serial", config, progress=False)
        assert threads_seen == {"audio": {"MainThread"}, "video": {"MainThread"}}
        threads_seen = {"audio": set(), "video": set()}
        torch.set_num_threads(2)
        extract_features(dataset, tmp_path / "lanes", config, progress=False)
    finally:
        torch.set_num_threads(before)
    # Each modality on one thread of its own: an extractor is never shared between threads.
    assert [len(names) for names in threads_seen.values()] == [1, 1]
    assert threads_seen["audio"] != threads_seen["video"] != {"MainThread"}
    for modality in ("audio", "video"):
        serial = store_arrays(tmp_path / "serial", modality)
        lanes = store_arrays(tmp_path / "lanes", modality)
        assert serial.keys() == lanes.keys() and len(serial) == 2
        for name in serial:
            for key in serial[name]:
                np.testing.assert_array_equal(serial[name][key], lanes[name][key])


def test_decoded_ahead_keeps_order_and_decodes_everything_by_close():
    import itertools
    import threading

    from hotspot_erc.features.extract import DecodedAhead

    where = []

    def decode(item: int) -> int:
        where.append(threading.current_thread().name)
        return item * 10

    ahead = DecodedAhead(decode, range(5))
    assert len(ahead) == 5
    assert list(itertools.islice(ahead, 2)) == [0, 10]
    assert ahead.close() == [0, 10, 20, 30, 40]  # the rest decoded, in order
    assert all(name.startswith("decode") for name in where)


def test_a_script_without_a_main_guard_extracts_in_worker_processes(media, tmp_path):
    """Spawned workers would start by running the calling script again; they skip it, so a
    plain script needs no ``if __name__ == "__main__":`` guard, and runs its code once."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from hotspot_erc.data.manifest import load_manifest\n"
        "from hotspot_erc.features.extract import ExtractConfig, extract_features\n"
        "print('script ran')\n"
        f"dataset = load_manifest({str(_many_dialogues(media, 2))!r})\n"
        f"report = extract_features(dataset, {str(tmp_path / 'store')!r}, "
        "ExtractConfig(modalities=('audio',), workers=2), progress=False)\n"
        "print('extracted', report.extracted)\n")
    finished = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.splitlines() == ["script ran", "extracted 2"]


def test_a_killed_worker_is_a_clear_error(media, tmp_path):
    """A worker that dies (killed, out of memory) surfaces as an error saying what to try,
    not as a bare BrokenProcessPool."""
    import multiprocessing
    import threading

    def kill_the_workers():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            workers = multiprocessing.active_children()
            if workers:  # possibly while the pool still starts the second one
                for worker in workers:
                    worker.kill()
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_the_workers, daemon=True)
    killer.start()
    with pytest.raises(RuntimeError, match="ended abruptly.*workers=1"):
        extract_features(load_manifest(_many_dialogues(media, 20)), tmp_path / "store",
                         ExtractConfig(modalities=("audio",), workers=2), progress=False)
    killer.join()


@pytest.mark.slow
def test_killed_extraction_resumes_to_the_same_store(media, tmp_path):
    manifest = _many_dialogues(media, 40)
    command = [sys.executable, "-m", "hotspot_erc.cli", "extract", "--manifest", str(manifest),
               "--modalities", "audio", "--workers", "1", "--quiet"]
    reference = tmp_path / "reference"
    subprocess.run(command + ["--out", str(reference)], check=True, capture_output=True)
    store = tmp_path / "killed"
    written = kill_once_written(command + ["--out", str(store)], store, 120)
    assert 1 <= written < 40, "the kill should land part way through"
    assert not list(store.rglob("*.tmp")) or all(p.name.startswith(".") for p in
                                                 store.rglob("*.tmp"))
    resumed = subprocess.run(command + ["--out", str(store)], check=True, capture_output=True,
                             text=True)
    assert f"{40 - written} dialogue(s) extracted, {written} already there" in resumed.stdout
    reference_arrays, resumed_arrays = store_arrays(reference), store_arrays(store)
    assert reference_arrays.keys() == resumed_arrays.keys() and len(reference_arrays) == 40
    for name in reference_arrays:
        for key in reference_arrays[name]:
            np.testing.assert_array_equal(reference_arrays[name][key], resumed_arrays[name][key])
    FeatureStore(store).load_dataset()


@pytest.mark.real_data
def test_crema_d_clips_extract_with_faces(shared_data, tmp_path):
    from hotspot_erc.data.acted import load_crema_d
    from hotspot_erc.data.dialogue import Dataset

    clips = [d for d in load_crema_d(shared_data) if d.did.endswith(".flv")][:2]
    dataset = Dataset("crema-two", clips, ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"],
                      {"test": [d.did for d in clips]})
    report = extract_features(dataset, tmp_path / "crema",
                              ExtractConfig(modalities=("audio", "video"), workers=1),
                              progress=False)
    assert report.failures == []
    for dialogue in load_extracted(tmp_path / "crema", report):
        video = dialogue.utterances[0].features["video"]
        assert video.local_mask.mean() > 0.9
        assert dialogue.utterances[0].has("audio")


def test_an_extractor_producing_nan_loses_that_dialogue_only(media, tmp_path, monkeypatch):
    from hotspot_erc.features import audio as audio_module

    original = audio_module.AudioExtractor.extract_dialogue_with_reasons

    def poisoned(self, segments):
        result = original(self, segments)
        if len(segments) == 2 and segments[1].speaker == "B" and segments[0].samples is not None \
                and len(segments[0].samples) == len(segments[1].samples):
            # Building a record from non-finite values fails exactly as a broken extractor would.
            from hotspot_erc.data.dialogue import ModalityFeatures

            ModalityFeatures(global_vector=np.full(3, np.nan))
        return result

    monkeypatch.setattr(audio_module.AudioExtractor, "extract_dialogue_with_reasons", poisoned)
    dialogues = [
        {"id": "same", "utterances": [
            {"id": "s0", "speaker": "A", "media": {"audio": "first.wav"}},
            {"id": "s1", "speaker": "B", "media": {"audio": "first.wav"}}]},
        {"id": "fine", "utterances": [
            {"id": "f0", "speaker": "A", "media": {"audio": "first.wav"}},
            {"id": "f1", "speaker": "B", "media": {"audio": "second.wav"}}]}]
    dataset = load_manifest(_manifest(media, dialogues, "nan.json"))
    report = extract_features(dataset, tmp_path / "store",
                              ExtractConfig(modalities=("audio",), workers=1), progress=False)
    (failure,) = report.failures
    assert failure.utterances == ["s0", "s1"] and "NaN or infinite" in failure.reason
    loaded = load_extracted(tmp_path / "store", report)
    assert not loaded.dialogue("same").utterances[0].has("audio")
    assert loaded.dialogue("fine").utterances[1].has("audio")


def test_default_modalities_follow_the_corpus():
    from hotspot_erc.data.dialogue import Dataset, Dialogue, Utterance
    from hotspot_erc.features.extract import default_modalities

    dialogue = Dialogue("d", [Utterance("d_0", "A", "hi", label="neu")])
    dataset = Dataset("x", [dialogue], ["neu"], {"train": ["d"]})
    assert default_modalities(dataset, "ravdess") == ("audio",)
    assert default_modalities(dataset, "crema-d") == ("text", "audio", "video")
    assert default_modalities(dataset) == ("text",)


def _threads_after_worker_init() -> tuple[int, int]:
    import threadpoolctl
    import torch

    from hotspot_erc.features.extract import _worker_init

    _worker_init({})
    pools = threadpoolctl.threadpool_info()
    return torch.get_num_threads(), max((pool["num_threads"] for pool in pools), default=1)


def test_an_extraction_worker_runs_one_thread_in_every_pool():
    """numpy is loaded before the initializer runs, so OMP_NUM_THREADS alone came too late."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(_threads_after_worker_init).result(timeout=120) == (1, 1)
