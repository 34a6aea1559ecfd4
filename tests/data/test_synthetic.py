from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotspot_erc.data.dialogue import MODALITIES
from hotspot_erc.data.synthetic import (
    LABEL_NAMES,
    PRIOR_BACKGROUND,
    PRIOR_PEAK,
    SHARED_PAIRS,
    SyntheticConfig,
    class_signatures,
    describe,
    generate_dataset,
    timing_picks_truth,
)


def small(**overrides) -> SyntheticConfig:
    """About 600 utterances: enough for rate checks, fast to generate."""
    base = dict(num_train=20, num_valid=5, num_test=5)
    base.update(overrides)
    return SyntheticConfig(**base)


def records(dataset, modality):
    """(utterance, record) for every present record of ``modality``."""
    return [(u, u.features[modality]) for d in dataset for u in d.utterances if u.has(modality)]


def span_of(truth: np.ndarray) -> tuple[int, int]:
    where = np.flatnonzero(truth)
    return int(where[0]), int(where[-1]) + 1


@pytest.fixture(scope="module")
def default_dataset():
    return generate_dataset()


def test_default_dataset_shape(default_dataset):
    config = SyntheticConfig()
    assert default_dataset.name == "synthetic"
    assert default_dataset.label_names == list(LABEL_NAMES)
    assert {k: len(v) for k, v in default_dataset.splits.items()} == {
        "train": 120, "valid": 20, "test": 40}
    assert default_dataset.description == describe(config)
    for modality in MODALITIES:
        spec = default_dataset.feature_spec.modalities[modality]
        assert (spec.extractor, spec.version) == ("synthetic", "1")
        assert spec.global_dim == spec.local_dim == config.dim(modality)
        assert spec.rate_hz == config.rate_hz(modality)
    for dialogue in default_dataset:
        assert 2 <= len(dialogue.speakers) <= 3
        assert config.min_utterances <= len(dialogue) <= config.max_utterances
        starts = [u.start for u in dialogue.utterances]
        assert starts == sorted(starts)
    utt, record = records(default_dataset, "audio")[0]
    duration = utt.end - utt.start
    assert record.num_positions == round(duration * config.audio_rate_hz)
    assert np.all(np.diff(record.position_times) > 0)
    assert 0 < record.position_times[0] and record.position_times[-1] < duration


def test_same_seed_identical_other_seed_different():
    first, second = generate_dataset(small(seed=3)), generate_dataset(small(seed=3))
    for d1, d2 in zip(first, second, strict=True):
        for u1, u2 in zip(d1.utterances, d2.utterances, strict=True):
            assert (u1.uid, u1.speaker, u1.label, u1.start, u1.extra) == (
                u2.uid, u2.speaker, u2.label, u2.start, u2.extra)
            for modality in MODALITIES:
                assert u1.has(modality) == u2.has(modality)
                if u1.has(modality):
                    r1, r2 = u1.features[modality], u2.features[modality]
                    for name in ("global_vector", "local", "local_mask", "prior",
                                 "hotspot_truth", "position_times"):
                        np.testing.assert_array_equal(getattr(r1, name), getattr(r2, name))
    other = generate_dataset(small(seed=4))
    a = first.dialogues[0].utterances[0].features["text"].global_vector
    b = other.dialogues[0].utterances[0].features["text"].global_vector
    assert not np.array_equal(a, b)


def test_hotspot_span_is_short_and_contiguous():
    config = small(missing_rate=0.0)
    dataset = generate_dataset(config)
    for modality in MODALITIES:
        fractions = []
        for _, record in records(dataset, modality):
            if not record.hotspot_truth.any():
                continue
            start, stop = span_of(record.hotspot_truth)
            length, positions = stop - start, record.num_positions
            assert record.hotspot_truth[start:stop].all()  # one contiguous span
            assert max(1, int(np.floor(config.min_hotspot_fraction * positions))) <= length
            assert length <= max(1, int(np.ceil(config.max_hotspot_fraction * positions)))
            fractions.append(length / positions)
        if modality == "audio":  # long enough that rounding to one position does not dominate
            assert config.min_hotspot_fraction <= np.mean(fractions) <= config.max_hotspot_fraction


