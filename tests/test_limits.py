"""Limits: defaults, the environment override, and an error that names how to lift them."""

from __future__ import annotations

import pytest

from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.limits import DEFAULTS, LimitExceeded, check_limit, limit


def test_defaults_apply_without_the_variable(monkeypatch):
    monkeypatch.delenv("HOTSPOT_ERC_LIMIT_ARRAY_BYTES", raising=False)
    assert limit("array_bytes") == DEFAULTS["array_bytes"] == 2 * 2**30


def test_an_exceeded_limit_names_the_input_and_the_variable(monkeypatch):
    monkeypatch.setenv("HOTSPOT_ERC_LIMIT_MODEL_PARAMS", "1000")
    check_limit("model_params", 1000, "x")  # at the limit: allowed
    with pytest.raises(LimitExceeded, match=r"^ckpt\.json: params: 1,001 is above the limit "
                                            r"model_params \(1,000\); if this input is genuine, "
                                            r"allow it with HOTSPOT_ERC_LIMIT_MODEL_PARAMS=1001$"):
        check_limit("model_params", 1001, "ckpt.json: params")
    assert issubclass(LimitExceeded, DataFormatError)


def test_a_bad_variable_and_an_unknown_limit_are_errors(monkeypatch):
    monkeypatch.setenv("HOTSPOT_ERC_LIMIT_PICKLE_BYTES", "lots")
    with pytest.raises(ValueError, match="HOTSPOT_ERC_LIMIT_PICKLE_BYTES='lots': expected an "
                                         "integer >= 0"):
        limit("pickle_bytes")
    with pytest.raises(KeyError, match="unknown limit 'ram'"):
        limit("ram")
