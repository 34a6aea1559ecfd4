"""``/v1/stream``: a live conversation over a WebSocket, one utterance per message.

The client sends one JSON object per utterance, as it is spoken::

    {"speaker": "Ana", "text": "I can't believe you did that!", "id": "u7",
     "start": 12.4, "end": 14.0}

(``speaker`` and ``text`` required; ``id`` defaults to ``u<n>``, the utterance's number in the
stream; ``start``/``end`` optional seconds). The server answers each with the utterance's
prediction as soon as the model has it (:class:`~hotspot_erc.engine.stream.StreamUpdate`)::

    {"type": "prediction", "utterance": {... as a line of predictions.jsonl ...},
     "revisions": [{"id": "u5", "previous": "neutral", "label": "frustrated", ...}],
     "notices": [], "timings": {"extract_s": ..., "model_s": ...}}

``revisions`` lists the earlier utterances whose label changed with the new context (none with
a causal checkpoint). A bad message gets ``{"type": "error", "status": 422, "field": ...,
"error": ...}`` and the stream goes on. The WebSocket carries text; recordings of each turn go
through the Python API (:class:`~hotspot_erc.engine.stream.StreamingPredictor`).

Bounds: the API key (as for every route, in the handshake's headers), at most ``max_streams``
streams open at once and ``max_utterances`` utterances per stream, messages of at most
:data:`MAX_MESSAGE_BYTES` (uvicorn closes the connection beyond it), model work in the same
slots as ``/v1/predict``. Refusals close the connection with a WebSocket close code: 1008
(policy: key, limits), 1013 (try again later: the model is loading, too many streams).
"""

from __future__ import annotations

import json
import logging
import math

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from hotspot_erc.data.dialogue import Utterance
from hotspot_erc.data.transcript import MAX_SPEAKER_CHARS
from hotspot_erc.serve.errors import ServeError, error_body

log = logging.getLogger("hotspot_erc.serve")

MAX_MESSAGE_BYTES = 64 * 2**10
MAX_ID_CHARS = 100
FIELDS = ("speaker", "text", "id", "start", "end")
# WebSocket close codes (RFC 6455, 7.4.1).
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


def parse_utterance(message: str, number: int) -> Utterance:
    """The utterance of one message; a :class:`ServeError` (422) naming the field otherwise."""
    try:
        data = json.loads(message)
    except (json.JSONDecodeError, RecursionError):
        raise ServeError(422, "message", "expected one JSON object per utterance") from None
    if not isinstance(data, dict):
        raise ServeError(422, "message", "expected a JSON object with speaker and text, got "
                         f"{type(data).__name__}")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ServeError(422, unknown[0], f"unknown field(s) {unknown}; expected "
                         f"{', '.join(FIELDS)}")
    speaker, text = data.get("speaker"), data.get("text")
    if not isinstance(speaker, str) or not speaker.strip() or len(speaker) > MAX_SPEAKER_CHARS:
        raise ServeError(422, "speaker", "expected a non-empty string of at most "
                         f"{MAX_SPEAKER_CHARS} characters")
    if not isinstance(text, str):
        raise ServeError(422, "text", f"expected a string, got {type(text).__name__}")
    uid = data.get("id", f"u{number}")
    if not isinstance(uid, str) or not uid or len(uid) > MAX_ID_CHARS:
        raise ServeError(422, "id", f"expected a non-empty string of at most {MAX_ID_CHARS} "
                         "characters")
    times = {}
    for name in ("start", "end"):
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            raise ServeError(422, name, f"expected seconds (a finite number >= 0), got {value!r}")
        times[name] = None if value is None else float(value)
    if None not in times.values() and times["end"] < times["start"]:
        raise ServeError(422, "end", f"ends ({times['end']}) before it starts "
                         f"({times['start']})")
    return Utterance(uid, speaker.strip(), text, times["start"], times["end"])


async def serve_stream(websocket: WebSocket, state, gate, config, streams: dict,
                       authorised) -> None:
    """One stream from handshake to close (see the module docstring). ``streams["open"]``
    counts the streams open; ``authorised(headers)`` checks the API key."""
    # Accepted first, so that a refusal reaches the client as a close code with its reason.
    await websocket.accept()
    if not authorised(websocket.headers):
        await websocket.close(POLICY_VIOLATION, "missing or wrong API key: send "
                              "'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
        return
    if state.status != "ready":
        await websocket.close(TRY_AGAIN_LATER, f"the model is {state.status}")
        return
    if streams["open"] >= config.max_streams:
        await websocket.close(TRY_AGAIN_LATER, f"{streams['open']} streams are open; retry "
                              "later")
        return
    streams["open"] += 1
    try:
        await _follow(websocket, state.predictor, gate, config)
    except WebSocketDisconnect:
        log.info("a stream's client left")
    finally:
        streams["open"] -= 1


async def _follow(websocket: WebSocket, predictor, gate, config) -> None:
    from hotspot_erc.engine.stream import StreamingPredictor

    stream = await anyio.to_thread.run_sync(StreamingPredictor, predictor, "stream",
                                            limiter=gate.limiter)
    number = 0
    while True:
        message = await websocket.receive_text()
        if number >= config.max_utterances:
            await websocket.send_json({"type": "error", **error_body(
                413, None, f"a stream holds at most {config.max_utterances} utterances; open "
                "a new one")})
            await websocket.close(POLICY_VIOLATION, "utterance limit reached")
            return
        try:
            utterance = parse_utterance(message, number)
            update = await anyio.to_thread.run_sync(stream.push, utterance,
                                                    limiter=gate.limiter)
        except ServeError as error:
            await websocket.send_json({"type": "error", **error.body()})
            continue
        except ValueError as error:  # the stream's own checks (a repeated id)
            await websocket.send_json({"type": "error", **error_body(422, "id", str(error))})
            continue
        number += 1
        await websocket.send_json({"type": "prediction", **update.to_json()})
