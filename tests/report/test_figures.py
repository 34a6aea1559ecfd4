import copy
import io

import numpy as np
import pytest
from PIL import Image

from hotspot_erc.engine.prediction import TimeSpan
from hotspot_erc.report.conversation import ReportInputError
from hotspot_erc.report.figures import (
    PRIOR_COLOUR,
    SPAN_COLOUR,
    WEIGHT_AXIS_TOP,
    WEIGHT_COLOUR,
    hotspot_curves_figure,
    hotspot_curves_png,
)

CURVE_AXES_X = (0.11, 0.89)  # left and right of the curve axes, as fractions of the width
CURVE_AXES_Y = (0.27, 0.95)  # bottom and top of the curve axes, as fractions of the height


def rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])


def pixels(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def near(image: np.ndarray, colour: str, tolerance: int = 40) -> np.ndarray:
    return np.abs(image - rgb(colour)).sum(-1) < tolerance


@pytest.fixture(scope="module")
def conversation(example_conversation):
    return example_conversation()


def test_figures_are_deterministic_and_small(conversation):
    curve = hotspot_curves_png(conversation.utterances[0], "audio")
    assert curve == hotspot_curves_png(conversation.utterances[0], "audio")
    assert len(curve) < 40_000
    assert b"matplotlib" not in curve and b"Software" not in curve


def test_every_curve_has_the_same_weight_axis(conversation):
    """Issue 15: the y-axis followed each plot's own maximum, so a flat line of weights near
    0.02 filled the plot like a real peak."""
    limits = {hotspot_curves_figure(u, m).axes[0].get_ylim()
              for u in conversation.utterances for m in ("audio", "video")
              if u.modalities[m].present}
    assert limits == {(0.0, WEIGHT_AXIS_TOP)}
    flat = copy.deepcopy(conversation.utterances[0])
    flat.modalities["audio"].weights = [0.02] * len(flat.modalities["audio"].weights)
    flat.modalities["audio"].prior = None
    assert hotspot_curves_figure(flat, "audio").axes[0].get_ylim() == (0.0, WEIGHT_AXIS_TOP)


def _curve_rows(image: np.ndarray) -> np.ndarray:
    """Pixel rows where the weight curve is drawn."""
    return np.flatnonzero(near(image, WEIGHT_COLOUR).any(1))


def _row_of(weight: float, image_height: int) -> float:
    bottom, top = CURVE_AXES_Y
    return image_height * (1 - (bottom + (top - bottom) * weight / WEIGHT_AXIS_TOP))


@pytest.mark.parametrize("weight", [0.02, 0.5, 0.9])
def test_a_flat_curve_is_drawn_at_its_weight_not_stretched(conversation, weight):
    utterance = copy.deepcopy(conversation.utterances[0])
    evidence = utterance.modalities["audio"]
    evidence.weights = [weight] * len(evidence.weights)
    evidence.prior, evidence.hotspots = None, []
    image = pixels(hotspot_curves_png(utterance, "audio"))
    rows = _curve_rows(image)
    assert abs(np.median(rows) - _row_of(weight, image.shape[0])) <= 3


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


def _shaded_columns(utterance) -> tuple[np.ndarray, slice, slice]:
    image = pixels(hotspot_curves_png(utterance, "audio"))
    # The span colour at alpha 0.25 over white.
    shade = "#" + "".join(f"{round(0.25 * c + 0.75 * 255):02X}" for c in rgb(SPAN_COLOUR))
    return (near(image, shade, tolerance=12).any(0),
            _columns(utterance, "audio", image.shape[1], 10, 20),
            _columns(utterance, "audio", image.shape[1], 25, 40))


def test_hotspot_spans_are_shaded(conversation):
    utterance = copy.deepcopy(conversation.utterances[3])
    evidence = utterance.modalities["audio"]
    times = np.asarray(evidence.times) + utterance.start
    evidence.hotspots = [TimeSpan(start=float(times[10]), end=float(times[20]), weight=0.6)]
    shaded, inside, outside = _shaded_columns(utterance)
    assert shaded[inside].all() and not shaded[outside].any()


@pytest.mark.parametrize("weight", [0.0, 0.19])
def test_spans_below_the_threshold_are_not_shaded(conversation, weight):
    """Issue 15: a span of weight 0.000 was shaded as a hotspot."""
    utterance = copy.deepcopy(conversation.utterances[3])
    evidence = utterance.modalities["audio"]
    times = np.asarray(evidence.times) + utterance.start
    evidence.hotspots = [TimeSpan(start=float(times[10]), end=float(times[20]),
                                  weight=weight)]
    shaded, inside, _ = _shaded_columns(utterance)
    assert not shaded[inside].any()


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
