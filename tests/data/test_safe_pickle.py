"""The restricted unpickler: allowed data round-trips, code-running globals are refused unrun."""

from __future__ import annotations

import collections
import pickle
import pickletools
import sys
import types

import numpy as np
import pytest

from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.data.safe_pickle import UnsafePickleError, safe_load


def _write(tmp_path, data: bytes, name: str = "data.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _plain_payload() -> dict:
    return {
        "list": [1, 2.5, "three", None, True],
        "tuple": (1, (2, 3)),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "complex": 1 + 2j,
        "bytes": b"\x00\xffraw",
        "bytearray": bytearray(b"xyz"),
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "default": collections.defaultdict(list, {"k": [1]}),
    }


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_containers_round_trip_in_every_protocol(tmp_path, protocol):
    payload = _plain_payload()
    loaded = safe_load(_write(tmp_path, pickle.dumps(payload, protocol=protocol)))
    assert loaded == payload
    assert type(loaded["ordered"]) is collections.OrderedDict
    assert list(loaded["ordered"]) == ["b", "a"]
    assert loaded["default"].default_factory is list
    assert loaded["default"]["new"] == []


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_arrays_dtypes_and_scalars_round_trip(tmp_path, protocol):
    structured = np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "i4"), ("b", "f8")])
    payload = {
        "float": np.arange(6, dtype=np.float32).reshape(2, 3),
        "fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
        "structured": structured,
        "objects": np.array(["text", None, 3], dtype=object),
        "scalar": np.float64(2.5),
        "integer": np.int64(-7),
        "dtype": np.dtype("<u2"),
    }
    loaded = safe_load(_write(tmp_path, pickle.dumps(payload, protocol=protocol)))
    for key in ("float", "fortran", "structured"):
        assert loaded[key].dtype == payload[key].dtype
        np.testing.assert_array_equal(loaded[key], payload[key])
    assert list(loaded["objects"]) == ["text", None, 3]
    assert loaded["scalar"] == 2.5 and loaded["scalar"].dtype == np.float64
    assert loaded["integer"] == -7 and loaded["integer"].dtype == np.int64
    assert loaded["dtype"] == np.dtype("<u2")


def test_numpy_one_pickle_names_are_accepted(tmp_path):
    """Pickles written by numpy 1.x name ``numpy.core.multiarray``; numpy 2 writes ``_core``."""
    data = pickle.dumps(np.arange(4, dtype=np.int16), protocol=2)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in data
    np.testing.assert_array_equal(safe_load(_write(tmp_path, data)), np.arange(4))


def test_os_system_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"
    command = f"touch {marker}"
    # Protocol 0 by hand: push os.system, push the argument tuple, REDUCE (call it).
    data = b"cos\nsystem\n(S'" + command.encode() + b"'\ntR."
    opcodes = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    assert ("GLOBAL", "os system") in opcodes and ("REDUCE", None) in opcodes
    path = _write(tmp_path, data, "evil.pkl")
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*os\.system"):
        safe_load(path)
    assert not marker.exists()


