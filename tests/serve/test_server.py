"""hotspot-erc serve as a real server process on 127.0.0.1, driven through HTTP (the standard
library's client, and raw sockets for the faults: slow, cut and oversized uploads)."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hotspot_erc.engine.demo import build_demo

API_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("demo")
    return build_demo(folder, dialogues={"train": 3, "valid": 1, "test": 1}, utterances=4,
                      epochs=2, workers=1, progress=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``python -m hotspot_erc.serve`` in a subprocess, its temporary folder under ``folder``."""

    def __init__(self, folder: Path, *options: str) -> None:
        self.port = free_port()
        self.tmp = folder / "tmp"
        self.tmp.mkdir(parents=True)
        self.log_path = folder / "server.log"
        self._log = self.log_path.open("wb")
        env = {**os.environ, "TMPDIR": str(self.tmp), "HF_HUB_OFFLINE": "1",
               "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotspot_erc.serve", "--port", str(self.port), *options],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 120
                ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            connection.close()

    def json(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, dict]:
        status, _, data = self.request(method, path, body, headers, timeout)
        return status, json.loads(data)

    def health(self) -> dict | None:
        try:
            return self.json("GET", "/v1/health", timeout=5)[1]
        except OSError:
            return None

    def wait_for(self, condition, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited:\n{self.log()}"
            health = self.health()
            if health is not None and condition(health):
                return health
            time.sleep(0.1)
        raise AssertionError(f"server never reached the condition:\n{self.log()}")

    def work_folders(self) -> list[Path]:
        return sorted(self.tmp.glob("hotspot-erc-serve-*"))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body of (field, file name or None, content) parts."""
    boundary = uuid.uuid4().hex
    chunks = []
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
                      + content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def raw_request_head(port: int, method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the response on ``sock`` (read until it closes or the body
    is complete)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":")
                                                           for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def readable(sock: socket.socket, timeout: float) -> bool:
    return bool(select.select([sock], [], [], timeout)[0])


# -- fixtures ------------------------------------------------------------------------------------

BEARER = {"Authorization": f"Bearer {API_KEY}"}
MODEL_CARD = "# Demonstration model\n\nFour synthetic voice styles; not an emotion model.\n"


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    """The service with a key, CORS for one origin and small limits: 1 MiB bodies, 30 s
    recordings, one prediction at a time plus one admitted request, three reports kept, one
    live stream at a time of at most 50 utterances."""
    folder = tmp_path_factory.mktemp("server")
    (Path(demo["checkpoint"]) / "model_card.md").write_text(MODEL_CARD)
    key = folder / "key"
    key.write_text(API_KEY + "\n")
    running = Server(folder, "--checkpoint", demo["checkpoint"], "--api-key-file", str(key),
                     "--max-request-mb", "1", "--max-media-seconds", "30", "--concurrency", "1",
                     "--queue", "1", "--max-reports", "3", "--cors-origin",
                     "https://app.example.org", "--max-streams", "1", "--max-utterances", "50")
    try:
        running.wait_for(lambda health: health["status"] == "ready")
        yield running
    finally:
        code = running.stop()
    assert code == 0, running.log()
    assert running.work_folders() == [], "the service left its temporary folder behind"


@pytest.fixture(scope="module")
def transcript(demo) -> dict:
    return json.loads(Path(demo["transcript"]).read_text())


def _check_error(status: int, body: dict, expected_status: int, field: str | None) -> str:
    assert (status, body["status"], body["field"]) == (expected_status, expected_status, field), \
        body
    assert "hotspot-erc-serve" not in body["error"] and "/tmp" not in body["error"], body
    return body["error"]


def _wav(seconds: float, rate: int = 8000) -> bytes:
    """Silence as 8-bit mono PCM: small enough to stay under the test's 1 MiB limit."""
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(1)
        writer.setframerate(rate)
        writer.writeframes(b"\x80" * int(seconds * rate))
    return buffer.getvalue()


def _srt(transcript: dict) -> bytes:
    def clock(t: float) -> str:
        return f"00:{int(t) // 60:02d}:{int(t) % 60:02d},{round(1000 * (t % 1)):03d}"

    cues = [f"{i + 1}\n{clock(u['start'])} --> {clock(u['end'])}\n{u['speaker']}: {u['text']}\n"
            for i, u in enumerate(transcript["dialogues"][0]["utterances"])]
    return "\n".join(cues).encode()


# -- the endpoints -------------------------------------------------------------------------------

def test_health_model_card_and_docs(server, demo):
    status, health = server.json("GET", "/v1/health")
    assert status == 200 and health["status"] == "ready" and health["capacity"] == 2
    status, model = server.json("GET", "/v1/model", headers={"X-API-Key": API_KEY})
    assert status == 200
    assert model["labels"] == ["neutral", "happy", "sad", "angry"]
    assert model["modalities"] == ["text", "audio", "video"]
    assert set(model["feature_spec"]) == {"text", "audio", "video"}
    assert model["feature_spec"]["text"]["extractor"]
    assert isinstance(model["train_config"], dict) and model["model_config"]["hidden"] > 0
    assert model["model_card_text"] == MODEL_CARD
    assert model["model_card"]["demonstration"] is True
    assert model["limits"]["max_streams"] >= 1
    assert model["limits"]["max_request_bytes"] == 2**20
    assert demo["checkpoint"] not in json.dumps(model)  # the name of the run, not its path
    status, headers, page = server.request("GET", "/docs")
    assert status == 200 and b"swagger" in page.lower()
    status, schema = server.json("GET", "/openapi.json")
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert set(body) >= {"multipart/form-data", "application/json", "text/vtt"}
    assert set(body["multipart/form-data"]["schema"]["properties"]) == {
        "transcript", "format", "media", "audio", "video"}


def test_the_key_is_required_where_data_flows(server):
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer " + API_KEY[:-1]},
                    {"Authorization": API_KEY}):
        status, body = server.json("GET", "/v1/model", headers=headers)
        _check_error(status, body, 401, "Authorization")
        status, body = server.json("POST", "/v1/predict", b"{}", headers=headers)
        _check_error(status, body, 401, "Authorization")
    assert server.json("GET", "/v1/health")[0] == 200  # probes need no key


