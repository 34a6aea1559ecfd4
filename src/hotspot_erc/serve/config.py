"""What a running service may do: its address, its limits, its key. One dataclass, checked once."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

# A key shorter than this is guessable by a patient client; the error says how to make one.
MIN_API_KEY_CHARS = 16


@dataclass(frozen=True)
class ServeConfig:
    """Options of ``hotspot-erc serve``; every limit bounds what one request can make it do.

    Args:
        checkpoint: run or checkpoint folder, loaded once at start-up.
        host, port: where to listen; 127.0.0.1 unless another address is asked for.
        api_key: the key clients must send (``Authorization: Bearer KEY`` or ``X-API-Key``);
            None: no key.
        max_request_mb: a request body larger than this is refused with 413, before it is read
            (from its ``Content-Length``) or as soon as it grows past it (chunked bodies).
        max_media_seconds: a recording longer than this is refused with 413.
        max_utterances: a transcript with more turns is refused with 413.
        concurrency: predictions (and report renderings) running at once.
        queue: requests admitted beyond those running (uploading, or waiting for a slot); one
            more is refused with 503 and ``Retry-After``.
        cors_origins: origins a browser page may call from; empty: no CORS headers at all.
        max_reports: reports kept for their links; the oldest is dropped beyond it.
        workers: processes that extract audio and video per request; 1 (the default) keeps the
            media models loaded in the server between requests.
        upload_timeout_s: seconds a client may take to send its request body (then 408).
        shutdown_timeout_s: on SIGTERM, seconds running requests get to finish.
        max_streams: ``/v1/stream`` connections open at once (each holds its conversation so
            far); one more is closed with code 1013 (try again later).
    """

    checkpoint: str
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = field(default=None, repr=False)
    max_request_mb: float = 64.0
    max_media_seconds: float = 600.0
    max_utterances: int = 1000
    concurrency: int = 1
    queue: int = 8
    cors_origins: tuple[str, ...] = ()
    max_reports: int = 100
    workers: int = 1
    upload_timeout_s: float = 120.0
    shutdown_timeout_s: float = 60.0
    max_streams: int = 8

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port: expected 0 to 65535, got {self.port}")
        for name, value in (("--max-request-mb", self.max_request_mb),
                            ("--max-media-seconds", self.max_media_seconds),
                            ("--upload-timeout", self.upload_timeout_s),
                            ("--shutdown-timeout", self.shutdown_timeout_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a finite number > 0, got {value}")
        for name, value, least in (("--concurrency", self.concurrency, 1),
                                   ("--queue", self.queue, 0),
                                   ("--max-reports", self.max_reports, 1),
                                   ("--max-utterances", self.max_utterances, 1),
                                   ("--workers", self.workers, 1),
                                   ("--max-streams", self.max_streams, 1)):
            if value < least:
                raise ValueError(f"{name}: expected an integer >= {least}, got {value}")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"--cors-origin {origin!r}: expected an origin such as "
                                 "https://app.example.org (scheme, host, optional port) or *")

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 2**20)

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "::1", "localhost")


def read_api_key(path: str | os.PathLike) -> str:
    """The key in ``path`` (its one line, surrounding whitespace removed)."""
    path = Path(path)
    try:
        key = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"--api-key-file {path}: not UTF-8 text") from None
    if not key or "\n" in key:
        raise ValueError(f"--api-key-file {path}: expected one line holding the key")
    if len(key) < MIN_API_KEY_CHARS:
        raise ValueError(
            f"--api-key-file {path}: the key has {len(key)} characters; use at least "
            f"{MIN_API_KEY_CHARS}, e.g. python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'")
    return key
