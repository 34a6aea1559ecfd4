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
"""

from __future__ import annotations

import collections
import importlib
import os
import pickle
import struct
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from hotspot_erc.data.dialogue import DataFormatError

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


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, allowed: Mapping[tuple[str, str], object], encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused global {module}.{name}; this pickle may only hold plain "
                "containers, numbers, strings and numpy arrays (pass allowed= to admit a class "
                "through a safe stand-in)") from None


def safe_load(path: str | os.PathLike, allowed: Mapping[tuple[str, str], object] | None = None,
              encoding: str = "latin1") -> object:
    """Unpickle ``path`` admitting only the allow-listed globals (see the module docstring).

    ``allowed`` adds ``(module, name) -> stand-in`` entries on top of the defaults. ``encoding``
    decodes Python 2 ``str`` objects (``"latin1"`` keeps their bytes, as numpy arrays need).

    Raises :class:`UnsafePickleError` for a refused global and :class:`DataFormatError` for a
    truncated or corrupt file, both naming the file.
    """
    path = Path(path)
    table = dict(SAFE_GLOBALS)
    table.update(allowed or {})
    with open(path, "rb") as stream:
        try:
            return _RestrictedUnpickler(stream, table, encoding).load()
        except UnsafePickleError as error:
            raise UnsafePickleError(f"{path}: {error}") from None
        except _CORRUPT_PICKLE_ERRORS as error:
            raise DataFormatError(
                f"{path}: not a readable pickle ({type(error).__name__}: {error}); the file may "
                "be truncated or corrupt") from error