def test_predict_a_json_transcript_sent_as_the_body_and_open_its_report(server, demo,
                                                                        transcript):
    status, answer = server.json("POST", "/v1/predict",
                                 Path(demo["transcript"]).read_bytes(),
                                 {**BEARER, "Content-Type": "application/json"})
    assert status == 200, answer
    assert [u["id"] for u in answer["utterances"]] == list(demo["true_labels"])
    assert answer["label_names"] == ["neutral", "happy", "sad", "angry"]
    for utterance in answer["utterances"]:
        assert utterance["label"] in answer["label_names"]
        assert abs(sum(utterance["probabilities"].values()) - 1) < 1e-4
        assert utterance["modalities"]["text"]["present"]
        assert not utterance["modalities"]["audio"]["present"]
    assert any("no audio" in notice for notice in answer["notices"])
    assert answer["checkpoint"] == "run" and answer["media"] == {}
    assert answer["report"] == f"/v1/reports/{answer['id']}" and len(answer["id"]) == 32
    status, body = server.json("GET", answer["report"])
    _check_error(status, body, 401, "Authorization")
    status, headers, page = server.request("GET", answer["report"], headers=BEARER)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["referrer-policy"] == "no-referrer"
    assert all(u["id"].encode() in page for u in answer["utterances"])


def test_predict_an_srt_upload_and_a_csv_body(server, transcript):
    body, content_type = multipart([("transcript", "call.srt", _srt(transcript))])
    status, answer = server.json("POST", "/v1/predict", body,
                                 {**BEARER, "Content-Type": content_type})
    assert status == 200, answer
    assert [u["speaker"] for u in answer["utterances"]] == [
        u["speaker"] for u in transcript["dialogues"][0]["utterances"]]
    csv = b"Speaker,Utterance\nA,I am so happy today!\nB,That is awful news.\n"
    status, answer = server.json("POST", "/v1/predict?format=csv", csv,
                                 {**BEARER, "Content-Type": "text/plain"})
    assert status == 200, answer
    assert [u["text"] for u in answer["utterances"]] == ["I am so happy today!",
                                                          "That is awful news."]


def test_predict_with_the_recording_uploaded(server, demo):
    body, content_type = multipart([
        ("transcript", "transcript.json", Path(demo["transcript"]).read_bytes()),
        ("media", "unseen.mp4", Path(demo["media"]).read_bytes())])
    status, _, raw = server.request("POST", "/v1/predict", body,
                                    {**BEARER, "Content-Type": content_type})
    answer = json.loads(raw)
    assert status == 200, answer
    assert answer["media"] == {"audio": "unseen.mp4", "video": "unseen.mp4"}
    for utterance in answer["utterances"]:
        for modality in ("text", "audio", "video"):
            assert utterance["modalities"][modality]["present"], (utterance["id"], modality)
    assert str(server.tmp).encode() not in raw  # no server path in the answer
    assert server.work_folders() and not any((server.work_folders()[0] / "requests").iterdir())


