"""The synthetic hotspot benchmark: the built-in dataset, built so that each model part matters.

Every dialogue has 2-3 speakers and 10-30 utterances. Each utterance ``i`` of duration ``T_i``
has, per modality ``m``, a local sequence of ``L = max(1, round(T_i * rate_m))`` positions at
times ``t_l = (l + 1/2) T_i / L`` (text ~ tokens, audio ~ frames, video ~ frames: different rates
and dimensions), built as

    X[l] = nuisance_i,m + noise_l + A * sig_m[y_i] * [l in hotspot span]
           + rho * A * sig_m[y'] * [l in distractor span]
    g    = mean_l X[l] + small noise

* ``nuisance_i,m ~ N(0, nuisance_std^2 I)`` is constant over the utterance's positions. In the
  mean it swamps the diluted signature (``A * span / L`` with a span of a few percent of ``L``),
  while the contrast of a position against the utterance mean (what HGF can learn) reveals it.
  A model that only sees ``g`` therefore gets almost nothing from the utterance itself.
* ``sig_m[c]`` is a unit class signature per modality. The pairs hap/exc and sad/fru share a
  fraction ``shared_fraction`` of their signature energy (``sig = sqrt(1-s) own + sqrt(s) shared``)
  in every modality but one, a different one per pair (``pair_disambiguators``), so a single
  modality is often ambiguous and fusion is needed.
* The hotspot span covers a fraction in ``[min_hotspot_fraction, max_hotspot_fraction]`` of the
  positions (at least one). Its centre is the utterance's emotional moment ``tau_i`` plus a lag
  ``U(-lag_max, lag_max)`` drawn per modality: the modalities are asynchronous, which is what
  the Mixture-of-Aligners must handle. ``tau_i`` is drawn so that moment + lag stays inside the
  utterance. Optionally each modality also has a systematic delay ``<modality>_delay`` (seconds,
  0 by default), added to every one of its lags: asynchrony with a structure (a face that reacts
  after the words), where independent lags have none.
* An utterance has no hotspot at all with probability ``no_hotspot_fraction``; otherwise each
  modality carries one with probability ``modality_hotspot_probability`` (at least one does).
  Labels follow speaker inertia (keep one's previous emotion, probability ``inertia``) and
  contagion (take the previous other speaker's emotion, probability ``contagion``), else a draw
  from ``class_prior``; so utterances without a hotspot can only be labelled from the dialogue
  context, which is what the graph pathway is for.
* Optional difficulty: a modality is missing with probability ``missing_rate`` (at least one
  modality stays); a modality with a hotspot gets a weaker distractor span (amplitude ratio
  ``rho``) of another class with probability ``distractor_probability``; a rule-based ``prior``
  per position is ``PRIOR_PEAK`` on one span and ``PRIOR_BACKGROUND`` elsewhere plus Gaussian
  noise, clipped to [0, 1]. With probability ``prior_accuracy`` that span is the true one (or, for
  a modality without a hotspot, no span at all); otherwise it is a wrong span of the same length.

* Optional synchrony (``decoy_probability``, off by default): an utterance with a hotspot gets,
  in every modality that carries it, a *decoy* span as strong as the true one, of one other
  class shared by all its modalities, at a time drawn independently per modality. Each modality
  then shows two classes equally; only the true class's spans co-occur across modalities (up to
  the lags), so telling them apart takes cross-modal *timing*, which content-only fusion cannot
  read. ``extra`` holds ``decoy_class`` and ``decoy_<modality>`` (the decoy's centre, seconds).

Ground truth: ``hotspot_truth`` marks exactly the true span (never the distractor or decoy).
``extra`` holds ``emotion_moment`` (seconds) and ``lag_<modality>`` (seconds, delay included, for
modalities with a hotspot) as strings, for tests and explanations; the model never reads them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hotspot_erc.data.dialogue import (
    MODALITIES,
    Dataset,
    Dialogue,
    FeatureSpec,
    ModalityFeatures,
    ModalitySpec,
    Utterance,
)
from hotspot_erc.fields import type_problems

LABEL_NAMES: tuple[str, ...] = ("hap", "sad", "neu", "ang", "exc", "fru")
# Class pairs that share part of their signature; pair_disambiguators[k] tells them apart.
SHARED_PAIRS: tuple[tuple[str, str], ...] = (("hap", "exc"), ("sad", "fru"))
PRIOR_BACKGROUND = 0.1
PRIOR_PEAK = 0.9
EXTRACTOR_NAME = "synthetic"
EXTRACTOR_VERSION = "1"


@dataclass
class SyntheticConfig:
    """Every knob of the synthetic benchmark (the defaults are the built-in dataset).

    Size and structure:
        seed: seeds the numpy Generator; the same config gives identical arrays.
        num_train, num_valid, num_test: dialogues per split.
        min_speakers, max_speakers: speakers per dialogue (inclusive range).
        min_utterances, max_utterances: utterances per dialogue (inclusive range).
        turn_switch_probability: probability that the next utterance is by another speaker.
        min_duration, max_duration: utterance duration in seconds (uniform).
        max_turn_gap: silence between utterances, uniform in [0, max_turn_gap] seconds.
        modalities: which of text, audio, video to generate.
        text_rate_hz, audio_rate_hz, video_rate_hz: positions per second of each local sequence.
        text_dim, audio_dim, video_dim: feature dimension (global and local) per modality; at
            least ``len(LABEL_NAMES) + len(SHARED_PAIRS)`` so that signatures can be orthogonal.

    Emotions:
        class_prior: probability of each label of ``LABEL_NAMES`` for a fresh draw.
        inertia: probability that a speaker keeps their previous emotion.
        contagion: probability that a speaker takes the previous other speaker's emotion
            (``inertia + contagion <= 1``; the rest is a draw from ``class_prior``).

    Hotspots:
        no_hotspot_fraction: fraction of utterances without a hotspot in any modality.
        modality_hotspot_probability: for the other utterances, probability that a given modality
            carries the hotspot (at least one modality always does).
        min_hotspot_fraction, max_hotspot_fraction: span length as a fraction of the positions.
        lag_max: each modality's span centre is the emotional moment plus U(-lag_max, lag_max) s.
        text_delay, audio_delay, video_delay: a systematic delay in seconds added to every lag of
            that modality (default 0: the lags are independent jitter only).
        signature_amplitude: amplitude ``A`` of the class signature on the span.
        shared_fraction: signature energy shared within hap/exc and within sad/fru.
        pair_disambiguators: per pair of ``SHARED_PAIRS``, the modality where the pair shares
            nothing (so it tells the two classes apart).
        noise_std: per-position Gaussian noise.
        nuisance_std: per-utterance constant offset that swamps the diluted signature in the mean.
        global_noise_std: noise added to the mean-pooled global vector.

    Optional difficulty:
        missing_rate: probability that a modality of an utterance is missing.
        with_prior: whether to emit the rule-based ``prior`` per position.
        prior_accuracy: probability that the prior highlights the right span (or none).
        prior_noise_std: Gaussian noise on the prior before clipping to [0, 1].
        distractor_probability: probability that a modality with a hotspot also gets a distractor.
        distractor_amplitude_ratio: distractor amplitude relative to ``signature_amplitude``.
        decoy_probability: probability that an utterance with a hotspot also carries a decoy of
            one other class in every modality with the hotspot, at independent times (module
            docstring); 0 draws nothing, so the dataset is exactly the one without the knob.
    """

    seed: int = 0
    num_train: int = 120
    num_valid: int = 20
    num_test: int = 40
    min_speakers: int = 2
    max_speakers: int = 3
    min_utterances: int = 10
    max_utterances: int = 30
    turn_switch_probability: float = 0.8
    min_duration: float = 2.0
    max_duration: float = 6.0
    max_turn_gap: float = 0.8
    modalities: tuple[str, ...] = MODALITIES
    text_rate_hz: float = 6.0
    audio_rate_hz: float = 25.0
    video_rate_hz: float = 12.5
    text_dim: int = 32
    audio_dim: int = 24
    video_dim: int = 16
    # Close to IEMOCAP 6-way label frequencies, in the order of LABEL_NAMES.
    class_prior: tuple[float, ...] = (0.09, 0.15, 0.23, 0.15, 0.14, 0.24)
    inertia: float = 0.55
    contagion: float = 0.2
    no_hotspot_fraction: float = 0.2
    modality_hotspot_probability: float = 0.7
    min_hotspot_fraction: float = 0.02
    max_hotspot_fraction: float = 0.05
    lag_max: float = 0.5
    text_delay: float = 0.0
    audio_delay: float = 0.0
    video_delay: float = 0.0
    signature_amplitude: float = 3.5
    shared_fraction: float = 0.9
    pair_disambiguators: tuple[str, ...] = ("text", "audio")
    noise_std: float = 1.0
    nuisance_std: float = 1.0
    global_noise_std: float = 0.05
    missing_rate: float = 0.05
    with_prior: bool = True
    prior_accuracy: float = 0.7
    prior_noise_std: float = 0.05
    distractor_probability: float = 0.1
    distractor_amplitude_ratio: float = 0.5
    decoy_probability: float = 0.0

    @classmethod
    def from_dict(cls, data: dict) -> SyntheticConfig:
        """The config with the knobs of ``data`` changed (e.g. from ``--synthetic-set``); a key
        that is not a knob is a ValueError listing the knobs."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"SyntheticConfig: unknown keys {unknown}; known keys: "
                             + ", ".join(known))
        return cls(**data)

    def __post_init__(self) -> None:
        # Types first: the range checks below cannot compare a string with a number.
        problems = [f"{name}: {problem}" for name, problem in type_problems(self).items()]
        if problems:
            raise ValueError("SyntheticConfig: " + "; ".join(problems))
        self.modalities = tuple(self.modalities)
        self.class_prior = tuple(float(p) for p in self.class_prior)
        self.pair_disambiguators = tuple(self.pair_disambiguators)
        if self.seed < 0:
            problems.append(f"seed must be >= 0, got {self.seed}")
        if self.num_train < 1:
            problems.append(f"num_train must be >= 1 (training needs dialogues), got "
                            f"{self.num_train}")
        for name in ("num_valid", "num_test"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        for low, high, least in (("min_speakers", "max_speakers", 1),
                                 ("min_utterances", "max_utterances", 1),
                                 ("min_duration", "max_duration", 1e-9),
                                 ("min_hotspot_fraction", "max_hotspot_fraction", 0.0)):
            if not least <= getattr(self, low) <= getattr(self, high):
                problems.append(f"{low} and {high}: expected {least} <= {low} <= {high}")
        if self.max_hotspot_fraction > 1:
            problems.append("max_hotspot_fraction must be <= 1")
        for name in ("turn_switch_probability", "inertia", "contagion", "no_hotspot_fraction",
                     "modality_hotspot_probability", "missing_rate", "prior_accuracy",
                     "distractor_probability", "shared_fraction", "decoy_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.inertia + self.contagion > 1.0:
            problems.append("inertia + contagion must be <= 1")
        for name in ("max_turn_gap", "lag_max", "signature_amplitude", "noise_std",
                     "nuisance_std", "global_noise_std", "prior_noise_std",
                     "distractor_amplitude_ratio"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if not self.modalities or any(m not in MODALITIES for m in self.modalities):
            problems.append(f"modalities must be a non-empty subset of {MODALITIES}")
        if len(set(self.modalities)) != len(self.modalities):
            problems.append("modalities must not repeat")
        for modality in MODALITIES:
            if self.rate_hz(modality) <= 0:
                problems.append(f"{modality}_rate_hz must be > 0")
            if self.dim(modality) < len(LABEL_NAMES) + len(SHARED_PAIRS):
                problems.append(f"{modality}_dim must be >= {len(LABEL_NAMES) + len(SHARED_PAIRS)}")
        if len(self.class_prior) != len(LABEL_NAMES) or min(self.class_prior) < 0 or not np.isclose(
                sum(self.class_prior), 1.0):
            problems.append(f"class_prior: expected {len(LABEL_NAMES)} non-negative "
                            f"probabilities for {LABEL_NAMES} summing to 1")
        if len(self.pair_disambiguators) != len(SHARED_PAIRS) or any(
                m not in MODALITIES for m in self.pair_disambiguators):
            problems.append(f"pair_disambiguators: expected one modality of {MODALITIES} per "
                            f"pair {SHARED_PAIRS}")
        if problems:
            raise ValueError("SyntheticConfig: " + "; ".join(problems))

    def rate_hz(self, modality: str) -> float:
        return float(getattr(self, f"{modality}_rate_hz"))

    def delay(self, modality: str) -> float:
        return float(getattr(self, f"{modality}_delay"))

    def dim(self, modality: str) -> int:
        return int(getattr(self, f"{modality}_dim"))


def timing_picks_truth(extra: dict[str, str], config: SyntheticConfig) -> float | None:
    """What an ideal reader of cross-modal timing gets right on one utterance with a decoy.

    It knows each modality's systematic delay and nothing else, and picks the class whose span
    centres (minus the delays) lie closer together across modalities: 1.0 when that is the true
    class, 0.0 when it is the decoy, 0.5 on a tie. None when timing cannot decide: no decoy, or
    fewer than two modalities carrying both spans. Averaged over a dataset, this is the ceiling
    of what timing can add on the decoys (``benchmarks/synthetic_timing.py``).
    """
    moment = float(extra.get("emotion_moment", "nan"))
    both = [m for m in MODALITIES if f"lag_{m}" in extra and f"decoy_{m}" in extra]
    if "decoy_class" not in extra or len(both) < 2:
        return None
    true_centres = [moment + float(extra[f"lag_{m}"]) - config.delay(m) for m in both]
    decoy_centres = [float(extra[f"decoy_{m}"]) - config.delay(m) for m in both]
    true_spread, decoy_spread = np.ptp(true_centres), np.ptp(decoy_centres)
    if true_spread == decoy_spread:
        return 0.5
    return float(true_spread < decoy_spread)


def _delays_text(config: SyntheticConfig) -> str:
    delays = [f"{m} {config.delay(m):g} s" for m in config.modalities if config.delay(m) != 0]
    return f" after systematic delays ({', '.join(delays)})" if delays else ""


def describe(config: SyntheticConfig) -> str:
    """A short paragraph saying what the synthetic dataset is (used as Dataset.description)."""
    shapes = ", ".join(f"{m} {config.rate_hz(m):g} Hz x {config.dim(m)}-d"
                       for m in config.modalities)
    pairs = ", ".join(f"{a}/{b} (told apart by {m})"
                      for (a, b), m in zip(SHARED_PAIRS, config.pair_disambiguators, strict=True))
    return (
        f"Synthetic hotspot benchmark (seed {config.seed}): {config.num_train}/{config.num_valid}/"
        f"{config.num_test} train/valid/test dialogues of {config.min_speakers}-"
        f"{config.max_speakers} speakers and {config.min_utterances}-{config.max_utterances} "
        f"utterances of {config.min_duration:g}-{config.max_duration:g} s. Local sequences: "
        f"{shapes}. The emotion shows as a class signature (amplitude "
        f"{config.signature_amplitude:g}) on a span of {100 * config.min_hotspot_fraction:g}-"
        f"{100 * config.max_hotspot_fraction:g}% of the positions, lagged by up to "
        f"+-{config.lag_max:g} s per modality{_delays_text(config)}, under a per-utterance "
        f"nuisance offset (std "
        f"{config.nuisance_std:g}) that hides it in the mean-pooled global vector. Shared "
        f"signatures ({100 * config.shared_fraction:g}%): {pairs}. "
        f"{100 * config.no_hotspot_fraction:g}% of utterances have no hotspot and need the "
        f"context (inertia {config.inertia:g}, contagion {config.contagion:g}). Missing "
        f"modality rate {config.missing_rate:g}, distractor probability "
        f"{config.distractor_probability:g}, prior "
        f"{'accuracy ' + format(config.prior_accuracy, 'g') if config.with_prior else 'off'}."
        + (f" With probability {config.decoy_probability:g} a decoy class shows as strongly in "
           "every modality with the hotspot, at independent times: only the true class's spans "
           "co-occur." if config.decoy_probability > 0 else ""))


def class_signatures(config: SyntheticConfig) -> dict[str, np.ndarray]:
    """Unit class signatures per modality: modality -> ``(len(LABEL_NAMES), dim)`` float32.

    Own and shared directions are orthonormal, so ``sig[a] . sig[b]`` is exactly
    ``shared_fraction`` within a shared pair (0 in its disambiguating modality) and 0 otherwise.
    """
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(2)[0])
    signatures = {}
    for modality in MODALITIES:
        basis_count = len(LABEL_NAMES) + len(SHARED_PAIRS)
        # QR of a Gaussian matrix: basis_count orthonormal directions in the modality's space.
        basis, _ = np.linalg.qr(rng.normal(size=(config.dim(modality), basis_count)))
        own, shared = basis[:, :len(LABEL_NAMES)].T, basis[:, len(LABEL_NAMES):].T
        table = own.copy()  # (classes, dim)
        for pair_index, (pair, disambiguator) in enumerate(
                zip(SHARED_PAIRS, config.pair_disambiguators, strict=True)):
            fraction = 0.0 if modality == disambiguator else config.shared_fraction
            for label in pair:
                row = LABEL_NAMES.index(label)
                table[row] = (np.sqrt(1 - fraction) * own[row]
                              + np.sqrt(fraction) * shared[pair_index])
        signatures[modality] = table.astype(np.float32)
    return signatures


def generate_dataset(config: SyntheticConfig | None = None) -> Dataset:
    """Generate the synthetic benchmark (pure: the same config gives identical arrays)."""
    config = config or SyntheticConfig()
    signatures = class_signatures(config)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(2)[1])
    split_sizes = {"train": config.num_train, "valid": config.num_valid, "test": config.num_test}
    dialogues, splits = [], {}
    for split, size in split_sizes.items():
        splits[split] = []
        for index in range(size):
            dialogue = _dialogue(rng, config, signatures, f"syn_{split}_{index:04d}")
            dialogues.append(dialogue)
            splits[split].append(dialogue.did)
    feature_spec = FeatureSpec({
        m: ModalitySpec(EXTRACTOR_NAME, EXTRACTOR_VERSION, global_dim=config.dim(m),
                        local_dim=config.dim(m), rate_hz=config.rate_hz(m))
        for m in config.modalities})
    return Dataset("synthetic", dialogues, list(LABEL_NAMES), splits, feature_spec,
                   describe(config))


def _dialogue(rng: np.random.Generator, config: SyntheticConfig,
              signatures: dict[str, np.ndarray], did: str) -> Dialogue:
    num_speakers = int(rng.integers(config.min_speakers, config.max_speakers + 1))
    num_utterances = int(rng.integers(config.min_utterances, config.max_utterances + 1))
    speakers = _speaker_turns(rng, config, num_speakers, num_utterances)
    labels = _emotion_sequence(rng, config, speakers)
    utterances, clock = [], 0.0
    for index, (speaker, label) in enumerate(zip(speakers, labels, strict=True)):
        duration = float(rng.uniform(config.min_duration, config.max_duration))
        features, extra = _utterance_features(rng, config, signatures, label, duration)
        utterances.append(Utterance(
            uid=f"{did}_u{index:03d}", speaker=speaker,
            text=f"synthetic utterance {index} by speaker {speaker}",
            start=round(clock, 4), end=round(clock + duration, 4),
            label=LABEL_NAMES[label], features=features, extra=extra))
        clock += duration + float(rng.uniform(0.0, config.max_turn_gap))
    return Dialogue(did, utterances)


def _speaker_turns(rng: np.random.Generator, config: SyntheticConfig, num_speakers: int,
                   num_utterances: int) -> list[str]:
    names = [f"S{k + 1}" for k in range(num_speakers)]
    current = int(rng.integers(num_speakers))
    turns = [names[current]]
    for _ in range(num_utterances - 1):
        if num_speakers > 1 and rng.random() < config.turn_switch_probability:
            others = [k for k in range(num_speakers) if k != current]
            current = others[int(rng.integers(len(others)))]
        turns.append(names[current])
    return turns


def _emotion_sequence(rng: np.random.Generator, config: SyntheticConfig,
                      speakers: list[str]) -> list[int]:
    """Label indices by inertia, else contagion, else a fresh draw (see the module docstring)."""
    labels: list[int] = []
    last_by_speaker: dict[str, int] = {}
    for index, speaker in enumerate(speakers):
        own = last_by_speaker.get(speaker)
        other = next((labels[j] for j in range(index - 1, -1, -1) if speakers[j] != speaker),
                     None)
        draw = rng.random()
        if draw < config.inertia and own is not None:
            label = own
        elif config.inertia <= draw < config.inertia + config.contagion and other is not None:
            label = other
        else:
            label = int(rng.choice(len(LABEL_NAMES), p=config.class_prior))
        labels.append(label)
        last_by_speaker[speaker] = label
    return labels


def _utterance_features(rng: np.random.Generator, config: SyntheticConfig,
                        signatures: dict[str, np.ndarray], label: int, duration: float
                        ) -> tuple[dict[str, ModalityFeatures], dict[str, str]]:
    modalities = config.modalities
    with_hotspot = np.zeros(len(modalities), dtype=bool)
    if rng.random() >= config.no_hotspot_fraction:
        with_hotspot = rng.random(len(modalities)) < config.modality_hotspot_probability
        if not with_hotspot.any():
            with_hotspot[rng.integers(len(modalities))] = True
    missing = rng.random(len(modalities)) < config.missing_rate
    kept_anyway = rng.integers(len(modalities))  # drawn always, see below
    if missing.all():
        missing[kept_anyway] = False
    # The moment leaves room for the largest lag on both sides when the utterance allows it.
    delays = [config.delay(m) for m in modalities]
    earliest = config.lag_max + max(0.0, -min(delays))
    latest = duration - config.lag_max - max(0.0, max(delays))
    if latest > earliest:
        moment = float(rng.uniform(earliest, latest))
    else:
        moment = (earliest + latest) / 2
    extra = {"emotion_moment": f"{moment:.6f}"}
    # Drawn only when the knob is on, so that without it the dataset is the one before it.
    decoy = None
    if config.decoy_probability > 0 and with_hotspot.any() \
            and rng.random() < config.decoy_probability:
        decoy = int(rng.choice([c for c in range(len(LABEL_NAMES)) if c != label]))
        extra["decoy_class"] = LABEL_NAMES[decoy]
    features = {}
    for k, modality in enumerate(modalities):
        record, lag, decoy_centre = _modality_record(
            rng, config, signatures[modality], modality, label, duration, moment,
            bool(with_hotspot[k]), decoy)
        if lag is not None:
            extra[f"lag_{modality}"] = f"{lag:.6f}"
        if decoy_centre is not None:
            extra[f"decoy_{modality}"] = f"{decoy_centre:.6f}"
        # Every draw happens whatever the missing_rate, so changing it hides records without
        # changing any other array of the dataset.
        features[modality] = ModalityFeatures.missing() if missing[k] else record
    return features, extra


def _modality_record(rng: np.random.Generator, config: SyntheticConfig, signatures: np.ndarray,
                     modality: str, label: int, duration: float, moment: float,
                     with_hotspot: bool, decoy: int | None = None
                     ) -> tuple[ModalityFeatures, float | None, float | None]:
    """One modality's record, its lag (None without a hotspot) and the centre of its decoy
    span in seconds (None without one)."""
    dim = config.dim(modality)
    positions = max(1, round(duration * config.rate_hz(modality)))
    times = (np.arange(positions) + 0.5) * duration / positions  # (positions,) seconds
    nuisance = rng.normal(0.0, config.nuisance_std, size=dim)
    local = rng.normal(0.0, config.noise_std, size=(positions, dim)) + nuisance  # (L, dim)
    truth = np.zeros(positions, dtype=bool)
    span = lag = decoy_centre = None
    if with_hotspot:
        fraction = rng.uniform(config.min_hotspot_fraction, config.max_hotspot_fraction)
        length = min(positions, max(1, round(fraction * positions)))
        lag = config.delay(modality) + float(rng.uniform(-config.lag_max, config.lag_max))
        centre = min(positions - 1, max(0, int((moment + lag) / duration * positions)))
        start = min(max(0, centre - length // 2), positions - length)
        span = slice(start, start + length)
        local[span] += config.signature_amplitude * signatures[label]
        truth[span] = True
        if rng.random() < config.distractor_probability:
            distractor = _span_elsewhere(rng, positions, length, span)
            if distractor is not None:
                other = rng.choice([c for c in range(len(LABEL_NAMES)) if c != label])
                local[distractor] += (config.distractor_amplitude_ratio
                                      * config.signature_amplitude * signatures[other])
        if decoy is not None:
            decoy_span = _span_elsewhere(rng, positions, length, span)
            if decoy_span is not None:
                local[decoy_span] += config.signature_amplitude * signatures[decoy]
                decoy_centre = float(times[decoy_span].mean())
    global_vector = local.mean(axis=0) + rng.normal(0.0, config.global_noise_std, size=dim)
    prior = _prior(rng, config, positions, span) if config.with_prior else None
    record = ModalityFeatures(global_vector=global_vector, local=local, prior=prior,
                              hotspot_truth=truth, position_times=times)
    return record, lag, decoy_centre


def _prior(rng: np.random.Generator, config: SyntheticConfig, positions: int,
           span: slice | None) -> np.ndarray:
    """A noisy rule-based score per position: right with probability prior_accuracy."""
    highlighted = None
    correct = rng.random() < config.prior_accuracy
    if span is not None:
        length = span.stop - span.start
        highlighted = span if correct else _span_elsewhere(rng, positions, length, span)
    elif not correct:
        # A false alarm where there is nothing to find.
        fraction = rng.uniform(config.min_hotspot_fraction, config.max_hotspot_fraction)
        highlighted = _span_elsewhere(rng, positions, max(1, round(fraction * positions)), None)
    prior = np.full(positions, PRIOR_BACKGROUND)
    if highlighted is not None:
        prior[highlighted] = PRIOR_PEAK
    prior += rng.normal(0.0, config.prior_noise_std, size=positions)
    return np.clip(prior, 0.0, 1.0)


def _span_elsewhere(rng: np.random.Generator, positions: int, length: int,
                    avoid: slice | None) -> slice | None:
    """A random span of ``length`` positions that does not overlap ``avoid`` (None if none fits)."""
    starts = np.arange(positions - length + 1)
    if avoid is not None:
        starts = starts[(starts + length <= avoid.start) | (starts >= avoid.stop)]
    if starts.size == 0:
        return None
    start = int(rng.choice(starts))
    return slice(start, start + length)
