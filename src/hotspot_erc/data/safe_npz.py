"""Read ``.npz`` archives without letting the file decide how much memory is allocated.

``np.load`` trusts the archive: a compressed member inflates to whatever its ``.npy`` header
declares, so a 4 MB file can ask for gigabytes. :func:`read_npz` reads each member's header
first and checks, before any data is read:

* the member is an ``.npy`` array of a plain dtype (no objects: nothing is unpickled);
* its size ``prod(shape) * itemsize`` is within the limit ``array_bytes`` and, summed over the
  members, ``archive_bytes`` (:mod:`hotspot_erc.limits`);
* where the caller knows what to expect (``expected``: name -> shape), the names and shapes are
  exactly those.

The project's own archives (stores, checkpoints, resume states) are written by ``np.savez``;
any other zip (a ``torch.save`` file renamed, say) fails the first check with a clear error.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.limits import check_limit


def read_npz(path: str | os.PathLike,
             expected: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """The arrays of the archive ``path`` by member name (without ``.npy``), checked as the
    module docstring says. Every problem is a :class:`DataFormatError` naming the file and the
    member (:class:`~hotspot_erc.limits.LimitExceeded` for a size above a limit)."""
    path = Path(path)
    with open(path, "rb") as handle:  # a missing or unreadable file is the OSError it is
        try:
            with zipfile.ZipFile(handle) as archive:
                headers = {name: _header(archive, info, path)
                           for name, info in _members(archive, path)}
                _check_expected(headers, expected, path)
                check_limit("archive_bytes", sum(_nbytes(shape, dtype) for shape, dtype, _ in
                                                 headers.values()),
                            f"{path}: the arrays together (bytes)")
                return {name: _read(archive, info, *headers[name], path)
                        for name, info in _members(archive, path)}
        except DataFormatError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                zlib.error, NotImplementedError) as error:
            # Past the open, every one of these is the archive's structure: an offset before
            # the start (OSError), a bad CRC or deflate stream, an unknown compression method.
            raise DataFormatError(f"{path}: not a readable npz archive ({error})") from None


class ShapeMismatch(DataFormatError):
    """The archive's arrays are not the names and shapes the caller expects."""


def _members(archive: zipfile.ZipFile, path: Path) -> list[tuple[str, zipfile.ZipInfo]]:
    members = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        if not info.filename.endswith(".npy"):
            raise DataFormatError(f"{path}: member {info.filename!r} is not an .npy array; this "
                                  "is not an archive of arrays written with numpy.savez")
        members.append((info.filename[:-len(".npy")], info))
    return members


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path
            ) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, header length)`` of a member, read from its first bytes only."""
    where = f"{path}: member {info.filename!r}"
    with archive.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"unknown .npy format version {version}")
        except (ValueError, EOFError, SyntaxError) as error:
            raise DataFormatError(f"{where}: not an .npy array ({error})") from None
        header_length = stream.tell()
    if dtype.hasobject:
        raise DataFormatError(f"{where}: holds Python objects (dtype {dtype}); only numeric, "
                              "boolean and string arrays are read (objects would be unpickled)")
    if fortran and len(shape) > 1:
        raise DataFormatError(f"{where}: Fortran-ordered arrays are not written by hotspot-erc")
    check_limit("array_bytes", _nbytes(shape, dtype), f"{where}: shape {shape} of {dtype} "
                                                      "(bytes)")
    return shape, dtype, header_length


def _check_expected(headers: Mapping[str, tuple], expected: Mapping[str, tuple[int, ...]] | None,
                    path: Path) -> None:
    if expected is None:
        return
    missing = sorted(set(expected) - set(headers))
    unexpected = sorted(set(headers) - set(expected))
    if missing or unexpected:
        raise ShapeMismatch(f"{path}: the arrays do not match what is expected (missing "
                              f"{missing[:5]}, unexpected {unexpected[:5]})")
    for name, (shape, _, _) in headers.items():
        if tuple(shape) != tuple(expected[name]):
            raise ShapeMismatch(f"{path}: member {name}: shape {tuple(shape)}, expected "
                                  f"{tuple(expected[name])}")


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, shape: tuple[int, ...],
          dtype: np.dtype, header_length: int, path: Path) -> np.ndarray:
    """Read exactly the bytes the checked header declares, no more."""
    size = _nbytes(shape, dtype)
    with archive.open(info) as stream:
        stream.read(header_length)
        data = stream.read(size)
    if len(data) != size:
        raise DataFormatError(f"{path}: member {info.filename!r}: truncated ({len(data)} of "
                              f"{size} bytes)")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * dtype.itemsize
