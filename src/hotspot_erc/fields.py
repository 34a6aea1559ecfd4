"""Type checks for the fields of the project's config dataclasses.

Configs are filled from outside: ``--set hidden=banana``, a ``checkpoint.json`` saying
``"hidden": "sixty-four"``, ``--train-set lr=nan``. Python does not check a dataclass's
annotations, so a wrong value would surface later as a TypeError deep inside the model, or not at
all. :func:`type_problems` compares each field with its annotation and says what is wrong in the
config's own terms, so each config can refuse bad values in ``__post_init__``:

* ``int``: an integer (``True`` is not one); ``float``: a finite real number (an integer is
  accepted, NaN and infinity are not); ``bool``; ``str``;
* ``X | None``: ``None`` or an ``X``;
* ``list[X]`` and ``tuple[X, ...]``: a list or tuple of ``X``; ``tuple[X, Y]``: exactly two;
* ``dict[K, V]``: a dict whose keys are ``K`` and values ``V``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing


def type_problems(config) -> dict[str, str]:
    """``{field: "expected <type>, got <value>"}`` for each field of the dataclass instance
    ``config`` whose value does not match its annotation (its range checks skip these)."""
    hints = typing.get_type_hints(type(config))
    problems = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        expected = hints[field.name]
        if not matches(value, expected):
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            problems[field.name] = f"expected {describe(expected)}, got {shown}"
    return problems


def matches(value, expected) -> bool:
    """Whether ``value`` is of the annotated type ``expected`` (see the module docstring)."""
    origin = typing.get_origin(expected)
    arguments = typing.get_args(expected)
    if expected is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, option) for option in arguments)
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if expected is float:
        return (isinstance(value, numbers.Real) and not isinstance(value, bool)
                and math.isfinite(value))
    if expected is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and arguments and arguments[-1] is not Ellipsis:
            return len(value) == len(arguments) and all(
                matches(item, kind) for item, kind in zip(value, arguments, strict=True))
        return all(matches(item, arguments[0]) for item in value) if arguments else True
    if origin is dict:
        if not isinstance(value, dict):
            return False
        key_type, value_type = arguments or (typing.Any, typing.Any)
        return all(matches(k, key_type) and matches(v, value_type) for k, v in value.items())
    if expected is typing.Any:
        return True
    return isinstance(value, expected)


def describe(expected) -> str:
    """The annotation ``expected`` in words."""
    origin = typing.get_origin(expected)
    arguments = typing.get_args(expected)
    if expected is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(option) for option in arguments)
    if origin in (list, tuple):
        if origin is tuple and arguments and arguments[-1] is not Ellipsis:
            return f"a list of {len(arguments)} ({', '.join(describe(a) for a in arguments)})"
        return f"a list ({describe(arguments[0])} each)" if arguments else "a list"
    if origin is dict:
        key_type, value_type = arguments or (typing.Any, typing.Any)
        return f"a mapping ({describe(key_type)} to {describe(value_type)})"
    return {bool: "true or false", int: "an integer", float: "a finite number",
            str: "a string", typing.Any: "anything"}.get(expected, getattr(expected, "__name__",
                                                                          str(expected)))