def test_lags_bounded_spread_and_match_the_span():
    config = small(missing_rate=0.0, lag_max=0.6)
    dataset = generate_dataset(config)
    lags = []
    for modality in MODALITIES:
        for utt, record in records(dataset, modality):
            if not record.hotspot_truth.any():
                assert f"lag_{modality}" not in utt.extra
                continue
            lag = float(utt.extra[f"lag_{modality}"])
            moment = float(utt.extra["emotion_moment"])
            lags.append(lag)
            start, stop = span_of(record.hotspot_truth)
            centre_time = record.position_times[start:stop].mean()
            step = (utt.end - utt.start) / record.num_positions
            assert abs(centre_time - (moment + lag)) <= (stop - start) / 2 * step + step
    lags = np.array(lags)
    assert np.all(np.abs(lags) <= config.lag_max)
    # Uniform on [-a, a]: std a / sqrt(3), mean 0; a collapsed distribution would fail these.
    assert lags.std() == pytest.approx(config.lag_max / np.sqrt(3), rel=0.15)
    assert abs(lags.mean()) < 0.1 * config.lag_max
    assert len(np.unique(np.round(lags, 3))) > len(lags) // 2


def test_systematic_delays_move_each_modalitys_spans_by_its_delay():
    config = small(missing_rate=0.0, lag_max=0.2, audio_delay=0.6, video_delay=-0.4)
    dataset = generate_dataset(config)
    for modality in MODALITIES:
        offsets = []
        for utt, record in records(dataset, modality):
            if not record.hotspot_truth.any():
                continue
            offsets.append(float(utt.extra[f"lag_{modality}"]) - config.delay(modality))
            start, stop = span_of(record.hotspot_truth)
            step = (utt.end - utt.start) / record.num_positions
            lagged = float(utt.extra["emotion_moment"]) + float(utt.extra[f"lag_{modality}"])
            assert abs(record.position_times[start:stop].mean() - lagged) <= (
                (stop - start) / 2 * step + step)
        offsets = np.array(offsets)
        assert np.all(np.abs(offsets) <= config.lag_max + 1e-9)  # the jitter around the delay
        assert abs(offsets.mean()) < 0.1 * config.lag_max
    assert "audio 0.6 s, video -0.4 s" in dataset.description


def test_zero_lag_puts_every_modality_on_the_moment():
    dataset = generate_dataset(small(lag_max=0.0, missing_rate=0.0))
    for modality in MODALITIES:
        for utt, record in records(dataset, modality):
            if record.hotspot_truth.any():
                start, stop = span_of(record.hotspot_truth)
                step = (utt.end - utt.start) / record.num_positions
                moment = float(utt.extra["emotion_moment"])
                assert abs(record.position_times[start:stop].mean() - moment) <= (
                    (stop - start) / 2 * step + step)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), amplitude=st.floats(2.0, 6.0))
def test_truth_marks_where_the_signature_is(seed, amplitude):
    config = SyntheticConfig(seed=seed, num_train=3, num_valid=0, num_test=0,
                             signature_amplitude=amplitude, distractor_probability=0.0)
    dataset = generate_dataset(config)
    signatures = class_signatures(config)
    for modality in MODALITIES:
        inside, outside = [], []
        for utt, record in records(dataset, modality):
            if not record.hotspot_truth.any():
                continue
            direction = signatures[modality][LABEL_NAMES.index(utt.label)]
            contrast = (record.local - record.local.mean(axis=0)) @ direction  # (positions,)
            inside.extend(contrast[record.hotspot_truth])
            outside.extend(contrast[~record.hotspot_truth])
        if inside:
            assert np.mean(inside) - np.mean(outside) > amplitude / 2


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), global_noise=st.sampled_from([0.0, 0.05]))
def test_global_vector_is_the_mean_of_the_local_sequence(seed, global_noise):
    config = SyntheticConfig(seed=seed, num_train=2, num_valid=0, num_test=0,
                             global_noise_std=global_noise)
    for modality in MODALITIES:
        for _, record in records(generate_dataset(config), modality):
            gap = np.abs(record.global_vector - record.local.mean(axis=0)).max()
            assert gap <= 1e-5 + 6 * global_noise


