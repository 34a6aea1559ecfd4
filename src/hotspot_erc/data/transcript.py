"""Read one conversation's transcript for ``hotspot-erc predict``: JSON, SubRip, WebVTT or CSV.

``load_transcript(path)`` returns one :class:`~.dialogue.Dialogue` (utterances with ``uid``,
``speaker``, ``text``, ``start``, ``end`` and, where the format has one, ``label``) and a list of
notices: things worth telling the user that do not stop the run. The format is ``fmt`` or, without
it, the file's extension (``.json``, ``.srt``, ``.vtt``, ``.csv``).

* ``json``: the conversation manifest of :mod:`.manifest` holding exactly one dialogue, or that
  dialogue alone, ``{"utterances": [...], "media": {...}}``. The manifest's own checks apply,
  its field paths name problems (``utterances[3].end``), relative media paths are relative to
  the file's folder. The dialogue id is the manifest's ``id``, else the file stem.
* ``srt``/``vtt``: one cue is one utterance. Times ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` (SubRip) or
  ``HH:MM:SS.mmm``/``MM:SS.mmm`` (WebVTT, after the ``WEBVTT`` header; cue ids, cue settings after
  the end time and ``NOTE``/``STYLE``/``REGION`` blocks are allowed); either separator before the
  milliseconds is accepted in both. The speaker is a WebVTT voice ``<v Speaker>`` or, failing
  that, the text before the cue's first colon when a space or the end of the cue follows the
  colon and the name has 1 to 40 characters and no sentence punctuation (``. ! ? ;``). A file
  in which no cue names its speaker is read as one speaker, :data:`UNLABELLED_SPEAKER`, with a
  notice; one in which some cues name it and others do not is an error at the first cue without
  (a speaker forgotten, or a colon read as one). Lines of a cue are joined with spaces; other
  tags (``<i>``, ``<b>``, ``{\\an8}``) are removed and HTML character references (``&amp;``)
  decoded. A cue without text is skipped with a notice.
* ``csv``: MELD-like columns, matched ignoring case and surrounding spaces: ``Utterance`` (or
  ``Text``), ``Speaker`` (without the column, one speaker as above, with a notice), and
  ``StartTime``/``EndTime`` (``HH:MM:SS,mmm``, as in MELD) or ``Start``/``End`` (seconds);
  optional ``Emotion`` (or ``Label``) becomes the label, ``ID`` the utterance id as written,
  ``Utterance_ID`` or ``Sr No.`` the suffix of ``<stem>_<number>``. The
  time columns may be left out only when the conversation has no recording. A ``Dialogue_ID``
  column must hold a single value: a transcript is one conversation.

Rules common to all formats:

* The dialogue id is the file stem (JSON: the manifest's ``id`` when it has one); an utterance id
  the format does not give is ``<dialogue id>_<index>`` (0-based, in transcript order).
* Utterances are kept in transcript order, never re-sorted by time: the order people wrote is
  the order of turns the model reads. Overlapping turns (an utterance starting before an earlier
  one ends) are allowed, because people talk over each other, and each gives a notice naming both
  utterances and the overlap in seconds; so does an utterance that starts before an earlier one.
* ``media`` (modality -> path) replaces the recording named in the file; then every utterance
  without its own media needs ``start`` and ``end``, and ``end > start`` always.
* With ``media_duration`` (seconds of the recording): an utterance starting at or after the end
  of the recording is an error; one ending more than :data:`MEDIA_END_TOLERANCE_S` after it too;
  one ending within the tolerance is clipped to the end, with a notice (container durations and
  transcript rounding disagree by a frame or two). Utterances with their own media are exempt.
* A text-less utterance (a speaker and nothing else) is kept with a notice; it has no text
  modality.
* Every problem raises :class:`~.dialogue.DataFormatError` naming the file and the cue, row or
  field (with its line): not UTF-8 (byte offset), an empty transcript, malformed times, ``end``
  not after ``start``, NaN or infinite times, missing CSV columns, a cue without a speaker in a
  file whose other cues name theirs, an empty ``Speaker`` cell.
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from hotspot_erc.data.dialogue import DataFormatError, Dialogue, Utterance
from hotspot_erc.data.manifest import check_media, check_seconds, parse_json, parse_manifest
from hotspot_erc.data.meld import parse_meld_time

FORMATS: tuple[str, ...] = ("json", "srt", "vtt", "csv")
MEDIA_END_TOLERANCE_S = 0.5
MAX_SPEAKER_CHARS = 40
# The speaker of every utterance of a transcript that names none.
UNLABELLED_SPEAKER = "speaker"
# Times are whole milliseconds; half of one absorbs float rounding when comparing them.
_TIME_EPSILON_S = 5e-4

_TIMING = re.compile(r"\s*(\S+?)\s*-->\s*(\S+)(?:\s.*)?")
# Hours: at most 7 digits (over a thousand years); thousands of digits overflow int() and float.
_CLOCK = re.compile(r"(?:(\d{1,7}):)?([0-5]\d):([0-5]\d)[,.](\d{3})")
# The longest CSV clock time read (7 hour digits, as _CLOCK): longer ones are refused before
# parse_meld_time, which reads any number of hour digits.
_MAX_CLOCK_CHARS = len("1234567:00:00,000")
_WEBVTT_HEADER = re.compile(r"WEBVTT(?:[ \t].*)?")
_WEBVTT_META_BLOCK = re.compile(r"(?:NOTE|STYLE|REGION)(?:[ \t].*)?")
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?[ \t]+([^>]*)>")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")
_SPEAKER_PREFIX = re.compile(r"([^:：]*)[:：](?=\s|$)")
_SENTENCE_PUNCTUATION = frozenset(".!?;…")
_EXPECTED_SPEAKER = ("expected `Speaker: text` (a name of 1 to 40 characters without sentence "
                     "punctuation, a colon, a space) or a WebVTT voice tag `<v Speaker>text</v>`")


@dataclass
class _Turn:
    """An utterance and where the transcript gave it, for messages (``cue 3 (line 9)``)."""

    utterance: Utterance
    where: str


def load_transcript(path: str | os.PathLike, fmt: str | None = None,
                    media: dict[str, str] | None = None,
                    media_duration: float | None = None) -> tuple[Dialogue, list[str]]:
    """Read one conversation's transcript (see the module docstring for the formats and rules).

    Args:
        path: the transcript file.
        fmt: ``"json"``, ``"srt"``, ``"vtt"``, ``"csv"``, or None to choose by extension.
        media: modality (``audio``, ``video``) -> the conversation's recording; it becomes
            ``Dialogue.media`` (absolute paths), replacing any named in the file.
        media_duration: seconds of that recording, to check the utterance times against.

    Returns:
        The dialogue and the notices (human-readable, each naming the file).
    """
    path = Path(path)
    fmt = _format(path, fmt)
    if media_duration is not None and not (math.isfinite(media_duration) and media_duration > 0):
        raise ValueError(f"media_duration must be a finite number of seconds > 0, got "
                         f"{media_duration!r}")
    text = _read_text(path)
    notices: list[str] = []
    if fmt == "json":
        dialogue, turns = _parse_json(text, path)
    else:
        if fmt == "csv":
            turns = _parse_csv(text, path, bool(media), notices)
        else:
            turns = _parse_cues(text, path, fmt, notices)
        dialogue = Dialogue(path.stem, [turn.utterance for turn in turns])
    if media:
        def fail(field: str, problem: str) -> DataFormatError:
            return DataFormatError(f"{path}: the recording given for it, {field}: {problem}")

        given = check_media(media, "media", Path.cwd(), fail)
        if dialogue.media and given != dialogue.media:
            notices.append(f"{path}: the recording given ({_listing(given)}) replaces the one "
                           f"named in the file ({_listing(dialogue.media)})")
        dialogue.media = given
    _check_turns(path, turns, bool(dialogue.media), media_duration, notices)
    return dialogue, notices


def _format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise DataFormatError(f"{path}: unknown transcript format {fmt!r}; expected one of "
                                  f"{', '.join(FORMATS)}")
        return fmt
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise DataFormatError(
            f"{path}: cannot tell the transcript format from the extension "
            f"{path.suffix or '(none)'!r}; name the file .json, .srt, .vtt or .csv, or give the "
            f"format (one of {', '.join(FORMATS)})")
    return suffix


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as error:
        raise DataFormatError(f"{path}: no such transcript file") from error
    except IsADirectoryError as error:
        raise DataFormatError(f"{path}: is a folder, not a transcript file") from error
    except OSError as error:
        raise DataFormatError(f"{path}: cannot read the transcript ({error.strerror})") from error
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataFormatError(f"{path}: the file is UTF-16 text; save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataFormatError(
            f"{path}: not UTF-8 text: byte {error.start} (line {line}) is "
            f"0x{raw[error.start]:02x}; save it as UTF-8") from error
    text = text.removeprefix("\ufeff")  # a byte-order mark, as spreadsheet programs write
    if not text.strip():
        raise DataFormatError(f"{path}: empty transcript (the file has no text)")
    return text


def _parse_json(text: str, path: Path) -> tuple[Dialogue, list[_Turn]]:
    data = parse_json(text, path)
    if isinstance(data, dict) and "dialogues" in data:
        manifest, prefix = data, "dialogues[0]."
        dialogues = data["dialogues"]
        if not isinstance(dialogues, list):
            raise DataFormatError(f"{path}: field dialogues: expected a list holding one "
                                  f"dialogue, got {type(dialogues).__name__}")
        if not dialogues:
            raise DataFormatError(f"{path}: empty transcript (field dialogues is empty)")
        if len(dialogues) > 1:
            raise DataFormatError(
                f"{path}: field dialogues holds {len(dialogues)} dialogues; a transcript is "
                f"one conversation: keep one dialogue in the file (or run "
                f"'hotspot-erc extract --manifest' for a corpus)")
        if isinstance(dialogues[0], dict) and "id" not in dialogues[0]:
            manifest = {**data, "dialogues": [{"id": path.stem, **dialogues[0]}]}
    elif isinstance(data, dict) and "utterances" in data:
        manifest, prefix = {"dialogues": [{"id": path.stem, **data}]}, ""
    else:
        raise DataFormatError(f"{path}: expected a manifest (an object with 'dialogues' holding "
                              f"one dialogue) or one dialogue (an object with 'utterances')")
    entry = manifest["dialogues"][0]
    if isinstance(entry, dict) and entry.get("utterances") == []:
        raise DataFormatError(f"{path}: empty transcript (field {prefix}utterances is empty)")
    try:
        dataset = parse_manifest(manifest, path)
    except DataFormatError as error:
        if prefix:
            raise
        # The lone dialogue was wrapped into a manifest to check it; name fields as in the file.
        raise DataFormatError(str(error).replace("field dialogues[0].", "field ", 1)) from None
    dialogue = dataset.dialogues[0]
    turns = [_Turn(u, f"field {prefix}utterances[{index}]")
             for index, u in enumerate(dialogue.utterances)]
    return dialogue, turns


def _parse_cues(text: str, path: Path, fmt: str, notices: list[str]) -> list[_Turn]:
    blocks = _blocks(text)
    if fmt == "vtt":
        header = blocks[0]
        if not _WEBVTT_HEADER.fullmatch(header[0][1]):
            raise DataFormatError(f"{path}: line {header[0][0]}: expected the header WEBVTT "
                                  f"first, got {header[0][1]!r}")
        for number, line in header:
            if "-->" in line:
                raise DataFormatError(f"{path}: line {number}: a blank line must separate the "
                                      f"WEBVTT header from the first cue")
        blocks = [block for block in blocks[1:] if not _WEBVTT_META_BLOCK.fullmatch(block[0][1])]
    example = "00:00:01,000 --> 00:00:02,500" if fmt == "srt" else "00:01.000 --> 00:02.500"
    turns: list[_Turn] = []
    unnamed: list[tuple[int, int, str]] = []  # cues without a speaker: cue, text line, text
    named: _Turn | None = None  # the first cue that names its speaker
    for cue_number, block in enumerate(blocks, start=1):
        # A cue: an optional id (SubRip's index) line, the timing line, then the text lines.
        timing_at = 0 if "-->" in block[0][1] else 1
        if timing_at >= len(block) or "-->" not in block[timing_at][1]:
            number, line = block[min(timing_at, len(block) - 1)]
            raise DataFormatError(f"{path}: cue {cue_number} (line {number}): expected a timing "
                                  f"line like `{example}`, got {line!r}")
        timing_line_number, timing = block[timing_at]
        at = f"cue {cue_number} (line {timing_line_number})"
        start, end = _cue_times(timing, path, at)
        if end <= start + _TIME_EPSILON_S:
            raise DataFormatError(f"{path}: {at}: end {end:.3f} s is not after start "
                                  f"{start:.3f} s")
        text_lines = block[timing_at + 1:]
        speaker, words = _speaker_and_text([line for _, line in text_lines])
        if speaker is None and not words:
            notices.append(f"{path}: {at}: the cue has no text; skipped")
            continue
        uid = f"{path.stem}_{len(turns)}"
        turn = _Turn(Utterance(uid=uid, speaker=speaker or UNLABELLED_SPEAKER, text=words,
                               start=start, end=end), at)
        turns.append(turn)
        if speaker is None:
            unnamed.append((cue_number, text_lines[0][0], words))
        elif named is None:
            named = turn
        voices = list(dict.fromkeys(name.strip() for name in
                                    _VOICE.findall(" ".join(line for _, line in text_lines))))
        if len(voices) > 1:
            notices.append(f"{path}: {at}: the cue has several voices ({', '.join(voices)}); "
                           f"kept as one utterance of {speaker}")
    if unnamed and named is not None:
        cue_number, number, words = unnamed[0]
        raise DataFormatError(
            f"{path}: cue {cue_number} (line {number}): unknown speaker format in "
            f"{words[:60]!r}; {_EXPECTED_SPEAKER}, as {named.where} names "
            f"{named.utterance.speaker!r} (a file that names no speaker at all is read as one "
            f"speaker)")
    if unnamed:
        notices.append(_unlabelled_notice(path, "no cue names its speaker (`Speaker: text` or "
                                          "`<v Speaker>`)", len(turns)))
    return turns


def _unlabelled_notice(path: Path, why: str, count: int) -> str:
    return (f"{path}: speakers are not labelled: {why}; all {count} utterances are given one "
            f"speaker, {UNLABELLED_SPEAKER!r}, so the model cannot tell the speakers apart")


def _blocks(text: str) -> list[list[tuple[int, str]]]:
    """Runs of non-blank lines, each line with its 1-based number (CRLF, CR or LF endings)."""
    blocks: list[list[tuple[int, str]]] = []
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"),
                                  start=1):
        if line.strip():
            block.append((number, line.strip()))
        elif block:
            blocks.append(block)
            block = []
    if block:
        blocks.append(block)
    return blocks


def _cue_times(timing: str, path: Path, at: str) -> tuple[float, float]:
    match = _TIMING.fullmatch(timing)
    if match is None:
        raise DataFormatError(f"{path}: {at}: malformed timing line {timing!r}; expected "
                              f"`start --> end`")
    times = []
    for stamp in match.groups()[:2]:
        clock = _CLOCK.fullmatch(stamp)
        if clock is None:
            raise DataFormatError(
                f"{path}: {at}: malformed time {stamp[:40]!r}; expected HH:MM:SS,mmm (SubRip) "
                f"or HH:MM:SS.mmm / MM:SS.mmm (WebVTT), at most 7 digits of hours, minutes and "
                f"seconds below 60, three digits of milliseconds")
        hours, minutes, seconds, milliseconds = (int(part or 0) for part in clock.groups())
        times.append(hours * 3600 + minutes * 60 + seconds + milliseconds / 1000)
    return times[0], times[1]


def _speaker_and_text(lines: list[str]) -> tuple[str | None, str]:
    """The cue's speaker (None when it names none) and its text without tags, on one line."""
    raw = " ".join(lines)
    voice = _VOICE.search(raw)
    plain = " ".join(html.unescape(_TAG.sub("", raw)).split())
    if voice is not None and voice.group(1).strip():
        return " ".join(voice.group(1).split()), plain
    prefix = _SPEAKER_PREFIX.match(plain)
    if prefix is None:
        return None, plain
    name = prefix.group(1).strip()
    if not name or len(name) > MAX_SPEAKER_CHARS or _SENTENCE_PUNCTUATION.intersection(name):
        return None, plain
    return name, plain[prefix.end():].strip()


