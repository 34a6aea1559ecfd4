"""A runnable example that needs no outside data: a demonstration checkpoint and a new conversation.

``build_demo(out)``:

1. generates the demonstration corpus (:func:`~hotspot_erc.features.synth_media.make_demo_corpus`:
   two-speaker conversations in which espeak-ng voices act four labels through pitch, rate and
   loudness, with matching words, and a synthetic face whose motion bursts go with the aroused
   labels) into ``out/corpus``;
2. extracts it with the real extractors (text, audio, video) into ``out/features``;
3. trains the ``full`` model on it (validation-selected) into ``out/run``, and marks its model
   card a demonstration (``demonstration: true``, an intended use that forbids real recordings),
   so every prediction and report made with it says so;
4. generates one more conversation the model never saw, ``out/unseen/unseen.mp4`` with its
   transcript ``out/unseen/transcript.json``, ready for ``hotspot-erc predict``.

The checkpoint demonstrates the pipeline (real decoding, extraction, fusion, explanations); it
is **not an emotion model**: it learned four synthetic voice styles. Real use trains on real data
(IEMOCAP, MELD, RAVDESS, or one's own labelled recordings) first.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from hotspot_erc.atomic import write_json

UNSEEN_LABELS = ("neutral", "happy", "happy", "angry", "neutral", "sad", "sad", "angry")
DEMONSTRATION_DOMAIN = ("synthetic generated voices (espeak-ng speech acting four labels through "
                        "pitch, rate and loudness) with a synthetic face")
DEMONSTRATION_USE = ("Demonstration only: this model learned the styles of synthetic generated "
                     "voices, not human emotion. Do not use it on real recordings; train on "
                     "real labelled conversations first.")


def build_demo(out_dir: str | os.PathLike, dialogues: dict[str, int] | None = None,
               utterances: int = 6, epochs: int = 20, seed: int = 0, workers: int = 2,
               progress: bool = True, threads: int = 2) -> dict:
    """Build the demonstration (see the module docstring); return paths and test metrics.
    Training uses ``threads`` CPU threads, extraction ``workers`` processes.

    Every step resumes: an existing corpus, feature store or finished run is reused.
    """
    from hotspot_erc.data.manifest import load_manifest
    from hotspot_erc.engine.checkpoint import save_model_card
    from hotspot_erc.engine.model_card import ModelCard
    from hotspot_erc.engine.train import run_config, train
    from hotspot_erc.features.extract import ExtractConfig, extract_dataset
    from hotspot_erc.features.synth_media import make_demo_conversation, make_demo_corpus

    out = Path(out_dir)
    manifest = out / "corpus" / "manifest.json"
    if not manifest.is_file():
        manifest = make_demo_corpus(out / "corpus", dialogues, utterances=utterances, seed=seed)
    dataset = extract_dataset(load_manifest(manifest), ExtractConfig(workers=workers),
                              folder=out / "features", progress=progress)
    model_config, train_config = run_config(
        dataset, "full", {}, {"epochs": epochs, "min_epochs": min(epochs, 10), "batch_size": 4,
                              "threads": threads}, seed)
    result = train(dataset, model_config, train_config, out / "run", progress=progress)
    card = ModelCard.trained_on(dataset.name, dataset.label_names,
                                list(dataset.feature_spec.modalities), result.metrics)
    save_model_card(out / "run" / "checkpoint", dataclasses.replace(
        card, domain=DEMONSTRATION_DOMAIN, intended_use=DEMONSTRATION_USE, demonstration=True))
    unseen = out / "unseen"
    transcript = unseen / "transcript.json"
    if not transcript.is_file():
        unseen.mkdir(parents=True, exist_ok=True)
        entry = make_demo_conversation(unseen, "unseen", UNSEEN_LABELS, seed=seed + 12345)
        # The transcript a user would have: speakers, texts and times, no labels.
        for utterance in entry["utterances"]:
            utterance.pop("label")
        write_json(transcript, {"name": "unseen", "dialogues": [
            {"id": "unseen", "utterances": entry["utterances"]}]})
        write_json(unseen / "true_labels.json", dict(zip(
            [u["id"] for u in entry["utterances"]], UNSEEN_LABELS, strict=True)))
    return {"checkpoint": str(out / "run"), "transcript": str(transcript),
            "media": str(unseen / "unseen.mp4"),
            "true_labels": json.loads((unseen / "true_labels.json").read_text()),
            "test": result.metrics.get("test", {}), "best_epoch": result.best_epoch}
