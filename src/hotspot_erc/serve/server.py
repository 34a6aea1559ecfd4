"""Run the service under uvicorn until SIGTERM or Ctrl-C, then leave cleanly.

On SIGTERM the server stops accepting connections, lets running requests finish (up to
``shutdown_timeout_s``), removes its temporary folder and returns 0; Ctrl-C the same, returning
130 (the command line's status for an interruption). A model that fails to load stops the
server and its error is raised here, so the command line reports it as one line.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading

import uvicorn

from hotspot_erc.serve.app import build_app
from hotspot_erc.serve.config import ServeConfig
from hotspot_erc.serve.stream import MAX_MESSAGE_BYTES

log = logging.getLogger("hotspot_erc.serve")


def serve(config: ServeConfig) -> int:
    """Serve ``config`` (blocking); return the exit status."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    # Bound here, so a port in use is one clear OSError before anything loads.
    listener = bind_listener(config.host, config.port)
    failures: list[BaseException] = []
    server: _Server | None = None

    def on_failed(error: BaseException) -> None:
        failures.append(error)
        if server is not None:
            server.should_exit = True

    app = build_app(config, on_failed=on_failed)
    server = _Server(uvicorn.Config(
        app, host=config.host, port=listener.getsockname()[1], log_level="info",
        server_header=False, timeout_graceful_shutdown=int(config.shutdown_timeout_s),
        # uvicorn's own backstop (plain 503) far above what the admission gate lets in.
        limit_concurrency=max(64, 4 * (config.concurrency + config.queue + config.max_streams)),
        ws="websockets", ws_max_size=MAX_MESSAGE_BYTES))
    if not config.loopback and config.api_key is None:
        log.warning("listening on %s without --api-key-file: anyone who can reach this "
                    "address can use the service", config.host)
    log.info("hotspot-erc serving %s on http://%s:%d (docs: /docs); loading the model",
             config.checkpoint, config.host, listener.getsockname()[1])
    with listener:
        server.run(sockets=[listener])
    if failures:
        raise failures[0]
    return 130 if signal.SIGINT in server.signals else 0


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port``; a port in use is an OSError naming it.

    IPPROTO_TCP is named because asyncio turns Nagle's algorithm off only on sockets that say
    they are TCP: with it on, a response's body waits about 40 ms behind its headers on a
    kept-alive connection (the client delays its acknowledgement).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise OSError(error.errno, f"cannot listen on {host}:{port}: {error.strerror}") from None
    return listener


class _Server(uvicorn.Server):
    """uvicorn's server, except that a signal it shut down for is not raised again afterwards
    (uvicorn re-raises it, so SIGTERM would kill the process instead of ending it with 0)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.signals: list[int] = []

    def handle_exit(self, sig, frame) -> None:
        self.signals.append(sig)
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
