"""PNG figures of a conversation's predictions, drawn with matplotlib's Agg renderer.

:func:`hotspot_curves_png` draws, for audio or video, the hotspot weight ``a_p`` of each position
``p`` over time (solid) and the rule prior ``pi_p`` (dashed). Both live in ``[0, 1]``, so they
share one y-axis fixed to ``[0, WEIGHT_AXIS_TOP]`` on every figure: two curves can be compared by
eye across utterances and modalities, and near-equal small weights lie flat along the bottom
instead of being stretched to fill the plot. Masked positions (``valid[p]`` false) are gaps,
never zeros. The hotspot spans whose peak weight reaches ``HOTSPOT_MIN_WEIGHT`` are shaded and
that threshold is drawn as a dotted line
(:func:`~hotspot_erc.report.conversation.shown_hotspots`). The time axis is seconds of the
recording when the utterance start is known (so the spans read as in the report), else seconds
from the utterance start.

The conversation's timeline is drawn in the page itself (:mod:`hotspot_erc.report.html`), not
as a figure.

Figures are built as bare :class:`matplotlib.figure.Figure` objects on a ``FigureCanvasAgg``:
they never enter pyplot's registry of open figures, so nothing has to be closed, no global
backend is switched in the caller's process, and memory is freed with the object. PNGs carry no
``Software`` metadata, so the same input gives the same bytes.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hotspot_erc.engine.prediction import UtterancePrediction
from hotspot_erc.report.conversation import (
    HOTSPOT_MIN_WEIGHT,
    ReportInputError,
    masked_weights,
    modality_evidence,
    shown_hotspots,
)

DPI = 80
WEIGHT_AXIS_TOP = 1.05  # the y-axis of every curve figure: [0, 1.05]
WEIGHT_COLOUR = "#0072B2"  # Okabe-Ito blue
PRIOR_COLOUR = "#D55E00"  # Okabe-Ito vermillion
SPAN_COLOUR = "#E69F00"  # Okabe-Ito orange
THRESHOLD_COLOUR = "#777777"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def hotspot_curves_figure(utterance: UtterancePrediction, modality: str) -> Figure:
    """The figure :func:`hotspot_curves_png` draws; its one axes holds the curves.

    Raises :class:`ReportInputError` when the utterance has no such evidence (missing or not
    read by the model), or for ``text``, whose positions are tokens, not times.
    """
    if modality not in ("audio", "video"):
        raise ReportInputError(f"hotspot_curves_png: modality must be 'audio' or 'video', "
                               f"got {modality!r}")
    evidence = modality_evidence(utterance, modality)
    if evidence is None:
        raise ReportInputError(f"utterance {utterance.id!r}: modalities.{modality} is "
                               "missing or not present, so there is no curve to draw")
    offset = float(utterance.start) if utterance.start is not None else 0.0
    times = [offset + float(t) for t in evidence.times]
    figure = Figure(figsize=(6, 1.7))
    axes = figure.add_axes((0.11, 0.27, 0.78, 0.68))
    for span in shown_hotspots(evidence):
        axes.axvspan(float(span.start), float(span.end), color=SPAN_COLOUR, alpha=0.25,
                     linewidth=0)
    axes.axhline(HOTSPOT_MIN_WEIGHT, color=THRESHOLD_COLOUR, linewidth=0.8, linestyle=":")
    # Markers keep an isolated valid position visible between two gaps.
    axes.plot(times, masked_weights(evidence.weights, evidence.valid), color=WEIGHT_COLOUR,
              linewidth=1.4, marker="o", markersize=1.5)
    if evidence.prior is not None:
        axes.plot(times, masked_weights(evidence.prior, evidence.valid), color=PRIOR_COLOUR,
                  linewidth=1.0, linestyle="--")
    axes.set_ylim(0, WEIGHT_AXIS_TOP)
    axes.set_yticks([0, 0.5, 1])
    if times:
        step = (times[-1] - times[0]) / max(len(times) - 1, 1)
        axes.set_xlim(times[0] - step / 2, times[-1] + step / 2)
    axes.set_ylabel("weight, prior", fontsize=8)
    axes.set_xlabel("seconds" if utterance.start is not None
                    else "seconds from utterance start", fontsize=8)
    axes.tick_params(labelsize=7)
    return figure


def hotspot_curves_png(utterance: UtterancePrediction, modality: str) -> bytes:
    """Hotspot weights and prior over time for ``modality`` ("audio" or "video"); PNG bytes
    (about 480 x 136 px). Errors as :func:`hotspot_curves_figure`."""
    return _png(hotspot_curves_figure(utterance, modality))
