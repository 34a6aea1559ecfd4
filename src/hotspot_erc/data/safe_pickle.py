"""Read pickles without running code from them.

A pickle is a small program: its ``GLOBAL``/``STACK_GLOBAL``/``INST`` opcodes name any importable
callable and ``REDUCE`` calls it, so ``pickle.load`` on a downloaded file can run ``os.system``.
The corpora and feature packs this project reads are published as pickles, so every pickle goes
through :func:`safe_load`, whose unpickler resolves a global only from an allow-list:

* plain containers and scalars: ``list``, ``dict``, ``tuple``, ``set``, ``frozenset``, ``str``,
  ``bytes``, ``bytearray``, ``int``, ``float``, ``bool``, ``complex`` (under ``builtins`` and
  Python 2's ``__builtin__``), ``collections.OrderedDict`` and ``collections.defaultdict``;
* ``_codecs.encode``, which protocols 0-2 use to spell ``bytes``, narrowed to the latin-1 codec;
* numpy arrays, dtypes and scalars: ``numpy.ndarray``, ``numpy.dtype`` and the reconstruct
  functions ``_reconstruct``, ``scalar`` (``multiarray``) and ``_frombuffer`` (``numeric``, protocol
  5), under both ``numpy.core`` (numpy 1 pickles) and ``numpy._core`` (numpy 2 pickles).

Every other global raises :class:`UnsafePickleError` before anything is called; the name is looked
up in the table, never imported. Callers that need more (a feature pack that stores its own record
class) pass ``allowed``, a map from ``(module, name)`` to the safe object to use in its place.

A pickle also decides sizes, so a few bytes can ask for gigabytes. Against that:

* the file is read whole into memory (after checking its size against the limit
  ``pickle_bytes`` of :mod:`hotspot_erc.limits`), so a length field larger than the file is a
  truncated read, not an allocation;
* Python's own unpickler (the pure-Python one) keeps its memo in a dict: the C unpickler sizes
  an array by the largest memo index, and a 10-byte pickle naming index 2^26 costs it 1 GB;
* every call the pickle makes is checked first (:func:`_check_call`): ``bytes(n)`` and
  ``bytearray(n)`` may not ask for more bytes than the file holds, ``numpy.ndarray`` is never
  called directly (numpy pickles arrays through ``_reconstruct``, whose shape must fit the file
  too), so an array's data always comes from the file itself.
"""

from __future__ import annotations

import collections
import importlib
import io
import math
import os
import pickle
import struct
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.limits import check_limit

# Errors a malformed byte stream raises inside the unpickler (a REDUCE with wrong arguments, a
# truncated frame, a bad opcode); all of them mean "this file is not a valid pickle".
_CORRUPT_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                          IndexError, KeyError, OverflowError, struct.error)


class UnsafePickleError(DataFormatError):
    """A pickle names a global that is not on the allow-list; nothing from it was executed."""


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """Stand-in for ``_codecs.encode``: protocols 0-2 pickle ``bytes`` as ``encode(text,
    'latin1')``. Any other codec name is refused, because codecs can decompress or transform."""
    if encoding.replace("_", "-").lower() not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode with codec {encoding!r}; only latin1 is allowed")
    return text.encode("latin1")


def _numpy_function(submodule: str, name: str) -> Callable:
    """``name`` from ``numpy._core.<submodule>`` (numpy 2) or ``numpy.core.<submodule>`` (1.x)."""
    for package in ("numpy._core", "numpy.core"):
        try:
            module = importlib.import_module(f"{package}.{submodule}")
        except ImportError:
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise ImportError(f"numpy has no {submodule}.{name}")


def _default_allowed() -> dict[tuple[str, str], object]:
    allowed: dict[tuple[str, str], object] = {}
    for builtin in (list, dict, tuple, set, frozenset, str, bytes, bytearray, int, float, bool,
                    complex):
        for module in ("builtins", "__builtin__"):
            allowed[(module, builtin.__name__)] = builtin
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    allowed[("collections", "defaultdict")] = collections.defaultdict
    allowed[("_codecs", "encode")] = _latin1_encode
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for package in ("numpy.core", "numpy._core"):
        for name in ("_reconstruct", "scalar"):
            allowed[(f"{package}.multiarray", name)] = _numpy_function("multiarray", name)
        allowed[(f"{package}.numeric", "_frombuffer")] = _numpy_function("numeric", "_frombuffer")
    return allowed


SAFE_GLOBALS: Mapping[tuple[str, str], object] = _default_allowed()


