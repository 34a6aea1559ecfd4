"""One self-contained HTML page explaining a conversation's predictions.

The page (the Jinja2 template ``templates/report.html``, its style sheet ``templates/report.css``)
reads top to bottom:

1. a header: the conversation, checkpoint and media; the **model card** panel
   (:mod:`.provenance`: training corpus and domain beside "your input", scores, intended use,
   and a warning box for a demonstration model, an unknown model or domain, or a modality the
   model reads that the input lacks); the notices; the label colours;
2. a **summary** (:mod:`.summary`): labels per speaker, the dominant emotion, and the most
   confident, most intense and least certain moments, linked to their cards;
3. the **timeline**: one element per utterance (``<a class="utt">`` inside ``<div
   id="timeline">``), one row per speaker, widths proportional to duration with ticks in seconds
   (:func:`~.conversation.time_ticks`), or equal widths when times are unknown;
4. **How to read this report** (:mod:`.glossary`), whose texts are also the tooltips (``title``
   attributes) on the terms wherever the cards use them;
5. a card per utterance: speaker, times, the predicted label with a bar per class probability,
   the transcript, and a panel per modality the model reads and the utterance has: the word
   pieces with a background whose opacity is the piece's hotspot weight on the fixed ``[0, 1]``
   scale (``alpha_p = min(max(a_p, 0), 1)``, the same on every card; hotspots underlined), the
   audio and video hotspot curves (:mod:`.figures`, one fixed weight axis), the hotspots whose
   peak weight reaches ``HOTSPOT_MIN_WEIGHT`` (0.2), the mean gate; one line naming the
   modalities the model reads that this utterance lacks (those no utterance has are said once,
   in the model card panel); and the aligner experts chosen per modality pair (left out when
   the input brought fewer than two modalities: there is nothing to align); when the report is
   written beside a conversation whose recording is at hand, a player for the utterance's
   span (``<video>``, or ``<audio>`` for a sound file, with a media fragment ``#t=start,end``
   on the recording's path relative to the page).

Self-contained and inert: figures are ``data:`` URIs, the style sheet is inline, there is no
script and no remote resource, and a Content-Security-Policy (``default-src 'none'``) forbids
scripts even if markup ever slipped through; with players it allows media from local files and
the page's own origin only (``media-src 'self' file:``), never from elsewhere. The template is
rendered with autoescaping, so every string taken from the input (transcript, tokens, speakers,
ids, labels, notices, paths, card fields, expert names) is HTML-escaped; only numbers (checked
as numbers by :func:`~.conversation.check_conversation`, formatted here) and the fixed palette
reach CSS.
"""

from __future__ import annotations

import base64
import math
import os
import re
import urllib.parse
from pathlib import Path

import jinja2

from hotspot_erc import __version__
from hotspot_erc.atomic import atomic_open, write_text
from hotspot_erc.engine.prediction import (
    ConversationPrediction,
    ModalityEvidence,
    UtterancePrediction,
)
from hotspot_erc.report.conversation import (
    HOTSPOT_MIN_WEIGHT,
    check_conversation,
    highlight_opacity,
    ink_on,
    label_colours,
    masked_weights,
    modality_evidence,
    shown_hotspots,
    time_ticks,
    timeline,
)
from hotspot_erc.report.glossary import EXPERTS, TERMS, expert_tip
from hotspot_erc.report.provenance import provenance
from hotspot_erc.report.summary import summarise

REPORT_NAME = "report.html"
FIGURE_FOLDER = "figures"
TEMPLATE = "report.html"
TOKEN_RGB = "230, 159, 0"  # Okabe-Ito orange: highlight of text hotspots
# Pieces written against their left or right neighbour ("can ' t" -> "can't", "end ." -> "end.").
_GLUE_LEFT = set(",.!?;:)]}%'\u2019-\u2026")
_GLUE_RIGHT = set("([{'\u2019-$#")
# Figures this module writes; timeline.png is an older report's, removed on the next write.
_OWN_FIGURE = re.compile(r"^(timeline|u\d{3,}-(audio|video))\.png$")

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSP_WITH_PLAYERS = f"{CSP}; media-src 'self' file:"

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("hotspot_erc.report", "templates"), autoescape=True,
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    keep_trailing_newline=True)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _seconds(value: float) -> str:
    return f"{value:.2f}"


def _utterance_times(utterance: UtterancePrediction) -> str:
    start, end = utterance.start, utterance.end
    if start is None or end is None:
        return "time unknown"
    return f"{_seconds(start)}\u2013{_seconds(end)} s"


