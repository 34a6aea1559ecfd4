"""Load on `hotspot-erc serve`: warm latency, throughput under concurrent clients, memory.

Starts the service in a subprocess on 127.0.0.1 (a free port; nothing else is contacted) and
measures, every phase bounded in requests and in time (--max-seconds for the whole run):

1. warm latency of POST /v1/predict for a generated conversation of --media-seconds with its
   recording uploaded (480x360 video with speech, as benchmarks/predict_latency.py), after one
   cold request;
2. warm latency for a text-only 20-utterance transcript (JSON body);
3. throughput and p50/p95/p99 latency of the text-only request under 1, 4 and 16 concurrent
   clients (each client one keep-alive connection; 503s counted, not retried);
4. the server's resident memory (VmRSS) before and after --rss-requests more text-only
   requests (default 200; the issue asks for 1,000: --rss-requests 1000).

    python benchmarks/serve_load.py [--checkpoint RUN] [--requests 100] [--rss-requests 200]

Without --checkpoint it builds the demonstration checkpoint once into
~/.cache/hotspot-erc/demo (about 2 minutes) and reuses it afterwards.
Targets (issue 16): media conversation <= 5 s warm on 2 cores; text-only p95 <= 150 ms; no
memory growth beyond noise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HOST = "127.0.0.1"


class Deadline:
    """The whole run's time budget; each phase stops early (and says so) when it is spent."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.hit = False

    def passed(self) -> bool:
        self.hit = self.hit or time.monotonic() > self.end
        return self.hit


