"""PNG figures of a conversation's predictions, drawn with matplotlib's Agg renderer.

* :func:`timeline_png`: one row per speaker, one bar per utterance over time (seconds when every
  utterance has times, else utterance index), filled with the predicted label's colour
  (:func:`~hotspot_erc.report.conversation.label_colours`).
* :func:`hotspot_curves_png`: for audio or video, the hotspot weight ``a_p`` of each position
  ``p`` over time (left axis) and the rule prior ``pi_p`` in ``[0, 1]`` (right axis, dashed);
  masked positions (``valid[p]`` false) are gaps, never zeros, and the top hotspot spans are
  shaded. The time axis is seconds of the recording when the utterance start is known (so the
  spans read as in the report), else seconds from the utterance start.

Figures are built as bare :class:`matplotlib.figure.Figure` objects on a ``FigureCanvasAgg``:
they never enter pyplot's registry of open figures, so nothing has to be closed, no global
backend is switched in the caller's process, and memory is freed with the object. PNGs carry no
``Software`` metadata, so the same input gives the same bytes.
"""

from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from hotspot_erc.engine.prediction import ConversationPrediction, UtterancePrediction
from hotspot_erc.report.conversation import (
    ReportInputError,
    label_colours,
    masked_weights,
    modality_evidence,
    timeline,
)

DPI = 80
WEIGHT_COLOUR = "#0072B2"  # Okabe-Ito blue
PRIOR_COLOUR = "#D55E00"  # Okabe-Ito vermillion
SPAN_COLOUR = "#E69F00"  # Okabe-Ito orange


def _plain(text: str, limit: int = 16) -> str:
    """``text`` for a matplotlib label: shortened, and with ``$`` escaped so a speaker called
    ``$x$`` is not parsed as mathtext (a lone ``$`` would even raise)."""
    text = str(text)
    text = text if len(text) <= limit else text[:limit - 1] + "\u2026"
    return text.replace("$", r"\$")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def timeline_png(conversation: ConversationPrediction) -> bytes:
    """The conversation as coloured bars, one row per speaker; PNG bytes (about 720 px wide)."""
    layout = timeline(conversation)
    colours = label_colours(conversation.label_names)
    rows = {speaker: row for row, speaker in enumerate(layout.speakers)}
    height = 0.85 + 0.42 * max(len(rows), 1)  # inches: 0.5 below for the axis, 0.35 above
    figure = Figure(figsize=(9, height))
    axes = figure.add_axes((0.14, 0.5 / height, 0.84, (height - 0.85) / height))
    utterances = conversation.utterances
    if utterances:
        axes.barh([rows[str(u.speaker)] for u in utterances],
                  [end - start for start, end in layout.spans],
                  left=[start for start, _ in layout.spans], height=0.7,
                  color=[colours[u.label] for u in utterances], edgecolor="#333333",
                  linewidth=0.5)
    low, high = layout.extent
    axes.set_xlim(low, high)
    axes.set_ylim(max(len(rows), 1) - 0.5, -0.5)  # first speaker on top
    axes.set_yticks(range(len(rows)), labels=[_plain(s) for s in layout.speakers], fontsize=9)
    axes.set_xlabel("seconds" if layout.in_seconds else "utterance (no times given)",
                    fontsize=9)
    axes.tick_params(axis="x", labelsize=8)
    used = [name for name in conversation.label_names
            if any(u.label == name for u in utterances)]
    if used:
        figure.legend(handles=[Patch(facecolor=colours[name], edgecolor="#333333",
                                     label=_plain(name)) for name in used],
                      loc="upper center", ncol=min(len(used), 8), fontsize=8, frameon=False)
    return _png(figure)


def hotspot_curves_png(utterance: UtterancePrediction, modality: str) -> bytes:
    """Hotspot weights and prior over time for ``modality`` ("audio" or "video"); PNG bytes.

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
    weights = masked_weights(evidence.weights, evidence.valid)
    figure = Figure(figsize=(6, 1.7))
    axes = figure.add_axes((0.11, 0.27, 0.78, 0.68))
    # Markers keep an isolated valid position visible between two gaps.
    axes.plot(times, weights, color=WEIGHT_COLOUR, linewidth=1.4, marker="o", markersize=1.5,
              label="hotspot weight")
    for span in evidence.hotspots:
        axes.axvspan(float(span.start), float(span.end), color=SPAN_COLOUR, alpha=0.25,
                     linewidth=0)
    finite = [w for w in weights if not math.isnan(w)]
    axes.set_ylim(0, 1.1 * max(finite) if finite and max(finite) > 0 else 1)
    if times:
        step = (times[-1] - times[0]) / max(len(times) - 1, 1)
        axes.set_xlim(times[0] - step / 2, times[-1] + step / 2)
    axes.set_ylabel("weight", fontsize=8, color=WEIGHT_COLOUR)
    axes.set_xlabel("seconds" if utterance.start is not None
                    else "seconds from utterance start", fontsize=8)
    axes.tick_params(labelsize=7)
    if evidence.prior is not None:
        prior_axes = axes.twinx()
        prior_axes.plot(times, masked_weights(evidence.prior, evidence.valid), color=PRIOR_COLOUR,
                        linewidth=1.0, linestyle="--", label="prior")
        prior_axes.set_ylim(0, 1.05)
        prior_axes.set_ylabel("prior", fontsize=8, color=PRIOR_COLOUR)
        prior_axes.tick_params(labelsize=7)
    return _png(figure)
