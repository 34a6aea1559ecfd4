"""Scaling past one process: extraction on Ray actors against the process pool, what Ray costs
per conversation and per actor, and the time of a training epoch under torchrun.

    python benchmarks/scale.py [--quick] [--data ../shared/data]

1. Extraction throughput. RAVDESS speech files (real recordings of about 3.5 s) are grouped
   into conversations of ``--clips`` files, one utterance per file, alternating two speakers,
   and their audio is extracted with the default recipe (silero VAD, prosodic and spectral
   descriptors, Whisper tiny.en encoder states) into fresh stores: by the local process pool
   with 1 and 2 workers (1 runs in this process) and by Ray with 1 and 2 actors (a Ray started
   for each run, as ``hotspot-erc extract --engine ray`` does). Each line gives the whole call's
   wall time (starting processes or Ray and loading models included), media seconds per wall
   second over the call, and the same rate in steady state: from the first conversation written
   to the last (the stores' file times), which leaves out the start-up.
2. Ray's costs. Starting a local Ray; starting an actor (a process importing the extractors);
   its first conversation against the next ones (the models loading); and the round trip of a
   task that carries a conversation and returns its features without computing anything: the
   overhead Ray adds per conversation, one at a time and with two tasks queued per actor. And
   what stays in the driver: text, encoded by MiniLM in batches (utterances per second).
3. Training. Seconds per epoch (training, then validation on rank 0) on the synthetic benchmark
   for one process with one thread, one process with two threads, and two torchrun processes
   with one thread each (the same global batch of dialogues), from each run's epochs.jsonl; the
   first epoch is left out when there are several (one-off start-up costs).

Every worker gets one thread (``OMP_NUM_THREADS=1``, as Ray sets for its actors), so the two
engines are compared on equal terms. ``--quick`` runs fewer conversations and a smaller
training set (about 3 minutes on 2 cores; the full run about 10). Run it on an otherwise idle
machine: other jobs on the same cores slow the parallel runs most.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One thread per worker for every library, as Ray sets for its workers: without it the local
# pool's workers (and this process) run OpenMP/BLAS pools of one thread per core, which only
# compete for the cores the workers already fill.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def ravdess_manifest(data: Path, folder: Path, conversations: int, clips: int) -> Path:
    """A manifest of ``conversations`` conversations of ``clips`` RAVDESS files each."""
    files = sorted((data / "ravdess").glob("Actor_*/*.flac"))
    if len(files) < conversations * clips:
        raise SystemExit(f"{data / 'ravdess'}: found {len(files)} .flac files, need "
                         f"{conversations * clips} (see ../shared/data/README.md)")
    # Spread over the actors: conversation c takes every ``conversations``-th file.
    dialogues = [{"id": f"conversation{c:03d}", "utterances": [
        {"id": f"conversation{c:03d}_{u}", "speaker": "AB"[u % 2],
         "media": {"audio": str(files[c + u * conversations])}} for u in range(clips)]}
        for c in range(conversations)]
    path = folder / "manifest.json"
    path.write_text(json.dumps({"name": "ravdess-conversations", "dialogues": dialogues}))
    return path


def extraction(manifest: Path, store: Path, engine: str, workers: int) -> dict:
    """One extraction of the manifest's audio into a fresh ``store``: wall seconds, media
    seconds, and the steady-state media rate."""
    from hotspot_erc.data.manifest import load_manifest
    from hotspot_erc.features.extract import ExtractConfig, extract_features

    dataset = load_manifest(manifest)
    config = ExtractConfig(modalities=("audio",), workers=workers, engine=engine)
    began = time.perf_counter()
    report = extract_features(dataset, store, config, progress=False)
    wall = time.perf_counter() - began
    if report.failures:
        raise SystemExit(report.summary())
    stamps = sorted(path.stat().st_mtime for path in store.glob("audio/*/*.npz"))
    per_conversation = report.media_seconds / len(stamps)
    steady = (len(stamps) - 1) * per_conversation / max(stamps[-1] - stamps[0], 1e-9)
    return {"wall_s": wall, "media_s": report.media_seconds,
            "rate": report.media_seconds / wall, "steady_rate": steady}


class Echo:
    """A stand-in extraction actor: returns the features it holds, computing nothing."""

    def __init__(self) -> None:
        self.result = None

    def pid(self) -> int:
        return os.getpid()

    def hold(self, result) -> None:
        self.result = result

    def extract(self, dialogue, modality):
        return self.result


def ray_costs(manifest: Path, round_trips: int) -> dict:
    """Seconds to start Ray, to start an extraction actor, to load its models, and per task."""
    from hotspot_erc.data.manifest import load_manifest
    from hotspot_erc.features.extract import ExtractConfig, build_extractors
    from hotspot_erc.features.ray_engine import ExtractionActor, ray_session, start_actors

    dialogue = load_manifest(manifest).dialogues[0]
    config = ExtractConfig(modalities=("audio",), workers=1, engine="ray")
    began = time.perf_counter()
    with ray_session(None, 2) as ray:
        costs = {"ray_start_s": time.perf_counter() - began}
        began = time.perf_counter()
        (actor,) = start_actors(ray, ExtractionActor, 1, build_extractors(config, ["audio"]),
                                config)
        costs["actor_start_s"] = time.perf_counter() - began
        times = []
        for _ in range(4):
            began = time.perf_counter()
            result = ray.get(actor.extract.remote(dialogue, "audio"))
            times.append(time.perf_counter() - began)
        costs["first_conversation_s"] = times[0]
        costs["warm_conversation_s"] = statistics.median(times[1:])
        costs["model_loading_s"] = times[0] - costs["warm_conversation_s"]
        ray.kill(actor)
        (echo,) = start_actors(ray, Echo, 1)
        ray.get(echo.hold.remote(result))
        ray.get(echo.extract.remote(dialogue, "audio"))
        began = time.perf_counter()
        for _ in range(round_trips):
            ray.get(echo.extract.remote(dialogue, "audio"))
        costs["round_trip_ms"] = 1000 * (time.perf_counter() - began) / round_trips
        began = time.perf_counter()
        pending = [echo.extract.remote(dialogue, "audio") for _ in range(2)]
        for _ in range(round_trips):
            (done,), pending = ray.wait(pending, num_returns=1)
            ray.get(done)
            pending.append(echo.extract.remote(dialogue, "audio"))
        ray.get(pending)
        costs["pipelined_ms"] = 1000 * (time.perf_counter() - began) / (round_trips + 2)
        costs["payload_kib"] = (len(ray.cloudpickle.dumps(dialogue))
                                + len(ray.cloudpickle.dumps(result))) / 1024
        ray.kill(echo)
    return costs


def text_rate(utterances: int) -> float:
    """Utterances per second that the driver's text extractor (MiniLM, batched, warm, with
    this process's threads) encodes: the part of an extraction that stays in the driver."""
    from hotspot_erc.features.text import TextExtractor

    extractor = TextExtractor("minilm")
    sentences = [f"I told you {i} times that the meeting moved to {i % 12 + 1} o'clock, and "
                 "nobody listens to me." for i in range(utterances)]
    extractor.extract(sentences[:64])
    began = time.perf_counter()
    extractor.extract(sentences)
    return utterances / (time.perf_counter() - began)


