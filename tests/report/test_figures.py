import copy
import io

import numpy as np
import pytest
from PIL import Image

from hotspot_erc.engine.prediction import TimeSpan
from hotspot_erc.report.conversation import ReportInputError, label_colours
from hotspot_erc.report.figures import (
    DPI,
    PRIOR_COLOUR,
    SPAN_COLOUR,
    WEIGHT_COLOUR,
    hotspot_curves_png,
    timeline_png,
)

CURVE_AXES_X = (0.11, 0.89)  # left and right of the curve axes, as fractions of the width


def rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])


def pixels(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def longest_run(image: np.ndarray, colour: str) -> tuple[int, int]:
    """(length, row) of the longest horizontal run of exactly ``colour``: a bar's interior."""
    best = (0, -1)
    for row, line in enumerate((image == rgb(colour)).all(-1)):
        padded = np.concatenate([[0], line.astype(int), [0]])
        edges = np.flatnonzero(np.diff(padded))
        if len(edges):
            best = max(best, (int((edges[1::2] - edges[::2]).max()), row))
    return best


def near(image: np.ndarray, colour: str, tolerance: int = 40) -> np.ndarray:
    return np.abs(image - rgb(colour)).sum(-1) < tolerance


@pytest.fixture(scope="module")
def conversation(example_conversation):
    return example_conversation()


def test_timeline_bars_are_as_long_as_utterances_in_speaker_rows(conversation):
    image = pixels(timeline_png(conversation))
    colours = label_colours(conversation.label_names)
    assert image.shape == (int(DPI * (0.85 + 0.42 * 2)), 9 * DPI, 3)
    runs = {u.id: longest_run(image, colours[u.label]) for u in conversation.utterances}
    seconds_per_pixel = [(u.end - u.start) / runs[u.id][0] for u in conversation.utterances]
    # Every label colours one bar here, and bar length is duration at one scale (edges: +-2 px).
    assert max(seconds_per_pixel) / min(seconds_per_pixel) < 1.1
    rows = {}
    for utterance in conversation.utterances:
        rows.setdefault(utterance.speaker, set()).add(runs[utterance.id][1])
    ana, ben = rows["Ana"], rows["Ben"]
    assert max(ana) - min(ana) <= 1 and max(ben) - min(ben) <= 1 and max(ana) < min(ben)


def test_timeline_without_times_draws_equal_bars(conversation):
    untimed = copy.deepcopy(conversation)
    for utterance in untimed.utterances:
        utterance.start = utterance.end = None
    image = pixels(timeline_png(untimed))
    colours = label_colours(untimed.label_names)
    lengths = [longest_run(image, colours[u.label])[0] for u in untimed.utterances]
    assert max(lengths) - min(lengths) <= 2 and min(lengths) > 50


def test_figures_are_deterministic_and_small(conversation):
    first = timeline_png(conversation)
    assert first == timeline_png(conversation)
    assert len(first) < 30_000
    curve = hotspot_curves_png(conversation.utterances[0], "audio")
    assert curve == hotspot_curves_png(conversation.utterances[0], "audio")
    assert len(curve) < 40_000
    assert b"matplotlib" not in first and b"Software" not in curve


def _columns(utterance, modality: str, image_width: int, first: int, last: int):
    """Pixel columns strictly between positions ``first`` and ``last`` of the curve."""
    times = np.asarray(utterance.modalities[modality].times) + utterance.start
    step = (times[-1] - times[0]) / (len(times) - 1)
    low, high = times[0] - step / 2, times[-1] + step / 2
    left, right = CURVE_AXES_X

    def column(t):
        return image_width * (left + (right - left) * (t - low) / (high - low))

    return slice(int(np.ceil(column(times[first]))) + 2, int(np.floor(column(times[last]))) - 1)


def test_masked_frames_are_gaps_not_zeros(conversation):
    utterance = conversation.utterances[1]  # the face is lost for frames 8..13
    valid = utterance.modalities["video"].valid
    assert not any(valid[8:14]) and valid[7] and valid[14]
    gap = pixels(hotspot_curves_png(utterance, "video"))
    between = _columns(utterance, "video", gap.shape[1], 7, 14)
    assert not near(gap, WEIGHT_COLOUR)[:, between].any()
    assert near(gap, WEIGHT_COLOUR)[:, :between.start].any()
    filled = copy.deepcopy(utterance)
    filled.modalities["video"].valid = [True] * len(valid)
    assert near(pixels(hotspot_curves_png(filled, "video")), WEIGHT_COLOUR)[:, between].any()


def test_hotspot_spans_are_shaded(conversation):
    utterance = copy.deepcopy(conversation.utterances[3])
    evidence = utterance.modalities["audio"]
    times = np.asarray(evidence.times) + utterance.start
    evidence.hotspots = [TimeSpan(start=float(times[10]), end=float(times[20]), weight=0.1)]
    image = pixels(hotspot_curves_png(utterance, "audio"))
    # The span colour at alpha 0.25 over white.
    shade = "#" + "".join(f"{round(0.25 * c + 0.75 * 255):02X}" for c in rgb(SPAN_COLOUR))
    shaded = near(image, shade, tolerance=12).any(0)
    inside = _columns(utterance, "audio", image.shape[1], 10, 20)
    outside = _columns(utterance, "audio", image.shape[1], 25, 40)
    assert shaded[inside].all() and not shaded[outside].any()


def test_prior_is_drawn_only_when_given(conversation):
    utterance = copy.deepcopy(conversation.utterances[0])
    assert near(pixels(hotspot_curves_png(utterance, "audio")), PRIOR_COLOUR).sum() > 30
    utterance.modalities["audio"].prior = None
    utterance.start = None  # and a time axis relative to the utterance
    image = pixels(hotspot_curves_png(utterance, "audio"))
    assert near(image, PRIOR_COLOUR).sum() == 0 and near(image, WEIGHT_COLOUR).sum() > 100


def test_curves_refuse_missing_and_text_modalities(conversation):
    with pytest.raises(ReportInputError, match="modalities.video is missing"):
        hotspot_curves_png(conversation.utterances[2], "video")
    with pytest.raises(ReportInputError, match="'audio' or 'video'"):
        hotspot_curves_png(conversation.utterances[0], "text")
    unread = copy.deepcopy(conversation.utterances[0])
    del unread.modalities["audio"]
    with pytest.raises(ReportInputError, match="modalities.audio is missing"):
        hotspot_curves_png(unread, "audio")


@pytest.mark.parametrize("speaker", ["$5 bet", "a$b$c", "x" * 80, "\u00e9l\u00e8ve \u2603"])
def test_odd_speaker_names_are_drawn_as_text(conversation, speaker):
    changed = copy.deepcopy(conversation)
    changed.utterances[0].speaker = speaker
    assert pixels(timeline_png(changed)).shape[0] == int(DPI * (0.85 + 0.42 * 3))