@dataclass
class _CsvColumns:
    """Indices of the CSV columns used; ``times`` is (start, end) or None (no time columns)."""

    header: list[str]
    text: int
    speaker: int | None
    times: tuple[int, int] | None
    clock: bool  # times as HH:MM:SS,mmm rather than seconds
    label: int | None
    uid: int | None
    number: int | None
    dialogue: int | None

    def name(self, index: int) -> str:
        return self.header[index].strip()


def _csv_columns(header: list[str], path: Path, needs_times: bool) -> _CsvColumns:
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        found.setdefault(name.strip().lower(), index)

    def column(*names: str) -> int | None:
        return next((found[name.lower()] for name in names if name.lower() in found), None)

    text, speaker = column("Utterance", "Text"), column("Speaker")
    missing = [] if text is not None else ["Utterance"]
    pairs = {"clock": (column("StartTime"), column("EndTime"), "StartTime", "EndTime"),
             "seconds": (column("Start"), column("End"), "Start", "End")}
    for start, end, start_name, end_name in pairs.values():
        if (start is None) != (end is None):
            missing.append(end_name if end is None else start_name)
    kind = next((kind for kind, pair in pairs.items() if None not in pair[:2]), None)
    if kind is None and needs_times:
        missing.append("StartTime/EndTime or Start/End (times are needed to cut the utterances "
                       "out of the recording)")
    if missing:
        raise DataFormatError(
            f"{path}: line 1 (header): missing column(s) {', '.join(missing)}; expected "
            f"Utterance and either StartTime/EndTime (HH:MM:SS,mmm) or Start/End (seconds), "
            f"optionally Speaker, Emotion and ID or Sr No.; found {header}")
    return _CsvColumns(header=header, text=text, speaker=speaker,
                       times=None if kind is None else pairs[kind][:2], clock=kind == "clock",
                       label=column("Emotion", "Label"), uid=column("ID"),
                       number=column("Utterance_ID", "Sr No."), dialogue=column("Dialogue_ID"))