def test_reports_are_bounded_oldest_dropped(server):
    csv = b"Speaker,Utterance\nA,Hello.\nB,Hi!\n"
    ids = []
    for _ in range(4):
        status, answer = server.json("POST", "/v1/predict?format=csv", csv, BEARER)
        assert status == 200, answer
        ids.append(answer["id"])
    status, body = server.json("GET", f"/v1/reports/{ids[0]}", headers=BEARER)
    _check_error(status, body, 404, "report_id")
    assert server.request("GET", f"/v1/reports/{ids[-1]}", headers=BEARER)[0] == 200
    for guess in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "A" * 32):
        assert server.request("GET", f"/v1/reports/{guess}", headers=BEARER)[0] == 404


# -- bad input: a 4xx JSON error naming the field ------------------------------------------------

def test_bad_transcripts_and_recordings_name_the_field(server, demo):
    def post(parts=None, body=None, path="/v1/predict", content_type="application/json"):
        if parts is not None:
            body, content_type = multipart(parts)
        return server.json("POST", path, body, {**BEARER, "Content-Type": content_type})

    one = {"speaker": "A", "text": "hi", "start": 1.0, "end": 2.0}
    message = _check_error(*post(body=json.dumps(
        {"utterances": [{**one, "end": 0.5}]}).encode()), 422, "transcript")
    assert "utterances[0].end" in message
    _check_error(*post(body=b""), 422, "transcript")
    assert "UTF-8" in _check_error(*post(body=b'{"utterances": "\xff"}'), 422, "transcript")
    # A transcript may not make the server open its own files.
    for named in ({"utterances": [one], "media": {"audio": "/etc/passwd"}},
                  {"utterances": [{**one, "media": {"audio": "../../secret.wav"}}]}):
        assert "names a file" in _check_error(*post(body=json.dumps(named).encode()), 422,
                                              "transcript")
    _check_error(*post(body=b"A: hi", content_type="text/plain"), 422, "format")
    _check_error(*post(path="/v1/predict?format=xml", body=b"{}"), 422, "format")
    transcript = ("transcript", "t.json", Path(demo["transcript"]).read_bytes())
    _check_error(*post([("format", None, b"json")]), 422, "transcript")
    _check_error(*post([transcript, ("bogus", None, b"1")]), 422, "bogus")
    _check_error(*post([transcript, ("audio", None, b"not a file")]), 422, "audio")
    # Uploads ffmpeg would follow elsewhere are refused before it sees them.
    for content in (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", b"ffconcat version 1.0\n"):
        _check_error(*post([transcript, ("audio", "list.m3u8", content)]), 415, "audio")
    message = _check_error(*post([transcript, ("video", "voice.wav", _wav(2))]), 422, "video")
    assert "voice.wav" in message and "video stream" in message
    message = _check_error(*post([transcript, ("audio", "long.wav", _wav(40))]), 413, "audio")
    assert "30 s" in message
    # Utterance times after the end of the recording: the transcript's field is named.
    message = _check_error(*post([transcript, ("audio", "short.wav", _wav(3))]), 422,
                           "transcript")
    assert "utterances[" in message
    status, body = server.json("GET", "/v1/nothing-here")
    _check_error(status, body, 404, None)


def test_malformed_multipart_bodies_are_400(server):
    for content_type, body in (("multipart/form-data", b"--x\r\n"),
                               ("multipart/form-data; boundary=XYZ", b"garbage, no parts"),
                               ("multipart/form-data; boundary=XYZ",
                                b'--XYZ\r\nContent-Disposition: form-data\r\n\r\nno name\r\n'
                                b"--XYZ--\r\n")):
        status, answer = server.json("POST", "/v1/predict", body,
                                     {**BEARER, "Content-Type": content_type})
        _check_error(status, answer, 400, "body")
    assert server.health()["status"] == "ready"


# -- size limits, cut uploads, overload ----------------------------------------------------------

def test_a_2_gb_upload_is_refused_before_it_is_read(server):
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(raw_request_head(server.port, "POST", "/v1/predict", {
            **BEARER, "Content-Type": "application/json", "Content-Length": str(2 * 2**30)}))
        sock.sendall(b"{" + b" " * 1023)
        status, headers, body = read_response(sock)
    assert time.monotonic() - began < 10
    _check_error(status, json.loads(body), 413, "body")
    assert headers["connection"] == "close"


def test_a_chunked_upload_is_cut_off_just_past_the_limit(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(raw_request_head(server.port, "POST", "/v1/predict", {
            **BEARER, "Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        chunk = b" " * 2**16
        sent = 0
        while not readable(sock, 0.05):
            assert sent <= 2 * 2**20, "the server read past twice its limit"
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
        status, _, body = read_response(sock)
    assert 2**20 < sent <= 2**20 + 4 * len(chunk)
    _check_error(status, json.loads(body), 413, "body")
    assert server.health()["status"] == "ready"


def _start_upload(server, body: bytes, content_type: str, sent: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(raw_request_head(server.port, "POST", "/v1/predict", {
        **BEARER, "Content-Type": content_type, "Content-Length": str(len(body))}))
    sock.sendall(body[:sent])
    return sock


def test_a_client_that_leaves_mid_upload_leaves_nothing_behind(server, demo):
    body, content_type = multipart([
        ("transcript", "t.json", Path(demo["transcript"]).read_bytes()),
        ("media", "unseen.mp4", Path(demo["media"]).read_bytes())])
    sock = _start_upload(server, body, content_type, len(body) // 2)
    server.wait_for(lambda health: health["admitted"] == 1, timeout=20)
    sock.close()
    server.wait_for(lambda health: health["admitted"] == 0, timeout=20)
    assert not any((server.work_folders()[0] / "requests").iterdir())
    assert server.health()["status"] == "ready"


def test_beyond_the_queue_requests_get_503_with_retry_after(server, demo):
    body = Path(demo["transcript"]).read_bytes()
    slow = [_start_upload(server, body, "application/json", 10) for _ in range(2)]
    try:
        server.wait_for(lambda health: health["admitted"] == 2, timeout=20)
        status, headers, raw = server.request("POST", "/v1/predict", body,
                                              {**BEARER, "Content-Type": "application/json"})
        _check_error(status, json.loads(raw), 503, None)
        assert int(headers["retry-after"]) >= 1
        # The admitted ones still finish.
        slow[0].sendall(body[10:])
        status, _, answer = read_response(slow[0])
        assert status == 200, answer
    finally:
        for sock in slow:
            sock.close()
    server.wait_for(lambda health: health["admitted"] == 0, timeout=20)
    status, answer = server.json("POST", "/v1/predict", body,
                                 {**BEARER, "Content-Type": "application/json"})
    assert status == 200, answer


def test_cors_only_for_the_origin_asked_for(server):
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}
    status, headers, _ = server.request("OPTIONS", "/v1/predict", headers={
        "Origin": "https://app.example.org", **preflight})
    assert status == 200 and headers["access-control-allow-origin"] == "https://app.example.org"
    status, headers, _ = server.request("OPTIONS", "/v1/predict", headers={
        "Origin": "https://elsewhere.example", **preflight})
    assert status == 400 and "access-control-allow-origin" not in headers


# -- loading, SIGTERM ----------------------------------------------------------------------------

def test_loading_then_sigterm_during_a_request(demo, tmp_path):
    """While the checkpoint cannot be read yet (a FIFO that no one writes), the service says
    loading; a request that is mid-upload when SIGTERM comes still gets its answer, then the
    process exits 0 and removes its folder. No CORS header without --cors-origin."""
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    source = Path(demo["checkpoint"]) / "checkpoint"
    (checkpoint / "weights.npz").write_bytes((source / "weights.npz").read_bytes())
    os.mkfifo(checkpoint / "checkpoint.json")
    server = Server(tmp_path, "--checkpoint", str(checkpoint))
    try:
        health = server.wait_for(lambda health: True, timeout=60)
        assert health["status"] == "loading"
        status, headers, _ = server.request("GET", "/v1/health")
        assert status == 503 and int(headers["retry-after"]) > 0
        body = Path(demo["transcript"]).read_bytes()
        status, headers, raw = server.request("POST", "/v1/predict", body,
                                              {"Content-Type": "application/json"})
        _check_error(status, json.loads(raw), 503, None)
        assert int(headers["retry-after"]) > 0
        _check_error(*server.json("GET", "/v1/model"), 503, None)
        with open(checkpoint / "checkpoint.json", "wb") as fifo:
            fifo.write((source / "checkpoint.json").read_bytes())
        server.wait_for(lambda health: health["status"] == "ready")
        status, headers, _ = server.request("GET", "/v1/health",
                                            headers={"Origin": "https://app.example.org"})
        assert "access-control-allow-origin" not in headers

        sock = _start_upload(server, body, "application/json", len(body) // 2)
        server.wait_for(lambda health: health["admitted"] == 1, timeout=20)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(body[len(body) // 2:])
        status, _, answer = read_response(sock)
        sock.close()
        assert status == 200, answer
        assert len(json.loads(answer)["utterances"]) == len(demo["true_labels"])
        assert server.process.wait(timeout=60) == 0, server.log()
        assert server.work_folders() == []
    finally:
        server.stop()


# -- /v1/stream: a live conversation over a WebSocket -------------------------------------------

def _stream(server, key: str | None = API_KEY):
    from websockets.sync.client import connect

    headers = {} if key is None else {"X-API-Key": key}
    return connect(f"ws://127.0.0.1:{server.port}/v1/stream", additional_headers=headers,
                   open_timeout=30, close_timeout=10)


def test_a_stream_answers_each_utterance_as_it_arrives(server, transcript):
    turns = transcript["dialogues"][0]["utterances"] if "dialogues" in transcript \
        else transcript["utterances"]
    with _stream(server) as socket:
        for index, turn in enumerate(turns[:3]):
            socket.send(json.dumps({"speaker": turn["speaker"], "text": turn["text"],
                                    "start": turn.get("start"), "end": turn.get("end")}))
            answer = json.loads(socket.recv(timeout=60))
            assert answer["type"] == "prediction", answer
            utterance = answer["utterance"]
            assert utterance["id"] == f"u{index}" and utterance["text"] == turn["text"]
            assert utterance["label"] in ("neutral", "happy", "sad", "angry")
            assert abs(sum(utterance["probabilities"].values()) - 1) < 1e-4
            assert isinstance(answer["revisions"], list)
            assert set(answer["timings"]) == {"extract_s", "model_s"}
        # A bad message is answered with the field at fault, and the stream goes on.
        for message, field in (('{"text": "no speaker"}', "speaker"), ("[1, 2]", "message"),
                               ('{"speaker": "A", "text": "x", "mood": 1}', "mood"),
                               ('{"speaker": "A", "text": "x", "start": 3, "end": 1}', "end"),
                               ('{"speaker": "A", "text": "again", "id": "u0"}', "id")):
            socket.send(message)
            answer = json.loads(socket.recv(timeout=60))
            assert (answer["type"], answer["status"], answer["field"]) == ("error", 422, field)
        socket.send(json.dumps({"speaker": "A", "text": "Still here.", "id": "last"}))
        assert json.loads(socket.recv(timeout=60))["utterance"]["id"] == "last"


def test_a_stream_without_the_key_or_beyond_the_limit_is_closed_with_the_reason(server):
    from websockets.exceptions import ConnectionClosed

    with _stream(server, key="wrong") as socket:
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=30)
    assert closed.value.rcvd.code == 1008 and "API key" in closed.value.rcvd.reason
    with _stream(server) as first:
        first.send(json.dumps({"speaker": "A", "text": "Hello."}))
        assert json.loads(first.recv(timeout=60))["type"] == "prediction"
        with _stream(server) as second:  # --max-streams 1
            with pytest.raises(ConnectionClosed) as closed:
                second.recv(timeout=30)
        assert closed.value.rcvd.code == 1013 and "streams are open" in closed.value.rcvd.reason


def test_the_listener_serves_with_nagle_off_and_names_a_port_in_use():
    import asyncio

    from hotspot_erc.serve.server import bind_listener

    async def accepted_nodelay() -> int:
        listener = bind_listener("127.0.0.1", 0)
        options: list[int] = []

        class Recorder(asyncio.Protocol):
            def connection_made(self, transport) -> None:
                sock = transport.get_extra_info("socket")
                options.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Recorder, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname())
            while not options:
                await asyncio.sleep(0.01)
            writer.close()
        return options[0]

    # Nagle's algorithm on would hold each response body ~40 ms behind its headers.
    assert asyncio.run(accepted_nodelay()) != 0
    taken = bind_listener("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        taken.listen()
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind_listener("127.0.0.1", port)
    finally:
        taken.close()
