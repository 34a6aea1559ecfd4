"""Extraction on Ray actors: the same store as the process pool, failures, resume, no Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hotspot_erc.cli import main
from hotspot_erc.data.manifest import load_manifest
from hotspot_erc.data.store import FeatureStore
from hotspot_erc.features.audio import AudioExtractor
from hotspot_erc.features.extract import ExtractConfig, extract_features
from hotspot_erc.features.ray_engine import RayNotInstalled, import_ray
from hotspot_erc.features.synth_media import speak, write_wav

from .conftest import kill_once_written, store_arrays

# Energy VAD: no speech model to load in every actor, the test stays fast.
AUDIO = {"vad": "energy"}
COUNT = 24




@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    write_wav(folder / "first.wav", speak("Hello, how are you today?", pitch=40))
    write_wav(folder / "second.wav", speak("I am really very well, thanks!", pitch=70))
    return folder


@pytest.fixture(scope="module")
def reference(media, tmp_path_factory):
    """:data:`COUNT` dialogues and their store extracted by the process pool (in process)."""
    dataset = load_manifest(_manifest(media, COUNT))
    report = extract_features(dataset, tmp_path_factory.mktemp("reference") / "store",
                              ExtractConfig(modalities=("audio",), audio=AUDIO, workers=1),
                              progress=False)
    return dataset, report


def _manifest(media: Path, count: int, speakers: dict[int, str] | None = None) -> Path:
    speakers = speakers or {}
    dialogues = [{"id": f"d{index:02d}", "utterances": [
        {"id": f"d{index:02d}_0", "speaker": speakers.get(index, "A"),
         "media": {"audio": "first.wav"}},
        {"id": f"d{index:02d}_1", "speaker": "B", "media": {"audio": "second.wav"}}]}
        for index in range(count)]
    path = media / f"many{count}-{len(speakers)}.json"
    path.write_text(json.dumps({"name": "ray", "dialogues": dialogues}))
    return path


def _assert_same_arrays(reference: str | Path, other: Path) -> None:
    expected, found = store_arrays(Path(reference)), store_arrays(other)
    assert expected.keys() == found.keys() and len(expected) == COUNT
    for name in expected:
        for key in expected[name]:
            np.testing.assert_array_equal(expected[name][key], found[name][key])


class _DiesOnce:
    """An audio extractor whose process ends abruptly the first time any process uses it."""

    def __init__(self, inner: AudioExtractor, marker: Path) -> None:
        self.inner, self.marker = inner, str(marker)

    @property
    def spec(self):
        return self.inner.spec

    def extract_dialogue_with_reasons(self, segments):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return self.inner.extract_dialogue_with_reasons(segments)
        os._exit(1)


class _RaisesOnPoison:
    """An audio extractor that raises on dialogues with a speaker named ``poison``."""

    def __init__(self, inner: AudioExtractor) -> None:
        self.inner = inner

    @property
    def spec(self):
        return self.inner.spec

    def extract_dialogue_with_reasons(self, segments):
        if any(segment.speaker == "poison" for segment in segments):
            raise RuntimeError("cannot describe this dialogue")
        return self.inner.extract_dialogue_with_reasons(segments)


def test_ray_actors_write_the_pools_store_even_when_a_worker_dies(ray_workers, reference,
                                                                  tmp_path):
    dataset, local = reference
    marker = tmp_path / "died"
    config = ExtractConfig(modalities=("audio",), workers=2, engine="ray")
    report = extract_features(dataset, tmp_path / "ray", config, progress=False,
                              extractors={"audio": _DiesOnce(AudioExtractor(**AUDIO), marker)})
    assert marker.exists(), "one worker process should have died"
    assert report.extracted == COUNT and report.failures == [] and report.keys == local.keys
    assert report.media_seconds == pytest.approx(local.media_seconds)
    _assert_same_arrays(local.store_root, tmp_path / "ray")
    again = extract_features(dataset, tmp_path / "ray", config, progress=False,
                             extractors={"audio": AudioExtractor(**AUDIO)})
    assert again.extracted == 0 and again.already_done == COUNT


def test_a_failing_dialogue_is_reported_and_a_rerun_retries_it(ray_workers, media, tmp_path):
    dataset = load_manifest(_manifest(media, 4, speakers={2: "poison"}))
    config = ExtractConfig(modalities=("audio",), workers=1, engine="ray")
    report = extract_features(dataset, tmp_path / "store", config, progress=False,
                              extractors={"audio": _RaisesOnPoison(AudioExtractor(**AUDIO))})
    (failure,) = report.failures
    assert failure.modality == "audio" and failure.utterances == ["d02_0", "d02_1"]
    assert "RuntimeError: cannot describe this dialogue" in failure.reason
    assert "a rerun tries it again" in failure.reason and failure.path.endswith(
        "first.wav, " + str(media / "second.wav"))
    assert report.extracted == 3
    key = report.keys["audio"]
    store = FeatureStore(tmp_path / "store")
    assert [store.has("audio", key, d.did) for d in dataset] == [True, True, False, True]
    logged = json.loads((tmp_path / "store" / "extraction_failures.json").read_text())
    assert [entry["utterances"] for entry in logged] == [["d02_0", "d02_1"]]
    rerun = extract_features(dataset, tmp_path / "store", config, progress=False,
                             extractors={"audio": AudioExtractor(**AUDIO)})
    assert rerun.extracted == 1 and rerun.already_done == 3 and rerun.failures == []
    assert json.loads((tmp_path / "store" / "extraction_failures.json").read_text()) == []


def test_more_workers_than_the_cluster_has_cpus_is_refused(ray_workers, media, tmp_path):
    dataset = load_manifest(_manifest(media, 1))
    with pytest.raises(ValueError, match=r"workers=3: the Ray cluster has 2 CPU"):
        extract_features(dataset, tmp_path / "store",
                         ExtractConfig(modalities=("audio",), audio=AUDIO, workers=3,
                                       engine="ray"), progress=False)


def test_an_unknown_engine_or_a_lone_address_is_refused():
    with pytest.raises(ValueError, match="expected engine local or ray"):
        ExtractConfig(engine="spark")
    with pytest.raises(ValueError, match="an address only with ray"):
        ExtractConfig(ray_address="10.0.0.1:6379")


def test_without_ray_the_command_says_how_to_install_it(media, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(RayNotInstalled, match=r"pip install \.\[ray\]"):
        import_ray()
    status = main(["extract", "--manifest", str(_manifest(media, 1)), "--modalities", "audio",
                   "--engine", "ray", "--out", str(tmp_path / "store"), "--quiet"])
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(error) == 1
    assert "needs Ray, which is not installed here: pip install .[ray]" in error[0]


_DRIVER = """
import sys
from hotspot_erc.data.manifest import load_manifest
from hotspot_erc.features.extract import ExtractConfig, extract_features