def _parse_csv(text: str, path: Path, needs_times: bool, notices: list[str]) -> list[_Turn]:
    reader = csv.reader(io.StringIO(text, newline=""))
    turns: list[_Turn] = []
    seen_ids: dict[str, str] = {}
    dialogue_ids: dict[str, str] = {}
    try:
        header = next(reader, None)
        if header is None:
            raise DataFormatError(f"{path}: empty transcript (no header line)")
        columns = _csv_columns(header, path, needs_times)
        row_number = 0
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            row_number += 1
            at = f"row {row_number} (line {reader.line_num})"
            if len(row) != len(header):
                advice = ("put text containing commas in double quotes" if len(row) > len(header)
                          else "give every column a cell, empty ones too")
                raise DataFormatError(f"{path}: {at}: {len(row)} cells but the header has "
                                      f"{len(header)}; {advice}")
            cells = [cell.strip() for cell in row]
            utterance = _csv_utterance(cells, columns, path, at, default_index=len(turns))
            if utterance.uid in seen_ids:
                raise DataFormatError(f"{path}: {at}: duplicate utterance id {utterance.uid!r} "
                                      f"(first at {seen_ids[utterance.uid]})")
            seen_ids[utterance.uid] = at
            if columns.dialogue is not None:
                dialogue_ids.setdefault(cells[columns.dialogue], at)
            turns.append(_Turn(utterance, at))
    except csv.Error as error:
        raise DataFormatError(f"{path}: line {reader.line_num}: malformed CSV ({error})") from error
    if len(dialogue_ids) > 1:
        listed = ", ".join(f"{value!r} from {at}" for value, at in list(dialogue_ids.items())[:3])
        raise DataFormatError(
            f"{path}: field {columns.name(columns.dialogue)!r} holds {len(dialogue_ids)} "
            f"dialogues ({listed}); a transcript is one conversation: keep the rows of one "
            f"dialogue")
    if columns.speaker is None and turns:
        notices.append(_unlabelled_notice(path, "the header has no Speaker column", len(turns)))
    return turns


