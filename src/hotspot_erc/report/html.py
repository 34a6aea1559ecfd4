"""One self-contained HTML page explaining a conversation's predictions.

The page has a header (conversation, checkpoint, media, notices, label colours), a timeline with
one element per utterance (``<a class="utt">`` inside ``<div id="timeline">``, one row per
speaker, widths proportional to duration, or equal when times are unknown) plus its PNG, and a
card per utterance: speaker, times, the predicted label with a bar per class probability, the
transcript and its word pieces with a background whose opacity is the piece's hotspot weight
divided by the utterance's largest (``alpha_p = a_p / max_q a_q``; hotspot spans underlined),
the audio and video hotspot curves with their top spans in seconds, the mean gate per modality,
and the aligner experts chosen per modality pair with their weights.

Self-contained and inert: figures are ``data:`` URIs, the style sheet is inline, there is no
script and no remote resource, and a Content-Security-Policy (``default-src 'none'``) forbids
scripts even if markup ever slipped through. Every string taken from the input (transcript,
tokens, speakers, ids, labels, notices, paths, expert names) goes through
``html.escape(quote=True)``; only numbers (checked as numbers) and the fixed palette reach
attributes unescaped.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
from pathlib import Path

from hotspot_erc import __version__
from hotspot_erc.atomic import atomic_open, write_text
from hotspot_erc.engine.prediction import (
    ConversationPrediction,
    ModalityEvidence,
    UtterancePrediction,
)
from hotspot_erc.report.conversation import (
    check_conversation,
    ink_on,
    label_colours,
    masked_weights,
    modality_evidence,
    timeline,
)

REPORT_NAME = "report.html"
FIGURE_FOLDER = "figures"
TOKEN_RGB = "230, 159, 0"  # Okabe-Ito orange: highlight of text hotspots
# Pieces written against their left or right neighbour ("can ' t" -> "can't", "end ." -> "end.").
_GLUE_LEFT = set(",.!?;:)]}%'\u2019-\u2026")
_GLUE_RIGHT = set("([{'\u2019-$#")
_OWN_FIGURE = re.compile(r"^(timeline|u\d{3,}-(audio|video))\.png$")

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1rem 1.5rem; color: #222; background: #fafafa; }
h1 { margin: 0 0 .3rem; font-size: 1.5rem; }
h2 { font-size: 1.05rem; margin: 0 0 .5rem; display: flex; gap: .6rem; align-items: center;
     flex-wrap: wrap; }
h3 { font-size: .9rem; margin: .2rem 0; }
code { background: #eee; padding: 0 .25rem; border-radius: 3px; word-break: break-all; }
.meta { margin: .15rem 0; font-size: .9rem; }
.notices { background: #fff4e0; border-left: 4px solid #E69F00; padding: .4rem .4rem .4rem 1.6rem;
           font-size: .9rem; }
.legend { display: flex; flex-wrap: wrap; gap: .4rem; margin: .5rem 0; }
.chip { padding: .05rem .45rem; border-radius: 3px; font-size: .85rem; border: 1px solid #555; }
#timeline { margin: .6rem 0; }
.row { display: flex; align-items: center; margin: 3px 0; }
.who { width: 8rem; flex: none; font-size: .85rem; overflow: hidden; text-overflow: ellipsis;
       white-space: nowrap; }
.track { position: relative; flex: 1; height: 1.4rem; background: #eee; border-radius: 3px; }
.utt { position: absolute; top: 0; bottom: 0; min-width: 3px; border: 1px solid #333;
       box-sizing: border-box; font-size: .7rem; text-align: center; overflow: hidden;
       text-decoration: none; line-height: 1.3rem; }
.timeline-figure { max-width: 100%; }
.card { background: #fff; border: 1px solid #ccc; border-radius: 6px; padding: .8rem 1rem;
        margin: 1rem 0; }
.card:target { outline: 3px solid #0072B2; }
.times { color: #555; font-weight: normal; font-size: .9rem; }
.probs { display: grid; grid-template-columns: 7rem 1fr 3.5rem; gap: 2px .5rem; max-width: 32rem;
         font-size: .82rem; align-items: center; }
.bar { background: #eee; height: .8rem; border-radius: 2px; overflow: hidden; }
.bar span { display: block; height: 100%; }
.predicted { font-weight: bold; }
.transcript { font-size: 1rem; margin: .6rem 0 .3rem; white-space: pre-wrap; }
.tokens { line-height: 1.9; font-size: .95rem; }
.tok { padding: .1rem 0; border-radius: 2px; }
.tok.hot { border-bottom: 2px solid #D55E00; }
.tok.masked { color: #999; }
.modalities { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr));
              gap: .6rem; margin-top: .6rem; }
.modality { border-top: 1px solid #ddd; padding-top: .3rem; font-size: .85rem; }
.modality img { max-width: 100%; }
.modality.text { grid-column: 1 / -1; }
.missing { color: #777; font-style: italic; }
.gate { font-weight: normal; color: #444; }
table.routing { border-collapse: collapse; font-size: .82rem; margin-top: .4rem; }
table.routing caption { text-align: left; color: #555; }
table.routing th, table.routing td { padding: .1rem .6rem .1rem 0; text-align: left; }
footer { color: #777; font-size: .8rem; margin-top: 2rem; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _seconds(value: float) -> str:
    return f"{value:.2f}"


def _utterance_times(utterance: UtterancePrediction) -> str:
    start, end = utterance.start, utterance.end
    if start is None or end is None:
        return "time unknown"
    return f"{_seconds(start)}\u2013{_seconds(end)} s"


# -- header and timeline ------------------------------------------------------------------------

def _header(conversation: ConversationPrediction, colours: dict[str, str],
            own_notices: list[str]) -> str:
    parts = [f"<h1>Emotions in {_e(conversation.name)}</h1>",
             f'<p class="meta">{len(conversation.utterances)} utterances \u00b7 checkpoint '
             f"<code>{_e(conversation.checkpoint or 'unknown')}</code></p>"]
    media = conversation.media
    if media:
        listed = " \u00b7 ".join(f"{_e(kind)}: <code>{_e(path)}</code>"
                                 for kind, path in media.items())
        parts.append(f'<p class="meta">media: {listed}</p>')
    notices = [*conversation.notices, *own_notices]
    if notices:
        items = "".join(f"<li>{_e(notice)}</li>" for notice in notices)
        parts.append(f'<ul class="notices">{items}</ul>')
    chips = "".join(f'<span class="chip" style="background:{colour};color:{ink_on(colour)}">'
                    f"{_e(name)}</span>" for name, colour in colours.items())
    parts.append(f'<div class="legend" aria-label="label colours">{chips}</div>')
    return "<header>" + "".join(parts) + "</header>"


def _timeline(conversation: ConversationPrediction, colours: dict[str, str],
              figure: bytes | None) -> str:
    layout = timeline(conversation)
    low, high = layout.extent
    rows = {speaker: [] for speaker in layout.speakers}
    for index, (utterance, (start, end)) in enumerate(
            zip(conversation.utterances, layout.spans, strict=True)):
        left = 100 * (start - low) / (high - low)
        width = 100 * (end - start) / (high - low)
        colour = colours[utterance.label]
        hint = f"{utterance.speaker} \u00b7 {utterance.label} \u00b7 {_utterance_times(utterance)}"
        rows[str(utterance.speaker)].append(
            f'<a class="utt" data-id="{_e(utterance.id)}" href="#utt-{index}" '
            f'title="{_e(hint)}" style="left:{left:.3f}%;width:{width:.3f}%;'
            f'background:{colour};color:{ink_on(colour)}">{index + 1}</a>')
    body = "".join(f'<div class="row"><div class="who" title="{_e(speaker)}">{_e(speaker)}</div>'
                   f'<div class="track">{"".join(bars)}</div></div>'
                   for speaker, bars in rows.items())
    axis = "seconds" if layout.in_seconds else "utterance order (no times given)"
    parts = [f'<section><h2>Timeline <span class="times">({axis})</span></h2>',
             f'<div id="timeline">{body}</div>']
    if figure is not None:
        parts.append(f'<img class="timeline-figure" alt="timeline of predicted emotions" '
                     f'src="{_data_uri(figure)}">')
    return "".join(parts) + "</section>"


# -- one utterance ------------------------------------------------------------------------------

def _probabilities(utterance: UtterancePrediction, label_names: list[str],
                   colours: dict[str, str]) -> str:
    cells = []
    for name in label_names:
        probability = float(utterance.probabilities.get(name, 0.0))
        width = 100 * min(max(probability, 0.0), 1.0)
        predicted = ' class="predicted"' if name == utterance.label else ""
        cells.append(f"<span{predicted}>{_e(name)}</span>"
                     f'<span class="bar"><span style="width:{width:.1f}%;'
                     f'background:{colours[name]}"></span></span>'
                     f"<span{predicted}>{probability:.3f}</span>")
    return f'<div class="probs" aria-label="class probabilities">{"".join(cells)}</div>'


def _word_pieces_html(evidence: ModalityEvidence) -> str:
    """Word pieces as spans, joined into words: ``##`` pieces and punctuation attach to their
    neighbour without a space; each piece keeps its own weight."""
    tokens = evidence.tokens
    weights = masked_weights(evidence.weights, evidence.valid)
    finite = [w for w in weights if not math.isnan(w)]
    peak = max(finite) if finite and max(finite) > 0 else 1.0
    hot = {position for span in evidence.hotspots
           for position in range(int(span.first), int(span.last) + 1)}
    words: list[list[str]] = []
    for position, (token, weight) in enumerate(zip(tokens, weights, strict=True)):
        continuation = token.startswith("##") and len(token) > 2
        shown = token[2:] if continuation else token
        attached = words and (continuation or token in _GLUE_LEFT
                              or tokens[position - 1] in _GLUE_RIGHT)
        classes = "tok" + (" hot" if position in hot else "") + \
            (" masked" if math.isnan(weight) else "")
        alpha = 0.0 if math.isnan(weight) else max(weight, 0.0) / peak
        title = "masked" if math.isnan(weight) else f"weight {weight:.4f}"
        piece = (f'<span class="{classes}" style="background:rgba({TOKEN_RGB},{alpha:.2f})" '
                 f'title="{title}">{_e(shown)}</span>')
        if attached:
            words[-1].append(piece)
        else:
            words.append([piece])
    return " ".join("".join(word) for word in words)


def _gate(evidence: ModalityEvidence) -> str:
    gate = evidence.gate_mean
    shown = "n/a" if gate is None else f"{gate:.2f}"
    return (f'<span class="gate" title="mean hotspot gate over valid positions">'
            f"gate {shown}</span>")


def _missing(utterance: UtterancePrediction, modality: str) -> str:
    read = modality in utterance.modalities
    why = "missing for this utterance (masked)" if read else "not read by the model"
    return (f'<div class="modality {modality}"><h3>{modality}</h3>'
            f'<p class="missing">no {modality}: {why}</p></div>')


def _text_block(utterance: UtterancePrediction) -> str:
    evidence = modality_evidence(utterance, "text")
    if evidence is None:
        return _missing(utterance, "text")
    spans = ", ".join(f"\u201c{_e(span.tokens)}\u201d ({span.weight:.3f})"
                      for span in evidence.hotspots) or "none"
    return (f'<div class="modality text"><h3>text {_gate(evidence)}</h3>'
            f'<p class="tokens">{_word_pieces_html(evidence)}</p>'
            f"<p>top spans: {spans}</p></div>")


def _signal_block(utterance: UtterancePrediction, modality: str, figure: bytes | None) -> str:
    evidence = modality_evidence(utterance, modality)
    if evidence is None:
        return _missing(utterance, modality)
    unit = "s" if utterance.start is not None else "s from utterance start"
    spans = ", ".join(f"{_seconds(span.start)}\u2013{_seconds(span.end)} {unit} "
                      f"({span.weight:.3f})" for span in evidence.hotspots)
    parts = [f'<div class="modality {modality}"><h3>{modality} {_gate(evidence)}</h3>']
    if figure is not None:
        parts.append(f'<img alt="{modality} hotspot weight and prior over time" '
                     f'src="{_data_uri(figure)}">')
    parts.append(f"<p>top spans: {spans or 'none'}</p></div>")
    return "".join(parts)


def _routing(utterance: UtterancePrediction) -> str:
    if not utterance.routing:
        return '<p class="missing">no aligner routing for this utterance</p>'
    rows = []
    for pair, choice in utterance.routing.items():
        ranked = sorted(zip(choice.experts, choice.weights, strict=True),
                        key=lambda item: -item[1])
        experts = " \u00b7 ".join(f"{_e(expert)} {weight:.2f}" for expert, weight in ranked)
        shown_pair = pair.replace("->", " \u2192 ")
        rows.append(f"<tr><th>{_e(shown_pair)}</th><td>{experts}</td></tr>")
    return (f'<table class="routing"><caption>aligner experts per modality pair</caption>'
            f'{"".join(rows)}</table>')


def _card(index: int, utterance: UtterancePrediction, label_names: list[str],
          colours: dict[str, str], curves: dict[str, bytes]) -> str:
    colour = colours[utterance.label]
    probability = utterance.probabilities.get(utterance.label)
    shown = "" if probability is None else f" {probability:.2f}"
    heading = (f'<h2><span>#{index + 1}</span> <span class="speaker">{_e(utterance.speaker)}'
               f'</span> <span class="times">{_utterance_times(utterance)} \u00b7 id '
               f'{_e(utterance.id)}</span> <span class="chip" style="background:{colour};'
               f'color:{ink_on(colour)}">{_e(utterance.label)}{shown}</span></h2>')
    blocks = [_text_block(utterance)] + [_signal_block(utterance, modality, curves.get(modality))
                                         for modality in ("audio", "video")]
    return (f'<section class="card" id="utt-{index}" data-id="{_e(utterance.id)}">'
            f"{heading}{_probabilities(utterance, label_names, colours)}"
            f'<p class="transcript">{_e(utterance.text)}</p>'
            f'<div class="modalities">{"".join(blocks)}</div>{_routing(utterance)}</section>')


# -- page ---------------------------------------------------------------------------------------

def _build(conversation: ConversationPrediction, figures: bool) -> tuple[str, dict[str, bytes]]:
    """The page and the PNGs it embeds, by file name."""
    check_conversation(conversation)
    colours = label_colours(conversation.label_names)
    pngs: dict[str, bytes] = {}
    own_notices = []
    if figures:
        # Imported here: a page without figures needs no matplotlib, and an installation
        # without it (no "media" extra) still gets its report, minus the figures.
        try:
            from hotspot_erc.report.figures import hotspot_curves_png, timeline_png
        except ImportError as error:
            figures = False
            own_notices.append(f"figures left out: {error} (pip install matplotlib)")
    if figures:
        pngs["timeline.png"] = timeline_png(conversation)
    cards = []
    for index, utterance in enumerate(conversation.utterances):
        curves = {}
        for modality in ("audio", "video"):
            if figures and modality_evidence(utterance, modality) is not None:
                curves[modality] = pngs[f"u{index:03d}-{modality}.png"] = \
                    hotspot_curves_png(utterance, modality)
        cards.append(_card(index, utterance, conversation.label_names, colours, curves))
    page = "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Emotions in {_e(conversation.name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        _header(conversation, colours, own_notices),
        _timeline(conversation, colours, pngs.get("timeline.png")),
        "<main>", *cards, "</main>",
        f"<footer>hotspot-erc {_e(__version__)}: hotspot weights, gates and routing are the "
        "model's own explanations, not ground truth.</footer>",
        "</body></html>", ""])
    return page, pngs


def render_report(conversation: ConversationPrediction, figures: bool = True) -> str:
    """The report page as a string; ``figures=False`` leaves out the PNGs (faster, smaller)."""
    return _build(conversation, figures)[0]


def write_report(conversation: ConversationPrediction, folder: str | os.PathLike,
                 figures: bool = True) -> Path:
    """Write ``folder/report.html`` and, beside it, ``folder/figures/*.png`` (the same PNGs
    the page embeds); every file atomically, the page last. Returns the page's path.

    Figures this function wrote for an earlier, longer conversation are removed, so the folder
    never shows a figure that is not in the page.
    """
    page, pngs = _build(conversation, figures)
    folder = Path(folder)
    figure_folder = folder / FIGURE_FOLDER
    for name, png in pngs.items():
        with atomic_open(figure_folder / name, "wb") as stream:
            stream.write(png)
    if figure_folder.is_dir():
        for old in figure_folder.iterdir():
            if _OWN_FIGURE.match(old.name) and old.name not in pngs:
                old.unlink()
    path = folder / REPORT_NAME
    write_text(path, page)
    return path
