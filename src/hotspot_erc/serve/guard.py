"""The ASGI layer in front of every route: the request size limit and the response headers.

A body whose ``Content-Length`` exceeds the limit is answered with 413 at once, before a byte
of it is read; a body without one (chunked) is counted as it arrives and refused with 413 as
soon as it passes the limit, so memory and disk never hold more than the limit.
"""

from __future__ import annotations

import json

from hotspot_erc.serve.errors import ServeError, error_body

# Every answer: no content sniffing, no caching of predictions, no report id in a Referer.
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"),
                    (b"referrer-policy", b"no-referrer")]


class RequestGuard:
    """ASGI middleware: refuse bodies over ``max_bytes`` (413), add :data:`SECURITY_HEADERS`."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  *SECURITY_HEADERS]}
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _refuse(send_with_headers, 400, "Content-Length",
                              f"expected a number of bytes, got {declared[:40]!r}")
                return
            if length > self.max_bytes:
                await _refuse(send_with_headers, 413, "body", self._too_large(length))
                return
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise ServeError(413, "body", self._too_large(None),
                                     headers={"Connection": "close"})
            return message

        await self.app(scope, counted_receive, send_with_headers)

    def _too_large(self, length: int | None) -> str:
        size = "the request body" if length is None else f"the request body ({length} bytes)"
        return (f"{size} is larger than this service accepts: at most {self.max_bytes} bytes "
                f"({self.max_bytes / 2**20:g} MiB, --max-request-mb)")


async def _refuse(send, status: int, field: str, message: str) -> None:
    body = json.dumps(error_body(status, field, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
