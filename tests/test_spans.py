"""Runs of positions and hotspot spans (the spans predictions and reports show)."""

from __future__ import annotations

import numpy as np

from hotspot_erc.spans import hotspot_spans, join_pieces, true_runs


def test_spans_and_word_pieces():
    weights = np.array([0.1, 0.9, 0.8, 0.2, 0.95, 0.1])
    valid = np.array([True, True, True, True, True, False])
    assert hotspot_spans(weights, valid) == [(4, 4, 0.95), (1, 2, 0.9)]
    assert hotspot_spans(weights, np.zeros(6, bool)) == []
    assert join_pieces(["un", "##believ", "##able", "day"]) == "unbelievable day"


def test_spans_stop_at_invalid_positions_and_keep_the_best_three():
    weights = np.array([0.9, 0.9, 0.2, 0.7, 0.2, 0.8, 0.2, 0.65, 1.0])
    valid = np.array([True, False, True, True, True, True, True, True, False])
    # Peak over valid positions is 0.9; the invalid 1.0 neither counts nor joins a span.
    assert hotspot_spans(weights, valid) == [(0, 0, 0.9), (5, 5, 0.8), (3, 3, 0.7)]
    assert hotspot_spans(np.zeros(3), np.ones(3, bool)) == []


def test_true_runs_are_half_open():
    assert true_runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    assert true_runs(np.ones(2, bool)) == [(0, 2)]
    assert true_runs(np.zeros(3, bool)) == []