def test_mean_dilutes_the_hotspot_while_local_contrast_shows_it():
    config = small(missing_rate=0.0, distractor_probability=0.0)
    dataset = generate_dataset(config)
    direction_of = class_signatures(config)["audio"]
    global_projection, span_contrast = [], []
    for utt, record in records(dataset, "audio"):
        if record.hotspot_truth.any():
            direction = direction_of[LABEL_NAMES.index(utt.label)]
            global_projection.append(record.global_vector @ direction)
            span_contrast.append(((record.local - record.local.mean(axis=0)) @ direction)[
                record.hotspot_truth].mean())
    # The nuisance offset dominates the global vector; the span stands out locally.
    assert abs(np.mean(global_projection)) < 0.3 * np.std(global_projection)
    assert np.mean(span_contrast) > 2 * config.noise_std


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5])
def test_no_hotspot_fraction(fraction):
    dataset = generate_dataset(small(no_hotspot_fraction=fraction, missing_rate=0.0))
    without = [not any(u.features[m].hotspot_truth.any() for m in MODALITIES)
               for d in dataset for u in d.utterances]
    assert np.mean(without) == pytest.approx(fraction, abs=0.06)


@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_missing_modality_rate(rate):
    dataset = generate_dataset(small(missing_rate=rate))
    utterances = [u for d in dataset for u in d.utterances]
    missing = [not u.has(m) for u in utterances for m in MODALITIES]
    assert np.mean(missing) == pytest.approx(rate, abs=0.05)
    assert all(any(u.has(m) for m in MODALITIES) for u in utterances)
    assert all(u.features[m].present is False and u.features[m].local is None
               for u in utterances for m in MODALITIES if not u.has(m))


def test_missing_rate_hides_records_without_changing_the_others():
    full = generate_dataset(small(missing_rate=0.0, num_train=3))
    holed = generate_dataset(small(missing_rate=0.5, num_train=3))
    for d_full, d_holed in zip(full, holed, strict=True):
        for u_full, u_holed in zip(d_full.utterances, d_holed.utterances, strict=True):
            assert u_full.label == u_holed.label
            for modality in MODALITIES:
                if u_holed.has(modality):
                    np.testing.assert_array_equal(u_holed.features[modality].local,
                                                  u_full.features[modality].local)


def test_exact_prior_highlights_exactly_the_truth():
    dataset = generate_dataset(small(prior_accuracy=1.0, prior_noise_std=0.0))
    for modality in MODALITIES:
        for _, record in records(dataset, modality):
            expected = np.where(record.hotspot_truth, PRIOR_PEAK, PRIOR_BACKGROUND)
            np.testing.assert_allclose(record.prior, expected, atol=1e-6)


@pytest.mark.parametrize("accuracy", [0.3, 0.8])
def test_prior_accuracy(accuracy):
    dataset = generate_dataset(small(prior_accuracy=accuracy, missing_rate=0.0))
    hits = []
    for modality in MODALITIES:
        for _, record in records(dataset, modality):
            if not record.hotspot_truth.any():
                continue
            start, stop = span_of(record.hotspot_truth)
            if start >= stop - start or record.num_positions - stop >= stop - start:
                # A wrong span fits beside the true one, so a miss is possible.
                hits.append(record.hotspot_truth[np.argmax(record.prior)])
    assert np.mean(hits) == pytest.approx(accuracy, abs=0.05)


def test_prior_can_be_turned_off():
    dataset = generate_dataset(small(with_prior=False, num_train=2))
    assert all(record.prior is None for m in MODALITIES for _, record in records(dataset, m))


def test_labels_follow_speaker_inertia():
    def same_speaker_agreement(config):
        agree = []
        for dialogue in generate_dataset(config):
            last = {}
            for utt in dialogue.utterances:
                if utt.speaker in last:
                    agree.append(last[utt.speaker] == utt.label)
                last[utt.speaker] = utt.label
        return np.mean(agree)

    config = small()
    chance = sum(p * p for p in config.class_prior)
    with_inertia = same_speaker_agreement(config)
    assert with_inertia > chance + 0.3
    assert same_speaker_agreement(small(inertia=0.0, contagion=0.0)) == pytest.approx(
        chance, abs=0.06)