# -- the conversation ---------------------------------------------------------------------------

def _timeline(conversation: ConversationPrediction, colours: dict[str, str]) -> dict:
    """Rows of bars (positions and widths in % of the track) and the ticks under them."""
    layout = timeline(conversation)
    low, high = layout.extent
    rows = {speaker: [] for speaker in layout.speakers}
    for index, (utterance, (start, end)) in enumerate(
            zip(conversation.utterances, layout.spans, strict=True)):
        colour = colours[utterance.label]
        rows[str(utterance.speaker)].append({
            "index": index, "id": utterance.id, "colour": colour, "ink": ink_on(colour),
            "left": 100 * (start - low) / (high - low),
            "width": 100 * (end - start) / (high - low),
            "hint": f"{utterance.speaker} \u00b7 {utterance.label} \u00b7 "
                    f"{_utterance_times(utterance)}"})
    ticks = [{"left": 100 * (tick - low) / (high - low), "label": f"{tick:g} s"}
             for tick in time_ticks(low, high)] if layout.in_seconds else []
    return {"rows": rows, "ticks": ticks,
            "axis": "seconds" if layout.in_seconds else "utterance order (no times given)"}


# -- one utterance ------------------------------------------------------------------------------

def _word_pieces(evidence: ModalityEvidence) -> list[list[dict]]:
    """Word pieces grouped into words: ``##`` pieces and punctuation attach to their neighbour
    without a space; each piece keeps its own weight."""
    tokens = evidence.tokens
    weights = masked_weights(evidence.weights, evidence.valid)
    hot = {position for span in shown_hotspots(evidence)
           for position in range(int(span.first), int(span.last) + 1)}
    words: list[list[dict]] = []
    for position, (token, weight) in enumerate(zip(tokens, weights, strict=True)):
        continuation = token.startswith("##") and len(token) > 2
        attached = words and (continuation or token in _GLUE_LEFT
                              or tokens[position - 1] in _GLUE_RIGHT)
        masked = math.isnan(weight)
        piece = {"text": token[2:] if continuation else token,
                 "classes": "tok" + (" hot" if position in hot else "")
                 + (" masked" if masked else ""),
                 "alpha": highlight_opacity(weight),
                 "title": "masked" if masked else f"hotspot weight {weight:.4f}"}
        if attached:
            words[-1].append(piece)
        else:
            words.append([piece])
    return words


def _panel(utterance: UtterancePrediction, modality: str, figure: bytes | None) -> dict | None:
    """What the card shows of ``modality``; ``None`` when the utterance lacks it."""
    evidence = modality_evidence(utterance, modality)
    if evidence is None:
        return None
    panel = {"modality": modality, "gate": evidence.gate_mean}
    if modality == "text":
        panel["words"] = _word_pieces(evidence)
        panel["spans"] = [{"label": f"\u201c{span.tokens}\u201d", "weight": span.weight}
                          for span in shown_hotspots(evidence)]
    else:
        unit = "s" if utterance.start is not None else "s from utterance start"
        panel["figure"] = None if figure is None else _data_uri(figure)
        panel["spans"] = [{"label": f"{_seconds(span.start)}\u2013{_seconds(span.end)} {unit}",
                           "weight": span.weight} for span in shown_hotspots(evidence)]
    return panel


def _routing(utterance: UtterancePrediction) -> list[dict]:
    rows = []
    for pair, choice in utterance.routing.items():
        ranked = sorted(zip(choice.experts, choice.weights, strict=True),
                        key=lambda item: -item[1])
        source, _, target = pair.partition("->")
        rows.append({"pair": pair.replace("->", " \u2192 "),
                     "hint": f"how the {source} is lined up with the {target}",
                     "experts": [{"name": name, "weight": weight, "tip": expert_tip(name)}
                                 for name, weight in ranked]})
    return rows


def _players(conversation: ConversationPrediction, folder: Path | None) -> dict | None:
    """The recording a page written in ``folder`` can play (``{"element": "video"|"audio",
    "path": relative URL}``): the conversation's video, else its audio, when that file exists;
    None without a folder or a file."""
    if folder is None:
        return None
    for modality in ("video", "audio"):
        path = conversation.media.get(modality)
        if path and Path(path).is_file():
            element = modality  # <audio> plays the sound of a video file too
            relative = os.path.relpath(Path(path).resolve(), Path(folder).resolve())
            return {"element": element, "path": urllib.parse.quote(Path(relative).as_posix())}
    return None


