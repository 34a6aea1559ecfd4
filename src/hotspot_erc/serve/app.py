"""The FastAPI application: a checkpoint loaded once, predictions over HTTP, bounded work.

Routes (``/docs`` shows them with their schemas):

* ``POST /v1/predict``: a conversation (see :mod:`.intake`) -> the JSON of
  ``predictions.jsonl`` for it (:meth:`ConversationPrediction.to_json`: ``name``,
  ``label_names``, ``notices``, ``utterances`` with their evidence, ``timings``) plus ``id`` and
  ``report``, the path of its report page;
* ``GET /v1/reports/{id}``: that ``report.html`` (rendered on first use);
* ``GET /v1/health``: ``ok`` (200), ``loading`` or ``failed`` (503);
* ``GET /v1/model``: what the checkpoint is (labels, modalities, feature spec, configs, its
  model card);
* ``WebSocket /v1/stream``: a live conversation, one utterance per message, each answered with
  its prediction as soon as it is made (:mod:`.stream`).

The same checks as ``hotspot-erc predict`` apply, through the same functions
(:func:`~hotspot_erc.engine.predict.conversation_media`,
:func:`~hotspot_erc.data.transcript.load_transcript`,
:meth:`~hotspot_erc.engine.predict.Predictor.predict`); their errors become 4xx answers naming
the request field. Each request gets a private folder (mode 0700) inside the service's own
temporary folder, removed when it ends; server paths in messages are replaced by the client's
file names. At most ``concurrency`` predictions run at once and ``queue`` more requests are
admitted (uploading or waiting); one more is answered 503 with ``Retry-After``.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from hotspot_erc import __version__
from hotspot_erc.data.dialogue import DataFormatError, Dialogue, Utterance
from hotspot_erc.engine.prediction import ConversationPrediction
from hotspot_erc.serve.config import ServeConfig
from hotspot_erc.serve.errors import ServeError, error_body
from hotspot_erc.serve.guard import RequestGuard
from hotspot_erc.serve.intake import MEDIA_FIELDS, Intake, receive
from hotspot_erc.serve.reports import ReportStore
from hotspot_erc.serve.stream import serve_stream

log = logging.getLogger("hotspot_erc.serve")

MODEL_CARD_NAMES = ("model_card.md", "MODEL_CARD.md", "README.md")
MAX_MODEL_CARD_BYTES = 256 * 2**10
# Until a prediction has been timed, Retry-After assumes this many seconds per prediction.
DEFAULT_PREDICTION_S = 2.0


class ModelState:
    """The predictor, loaded once in a background thread: ``loading``, ``ready`` or ``failed``."""

    def __init__(self, loader: Callable, on_failed: Callable[[BaseException], None] | None
                 ) -> None:
        self.status = "loading"
        self.predictor = None
        self.error: BaseException | None = None
        self._loader = loader
        self._on_failed = on_failed

    def load(self) -> None:
        began = time.perf_counter()
        try:
            predictor = self._loader()
            predictor.extractors()
            if "text" in predictor.checkpoint.feature_spec.modalities:
                # Loads the text encoder and pays the first forward pass before any client does.
                predictor.predict(Dialogue("warm-up", [Utterance("w0", "A", text="Hello there."),
                                                       Utterance("w1", "B", text="Hi!")]))
        except Exception as error:  # any failure ends the service with its message
            self.error, self.status = error, "failed"
            log.error("loading the model failed: %s", error)
            if self._on_failed is not None:
                self._on_failed(error)
            return
        self.predictor, self.status = predictor, "ready"
        log.info("model %s ready in %.1f s", model_name(predictor.checkpoint),
                 time.perf_counter() - began)

    def ready(self):
        """The predictor, or a 503 while it loads."""
        if self.status == "ready":
            return self.predictor
        if self.status == "loading":
            raise ServeError(503, None, "the model is still loading; retry shortly",
                             headers={"Retry-After": "5"})
        raise ServeError(503, None, "the model failed to load; see the server's log")


class Gate:
    """Admission: ``running`` predictions at once and ``waiting`` more admitted requests."""

    def __init__(self, running: int, waiting: int) -> None:
        self.slots = running
        self.capacity = running + waiting
        self.admitted = 0
        self.limiter: anyio.CapacityLimiter | None = None  # made in the event loop
        self._mean_s = DEFAULT_PREDICTION_S

    def start(self) -> None:
        self.limiter = anyio.CapacityLimiter(self.slots)

    @property
    def running(self) -> int:
        return 0 if self.limiter is None else int(self.limiter.borrowed_tokens)

    @contextmanager
    def admit(self):
        """Count a request in, or refuse it with 503 when full (no await between the check and
        the count: the event loop runs one request at a time here)."""
        if self.admitted >= self.capacity:
            raise ServeError(503, None, f"the service is busy ({self.admitted} requests "
                             "admitted); retry later",
                             headers={"Retry-After": str(self.retry_after())})
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    def record(self, seconds: float) -> None:
        self._mean_s = 0.8 * self._mean_s + 0.2 * seconds

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue ahead, at the mean prediction time."""
        return max(1, math.ceil(self._mean_s * self.admitted / self.slots))