class _RestrictedUnpickler(pickle._Unpickler):
    """Python's pure-Python unpickler with :meth:`find_class` restricted to ``allowed`` and
    every call checked by :func:`_check_call` (``file_size`` bounds what a call may allocate)."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data: bytes, allowed: Mapping[tuple[str, str], object],
                 encoding: str) -> None:
        super().__init__(io.BytesIO(data), encoding=encoding)
        self._allowed = allowed
        self._file_size = len(data)

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused global {module}.{name}; this pickle may only hold plain "
                "containers, numbers, strings and numpy arrays (pass allowed= to admit a class "
                "through a safe stand-in)") from None

    # The opcodes that call something: the callable and its arguments are on the stack.
    def load_reduce(self) -> None:
        _check_call(self.stack[-2], self.stack[-1], self._file_size)
        super().load_reduce()

    def load_newobj(self) -> None:
        _check_call(self.stack[-2], self.stack[-1], self._file_size)
        super().load_newobj()

    def load_newobj_ex(self) -> None:
        _check_call(self.stack[-3], self.stack[-2], self._file_size)
        super().load_newobj_ex()

    def _instantiate(self, klass, args) -> None:  # the INST and OBJ opcodes
        _check_call(klass, args, self._file_size)
        super()._instantiate(klass, args)

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex


def _check_call(function: object, args: object, file_size: int) -> None:
    """Refuse a call that would allocate more than the pickle file could hold as data."""
    if not isinstance(args, (tuple, list)):
        return  # the unpickler itself refuses arguments that are not a tuple
    if function is np.ndarray:
        raise DataFormatError("a direct call of numpy.ndarray (numpy pickles an array through "
                              "_reconstruct and its data; this one would allocate unfilled "
                              "memory)")
    if function in (bytes, bytearray) and args and isinstance(args[0], int) \
            and not isinstance(args[0], bool):
        _check_size(args[0], f"{function.__name__}({args[0]})", file_size)
    if function is _RECONSTRUCT and len(args) >= 2:
        shape = args[1] if isinstance(args[1], (tuple, list)) else (args[1],)
        if not all(isinstance(n, int) and n >= 0 for n in shape):
            raise DataFormatError(f"numpy _reconstruct with the shape {shape!r:.60}")
        _check_size(math.prod(shape), f"an array of shape {tuple(shape)!r:.60}", file_size)


def _check_size(size: int, what: str, file_size: int) -> None:
    if size > file_size:
        raise DataFormatError(f"{what} asks for {size:,} bytes or elements, more than the "
                              f"whole file holds ({file_size:,} bytes)")


_RECONSTRUCT = SAFE_GLOBALS[("numpy._core.multiarray", "_reconstruct")]


def safe_load(path: str | os.PathLike, allowed: Mapping[tuple[str, str], object] | None = None,
              encoding: str = "latin1") -> object:
    """Unpickle ``path`` admitting only the allow-listed globals (see the module docstring).

    ``allowed`` adds ``(module, name) -> stand-in`` entries on top of the defaults. ``encoding``
    decodes Python 2 ``str`` objects (``"latin1"`` keeps their bytes, as numpy arrays need).

    Raises :class:`UnsafePickleError` for a refused global, and :class:`DataFormatError` for a
    truncated or corrupt file or one that asks for more memory than it could fill (a
    :class:`~hotspot_erc.limits.LimitExceeded` for a file above the limit ``pickle_bytes``), all
    naming the file.
    """
    path = Path(path)
    check_limit("pickle_bytes", path.stat().st_size, f"{path}: the pickle's size (bytes)")
    data = path.read_bytes()
    table = dict(SAFE_GLOBALS)
    table.update(allowed or {})
    try:
        return _RestrictedUnpickler(data, table, encoding).load()
    except UnsafePickleError as error:
        raise UnsafePickleError(f"{path}: {error}") from None
    except DataFormatError as error:
        raise DataFormatError(f"{path}: {error}") from None
    except _CORRUPT_PICKLE_ERRORS as error:
        raise DataFormatError(
            f"{path}: not a readable pickle ({type(error).__name__}: {error}); the file may "
            "be truncated or corrupt") from error
    except (MemoryError, RecursionError) as error:
        # What the checks above cannot foresee (a deeply nested structure, an allow-listed
        # stand-in that allocates): still the file's fault, and still one clear error.
        raise DataFormatError(f"{path}: cannot be unpickled within this machine's limits "
                              f"({type(error).__name__})") from None