def _playback(player: dict | None, utterance: UtterancePrediction) -> dict | None:
    """The player of one utterance's span (``#t=start,end``), or None without times."""
    if player is None or utterance.start is None or utterance.end is None:
        return None
    return {"element": player["element"],
            "src": f"{player['path']}#t={utterance.start:.2f},{utterance.end:.2f}"}


def _card(index: int, utterance: UtterancePrediction, label_names: list[str],
          colours: dict[str, str], shown: list[str], missing: list[str],
          curves: dict[str, bytes], player: dict | None = None) -> dict:
    """The view of one utterance's card; ``shown`` are the modalities that get a panel when
    present, ``missing`` those this utterance lacks that get the one-line notice."""
    colour = colours[utterance.label]
    panels = [_panel(utterance, modality, curves.get(modality)) for modality in shown]
    return {
        "index": index, "id": utterance.id, "speaker": utterance.speaker,
        "times": _utterance_times(utterance), "label": utterance.label, "colour": colour,
        "ink": ink_on(colour), "probability": utterance.probabilities.get(utterance.label),
        "probabilities": [{"name": name, "colour": colours[name],
                           "value": float(utterance.probabilities.get(name, 0.0)),
                           "predicted": name == utterance.label} for name in label_names],
        "text": utterance.text, "panels": [panel for panel in panels if panel is not None],
        "missing": missing, "routing": _routing(utterance),
        "playback": _playback(player, utterance)}


# -- page ---------------------------------------------------------------------------------------

def _build(conversation: ConversationPrediction, figures: bool, folder: Path | None = None
           ) -> tuple[str, dict[str, bytes]]:
    """The page and the PNGs it embeds, by file name; ``folder``, where the page will be
    written, gets players for the recording (:func:`_players`)."""
    check_conversation(conversation)
    colours = label_colours(conversation.label_names)
    pngs: dict[str, bytes] = {}
    own_notices = []
    if figures:
        # Imported here: a page without figures needs no matplotlib, and an installation
        # without it (no "media" extra) still gets its report, minus the figures.
        try:
            from hotspot_erc.report.figures import hotspot_curves_png
        except ImportError as error:
            figures = False
            own_notices.append(f"figures left out: {error} (pip install matplotlib)")
    origin = provenance(conversation)
    player = _players(conversation, folder)
    cards = []
    for index, utterance in enumerate(conversation.utterances):
        curves = {}
        for modality in ("audio", "video"):
            if figures and modality_evidence(utterance, modality) is not None:
                curves[modality] = pngs[f"u{index:03d}-{modality}.png"] = \
                    hotspot_curves_png(utterance, modality)
        # A modality no utterance has is said once, in the model card panel.
        missing = [m for m in origin.received if modality_evidence(utterance, m) is None]
        cards.append(_card(index, utterance, conversation.label_names, colours,
                           origin.received, missing, curves, player))
    page = _ENVIRONMENT.get_template(TEMPLATE).render(
        csp=CSP if player is None else CSP_WITH_PLAYERS, conversation=conversation,
        provenance=origin,
        notices=[*conversation.notices, *own_notices],
        legend=[{"name": name, "colour": colour, "ink": ink_on(colour)}
                for name, colour in colours.items()],
        colours=colours, summary=summarise(conversation),
        timeline=_timeline(conversation, colours), cards=cards, terms=TERMS, experts=EXPERTS,
        routed=len(origin.received) > 1, threshold=HOTSPOT_MIN_WEIGHT, token_rgb=TOKEN_RGB,
        version=__version__)
    return page, pngs


def render_report(conversation: ConversationPrediction, figures: bool = True) -> str:
    """The report page as a string; ``figures=False`` leaves out the PNGs (faster, smaller).
    It has no players: a page that is not a file has no recording beside it."""
    return _build(conversation, figures)[0]


def write_report(conversation: ConversationPrediction, folder: str | os.PathLike,
                 figures: bool = True) -> Path:
    """Write ``folder/report.html`` and, beside it, ``folder/figures/*.png`` (the same PNGs
    the page embeds); every file atomically, the page last. Returns the page's path. The page
    plays each utterance's span of the conversation's recording when that file exists.

    Figures this function wrote for an earlier, longer conversation (or an older report's
    timeline figure) are removed, so the folder never shows a figure that is not in the page.
    """
    folder = Path(folder)
    page, pngs = _build(conversation, figures, folder)
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
