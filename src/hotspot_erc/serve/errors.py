"""Every refusal of the service is one JSON object naming the field at fault."""

from __future__ import annotations


class ServeError(Exception):
    """A request the service refuses: its HTTP ``status``, the request ``field`` at fault (None:
    the request as a whole), a ``message`` for the client and extra response ``headers``."""

    def __init__(self, status: int, field: str | None, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return error_body(self.status, self.field, self.message)


def error_body(status: int, field: str | None, message: str) -> dict:
    """``{"status": 422, "field": "transcript", "error": "transcript.json: ..."}``."""
    return {"status": status, "field": field, "error": message}