class Client:
    """One keep-alive connection to the service."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection(HOST, port, timeout=300)
        self.last = b""

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, float]:
        began = time.perf_counter()
        try:
            self.connection.request("POST", path, body, {"Content-Type": content_type})
            response = self.connection.getresponse()
            self.last = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=300)
            raise
        if response.getheader("connection", "").lower() == "close":
            self.connection.close()
        return response.status, time.perf_counter() - began


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def multipart(parts: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                    f"filename=\"{filename}\"\r\n\r\n".encode() + content + b"\r\n"
                    for name, filename, content in parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def text_transcript(utterances: int) -> bytes:
    from hotspot_erc.features.synth_media import SENTENCES

    return json.dumps({"utterances": [
        {"id": f"t{i:02d}", "speaker": "AB"[i % 2], "text": SENTENCES[i % len(SENTENCES)]}
        for i in range(utterances)]}).encode()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def sequential(client: Client, body: bytes, content_type: str, count: int,
               deadline: Deadline) -> tuple[list[float], list[float]]:
    """Latencies of ``count`` requests one after the other, and the seconds of each that the
    service spent outside Predictor.predict (HTTP, upload, transcript checks, answer)."""
    seconds, overhead = [], []
    for _ in range(count):
        if deadline.passed():
            break
        status, elapsed = client.post("/v1/predict", body, content_type)
        if status != 200:
            raise RuntimeError(f"POST /v1/predict answered {status}: {client.last[:300]!r}")
        seconds.append(elapsed)
        overhead.append(elapsed - sum(json.loads(client.last)["timings"].values()))
    return seconds, overhead


def concurrent(port: int, body: bytes, clients: int, total: int, deadline: Deadline
               ) -> tuple[list[float], int, float]:
    """``total`` requests shared by ``clients`` threads: latencies of the 200s, the count of
    the others, the wall time."""
    latencies: list[float] = []
    refused = [0]
    lock = threading.Lock()
    remaining = [total]

    def run() -> None:
        client = Client(port)
        while not deadline.passed():
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            try:
                status, elapsed = client.post("/v1/predict", body, "application/json")
            except (OSError, http.client.HTTPException):
                status, elapsed = 0, 0.0
            with lock:
                if status == 200:
                    latencies.append(elapsed)
                else:
                    refused[0] += 1

    threads = [threading.Thread(target=run) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, refused[0], time.perf_counter() - began


def start_server(checkpoint: str, scratch: Path, options: list[str]) -> tuple[subprocess.Popen,
                                                                             int, float]:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    (scratch / "tmp").mkdir()
    log = (scratch / "server.log").open("wb")
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "hotspot_erc.serve", "--checkpoint", checkpoint, "--host", HOST,
         "--port", str(port), *options],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(scratch / "tmp")})
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {(scratch / 'server.log').read_text()}")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            connection.request("GET", "/v1/health")
            if json.loads(connection.getresponse().read())["status"] == "ready":
                return process, port, time.perf_counter() - began
        except OSError:
            pass
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--media-seconds", type=float, default=60.0)
    parser.add_argument("--media-requests", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100,
                        help="text-only requests per measurement (sequential, and per "
                             "concurrency level)")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--rss-requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1,
                        help="the server's --concurrency (predictions at once)")
    parser.add_argument("--max-seconds", type=float, default=1200.0,
                        help="time budget of the whole run")
    args = parser.parse_args()

    from hotspot_erc.engine.demo import build_demo
    from hotspot_erc.features.synth_media import make_conversation
    from hotspot_erc.features.text import cache_root

    checkpoint = args.checkpoint or build_demo(cache_root() / "demo", progress=False)["checkpoint"]
    clients = [int(c) for c in args.clients.split(",")]
    deadline = Deadline(args.max_seconds)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        manifest = make_conversation(scratch / "media", seconds=args.media_seconds)
        media_body, media_type = multipart([
            ("transcript", "conversation.json", manifest.read_bytes()),
            ("media", "conversation.mp4", (scratch / "media" / "conversation.mp4").read_bytes())])
        utterances = len(json.loads(manifest.read_text())["dialogues"][0]["utterances"])
        text_body = text_transcript(20)
        process, port, load_s = start_server(checkpoint, scratch, [
            "--concurrency", str(args.concurrency), "--queue", str(2 * max(clients)),
            "--max-request-mb", "256"])
        try:
            rows.append(("start-up until ready (model loaded, text encoder warm)",
                         f"{load_s:.1f} s"))
            client = Client(port)
            status, cold = client.post("/v1/predict", media_body, media_type)
            rows.append((f"media, first request ({args.media_seconds:.0f} s, {utterances} "
                         "utterances; media models load)", f"{cold:.2f} s (HTTP {status})"))
            media, _ = sequential(client, media_body, media_type, args.media_requests,
                                  deadline)
            if media:
                rows.append((f"media, warm (n={len(media)}) p50 / p95",
                             f"{percentile(media, 50):.2f} / {percentile(media, 95):.2f} s"))
            sequential(client, text_body, "application/json", 3, deadline)
            text, overhead = sequential(client, text_body, "application/json", args.requests,
                                        deadline)
            if text:
                rows.append((f"text-only 20 utterances, warm (n={len(text)}) p50 / p95",
                             f"{1000 * percentile(text, 50):.0f} / "
                             f"{1000 * percentile(text, 95):.0f} ms"))
                rows.append(("of which outside Predictor.predict (HTTP, upload, checks, "
                             "answer) p50 / p95", f"{1000 * percentile(overhead, 50):.0f} / "
                             f"{1000 * percentile(overhead, 95):.0f} ms"))
            for count in clients:
                latencies, refused, wall = concurrent(port, text_body, count, args.requests,
                                                      deadline)
                if latencies:
                    rows.append((
                        f"{count} client{'s' if count > 1 else ''}, text-only (n={len(latencies)}"
                        f"{f', {refused} refused' if refused else ''}): throughput; p50 / p95 "
                        "/ p99", f"{len(latencies) / wall:.1f} req/s; "
                        + " / ".join(f"{1000 * percentile(latencies, q):.0f}"
                                     for q in (50, 95, 99)) + " ms"))
            before = rss_mib(process.pid)
            samples = []
            done = 0
            step = max(1, args.rss_requests // 4)
            while done < args.rss_requests and not deadline.passed():
                count = min(step, args.rss_requests - done)
                latencies, refused, _ = concurrent(port, text_body, 4, count, deadline)
                done += len(latencies) + refused
                samples.append(f"{rss_mib(process.pid):.0f}")
            rows.append((f"server RSS before / after {done} more requests (samples)",
                         f"{before:.0f} / {samples[-1] if samples else '-'} MiB "
                         f"({', '.join(samples)})"))
        finally:
            process.terminate()
            code = process.wait(timeout=120)
    print(f"hotspot-erc serve --checkpoint {checkpoint} --concurrency {args.concurrency}; "
          f"{os.cpu_count()} cores; server exit status {code}"
          + ("; TIME BUDGET SPENT: phases cut short" if deadline.hit else ""))
    print()
    print("| measurement | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