def model_name(checkpoint) -> str:
    """The run folder's name (the checkpoint folder's, when it is not ``checkpoint/``)."""
    path = Path(checkpoint.path or "model")
    return path.parent.name if path.name == "checkpoint" else path.name


def model_card(checkpoint) -> str | None:
    """The text of a model card kept with the checkpoint (or its run folder), if any."""
    path = Path(checkpoint.path or ".")
    folders = [path, path.parent] if path.name == "checkpoint" else [path]
    for folder in folders:
        for name in MODEL_CARD_NAMES:
            card = folder / name
            if card.is_file():
                with card.open("rb") as stream:
                    return stream.read(MAX_MODEL_CARD_BYTES).decode("utf-8", errors="replace")
    return None


def describe_model(checkpoint, config: ServeConfig) -> dict:
    """The answer of ``GET /v1/model``."""
    spec = checkpoint.feature_spec
    return {"name": model_name(checkpoint), "hotspot_erc_version": __version__,
            "labels": list(checkpoint.label_names), "modalities": list(spec.modalities),
            "feature_spec": spec.to_dict(), "model_config": checkpoint.config.to_dict(),
            "train_config": checkpoint.train_config, "epoch": checkpoint.epoch,
            "model_card": None if checkpoint.card is None else checkpoint.card.to_json(),
            "model_card_text": model_card(checkpoint),
            "limits": {"max_request_bytes": config.max_request_bytes,
                       "max_media_seconds": config.max_media_seconds,
                       "max_utterances": config.max_utterances,
                       "concurrency": config.concurrency, "queue": config.queue,
                       "max_streams": config.max_streams}}


class _Publisher:
    """Rewrites messages for the client: saved files by the client's names, no server paths."""

    def __init__(self, folder: Path, names: dict[str, str]) -> None:
        self.folder = str(folder)
        self.names = sorted(names.items(), key=lambda item: -len(item[0]))

    def __call__(self, message: str) -> str:
        for path, name in self.names:
            message = message.replace(path, name)
        return message.replace(self.folder + "/", "").replace(self.folder, "(upload)")


def _read_conversation(intake: Intake, publish: _Publisher, config: ServeConfig
                       ) -> tuple[Dialogue, list[str]]:
    """Probe the recordings, read the transcript: the checks of ``hotspot-erc predict``."""
    from hotspot_erc.data.transcript import load_transcript
    from hotspot_erc.engine.predict import conversation_media
    from hotspot_erc.features.decode import MediaError

    for name, path in intake.media.items():
        try:
            _, seconds = conversation_media(**{name: str(path)})
        except (MediaError, ValueError) as error:
            raise ServeError(422, name, publish(str(error))) from None
        if seconds is None:
            raise ServeError(422, name, "cannot tell how long the recording is")
        if seconds > config.max_media_seconds:
            raise ServeError(413, name, f"the recording lasts {seconds:.1f} s; this service "
                             f"accepts at most {config.max_media_seconds:g} s "
                             "(--max-media-seconds)")
    media, duration = conversation_media(**{n: str(p) for n, p in intake.media.items()})
    try:
        dialogue, notices = load_transcript(intake.transcript, intake.format, media=media,
                                            media_duration=duration)
    except (DataFormatError, ValueError) as error:
        raise ServeError(422, "transcript", publish(str(error))) from None
    uploaded = set(media.values())
    named = [f"media.{m}" for m, path in dialogue.media.items() if path not in uploaded]
    named += [f"utterances[{index}].media" for index, u in enumerate(dialogue.utterances)
              if u.media]
    if named:
        raise ServeError(422, "transcript", f"field {named[0]} names a file: a transcript sent "
                         "to this service may not name files; upload the recording as the "
                         f"part {', '.join(MEDIA_FIELDS)}")
    if len(dialogue.utterances) > config.max_utterances:
        raise ServeError(413, "transcript", f"{len(dialogue.utterances)} utterances; this "
                         f"service accepts at most {config.max_utterances} (--max-utterances)")
    return dialogue, [publish(n) for n in notices]