config = ExtractConfig(modalities=("audio",), audio={"vad": "energy"}, workers=2, engine="ray")
print(extract_features(load_manifest(sys.argv[1]), sys.argv[2], config, progress=False).summary())
"""


@pytest.mark.slow
def test_a_killed_driver_resumes_without_redoing_finished_dialogues(media, reference,
                                                                    tmp_path):
    pytest.importorskip("ray")
    manifest = _manifest(media, COUNT)
    store = tmp_path / "killed"
    # A driver of its own: it starts its own Ray, which goes down with it.
    command = [sys.executable, "-c", _DRIVER, str(manifest), str(store)]
    written = kill_once_written(command, store, 180)
    assert 1 <= written < COUNT, "the kill should land part way through"
    resumed = subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    assert f"{COUNT - written} dialogue(s) extracted, {written} already there" in resumed.stdout
    _assert_same_arrays(reference[1].store_root, store)


@pytest.mark.slow
def test_extraction_joins_a_running_cluster_by_its_address(media, reference, tmp_path):
    """``--ray-address``: the path a multi-machine cluster takes (``ray start --head`` on one
    machine, ``ray start --address`` on the others), here a one-node cluster on this machine."""
    pytest.importorskip("ray")
    import contextlib
    import queue
    import re
    import secrets
    import shutil
    import socket
    import threading
    import time

    ray_command = shutil.which("ray") or pytest.skip("the ray command is not on PATH")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # --block: the cluster lives as long as this process, which the test ends itself (ray stop
    # would also stop any other Ray on the machine).
    # One token for the head and the driver, as docs/scaling.md sets up a cluster.
    secured = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    head = subprocess.Popen(
        [ray_command, "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
         "--include-dashboard", "false", "--disable-usage-stats"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=secured)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in head.stdout],
                     daemon=True).start()
    dataset, local = reference
    driver = (
        "import sys\n"
        "from hotspot_erc.data.manifest import load_manifest\n"
        "from hotspot_erc.features.extract import ExtractConfig, extract_features\n"
        "config = ExtractConfig(modalities=('audio',), audio={'vad': 'energy'}, workers=2,\n"
        "                       engine='ray', ray_address=sys.argv[3])\n"
        "extract_features(load_manifest(sys.argv[1]), sys.argv[2], config, progress=False)\n")
    try:
        # The address other machines would join, as the head prints it (its node's IP).
        address, deadline = None, time.monotonic() + 120
        while address is None and time.monotonic() < deadline and head.poll() is None:
            with contextlib.suppress(queue.Empty):
                found = re.search(r"ray start --address='([^']+)'", lines.get(timeout=1))
                address = found.group(1) if found else None
        assert address is not None and address.endswith(f":{port}"), "the head did not start"
        done = subprocess.run([sys.executable, "-c", driver, str(_manifest(media, COUNT)),
                               str(tmp_path / "store"), address],
                              capture_output=True, text=True, timeout=300, env=secured)
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_same_arrays(local.store_root, tmp_path / "store")


def test_a_refused_join_names_the_address_and_the_token_setting(monkeypatch):
    ray = pytest.importorskip("ray")
    from hotspot_erc.features.ray_engine import ray_session

    def refused(*args, **kwargs):
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refused)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    with pytest.raises(ConnectionError, match=r"cannot join the Ray cluster at 10\.0\.0\.1:6379"
                                              r": .*set RAY_AUTH_MODE=token here"):
        with ray_session("10.0.0.1:6379", num_cpus=2):
            pass
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # already set: nothing more to suggest
    with pytest.raises(ConnectionError) as raised:
        with ray_session("10.0.0.1:6379", num_cpus=2):
            pass
    assert "RAY_AUTH_MODE" not in str(raised.value)