def epoch_seconds(folder: Path, processes: int, threads: int, epochs: int,
                  synthetic: list[str], timeout: float) -> float | None:
    """Mean seconds per epoch of one training run (the first epoch left out when there are
    several); None when the run takes longer than ``timeout`` seconds."""
    run = folder / f"train-{processes}x{threads}"
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc-per-node={processes}"] if processes > 1 else [sys.executable])
    command = [*launcher, "-m", "hotspot_erc.cli", "train", "--dataset", "synthetic",
               *[part for knob in synthetic for part in ("--synthetic-set", knob)],
               "--epochs", str(epochs), "--threads", str(threads), "--quiet", "--out", str(run)]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    seconds = [json.loads(line)["seconds"]
               for line in (run / "epochs.jsonl").read_text().splitlines()]
    return statistics.mean(seconds[1:] if len(seconds) > 1 else seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("HOTSPOT_ERC_DATA", "../shared/data"))
    parser.add_argument("--quick", action="store_true", help="fewer conversations and epochs")
    parser.add_argument("--conversations", type=int, default=None)
    parser.add_argument("--clips", type=int, default=4, help="RAVDESS files per conversation")
    parser.add_argument("--train-timeout", type=float, default=600.0,
                        help="seconds one training run may take")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()
    conversations = args.conversations or (12 if args.quick else 48)
    epochs, synthetic = (2, ["num_train=40"]) if args.quick else (3, [])

    import torch

    # The in-process extraction (one local worker) gets one core, as every worker does.
    torch.set_num_threads(1)
    results: dict = {"cpus": os.cpu_count(), "conversations": conversations,
                     "clips": args.clips}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        manifest = ravdess_manifest(Path(args.data), scratch, conversations, args.clips)
        print(f"{conversations} conversations of {args.clips} RAVDESS clips, audio, default "
              f"recipe; {os.cpu_count()} CPUs")
        print(f"{'extraction':<22}{'wall s':>8}{'media s':>9}{'media s / s':>13}"
              f"{'steady':>9}")
        extract = {}
        for engine, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
            name = f"{engine} x{workers}"
            extract[name] = extraction(manifest, scratch / name.replace(" ", ""), engine,
                                       workers)
            row = extract[name]
            print(f"{name:<22}{row['wall_s']:>8.1f}{row['media_s']:>9.1f}{row['rate']:>13.2f}"
                  f"{row['steady_rate']:>9.2f}", flush=True)
        results["extraction"] = extract
        for kind in ("rate", "steady_rate"):
            print(f"{kind}: ray x2 / ray x1 = "
                  f"{extract['ray x2'][kind] / extract['ray x1'][kind]:.2f}, "
                  f"ray x2 / local x2 = {extract['ray x2'][kind] / extract['local x2'][kind]:.2f}")
        costs = ray_costs(manifest, 20 if args.quick else 100)
        results["ray_costs"] = costs
        print(f"Ray: start {costs['ray_start_s']:.1f} s; actor start "
              f"{costs['actor_start_s']:.1f} s; first conversation "
              f"{costs['first_conversation_s']:.2f} s against {costs['warm_conversation_s']:.2f}"
              f" s warm (model loading {costs['model_loading_s']:.2f} s); task round trip "
              f"{costs['round_trip_ms']:.1f} ms alone, {costs['pipelined_ms']:.1f} ms with two "
              f"queued ({costs['payload_kib']:.0f} KiB in and out)", flush=True)
        torch.set_num_threads(os.cpu_count() or 1)
        results["text_utterances_per_s"] = text_rate(256 if args.quick else 1024)
        print(f"text in the driver (MiniLM, {os.cpu_count()} threads): "
              f"{results['text_utterances_per_s']:.0f} utterances/s", flush=True)
        training = {}
        print(f"{'training (synthetic)':<30}{'s / epoch':>10}")
        for processes, threads in ((1, 1), (1, 2), (2, 1)):
            name = f"{processes} process{'es' if processes > 1 else ''} x {threads} thread" + (
                "s" if threads > 1 else "")
            training[name] = epoch_seconds(scratch, processes, threads, epochs, synthetic,
                                           args.train_timeout)
            shown = "timed out" if training[name] is None else f"{training[name]:.2f}"
            print(f"{name:<30}{shown:>10}", flush=True)
        results["training"] = training
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
