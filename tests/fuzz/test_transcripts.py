"""Fuzzing of :func:`hotspot_erc.data.transcript.load_transcript` (JSON, SubRip, WebVTT, CSV).

Inputs are random bytes, random text, and valid transcripts with random edits (bytes cut,
inserted, repeated or replaced, lines swapped, the file truncated). The property of
tests/fuzz/conftest.py: a valid conversation, or a DataFormatError naming the file; never
another exception, and never more than the memory budget.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotspot_erc.data.dialogue import DataFormatError, Dialogue
from hotspot_erc.data.transcript import load_transcript

from .edits import byte_edits

SEEDS = {
    "srt": "1\n00:00:01,000 --> 00:00:02,500\nAlice: Hello there.\n\n"
           "2\n00:00:02,600 --> 00:01:02,345\nBob: <i>I said</i>\nit twice.\n",
    "vtt": "WEBVTT - a call\n\nNOTE a note\n\nintro\n00:01.000 --> 00:02.250 align:start\n"
           "<v.loud Ann Lee>Hi &amp; welcome</v>\n\n00:00:02.300 --> 00:00:04.000\n"
           "Bob: back to you\n",
    "csv": "Sr No.,Utterance,Speaker,Emotion,Dialogue_ID,Utterance_ID,StartTime,EndTime\n"
           '1,"Oh, my God!",Rachel,surprise,4,0,"00:01:02,003","00:01:03,250"\n'
           '2,"He said ""no"".",Ross,anger,4,1,"00:01:03,400","00:01:05,000"\n',
    "json": json.dumps({"label_names": ["neutral", "happy"], "dialogues": [{
        "id": "call1", "media": {"audio": "call1.wav"}, "utterances": [
            {"speaker": "A", "text": "Hi!", "start": 0.0, "end": 1.2, "label": "happy"},
            {"id": "b0", "speaker": "B", "text": "Oh.", "start": 1.4, "end": 2.0}]}]}),
}
FORMATS = tuple(SEEDS)
# Bytes an edit inserts: the characters the parsers split on, plus anything at all.
_SYNTAX = [b"-->", b":", b",", b".", b"\n", b"\r\n", b"\n\n", b'"', b"<v ", b">", b"{", b"}",
           b"[", b"]", b"WEBVTT", b"99:59:59,999", b"00:00:00.000", b"NaN", b"1e999", b"-1",
           b"\xff", b"\xef\xbb\xbf", b"\\ud800", b"9" * 5000]


def mutated(seed: bytes):
    return byte_edits(seed, _SYNTAX, swap_lines=True)


def _inputs(fmt: str):
    seed = SEEDS[fmt].encode()
    return (mutated(seed) | st.binary(max_size=300)
            | st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass")))


def check_valid(dialogue: Dialogue, notices: list[str], path: Path) -> None:
    assert isinstance(dialogue, Dialogue) and dialogue.utterances
    assert len({u.uid for u in dialogue.utterances}) == len(dialogue.utterances)
    for utterance in dialogue.utterances:
        assert isinstance(utterance.uid, str) and utterance.uid
        assert isinstance(utterance.speaker, str) and utterance.speaker.strip()
        assert isinstance(utterance.text, str)
        for value in (utterance.uid, utterance.speaker, utterance.text, utterance.label or ""):
            value.encode("utf-8")  # every string can be written out again
        for time in (utterance.start, utterance.end):
            assert time is None or (isinstance(time, float) and math.isfinite(time)
                                    and time >= 0)
        if utterance.start is not None and utterance.end is not None:
            assert utterance.start <= utterance.end
    assert all(isinstance(notice, str) and str(path) in notice for notice in notices)


def read(path: Path, memory_budget, **options) -> None:
    """Load ``path``; on success check the result, on DataFormatError check the message."""
    with memory_budget():
        try:
            dialogue, notices = load_transcript(path, **options)
        except DataFormatError as error:
            assert str(path) in str(error), f"the error does not name the file: {error}"
            return
    check_valid(dialogue, notices, path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_seeds_are_valid(fmt, tmp_path):
    path = tmp_path / f"seed.{fmt}"
    path.write_text(SEEDS[fmt], encoding="utf-8")
    dialogue, notices = load_transcript(path)
    check_valid(dialogue, notices, path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_any_bytes_give_a_conversation_or_a_clear_error(fmt, tmp_path, memory_budget):
    path = tmp_path / f"fuzzed.{fmt}"

    @settings(settings.get_profile("fuzz"))
    @given(content=_inputs(fmt))
    def run(content):
        path.write_bytes(content)
        read(path, memory_budget)

    run()


@pytest.mark.parametrize("fmt", FORMATS)
def test_against_a_recording_any_bytes_give_a_conversation_or_a_clear_error(fmt, tmp_path,
                                                                            memory_budget):
    path = tmp_path / f"timed.{fmt}"

    @settings(settings.get_profile("fuzz"))
    @given(content=mutated(SEEDS[fmt].encode()),
           duration=st.floats(0.001, 1e6, allow_nan=False, allow_infinity=False))
    def run(content, duration):
        path.write_bytes(content)
        read(path, memory_budget, media={"audio": str(path.with_suffix(".wav"))},
             media_duration=duration)

    run()