def _csv_utterance(cells: list[str], columns: _CsvColumns, path: Path, at: str,
                   default_index: int) -> Utterance:
    speaker = UNLABELLED_SPEAKER if columns.speaker is None else cells[columns.speaker]
    if not speaker:
        raise DataFormatError(f"{path}: {at}: field {columns.name(columns.speaker)!r} is empty")
    start = end = None
    if columns.times is not None:
        parse = _clock_cell if columns.clock else _seconds_cell
        start_name, end_name = (columns.name(index) for index in columns.times)
        start = parse(cells[columns.times[0]], path, at, start_name)
        end = parse(cells[columns.times[1]], path, at, end_name)
        if end <= start + _TIME_EPSILON_S:
            raise DataFormatError(f"{path}: {at}: field {end_name!r} ({end:.3f} s) is not after "
                                  f"field {start_name!r} ({start:.3f} s)")
    if columns.uid is not None and cells[columns.uid]:
        uid = cells[columns.uid]
    elif columns.number is not None and cells[columns.number]:
        uid = f"{path.stem}_{cells[columns.number]}"
    else:
        uid = f"{path.stem}_{default_index}"
    label = cells[columns.label] if columns.label is not None else ""
    return Utterance(uid=uid, speaker=speaker, text=cells[columns.text], start=start, end=end,
                     label=label or None)