def test_signatures_share_within_pairs_except_in_the_disambiguating_modality():
    config = SyntheticConfig(shared_fraction=0.8)
    signatures = class_signatures(config)
    for modality, table in signatures.items():
        np.testing.assert_allclose(np.linalg.norm(table, axis=1), 1.0, atol=1e-5)
        gram = table @ table.T
        for (a, b), disambiguator in zip(SHARED_PAIRS, config.pair_disambiguators, strict=True):
            expected = 0.0 if modality == disambiguator else 0.8
            assert gram[LABEL_NAMES.index(a), LABEL_NAMES.index(b)] == pytest.approx(
                expected, abs=1e-5)
        assert gram[LABEL_NAMES.index("hap"), LABEL_NAMES.index("sad")] == pytest.approx(
            0.0, abs=1e-5)


def test_distractor_is_a_weaker_span_of_another_class_outside_the_truth():
    # Without noise, every background position equals the nuisance offset (the median row), so
    # the deviation from it shows exactly the spans that were added.
    config = small(distractor_probability=1.0, missing_rate=0.0, noise_std=0.0, num_train=5)
    signatures = class_signatures(config)["audio"]
    checked = 0
    for utt, record in records(generate_dataset(config), "audio"):
        truth = record.hotspot_truth
        if not truth.any():
            continue
        start, stop = span_of(truth)
        length = stop - start
        if start < length and record.num_positions - stop < length:
            continue  # no room for a distractor beside the true span
        deviation = record.local - np.median(record.local, axis=0)  # (positions, dim)
        touched = np.linalg.norm(deviation, axis=1) > 1e-3
        distractor = touched & ~truth
        assert distractor.sum() == length
        rows = deviation[distractor] / (config.distractor_amplitude_ratio
                                        * config.signature_amplitude)
        matches = np.abs(rows @ signatures.T - 1.0).min(axis=0) < 1e-3  # (classes,)
        assert matches.sum() >= 1 and not matches[LABEL_NAMES.index(utt.label)]
        checked += 1
    assert checked > 20


def test_decoys_show_another_class_as_strongly_at_independent_times():
    # Without noise and lags, every deviation from the nuisance offset is an added span; the
    # true spans share the emotional moment, each decoy sits at its own time.
    config = small(decoy_probability=1.0, distractor_probability=0.0, missing_rate=0.0,
                   noise_std=0.0, lag_max=0.0, num_train=5)
    signatures = class_signatures(config)
    checked, apart = 0, 0
    for dialogue in generate_dataset(config):
        for utt in dialogue.utterances:
            if "decoy_class" not in utt.extra:
                assert not any(u.hotspot_truth.any() for u in utt.features.values())
                continue
            decoy = LABEL_NAMES.index(utt.extra["decoy_class"])
            assert decoy != LABEL_NAMES.index(utt.label)
            centres = []
            for modality, record in utt.features.items():
                if f"decoy_{modality}" not in utt.extra:
                    continue
                deviation = record.local - np.median(record.local, axis=0)
                touched = np.linalg.norm(deviation, axis=1) > 1e-3
                decoy_rows = touched & ~record.hotspot_truth
                assert decoy_rows.sum() == record.hotspot_truth.sum()  # as long, as strong
                projected = deviation[decoy_rows] @ signatures[modality].T / \
                    config.signature_amplitude  # (rows, classes)
                np.testing.assert_allclose(projected[:, decoy], 1.0, atol=1e-4)
                centre = float(utt.extra[f"decoy_{modality}"])
                np.testing.assert_allclose(
                    centre, record.position_times[decoy_rows].mean(), atol=1e-6)
                centres.append(centre)
                checked += 1
            apart += len(centres) > 1 and np.ptp(centres) > 0.5
    assert checked > 100 and apart > 20


