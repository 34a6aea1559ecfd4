"""Annotation checks of the config dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hotspot_erc.fields import describe, matches, type_problems


@dataclass
class Example:
    count: int = 1
    rate: float = 0.5
    flag: bool = False
    name: str = "x"
    weights: list[float] | None = None
    dims: dict[str, tuple[int, int]] = field(default_factory=dict)
    names: tuple[str, ...] = ()


@pytest.mark.parametrize("value, expected, ok", [
    (3, int, True), (True, int, False), (3.0, int, False), ("3", int, False),
    (3, float, True), (0.5, float, True), (float("nan"), float, False),
    (float("inf"), float, False), (False, float, False), ("0.5", float, False),
    (None, list[float] | None, True), ([1, 2.5], list[float] | None, True),
    ([1, "a"], list[float] | None, False), ({"t": [3, 4]}, dict[str, tuple[int, int]], True),
    ({"t": [3]}, dict[str, tuple[int, int]], False), ({1: [3, 4]}, dict[str, tuple[int, int]],
                                                      False),
    (("a", "b"), tuple[str, ...], True), ("ab", tuple[str, ...], False),
])
def test_matches(value, expected, ok):
    assert matches(value, expected) is ok


def test_type_problems_name_each_bad_field_with_its_type_in_words():
    problems = type_problems(Example(count="many", rate=float("nan"), weights=[1, "x"],
                                     dims={"t": [1]}))
    assert problems == {
        "count": "expected an integer, got 'many'",
        "rate": "expected a finite number, got nan",
        "weights": "expected a list (a finite number each) or null, got [1, 'x']",
        "dims": "expected a mapping (a string to a list of 2 (an integer, an integer)), got "
                "{'t': [1]}",
    }
    assert type_problems(Example()) == {}


def test_long_values_are_shortened():
    assert type_problems(Example(name=["x" * 200]))["name"].endswith("...")
    assert describe(bool) == "true or false"
