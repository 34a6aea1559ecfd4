"""Fuzzing of the feature-pack readers (:func:`load_corect_pack`, :func:`load_mmgcn_pack`) and
the restricted unpickler under them.

Inputs: a small valid pack of each family with random byte edits (pickle opcodes included), and
pickles of random Python structures (containers, numbers, strings, numpy arrays, torch tensors)
in the place of the pack or of one of its fields. The property of tests/fuzz/conftest.py: a
valid dataset or a DataFormatError naming the file, never another exception, never more than
the memory budget.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hotspot_erc.data.dialogue import DataFormatError, Dataset
from hotspot_erc.data.feature_packs import load_corect_pack, load_mmgcn_pack

from .edits import byte_edits


def _vectors(count: int, dim: int) -> list[np.ndarray]:
    return [np.arange(dim, dtype=np.float32) + k for k in range(count)]


CORECT = {
    "train": [{"vid": "d1", "speakers": ["F", "M"], "labels": [0, 5], "sentence": ["a", "b"],
               "text": _vectors(2, 4), "audio": _vectors(2, 3), "visual": _vectors(2, 2)},
              {"vid": "d2", "speakers": ["M"], "labels": [2], "sentence": ["c"],
               "text": _vectors(1, 4), "audio": _vectors(1, 3), "visual": _vectors(1, 2)}],
    "dev": [{"vid": "d3", "speakers": ["F"], "labels": [1], "sentence": ["d"],
             "text": _vectors(1, 4), "audio": _vectors(1, 3), "visual": _vectors(1, 2)}],
    "test": [{"vid": "d4", "speakers": [[1, 0], [0, 1]], "labels": [3, 4],
              "sentence": ["e", "f"], "text": _vectors(2, 4), "audio": _vectors(2, 3),
              "visual": _vectors(2, 2)}],
}
_IDS = ["d1", "d2", "d3"]
MMGCN = ({d: [f"{d}_{k}" for k in range(2)] for d in _IDS},
         {d: ["M", "F"] for d in _IDS}, {d: [0, 1] for d in _IDS},
         {d: _vectors(2, 4) for d in _IDS}, {d: _vectors(2, 3) for d in _IDS},
         {d: _vectors(2, 2) for d in _IDS}, {d: ["x", "y"] for d in _IDS}, ["d1", "d2"], ["d3"])
# Opcodes that change how a pickle is read: frames, memo writes and reads, big lengths.
_OPCODES = [pickle.FRAME + (2**40).to_bytes(8, "little"), pickle.LONG_BINPUT + b"\xff" * 4,
            pickle.LONG_BINGET + b"\xff" * 4, pickle.BINBYTES8 + b"\xff" * 8, pickle.MARK,
            pickle.POP_MARK, pickle.DUP, pickle.REDUCE, pickle.BUILD, pickle.NEWOBJ,
            pickle.STOP, pickle.EMPTY_DICT, pickle.SETITEMS, b"cnumpy\nndarray\n",
            b"c__builtin__\nbytearray\n", b"cos\nsystem\n"]

plain = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=6)
    | st.binary(max_size=6)
    | st.builds(lambda n, d: np.ones(n, dtype=d), st.integers(0, 5),
                st.sampled_from([np.float32, np.float64, np.int64, np.bool_]))
    | st.builds(lambda n: torch.ones(n), st.integers(0, 5)),
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=10)


def _locations(node, path=()):
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return
    for key, child in items:
        yield path, key
        yield from _locations(child, (*path, key))


@st.composite
def edited_payloads(draw, seed):
    """``seed`` with one or two of its values (at any depth) replaced by random structures."""
    payload = copy.deepcopy(seed)
    payload = list(payload) if isinstance(payload, tuple) else payload
    for _ in range(draw(st.integers(1, 2))):
        path, key = draw(st.sampled_from(list(_locations(payload))))
        container = payload
        for step in path:
            container = container[step]
        if isinstance(container, tuple):
            continue
        container[key] = draw(plain)
    return tuple(payload) if isinstance(seed, tuple) else payload


def read(path, loader, memory_budget) -> None:
    with memory_budget():
        try:
            dataset = loader(path)
        except DataFormatError as error:
            assert str(path) in str(error), f"the error does not name the file: {error}"
            return
    assert isinstance(dataset, Dataset)
    for dialogue in dataset:
        assert dialogue.utterances
        for utterance in dialogue.utterances:
            assert utterance.label in dataset.label_names
            for features in utterance.features.values():
                assert np.isfinite(features.global_vector).all()


def _run(tmp_path, loader, contents, memory_budget):
    path = tmp_path / "pack.pkl"

    @settings(settings.get_profile("fuzz"))
    @given(content=contents)
    def run(content):
        path.write_bytes(content)
        read(path, loader, memory_budget)

    run()


def test_seeds_are_valid(tmp_path):
    (tmp_path / "c.pkl").write_bytes(pickle.dumps(CORECT, protocol=4))
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(MMGCN, protocol=2))
    assert len(load_corect_pack(tmp_path / "c.pkl").dialogues) == 4
    assert len(load_mmgcn_pack(tmp_path / "m.pkl").dialogues) == 3


def test_corect_pack_bytes(tmp_path, memory_budget):
    seeds = st.sampled_from([pickle.dumps(CORECT, protocol=p) for p in (2, 4, 5)])
    _run(tmp_path, load_corect_pack, seeds.flatmap(lambda s: byte_edits(s, _OPCODES)),
         memory_budget)


def test_corect_pack_structures(tmp_path, memory_budget):
    _run(tmp_path, load_corect_pack,
         edited_payloads(CORECT).map(lambda p: pickle.dumps(p, protocol=4)), memory_budget)


def test_mmgcn_pack_bytes_and_structures(tmp_path, memory_budget):
    contents = (byte_edits(pickle.dumps(MMGCN, protocol=2), _OPCODES)
                | edited_payloads(MMGCN).map(lambda p: pickle.dumps(p, protocol=2)))
    _run(tmp_path, load_mmgcn_pack, contents, memory_budget)