def _run_prediction(predictor, dialogue: Dialogue, notices: list[str], folder: Path,
                    publish: _Publisher, intake: Intake) -> ConversationPrediction:
    from hotspot_erc.features.decode import MediaError

    try:
        # Features of recordings are extracted into the request's folder; text alone is
        # extracted in memory.
        return predictor.predict(dialogue, notices=notices, progress=False,
                                 feature_folder=folder / "features" if intake.media else None)
    except MediaError as error:
        raise ServeError(422, next(iter(intake.media), None), publish(str(error))) from None
    except ValueError as error:  # DataFormatError, FeatureSpecMismatch among them
        raise ServeError(422, None, publish(str(error))) from None


def build_app(config: ServeConfig, loader: Callable | None = None,
              on_failed: Callable[[BaseException], None] | None = None) -> FastAPI:
    """The service for ``config``. ``loader`` returns the
    :class:`~hotspot_erc.engine.predict.Predictor` (default: the checkpoint's, with
    ``config.workers``); it runs in a background thread at start-up, and ``on_failed`` is
    called with its error if it fails."""
    if loader is None:
        def loader():
            from hotspot_erc.engine.predict import Predictor

            return Predictor.load(config.checkpoint, workers=config.workers)

    state = ModelState(loader, on_failed)
    gate = Gate(config.concurrency, config.queue)
    folders: dict[str, Path] = {}
    stores: list[ReportStore] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        root = Path(tempfile.mkdtemp(prefix="hotspot-erc-serve-"))
        folders["root"] = root
        folders["requests"] = root / "requests"
        folders["requests"].mkdir(mode=0o700)
        stores.append(ReportStore(root / "reports", config.max_reports))
        gate.start()
        threading.Thread(target=state.load, name="hotspot-erc-load", daemon=True).start()
        try:
            yield
        finally:
            shutil.rmtree(root, ignore_errors=True)

    app = FastAPI(title="hotspot-erc", version=__version__, lifespan=lifespan,
                  description="Emotion recognition in conversations, with the evidence behind "
                              "each prediction (hotspots, gates, routing).")
    app.state.model = state
    app.state.gate = gate
    app.add_middleware(RequestGuard, max_bytes=config.max_request_bytes)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"],
                           max_age=600)

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, error: ServeError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(error.status_code, None, str(error.detail)),
                            status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, error: Exception) -> JSONResponse:
        # The traceback goes to the server's log, never to the client.
        return JSONResponse(error_body(500, None, "internal error; see the server's log"),
                            status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError
                                ) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
        return JSONResponse(error_body(422, where, first.get("msg", "invalid request")),
                            status_code=422)

    def authorised(headers) -> bool:
        """Whether ``headers`` carry the API key (constant-time comparison), or none is set."""
        if config.api_key is None:
            return True
        supplied = headers.get("x-api-key")
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if supplied is None and scheme.lower() == "bearer":
            supplied = token.strip()
        return supplied is not None and hmac.compare_digest(supplied.encode(),
                                                            config.api_key.encode())

    async def authorise(request: Request) -> None:
        if not authorised(request.headers):
            raise ServeError(401, "Authorization", "missing or wrong API key: send "
                             "'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                             headers={"WWW-Authenticate": "Bearer"})

    errors = {status: {"description": text, "content": {"application/json": {"example": {
        "status": status, "field": field, "error": "..."}}}} for status, field, text in (
        (400, "body", "malformed body (multipart), or the client left mid-upload"),
        (401, "Authorization", "missing or wrong API key"),
        (408, "body", "the body took longer than --upload-timeout"),
        (413, "body", "body, recording or transcript over its limit"),
        (415, "media", "an upload that is not a recording this service reads"),
        (422, "transcript", "the transcript or a recording fails the checks of predict"),
        (503, None, "the model is loading, or the service is busy (see Retry-After)"))}
    transcript_body = {"type": "string", "description": "the transcript (JSON, SRT, WebVTT "
                       "or CSV); its format from ?format= or the Content-Type"}
    predict_body = {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["transcript"],
                                           "properties": {
            "transcript": {"type": "string", "format": "binary",
                           "description": "JSON (manifest schema), SRT/WebVTT with "
                                          "'Speaker: text' cues, or MELD-like CSV; a file or "
                                          "a text field"},
            "format": {"type": "string", "enum": ["json", "srt", "vtt", "csv"],
                       "description": "default: from the file name, then the content type"},
            "media": {"type": "string", "format": "binary",
                      "description": "one recording of the conversation (video with sound, "
                                     "or audio)"},
            "audio": {"type": "string", "format": "binary",
                      "description": "a separate audio recording"},
            "video": {"type": "string", "format": "binary",
                      "description": "a separate video recording"}}}},
        **{kind: {"schema": transcript_body} for kind in (
            "application/json", "application/x-subrip", "text/vtt", "text/csv")}}}

    @app.post("/v1/predict", dependencies=[Depends(authorise)], tags=["predictions"],
              summary="Predict the emotion of every turn of a conversation",
              responses=errors, openapi_extra={"requestBody": predict_body, "parameters": [
                  {"name": "format", "in": "query", "required": False,
                   "schema": {"type": "string", "enum": ["json", "srt", "vtt", "csv"]}}]})
    async def predict(request: Request) -> JSONResponse:
        """The JSON of ``predictions.jsonl`` for the conversation, with ``id`` and ``report``
        (the path of its report page). The conversation comes as a multipart body (parts
        ``transcript``, ``format``, ``media``, ``audio``, ``video``) or as the transcript
        itself."""
        predictor = state.ready()
        with gate.admit():
            # Resolved, so the paths load_transcript resolves are the ones saved here.
            folder = Path(tempfile.mkdtemp(dir=folders["requests"])).resolve()
            try:
                try:
                    with anyio.fail_after(config.upload_timeout_s):
                        intake = await receive(request, folder, config.max_request_bytes)
                except TimeoutError:
                    raise ServeError(408, "body", "the request body took longer than "
                                     f"{config.upload_timeout_s:g} s to arrive") from None
                except ClientDisconnect:
                    log.info("a client left before its request body was complete")
                    raise ServeError(400, "body", "the client closed the connection before "
                                     "the body was complete") from None
                publish = _Publisher(folder, intake.names)
                dialogue, notices = await anyio.to_thread.run_sync(
                    _read_conversation, intake, publish, config)
                began = time.perf_counter()
                conversation = await anyio.to_thread.run_sync(
                    _run_prediction, predictor, dialogue, notices, folder, publish, intake,
                    limiter=gate.limiter)
                gate.record(time.perf_counter() - began)
                public = dataclasses.replace(
                    conversation, checkpoint=model_name(predictor.checkpoint),
                    media={modality: publish(path)
                           for modality, path in conversation.media.items()})
                report_id = await anyio.to_thread.run_sync(stores[0].add, public)
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(shutil.rmtree, folder, True)
        return JSONResponse({**public.to_json(), "id": report_id,
                             "report": f"/v1/reports/{report_id}"})

    @app.get("/v1/reports/{report_id}", dependencies=[Depends(authorise)], tags=["predictions"],
             summary="The report page of a prediction", response_class=Response,
             responses={200: {"content": {"text/html": {}}},
                        401: errors[401], 503: errors[503],
                        404: {"description": "no such report (unknown, or dropped for newer "
                                             "ones)"}})
    async def report(report_id: str) -> Response:
        with gate.admit():
            page = await anyio.to_thread.run_sync(stores[0].page, report_id,
                                                  limiter=gate.limiter)
        if page is None:
            raise ServeError(404, "report_id", "no such report (unknown, or dropped for newer "
                             f"ones: the service keeps the last {config.max_reports})")
        return Response(page, media_type="text/html; charset=utf-8")

    @app.get("/v1/health", tags=["service"], summary="Whether the model is ready")
    async def health() -> JSONResponse:
        body = {"status": state.status, "running": gate.running, "admitted": gate.admitted,
                "capacity": gate.capacity}
        if state.status == "ready":
            return JSONResponse(body)
        headers = {"Retry-After": "5"} if state.status == "loading" else {}
        return JSONResponse(body, status_code=503, headers=headers)

    @app.get("/v1/model", dependencies=[Depends(authorise)], tags=["service"],
             summary="What the served checkpoint is")
    async def model() -> JSONResponse:
        return JSONResponse(describe_model(state.ready().checkpoint, config))

    streams = {"open": 0}

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        await serve_stream(websocket, state, gate, config, streams, authorised)

    return app