def test_timing_decides_the_decoys_only_when_lags_are_small_or_structured():
    def ceiling(**knobs):
        config = small(decoy_probability=1.0, missing_rate=0.0, num_train=30, **knobs)
        picks = [timing_picks_truth(utt.extra, config)
                 for dialogue in generate_dataset(config) for utt in dialogue.utterances]
        decided = [pick for pick in picks if pick is not None]
        assert len(decided) > 100
        return np.mean(decided)

    assert ceiling(lag_max=0.0) > 0.95
    assert ceiling(lag_max=0.0, audio_delay=1.0) > 0.95  # a known delay is no obstacle
    assert 0.45 < ceiling(lag_max=1.5) < 0.7  # independent large lags: close to chance
    plain = generate_dataset(small())
    assert all(timing_picks_truth(utt.extra, small()) is None
               for dialogue in plain for utt in dialogue.utterances)


def test_without_decoys_the_dataset_is_the_one_before_the_knob():
    plain, off = generate_dataset(small()), generate_dataset(small(decoy_probability=0.0))
    for a, b in zip(plain, off, strict=True):
        for u, v in zip(a.utterances, b.utterances, strict=True):
            assert u.extra == v.extra and "decoy_class" not in u.extra
            for modality in u.features:
                np.testing.assert_array_equal(u.features[modality].local,
                                              v.features[modality].local)


@pytest.mark.parametrize("override, field", [
    ({"inertia": 0.8, "contagion": 0.4}, "inertia + contagion"),
    ({"min_hotspot_fraction": 0.1, "max_hotspot_fraction": 0.05}, "min_hotspot_fraction"),
    ({"video_dim": 4}, "video_dim"),
    ({"modalities": ("text", "smell")}, "modalities"),
    ({"class_prior": (0.5, 0.5)}, "class_prior"),
    ({"missing_rate": 1.5}, "missing_rate"),
])
def test_invalid_config_names_the_field(override, field):
    with pytest.raises(ValueError, match=re.escape(field)):
        SyntheticConfig(**override)


def test_modality_subset():
    dataset = generate_dataset(small(modalities=("text",), num_train=2))
    assert list(dataset.feature_spec.modalities) == ["text"]
    assert dataset.modalities == ["text"]


def test_training_on_nothing_is_refused():
    """``--synthetic-set num_train=0`` trained on nothing and exited 0 with test metrics."""
    with pytest.raises(ValueError, match=r"num_train must be >= 1 .*got 0"):
        SyntheticConfig(num_train=0)


def test_an_unknown_knob_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown keys \['bogus'\]; known keys: seed, num_train, "
                                         r"num_valid, .*distractor_amplitude_ratio, "
                                         r"decoy_probability$"):
        SyntheticConfig.from_dict({"bogus": 1})
    assert SyntheticConfig.from_dict({"num_train": 5, "modalities": ["text"]}) == SyntheticConfig(
        num_train=5, modalities=("text",))


@pytest.mark.parametrize("override, message", [
    ({"num_train": "many"}, "num_train: expected an integer, got 'many'"),
    ({"num_train": 2.5}, "num_train: expected an integer, got 2.5"),
    ({"lag_max": "nan"}, "lag_max: expected a finite number, got 'nan'"),
    ({"noise_std": float("nan")}, "noise_std: expected a finite number, got nan"),
    ({"min_duration": float("inf")}, "min_duration: expected a finite number, got inf"),
    ({"with_prior": 1}, "with_prior: expected true or false, got 1"),
    ({"modalities": "text"}, "modalities: expected a list (a string each), got 'text'"),
    ({"class_prior": [0.5, "x"]}, "class_prior: expected a list (a finite number each)"),
    ({"seed": -1}, "seed must be >= 0, got -1"),
])
def test_a_badly_typed_knob_is_a_value_error_naming_it(override, message):
    """Values from ``--synthetic-set`` arrive as JSON or as strings: a wrong type is the same
    clear ValueError as a value out of range, never a TypeError from a comparison."""
    with pytest.raises(ValueError, match=re.escape(message)):
        SyntheticConfig(**override)
