"""A prediction request's body, written into the request's private folder under fixed names.

Two ways to send a conversation to ``POST /v1/predict``:

* ``multipart/form-data`` with the part ``transcript`` (a file, or a text field) and, optionally,
  ``format`` (``json``, ``srt``, ``vtt``, ``csv``) and the recordings ``media`` (one recording:
  its audio and video streams are used), ``audio``, ``video`` (files);
* the transcript itself as the body, its format from ``?format=`` or the ``Content-Type``
  (``application/json``, ``application/x-subrip``, ``text/vtt``, ``text/csv``).

Without ``format`` the transcript's format comes from its upload's file name, then its content
type. Files are saved as ``transcript.<format>``, ``media<.ext>``, ``audio<.ext>``,
``video<.ext>`` (``ext`` kept only when it is a plain extension, as a hint to ffmpeg): nothing a
client sends ever names a file on the server. The client's file names are kept only to name the
recordings in the answer.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import anyio
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from hotspot_erc.data.transcript import FORMATS
from hotspot_erc.serve.containers import ACCEPTED, SNIFF_BYTES, container_of
from hotspot_erc.serve.errors import ServeError

MEDIA_FIELDS = ("media", "audio", "video")
FIELDS = ("transcript", "format", *MEDIA_FIELDS)
CONTENT_TYPES = {
    "application/json": "json", "text/json": "json",
    "application/x-subrip": "srt", "application/srt": "srt", "text/srt": "srt",
    "text/vtt": "vtt",
    "text/csv": "csv", "application/csv": "csv",
}
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}")
_CHUNK = 2**20


@dataclass
class Intake:
    """What a request sent: the transcript file and its format, the recordings by field, and
    the public name of each saved file (the client's file name, else the field)."""

    transcript: Path
    format: str
    media: dict[str, Path] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


async def receive(request: Request, folder: Path, max_part_bytes: int) -> Intake:
    """Write the body of ``request`` into ``folder`` (see the module docstring)."""
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        return await _receive_form(request, folder, max_part_bytes)
    if kind == "application/x-www-form-urlencoded":
        raise ServeError(415, "body", "send the transcript as multipart/form-data (part "
                         "'transcript') or as the body itself, not as a URL-encoded form")
    fmt = _format(request.query_params.get("format"), None, kind)
    target = folder / f"transcript.{fmt}"
    with target.open("wb") as sink:
        async for chunk in request.stream():
            await anyio.to_thread.run_sync(sink.write, chunk)
    return Intake(transcript=target, format=fmt, names={str(target): "transcript"})


async def _receive_form(request: Request, folder: Path, max_part_bytes: int) -> Intake:
    try:
        form = await request.form(max_files=len(MEDIA_FIELDS) + 1, max_fields=2,
                                  max_part_size=max_part_bytes)
    except HTTPException as error:
        raise ServeError(400, "body", f"malformed multipart body: {error.detail}") from None
    try:
        unknown = sorted(set(form.keys()) - set(FIELDS))
        if unknown:
            raise ServeError(422, unknown[0], f"unknown part {unknown[0]!r}; expected "
                             f"{', '.join(FIELDS)}")
        for name in FIELDS:
            if len(form.getlist(name)) > 1:
                raise ServeError(422, name, f"part {name!r} given more than once")
        transcript = form.get("transcript")
        if transcript is None:
            raise ServeError(422, "transcript", "missing: send the conversation's transcript "
                             "(JSON, SRT, WebVTT or CSV) as the part 'transcript'")
        given_format = form.get("format")
        if isinstance(given_format, UploadFile):
            raise ServeError(422, "format", f"expected one of {', '.join(FORMATS)}, got a file")
        if isinstance(transcript, UploadFile):
            fmt = _format(given_format, transcript.filename, _kind(transcript.content_type))
            target = folder / f"transcript.{fmt}"
            await anyio.to_thread.run_sync(_copy, transcript.file, target)
        else:
            fmt = _format(given_format, None, None)
            target = folder / f"transcript.{fmt}"
            target.write_text(transcript, encoding="utf-8")
        intake = Intake(transcript=target, format=fmt,
                        names={str(target): _public_name(transcript, "transcript")})
        for name in MEDIA_FIELDS:
            upload = form.get(name)
            if upload is None:
                continue
            if not isinstance(upload, UploadFile):
                raise ServeError(422, name, "expected a file upload (a recording), got a text "
                                 "field")
            suffix = PurePosixPath(upload.filename or "").suffix
            path = folder / (name + (suffix.lower() if _EXTENSION.fullmatch(suffix) else ""))
            await anyio.to_thread.run_sync(_copy, upload.file, path)
            _check_container(path, name)
            intake.media[name] = path
            intake.names[str(path)] = _public_name(upload, name)
        return intake
    finally:
        await form.close()


def _copy(source, target: Path) -> None:
    source.seek(0)
    with target.open("wb") as sink:
        shutil.copyfileobj(source, sink, _CHUNK)


def _check_container(path: Path, name: str) -> None:
    with path.open("rb") as stream:
        head = stream.read(SNIFF_BYTES)
    if not head:
        raise ServeError(422, name, "the upload is empty")
    if container_of(head) is None:
        raise ServeError(415, name, f"not a recording this service reads; expected {ACCEPTED}")


def _kind(content_type: str | None) -> str | None:
    return None if content_type is None else content_type.split(";", 1)[0].strip().lower()


def _format(given: str | None, filename: str | None, kind: str | None) -> str:
    """The transcript format: ``given``, else the file name's extension, else the content
    type."""
    if given is not None:
        fmt = given.strip().lower()
        if fmt not in FORMATS:
            raise ServeError(422, "format", f"unknown transcript format {given!r}; expected one "
                             f"of {', '.join(FORMATS)}")
        return fmt
    suffix = PurePosixPath(filename or "").suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    if kind in CONTENT_TYPES:
        return CONTENT_TYPES[kind]
    raise ServeError(422, "format", "cannot tell the transcript format: give format (one of "
                     f"{', '.join(FORMATS)}), a file name ending in .json, .srt, .vtt or .csv, "
                     f"or a Content-Type among {', '.join(CONTENT_TYPES)}")


def _public_name(part, field_name: str) -> str:
    """The client's file name without its folders (for the answer only), else the field."""
    filename = getattr(part, "filename", None)
    if not filename:
        return field_name
    return PurePosixPath(filename.replace("\\", "/")).name[:200] or field_name
