"""Fuzzing of :func:`hotspot_erc.data.manifest.load_manifest`.

Inputs are random bytes, the documented example with random byte edits, and the example with a
random field replaced by any JSON value or removed. The property of tests/fuzz/conftest.py: a
valid dataset, or a DataFormatError naming the file; never another exception, and never more
than the memory budget.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hotspot_erc.data.dialogue import DataFormatError, Dataset
from hotspot_erc.data.manifest import load_manifest

from .edits import byte_edits

EXAMPLE = {
    "name": "my-corpus",
    "label_names": ["neutral", "happy"],
    "splits": {"train": ["call1"], "test": ["call2"]},
    "dialogues": [
        {"id": "call1", "media": {"audio": "call1.wav", "video": "call1.mp4"},
         "utterances": [
             {"id": "call1_0", "speaker": "A", "text": "Hi!", "start": 0.0, "end": 1.2,
              "label": "happy"},
             {"speaker": "B", "text": "Oh no.", "start": 1.4, "end": 2.0,
              "media": {"audio": "clips/b0.flac"}, "extra": {"note": "x"}}]},
        {"id": "call2",
         "utterances": [{"speaker": "C", "text": "Why?", "label": "neutral"}]},
    ],
}
_SYNTAX = [b"{", b"}", b"[", b"]", b",", b":", b'"', b"NaN", b"-Infinity", b"1e999", b"-1",
           b"null", b"true", b'"\\ud800"', b'"\\u0000"', b'"../.."', b"[" * 3000, b"9" * 5000,
           b"\xff", b"\xef\xbb\xbf"]

# Raw JSON texts json.dumps never writes: nesting past the parser's recursion limit, an integer
# too long for int(), one too large for a float, a lone surrogate, NaN.
RAW_VALUES = ["[" * 5000 + "]" * 5000, "9" * 5000, "1" + "0" * 400, '"\\udc80"', '"a\\u0000b"',
              "NaN", "-Infinity", '{"a": ' * 2000 + "1" + "}" * 2000]
_RAW = "\x00raw\x00"  # a stand-in value, replaced by one of RAW_VALUES in the written text

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(["", "..", "/", "\x00", "\ud800", "call1", "A", "happy"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12)


def _locations(node, path=()):
    """Every (container path, key) of the tree, so an edit can reach any field."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield path, key
            yield from _locations(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield path, index
            yield from _locations(child, (*path, index))


@st.composite
def edited_manifests(draw) -> bytes:
    """The example with one to three fields replaced by random JSON or removed."""
    manifest = copy.deepcopy(EXAMPLE)
    for _ in range(draw(st.integers(1, 3))):
        locations = list(_locations(manifest))
        if not locations:
            break
        path, key = draw(st.sampled_from(locations))
        container = manifest
        for step in path:
            container = container[step]
        edit = draw(st.sampled_from(["remove", "replace", "raw"]))
        if edit == "remove":
            del container[key]
        elif edit == "replace":
            container[key] = draw(json_values)
        else:
            container[key] = _RAW
    text = json.dumps(manifest)
    while json.dumps(_RAW) in text:
        text = text.replace(json.dumps(_RAW), draw(st.sampled_from(RAW_VALUES)), 1)
    return text.encode("utf-8", "surrogatepass")


def mutated(seed: bytes):
    return byte_edits(seed, _SYNTAX)


def check_valid(dataset: Dataset) -> None:
    assert isinstance(dataset, Dataset) and dataset.dialogues
    assert isinstance(dataset.name, str) and dataset.name
    for dialogue in dataset:
        assert dialogue.utterances
        for utterance in dialogue.utterances:
            assert isinstance(utterance.speaker, str) and utterance.speaker
            assert isinstance(utterance.text, str)
            for value in (utterance.uid, utterance.speaker, utterance.text, utterance.label or "",
                          *utterance.media.values(), *utterance.extra.values()):
                value.encode("utf-8")  # every string can be written out again
            for time in (utterance.start, utterance.end):
                assert time is None or (isinstance(time, float) and math.isfinite(time)
                                        and time >= 0)
            if utterance.start is not None and utterance.end is not None:
                assert utterance.start < utterance.end
            assert utterance.label is None or utterance.label in dataset.label_names
    placed = [did for ids in dataset.splits.values() for did in ids]
    assert len(placed) == len(set(placed))
    for ids in dataset.splits.values():
        dataset_ids = {d.did for d in dataset}
        assert set(ids) <= dataset_ids


def read(path: Path, memory_budget) -> None:
    with memory_budget():
        try:
            dataset = load_manifest(path)
        except DataFormatError as error:
            assert str(path) in str(error), f"the error does not name the file: {error}"
            return
    check_valid(dataset)


def test_example_is_valid(tmp_path):
    path = tmp_path / "example.json"
    path.write_text(json.dumps(EXAMPLE), encoding="utf-8")
    check_valid(load_manifest(path))


def test_edited_fields_give_a_dataset_or_a_clear_error(tmp_path, memory_budget):
    path = tmp_path / "edited.json"

    @settings(settings.get_profile("fuzz"))
    @given(content=edited_manifests())
    def run(content):
        path.write_bytes(content)
        read(path, memory_budget)

    run()


def test_any_bytes_give_a_dataset_or_a_clear_error(tmp_path, memory_budget):
    path = tmp_path / "fuzzed.json"

    @settings(settings.get_profile("fuzz"))
    @given(content=mutated(json.dumps(EXAMPLE).encode()) | st.binary(max_size=300))
    def run(content):
        path.write_bytes(content)
        read(path, memory_budget)

    run()