def _clock_cell(value: str, path: Path, at: str, field: str) -> float:
    if len(value) > _MAX_CLOCK_CHARS:
        raise DataFormatError(f"{path}: {at}: field {field!r}: {value[:20]!r}... is not a time "
                              f"HH:MM:SS,mmm (at most {_MAX_CLOCK_CHARS} characters)")
    return parse_meld_time(value, f"{path}: {at}: field {field!r}")


def _seconds_cell(value: str, path: Path, at: str, field: str) -> float:
    def fail(name: str, problem: str) -> DataFormatError:
        return DataFormatError(f"{path}: {at}: field {name!r}: {problem}")

    try:
        number = float(value)
    except ValueError:
        raise fail(field, f"expected a number of seconds, got {value!r}") from None
    return check_seconds(number, field, fail)


def _check_turns(path: Path, turns: list[_Turn], has_recording: bool,
                 media_duration: float | None, notices: list[str]) -> None:
    """The checks every format shares: times against the recording, overlaps, empty texts."""
    if not turns:
        raise DataFormatError(f"{path}: empty transcript (no utterance)")
    latest: _Turn | None = None  # the earlier timed utterance that ends last
    for turn in turns:
        utterance = turn.utterance
        if utterance.media:
            continue  # a recording of its own: its times are not in the conversation's
        start, end = utterance.start, utterance.end
        if has_recording and (start is None or end is None):
            raise DataFormatError(f"{path}: {turn.where}: utterance {utterance.uid} needs start "
                                  f"and end to be cut out of the conversation's recording")
        if start is None or end is None:
            continue
        if media_duration is not None:
            if start >= media_duration:
                raise DataFormatError(
                    f"{path}: {turn.where}: utterance {utterance.uid} starts at {start:.3f} s, "
                    f"at or after the end of the recording ({media_duration:.3f} s)")
            if end > media_duration + MEDIA_END_TOLERANCE_S:
                raise DataFormatError(
                    f"{path}: {turn.where}: utterance {utterance.uid} ends at {end:.3f} s, past "
                    f"the end of the recording ({media_duration:.3f} s; tolerance "
                    f"{MEDIA_END_TOLERANCE_S} s)")
            if end > media_duration:
                notices.append(f"{path}: {turn.where}: utterance {utterance.uid} ends at "
                               f"{end:.3f} s, {end - media_duration:.3f} s after the recording; "
                               f"clipped to its end ({media_duration:.3f} s)")
                utterance.end = end = float(media_duration)
        if latest is not None and start < latest.utterance.end - _TIME_EPSILON_S:
            other = latest.utterance
            overlap = min(end, other.end) - max(start, other.start)
            if overlap > _TIME_EPSILON_S:
                notices.append(
                    f"{path}: {turn.where}: utterance {utterance.uid} ({start:.3f}-{end:.3f} s) "
                    f"overlaps utterance {other.uid} ({latest.where}, {other.start:.3f}-"
                    f"{other.end:.3f} s) by {overlap:.3f} s; both kept, in transcript order")
            else:
                notices.append(
                    f"{path}: {turn.where}: utterance {utterance.uid} ({start:.3f}-{end:.3f} s) "
                    f"comes after utterance {other.uid} ({latest.where}) in the transcript but "
                    f"before it in time; kept in transcript order")
        if latest is None or end > latest.utterance.end:
            latest = turn
    textless = [turn for turn in turns if not turn.utterance.text.strip()]
    if textless and len(textless) == len(turns):
        notices.append(f"{path}: no utterance has text; the text modality is missing")
    else:
        notices.extend(f"{path}: {turn.where}: utterance {turn.utterance.uid} of "
                       f"{turn.utterance.speaker} has no text; kept without the text modality"
                       for turn in textless)


def _listing(media: dict[str, str]) -> str:
    return ", ".join(f"{modality} {file}" for modality, file in media.items())
