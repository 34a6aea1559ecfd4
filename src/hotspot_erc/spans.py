"""Spans: runs of positions, and the hotspot spans an explanation shows.

``true_runs(mask)`` lists the ``[start, stop)`` index pairs of the True runs of a boolean vector.

``hotspot_spans(weights, valid)`` reads per-position hotspot weights ``w`` of one utterance as at
most ``TOP_SPANS`` spans, best first::

    peak  = max_{l valid} w_l                         (no span when nothing is valid or peak <= 0)
    spans = runs of valid l with w_l >= SPAN_FRACTION * peak,  each (first, last, max w on it)

The predictor writes these spans into ``predictions.jsonl``; the report tests' example
conversation (tests/report/conftest.py) finds its spans the same way. ``join_pieces`` turns the
word pieces of a text span back into words (``##`` pieces attach to the piece before them).

Only numpy: the audio extractor, the predictor and the report layer all import it.
"""

from __future__ import annotations

import numpy as np

TOP_SPANS = 3
SPAN_FRACTION = 0.6  # a span is a run of positions whose weight is >= this fraction of the max


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index pairs of the True runs of a boolean vector."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(),
                    strict=True))


def hotspot_spans(weights: np.ndarray, valid: np.ndarray) -> list[tuple[int, int, float]]:
    """Top runs ``(first, last, peak weight)`` of valid positions whose weight is at least
    ``SPAN_FRACTION`` x the utterance's maximum, best first."""
    if not valid.any():
        return []
    peak = float(weights[valid].max())
    if peak <= 0:
        return []
    runs = [(start, stop - 1, float(weights[start:stop].max()))
            for start, stop in true_runs(valid & (weights >= SPAN_FRACTION * peak))]
    return sorted(runs, key=lambda run: -run[2])[:TOP_SPANS]


def join_pieces(pieces: list[str]) -> str:
    """Word pieces back to words: ``["un", "##believ", "##able", "day"]`` -> "unbelievable day"."""
    text = ""
    for piece in pieces:
        text += piece[2:] if piece.startswith("##") else (" " + piece if text else piece)
    return text
