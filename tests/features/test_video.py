from __future__ import annotations

import dataclasses
import os
import pickle

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("mediapipe")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("fer")
skimage_data = pytest.importorskip("skimage.data")

from hotspot_erc.features.decode import VideoFrames, read_frames  # noqa: E402
from hotspot_erc.features.video import (  # noqa: E402
    GLOBAL_COLUMNS,
    ISOLATED_FACES,
    LOCAL_COLUMNS,
    NO_FACE,
    VideoExtractor,
    VideoSegment,
    face_geometry,
    head_pose,
)

FPS = 15.0
WIDTH, HEIGHT = 480, 360
BURST = 25  # the face jumps 40 px right and 25 px up in this frame only
EXPRESSION = [LOCAL_COLUMNS.index(f"p_{name}") for name in
              ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")]


def face_patch(angle: float = 0.0) -> np.ndarray:
    """The astronaut's head (public domain, in scikit-image), rotated ``angle`` degrees (CCW)."""
    patch = np.ascontiguousarray(skimage_data.astronaut()[0:220, 130:330])
    if angle:
        matrix = cv2.getRotationMatrix2D((100, 110), angle, 1.0)
        patch = cv2.warpAffine(patch, matrix, (200, 220), borderMode=cv2.BORDER_REPLICATE)
    return patch


def background() -> np.ndarray:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    gray = (90 + 60 * x / WIDTH + 20 * y / HEIGHT).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def face_video(count: int = 45, burst: int | None = BURST, blank=(), angle: float = 0.0,
               first_time: float = 0.0) -> VideoFrames:
    """A 480x360 clip: the face drifts right 1 px per frame; ``blank`` frames are flat gray."""
    patch = face_patch(angle)
    frames = []
    for index in range(count):
        image = background()
        left, top = 120 + index, 70
        if index == burst:
            left, top = left + 40, top - 25
        if index in blank:
            image[:] = 128
        else:
            image[top:top + 220, left:left + 200] = patch
        frames.append(image)
    return VideoFrames(frames=np.stack(frames), times=first_time + np.arange(count) / FPS,
                       fps=FPS)


@pytest.fixture(scope="module")
def extractor() -> VideoExtractor:
    return VideoExtractor()


@pytest.fixture(scope="module")
def burst_record(extractor):
    return extractor.extract_one(face_video(first_time=3.0), start=2.5)


def test_spec_dimensions_and_version(extractor):
    spec = extractor.spec
    assert spec.extractor == "video-face" == VideoExtractor.name
    assert (spec.global_dim, spec.local_dim) == (3 * 22 + 1, 22) == (len(GLOBAL_COLUMNS),
                                                                    len(LOCAL_COLUMNS))
    assert spec.rate_hz == 15.0 and spec.version == extractor.version
    assert spec.recipe == extractor.recipe()
    assert len(set(LOCAL_COLUMNS)) == len(LOCAL_COLUMNS)
    # A recipe change must change the recipe, so stored features are never reused wrongly.
    for changed in (VideoExtractor(fps=10), VideoExtractor(flow_size=128),
                    VideoExtractor(refine_landmarks=True), VideoExtractor(prior_threshold=3)):
        assert changed.spec.recipe != spec.recipe


@pytest.mark.parametrize("options", [{"fps": 0}, {"flow_size": 8}, {"threads": 0},
                                     {"min_detection_confidence": 1.5}])
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        VideoExtractor(**options)


def test_face_found_in_every_frame_with_right_shapes_and_times(burst_record):
    record = burst_record
    assert record.present
    assert record.local.shape == (45, 22) and record.global_vector.shape == (67,)
    assert record.local_mask.shape == record.prior.shape == record.position_times.shape == (45,)
    assert record.local_mask.mean() >= 43 / 45
    np.testing.assert_allclose(record.position_times, 0.5 + np.arange(45) / FPS, atol=1e-6)
    assert np.all(np.isfinite(record.local)) and np.all(np.isfinite(record.global_vector))
    assert np.all((record.prior >= 0) & (record.prior <= 1))


def test_expression_probabilities_sum_to_one(burst_record):
    probabilities = burst_record.local[burst_record.local_mask][:, EXPRESSION]
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_global_vector_is_mean_std_max_and_face_fraction(burst_record):
    valid = burst_record.local[burst_record.local_mask].astype(np.float64)
    np.testing.assert_allclose(burst_record.global_vector[:22], valid.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(burst_record.global_vector[22:44], valid.std(axis=0), atol=1e-5)
    np.testing.assert_allclose(burst_record.global_vector[44:66], valid.max(axis=0), atol=1e-5)
    assert burst_record.global_vector[66] == pytest.approx(burst_record.local_mask.mean())


def test_motion_burst_gets_the_highest_prior(burst_record):
    prior = burst_record.prior
    assert abs(int(np.argmax(prior)) - BURST) <= 2
    # Away from the burst the slow drift is no hotspot.
    quiet = np.r_[0:BURST - 4, BURST + 6:45]
    assert prior[quiet].max() < 0.3 < 0.9 < prior[BURST]
    motion = burst_record.local[:, LOCAL_COLUMNS.index("motion_upper")]
    assert motion[BURST] > 3 * np.median(motion)


def test_blank_frames_are_masked_and_all_blank_is_missing(extractor):
    blank = (10, 11, 12, 30)
    record = extractor.extract_one(face_video(blank=blank))
    assert record.present
    assert not record.local_mask[list(blank)].any()
    # The tracker loses the face at frame 10 and finds it again once it is back.
    assert record.local_mask[14:30].all() and record.local_mask[32:].all()
    # Masked frames hold no data that looks real, and no hotspot.
    assert np.all(record.local[list(blank)] == 0) and np.all(record.prior[list(blank)] == 0)
    assert not extractor.extract_one(face_video(count=12, blank=range(12))).present
    assert not extractor.extract_one(None).present


def test_a_face_in_one_isolated_frame_is_not_valid(extractor):
    # Frame 5 alone has a face: no partner frame, so no motion can be measured for it.
    record = extractor.extract_one(face_video(count=12, burst=None,
                                              blank=[i for i in range(12) if i not in (5, 9, 10)]))
    assert record.present
    assert list(np.flatnonzero(record.local_mask)) == [9, 10]


def test_a_missing_record_says_why(extractor):
    plain = VideoFrames(frames=np.full((12, HEIGHT, WIDTH, 3), (40, 90, 160), np.uint8),
                        times=np.arange(12) / FPS, fps=FPS)
    isolated = face_video(count=12, burst=None, blank=[i for i in range(12) if i != 5])
    segments = [VideoSegment(face_video(count=12, burst=None), "A"), VideoSegment(plain, "A"),
                VideoSegment(isolated, "B"), VideoSegment(None, "B")]
    records, reasons = extractor.extract_dialogue_with_reasons(segments)
    assert [record.present for record in records] == [True, False, False, False]
    # None for the segment without frames: its caller knows why it has none.
    assert reasons == [None, NO_FACE, ISOLATED_FACES, None]


def test_deterministic_and_independent_of_what_ran_before(extractor):
    video = face_video(count=20, burst=8)
    first = extractor.extract_one(video)
    extractor.extract_one(face_video(count=10, angle=20))
    second = extractor.extract_one(video)
    for name in ("global_vector", "local", "local_mask", "prior", "position_times"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


def test_dialogue_of_one_segment_equals_extract_one_and_missing_segments_stay_missing(extractor):
    video = face_video(count=20, burst=8, first_time=1.0)
    alone = extractor.extract_one(video, start=1.0)
    records = extractor.extract_dialogue([VideoSegment(None, "A", 0.0),
                                          VideoSegment(video, "A", start=1.0)])
    assert not records[0].present
    np.testing.assert_array_equal(records[1].local, alone.local)
    np.testing.assert_array_equal(records[1].prior, alone.prior)


def test_contiguous_segments_keep_tracking_the_face(extractor):
    video = face_video(count=20, burst=None)
    extractor.reset_tracking()
    whole = extractor.frame_features(video).local
    halves = [VideoSegment(dataclasses.replace(video, frames=video.frames[part],
                                               times=video.times[part]), "A", 0.0)
              for part in (slice(0, 10), slice(10, 20))]
    records = extractor.extract_dialogue(halves)
    # Geometry, pose and expression of the second half come from the continued track; only the
    # dynamics of its first frame differ (its partner is the next frame, not the previous one).
    static = slice(0, LOCAL_COLUMNS.index("motion_upper"))
    np.testing.assert_allclose(records[1].local[:, static], whole[10:, static], atol=1e-6)
    np.testing.assert_allclose(records[1].local[1:], whole[11:], atol=1e-6)
    # With a gap in time the tracker starts afresh: the face is detected anew.
    halves[1].frames.times = halves[1].frames.times + 1.0
    restarted = extractor.extract_dialogue(halves)[1]
    assert np.abs(restarted.local[0, static] - whole[10, static]).max() > 1e-4


def test_large_frames_are_downscaled_without_changing_the_ratios(extractor):
    video = face_video(count=6, burst=None)
    doubled = np.stack([cv2.resize(frame, (2 * WIDTH, 2 * HEIGHT)) for frame in video.frames])
    small = extractor.extract_one(video)
    large = extractor.extract_one(dataclasses.replace(video, frames=doubled))
    assert large.local_mask.all() and small.local_mask.all()
    geometry = slice(0, LOCAL_COLUMNS.index("yaw"))
    np.testing.assert_allclose(large.local[:, geometry], small.local[:, geometry], atol=0.03)


def test_speaker_baseline_tempers_a_lively_speakers_bursts(extractor):
    """Against a baseline full of bursts, one more burst stands out less than on its own."""
    lively = [VideoSegment(face_video(count=15, burst=burst), "A", start=0.0)
              for burst in (3, 6, 9)]
    test = face_video(count=15, burst=7)
    alone = extractor.extract_one(test)
    after_lively = extractor.extract_dialogue(lively + [VideoSegment(test, "A", 0.0)])[-1]
    after_other = extractor.extract_dialogue(lively + [VideoSegment(test, "B", 0.0)])[-1]
    np.testing.assert_allclose(after_other.prior, alone.prior, atol=1e-6)
    assert after_lively.prior[7] <= alone.prior[7]
    assert after_lively.prior.mean() <= alone.prior.mean()


def test_frames_at_another_rate_are_refused(extractor):
    video = face_video(count=4)
    with pytest.raises(ValueError, match="fps=25"):
        extractor.extract_one(dataclasses.replace(video, fps=25.0))


def test_frames_that_are_not_uint8_rgb_are_refused(extractor):
    video = face_video(count=2)
    with pytest.raises(ValueError, match="VideoFrames.frames"):
        extractor.extract_one(dataclasses.replace(video, frames=video.frames.astype(np.float32)))
    with pytest.raises(ValueError, match="VideoFrames.frames"):
        extractor.extract_one(dataclasses.replace(video, frames=video.frames[..., 0]))


def test_pickles_before_and_after_use():
    fresh = VideoExtractor(flow_size=64)
    copy = pickle.loads(pickle.dumps(fresh))
    video = face_video(count=8, burst=None)
    used = copy.extract_one(video)
    again = pickle.loads(pickle.dumps(copy))  # models and tracking state are dropped
    assert again.recipe() == fresh.recipe() and again._face_mesh is None
    np.testing.assert_array_equal(again.extract_one(video).local, used.local)


def test_roll_follows_an_in_plane_rotation(extractor):
    rolls = {}
    for angle in (-15.0, 15.0):
        record = extractor.extract_one(face_video(count=6, burst=None, angle=angle))
        rolls[angle] = np.degrees(record.local[record.local_mask,
                                               LOCAL_COLUMNS.index("roll")].mean())
    # cv2 turns the patch counter-clockwise for a positive angle; roll > 0 means clockwise.
    assert rolls[-15.0] - rolls[15.0] == pytest.approx(30.0, abs=6.0)


def test_yaw_sign_follows_which_side_of_the_face_recedes(extractor):
    video = face_video(count=5, burst=None)
    square = np.float32([[120, 70], [320, 70], [320, 290], [120, 290]])
    yaws = {}
    for side, corners in (("right", [[120, 70], [300, 95], [300, 265], [120, 290]]),
                          ("left", [[140, 95], [320, 70], [320, 290], [140, 265]])):
        warp = cv2.getPerspectiveTransform(square, np.float32(corners))
        frames = np.stack([cv2.warpPerspective(frame, warp, (WIDTH, HEIGHT),
                                               borderMode=cv2.BORDER_REPLICATE)
                           for frame in video.frames])
        record = extractor.extract_one(dataclasses.replace(video, frames=frames))
        yaws[side] = record.local[record.local_mask, LOCAL_COLUMNS.index("yaw")].mean()
    # The image's right side receding = the face turned toward the image's right: yaw > 0.
    assert yaws["right"] > yaws["left"] + np.radians(3)


def test_geometry_ignores_face_size_position_and_in_plane_tilt(extractor):
    extractor.reset_tracking()
    image = face_video(count=1, burst=None).frames[0]
    mesh = extractor.face_mesh.process(image).multi_face_landmarks[0].landmark
    points = np.array([(p.x * WIDTH, p.y * HEIGHT, p.z * WIDTH) for p in mesh])
    extractor.reset_tracking()
    angle = np.radians(25)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                         [0, 0, 1]])
    moved = 2.5 * points @ rotation.T + np.array([40.0, -30.0, 5.0])
    geometry, distance = face_geometry(points)
    moved_geometry, moved_distance = face_geometry(moved)
    np.testing.assert_allclose(moved_geometry, geometry, atol=1e-9)
    assert moved_distance == pytest.approx(2.5 * distance)
    # Rotating the image by +25 degrees (x toward y, clockwise on screen) adds 25 degrees of roll.
    assert head_pose(moved)[2] - head_pose(points)[2] == pytest.approx(angle, abs=1e-9)
    np.testing.assert_allclose(head_pose(moved)[:2], head_pose(points)[:2], atol=1e-9)


@pytest.mark.real_data
def test_crema_d_clips_have_a_face_in_nearly_every_frame(shared_data, extractor):
    clips = sorted((shared_data / "crema-d" / "VideoFlash").glob("*.flv"))
    assert clips, "no CREMA-D clips"
    for clip in clips:
        record = extractor.extract_one(read_frames(clip, fps=FPS))
        assert record.present, clip.name
        assert record.local_mask.mean() > 0.9, clip.name


def test_starting_and_restarting_the_face_tracker_prints_nothing(capfd):
    """MediaPipe's graph logs TFLite warnings from C++ each time it starts, which it does again
    at every utterance that does not continue the previous one: none may reach the terminal."""
    extractor = VideoExtractor()  # fresh: its models start here
    video = face_video(count=6, burst=None)
    capfd.readouterr()
    for gap in (0.0, 5.0, 10.0):  # a gap in time restarts the tracker
        extractor.extract_dialogue([VideoSegment(
            dataclasses.replace(video, times=video.times + gap), "A", start=gap)])
    extractor.extract_one(video)
    assert capfd.readouterr().err == ""
    os.write(2, b"the terminal is back\n")
    assert capfd.readouterr().err == "the terminal is back\n"


def test_an_error_while_the_tracker_starts_still_surfaces(capfd, monkeypatch):
    extractor = VideoExtractor()
    extractor.extract_one(face_video(count=6, burst=None))

    class Broken:
        def reset(self):
            raise RuntimeError("graph failed to restart")

    monkeypatch.setattr(extractor, "_face_mesh", Broken())
    with pytest.raises(RuntimeError, match="graph failed to restart"):
        extractor.extract_one(face_video(count=6, burst=None))
    os.write(2, b"after the error\n")
    assert capfd.readouterr().err.endswith("after the error\n")


@pytest.mark.parametrize("frames", [1, 2, 4, 5, 12])
def test_prior_smoothing_keeps_the_length_of_short_utterances(frames):
    """Fewer frames than the smoothing window (a 0.3 s turn at 15 fps) once raised ValueError."""
    from hotspot_erc.features.video import _triangular_smooth

    rng = np.random.default_rng(0)
    values, mask = rng.random(frames), rng.random(frames) < 0.8
    smoothed = _triangular_smooth(values, mask, 9)
    assert smoothed.shape == (frames,)
    assert np.all(smoothed[~mask] == 0)
    if mask.any():
        assert values[mask].min() - 1e-9 <= smoothed[mask].min()
        assert smoothed[mask].max() <= values[mask].max() + 1e-9
    # Where the window fits, it is numpy's centred ("same") convolution, as before.
    long_values, long_mask = rng.random(30), np.ones(30, dtype=bool)
    kernel = 1.0 - np.abs(np.arange(-4, 5)) / 5
    expected = (np.convolve(long_values, kernel, mode="same")
                / np.convolve(np.ones(30), kernel, mode="same"))
    np.testing.assert_allclose(_triangular_smooth(long_values, long_mask, 9), expected)