class _Exploit:
    """An object whose unpickling would call ``builtins.exec``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_reduce_to_exec_is_refused_and_not_run(tmp_path, protocol):
    marker = tmp_path / "ran"
    path = _write(tmp_path, pickle.dumps([1, _Exploit(marker)], protocol=protocol))
    # Protocols 0-2 spell the module Python 2's way, ``__builtin__``.
    with pytest.raises(UnsafePickleError, match=r"(builtins|__builtin__)\.exec"):
        safe_load(path)
    assert not marker.exists()


def test_unsafe_error_is_a_data_format_error():
    assert issubclass(UnsafePickleError, DataFormatError)


def test_codecs_encode_is_limited_to_latin1(tmp_path):
    # Protocol 2 spells bytes as _codecs.encode(text, 'latin1'); another codec must be refused.
    data = pickle.dumps(b"abc", protocol=2)
    assert safe_load(_write(tmp_path, data)) == b"abc"
    # Same length as 'latin1', so the opcode's length prefix stays valid.
    with pytest.raises(UnsafePickleError, match=r"bad\.pkl.*rot_13"):
        safe_load(_write(tmp_path, data.replace(b"latin1", b"rot_13"), "bad.pkl"))


@pytest.fixture
def record_class(monkeypatch):
    """A class importable as ``featurepack.records.Record`` while the pickle is written."""
    package = types.ModuleType("featurepack")
    module = types.ModuleType("featurepack.records")
    package.records = module

    class Record:
        def __init__(self, name, vector):
            self.name = name
            self.vector = vector

    Record.__module__ = module.__name__
    Record.__qualname__ = "Record"
    module.Record = Record
    monkeypatch.setitem(sys.modules, package.__name__, package)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return Record


def test_a_class_instance_is_refused_by_default(tmp_path, record_class):
    path = _write(tmp_path, pickle.dumps(record_class("u1", np.ones(2))), "pack.pkl")
    with pytest.raises(UnsafePickleError, match=r"pack\.pkl.*featurepack\.records\.Record"):
        safe_load(path)


def test_allowed_maps_a_global_to_a_stand_in(tmp_path, record_class):
    path = _write(tmp_path, pickle.dumps([record_class("u1", np.ones(2))]))
    loaded = safe_load(path, allowed={("featurepack.records", "Record"): types.SimpleNamespace})
    assert isinstance(loaded[0], types.SimpleNamespace)
    assert loaded[0].name == "u1"
    np.testing.assert_array_equal(loaded[0].vector, np.ones(2))


def test_python2_pickle_with_latin1_strings(tmp_path):
    # A Python 2 protocol-2 pickle of {'name': 'caf\xe9', 'ids': set([1])}: byte strings (STRING
    # opcodes) and __builtin__.set, as in the COSMIC files.
    data = (b"\x80\x02}q\x00(U\x04nameq\x01U\x04caf\xe9q\x02U\x03idsq\x03c__builtin__\nset\n"
            b"q\x04]q\x05K\x01a\x85Rq\x06u.")
    assert safe_load(_write(tmp_path, data)) == {"name": "caf\xe9", "ids": {1}}


def test_truncated_pickle_names_the_file(tmp_path):
    data = pickle.dumps({"a": list(range(100)), "b": np.arange(10)}, protocol=4)
    path = _write(tmp_path, data[: len(data) // 2], "cut.pkl")
    with pytest.raises(DataFormatError, match=r"cut\.pkl.*truncated or corrupt"):
        safe_load(path)


def test_garbage_bytes_name_the_file(tmp_path):
    path = _write(tmp_path, b"this is not a pickle at all", "text.pkl")
    with pytest.raises(DataFormatError, match=r"text\.pkl"):
        safe_load(path)


def test_empty_file_names_the_file(tmp_path):
    with pytest.raises(DataFormatError, match=r"empty\.pkl"):
        safe_load(_write(tmp_path, b"", "empty.pkl"))


# -- issue 12: a few bytes must not decide to allocate gigabytes ------------------------------

def _hand_made(opcodes: bytes) -> bytes:
    return b"\x80\x02" + opcodes + b"."


@pytest.mark.parametrize("data, message", [
    # BINBYTES8 claiming 2^62 bytes: a MemoryError traceback before.
    (b"\x80\x04\x8e" + (2**62).to_bytes(8, "little") + b"xy.", "truncated|not a readable"),
    # LONG_BINPUT at index 2^26: the C unpickler's memo array took 1 GB for it.
    (_hand_made(b"]r" + (2**26).to_bytes(4, "little")), None),
    (_hand_made(b"]r" + (2**32 - 1).to_bytes(4, "little")), None),
])
def test_length_and_memo_fields_cannot_allocate(tmp_path, data, message, memory_budget):
    path = _write(tmp_path, data)
    with memory_budget(64 * 2**20):
        if message is None:
            assert safe_load(path) == []
        else:
            with pytest.raises(DataFormatError, match=message):
                safe_load(path)


def _call(global_line: bytes, argument: bytes) -> bytes:
    """A protocol-2 pickle that calls ``global_line``'s callable with one pickled argument."""
    return b"\x80\x02c" + global_line + b"\n" + argument + b"\x85R."


@pytest.mark.parametrize("data, message", [
    (_call(b"__builtin__\nbytearray", b"\x8a\x05\x00\x00\x00\x00\x01"),
     r"bytearray\(4294967296\) asks for 4,294,967,296 bytes or elements, more than the whole "
     r"file holds"),
    (_call(b"__builtin__\nbytes", b"\x8a\x05\x00\x00\x00\x00\x01"), r"bytes\(4294967296\)"),
    (_call(b"numpy\nndarray", b"\x8a\x05\x00\x00\x00\x00\x01"),
     "a direct call of numpy.ndarray"),
])
def test_calls_that_would_allocate_are_refused_before_they_run(tmp_path, data, message,
                                                               memory_budget):
    path = _write(tmp_path, data)
    with memory_budget(64 * 2**20), pytest.raises(DataFormatError, match=message):
        safe_load(path)


def test_a_huge_reconstruct_shape_is_refused(tmp_path, memory_budget):
    reconstruct = pickle.dumps(np.zeros(2), protocol=2)
    # numpy writes _reconstruct(ndarray, (0,), b'b'); ask for 2^40 elements instead.
    assert b"K\x00\x85" in reconstruct
    data = reconstruct.replace(b"K\x00\x85", b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85", 1)
    with memory_budget(64 * 2**20), pytest.raises(DataFormatError, match="an array of shape"):
        safe_load(_write(tmp_path, data))


def test_a_pickle_above_the_size_limit_is_not_read(tmp_path, monkeypatch):
    from hotspot_erc.limits import LimitExceeded

    path = _write(tmp_path, pickle.dumps(list(range(1000))))
    monkeypatch.setenv("HOTSPOT_ERC_LIMIT_PICKLE_BYTES", "100")
    with pytest.raises(LimitExceeded, match=r"data\.pkl: the pickle's size \(bytes\)"):
        safe_load(path)
