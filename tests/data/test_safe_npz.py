"""The checked npz reader: round trip, and every way an archive can ask for too much."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.data.safe_npz import read_npz
from hotspot_erc.limits import LimitExceeded


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _zip(path, members: dict[str, bytes], compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_round_trip_of_what_savez_writes(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array(["x", "yz"]),
              "flags": np.array([True, False]), "meta": np.asarray('{"k": 1}'),
              "empty": np.zeros((0, 4))}
    np.savez(tmp_path / "a.npz", **arrays)
    loaded = read_npz(tmp_path / "a.npz")
    assert loaded.keys() == arrays.keys()
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array)
    assert read_npz(tmp_path / "a.npz", expected={n: a.shape for n, a in arrays.items()})


def test_a_compressed_bomb_is_refused_before_it_inflates(tmp_path, monkeypatch):
    """The reported case: a 3.6 MB weights.npz inflated to 4.5 GB before it was rejected. Here:
    under 1 MB that declares 256 MiB of zeros, under a 64 MiB limit."""
    bomb = np.lib.format.header_data_from_array_1_0(np.zeros(1, dtype=np.float32))
    bomb["shape"] = (64 * 2**20,)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, bomb)
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("w.npy", "w", force_zip64=True) as member:
            member.write(buffer.getvalue())
            chunk = bytes(2**20)
            for _ in range(256):
                member.write(chunk)
    assert (tmp_path / "bomb.npz").stat().st_size < 2**20
    monkeypatch.setenv("HOTSPOT_ERC_LIMIT_ARRAY_BYTES", str(64 * 2**20))
    with pytest.raises(LimitExceeded, match=r"bomb\.npz: member 'w\.npy': shape \(67108864,\) "
                                            r"of float32 \(bytes\): 268,435,456 is above the "
                                            r"limit array_bytes"):
        read_npz(tmp_path / "bomb.npz")


def test_the_members_together_are_limited(tmp_path, monkeypatch):
    np.savez(tmp_path / "a.npz", a=np.zeros(100), b=np.zeros(100))
    monkeypatch.setenv("HOTSPOT_ERC_LIMIT_ARCHIVE_BYTES", "1000")
    with pytest.raises(LimitExceeded, match="the arrays together"):
        read_npz(tmp_path / "a.npz")


def test_a_torch_save_file_is_not_an_archive_of_arrays(tmp_path):
    import torch

    torch.save({"w": torch.zeros(3)}, tmp_path / "weights.npz")
    with pytest.raises(DataFormatError, match=r"weights\.npz: member '.*' is not an \.npy array; "
                                              "this is not an archive of arrays written with "
                                              "numpy.savez"):
        read_npz(tmp_path / "weights.npz")


def test_object_arrays_are_never_unpickled(tmp_path):
    _zip(tmp_path / "o.npz", {"o.npy": _npy(np.array([{"x": 1}], dtype=object))})
    with pytest.raises(DataFormatError, match=r"member 'o\.npy': holds Python objects"):
        read_npz(tmp_path / "o.npz")


@pytest.mark.parametrize("members, message", [
    ({"a.npy": b"\x93NUMPY garbage"}, r"member 'a\.npy': not an \.npy array"),
    ({"a.npy": _npy(np.zeros(100))[:200]}, r"member 'a\.npy': truncated \(72 of 800 bytes\)"),
])
def test_damaged_members_are_named(tmp_path, members, message):
    _zip(tmp_path / "d.npz", members)
    with pytest.raises(DataFormatError, match=message):
        read_npz(tmp_path / "d.npz")


def test_not_a_zip_and_unexpected_members(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not a zip archive")
    with pytest.raises(DataFormatError, match=r"x\.npz: not a readable npz archive"):
        read_npz(tmp_path / "x.npz")
    np.savez(tmp_path / "a.npz", a=np.zeros(3), b=np.zeros(2))
    with pytest.raises(DataFormatError, match=r"missing \['c'\], unexpected \['b'\]"):
        read_npz(tmp_path / "a.npz", expected={"a": (3,), "c": (2,)})
    with pytest.raises(DataFormatError, match=r"member b: shape \(2,\), expected \(5,\)"):
        read_npz(tmp_path / "a.npz", expected={"a": (3,), "b": (5,)})
