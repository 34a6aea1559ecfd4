"""Models that ship inside the package, usable offline right after install.

::

    hotspot-erc models --pretrained
    hotspot-erc predict --model meld-text --transcript call.srt --out call
    Predictor.from_pretrained("meld-text")

Each is a checkpoint folder in ``hotspot_erc/models/<name>/`` (``checkpoint.json``,
``weights.npz``, ``model_card.json``: the corpus, labels, modalities, validation and test
scores, intended use), small because it stores only what the packaged base encoders do not
already provide: the features come from extractors that ship in the install (MiniLM for text,
the prosodic descriptors and Whisper tiny.en for audio), rebuilt from the recipe the checkpoint
records. ``check.json`` beside it holds the labels and probabilities the model gave a few test
dialogues of its corpus when it was packaged; the tests rerun those dialogues from the corpus
files and compare.

Adding one: train it (:data:`PRETRAINED` says how each was made), add an entry here, and
package its run (copies the checkpoint folder, writes ``check.json``)::

    python -m hotspot_erc.engine.pretrained NAME RUN_FOLDER --data DATA
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hotspot_erc.atomic import write_json

MODELS_FOLDER = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class Pretrained:
    """One shipped model: its name, what it is for, the licence its training data imposes, and
    the command that trained it."""

    name: str
    summary: str
    licence: str
    corpus: str
    trained_with: str

    @property
    def folder(self) -> Path:
        return MODELS_FOLDER / self.name


PRETRAINED: dict[str, Pretrained] = {model.name: model for model in (
    Pretrained(
        "meld-text", "7 emotions (anger, disgust, fear, joy, neutral, sadness, surprise) of "
                     "multi-party TV dialogue, from the transcript", "GPL-3.0 (MELD)", "meld",
        "hotspot-erc ablate --dataset meld --data DATA --variants full --seeds 5 --epochs 20 "
        "--threads 1 --out results/meld-causal (the seed best on validation)"),
    Pretrained(
        "ravdess-audio", "8 emotions (neutral, calm, happy, sad, angry, fearful, disgust, "
                         "surprised) of acted English speech, from the recording",
        "CC BY-NC-SA 4.0 (RAVDESS): non-commercial use only", "ravdess",
        "hotspot-erc ablate --dataset ravdess --data DATA --variants full,no_hgf --seeds 3 "
        "--batch-size 16 --epochs 30 --out results/ravdess-pretrained (the run best on "
        "validation)"),
    Pretrained(
        "text-audio", "MELD's 7 emotions from the words and the voice together: meld-text "
                      "and ravdess-audio fused at prediction time (RAVDESS calm reads as "
                      "neutral)",
        "GPL-3.0 (MELD) and CC BY-NC-SA 4.0 (RAVDESS): non-commercial use only", "ravdess",
        "no training: hotspot_erc.engine.fusion pools meld-text and ravdess-audio; packaged "
        "with python -m hotspot_erc.engine.pretrained text-audio --fuse --data DATA"),
)}

# The fused models: their members (shipped models) and each member's labels as fused labels.
FUSED: dict[str, dict] = {
    "text-audio": {
        "label_names": ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"],
        "members": [
            {"model": "meld-text", "modality": "text", "weight": 1.0,
             "labels": {k: k for k in ("neutral", "surprise", "fear", "sadness", "joy",
                                       "disgust", "anger")}},
            {"model": "ravdess-audio", "modality": "audio", "weight": 1.0,
             "labels": {"neutral": "neutral", "calm": "neutral", "happy": "joy",
                        "sad": "sadness", "angry": "anger", "fearful": "fear",
                        "disgust": "disgust", "surprised": "surprise"}},
        ],
    },
}


def pretrained_names() -> list[str]:
    """The names of the shipped models this installation holds."""
    return [name for name, model in PRETRAINED.items()
            if (model.folder / "checkpoint.json").is_file()
            or (model.folder / "fusion.json").is_file()]


def pretrained_folder(name: str) -> Path:
    """The checkpoint folder of shipped model ``name``; an unknown name is a ValueError that
    lists the known ones."""
    if name not in pretrained_names():
        raise ValueError(f"--model {name!r}: no such shipped model; shipped: "
                         f"{', '.join(pretrained_names()) or 'none'} (hotspot-erc models "
                         "--pretrained)")
    return PRETRAINED[name].folder


def pretrained_card(name: str):
    """The model card of shipped model ``name``, read without loading its weights."""
    from hotspot_erc.engine.checkpoint import MODEL_CARD_FILE
    from hotspot_erc.engine.model_card import ModelCard

    data = json.loads((pretrained_folder(name) / MODEL_CARD_FILE).read_text(encoding="utf-8"))
    return ModelCard.from_json(data, where=str(pretrained_folder(name) / MODEL_CARD_FILE))


CHECK_FILE = "check.json"
CHECK_DIALOGUES = {"meld": 3, "ravdess": 8}


def fresh_check(name: str, data: str | os.PathLike | None = None,
                folder: str | os.PathLike | None = None) -> dict:
    """What shipped model ``name`` (or the checkpoint in ``folder``) predicts now for a few test
    dialogues of its corpus, spread over the split, read from the corpus files in ``data`` and
    extracted with the checkpoint's own extractors: per utterance its label and probabilities,
    and the weighted F1 of those utterances against their gold labels."""
    from sklearn.metrics import f1_score

    from hotspot_erc.engine.datasets import load_conversations
    from hotspot_erc.engine.fusion import FusedPredictor, gold_labels
    from hotspot_erc.engine.predict import load_predictor

    model = PRETRAINED[name]
    predictor = load_predictor(folder or pretrained_folder(name), workers=1)
    # A fused model predicts its own labels: the corpus's gold labels read as those.
    mapping = (gold_labels(predictor, model.corpus) if isinstance(predictor, FusedPredictor)
               else None)
    corpus = load_conversations(model.corpus, data)
    tests, count = corpus.split("test"), CHECK_DIALOGUES.get(model.corpus, 3)
    chosen = tests[::max(1, len(tests) // count)][:count]  # spread over the split
    utterances, gold, predicted = {}, [], []
    for dialogue in chosen:
        bare = dialogue.unannotated()
        for utterance, truth in zip(predictor.predict(bare).utterances, dialogue.utterances,
                                    strict=True):
            utterances[utterance.id] = {"label": utterance.label,
                                        "probabilities": utterance.probabilities}
            if truth.label is not None and truth.scored:
                gold.append(mapping[truth.label] if mapping else truth.label)
                predicted.append(utterance.label)
    return {"model": name, "corpus": model.corpus,
            "dialogues": [dialogue.did for dialogue in chosen], "utterances": utterances,
            "weighted_f1": float(f1_score(gold, predicted, average="weighted",
                                          zero_division=0))}


def package(name: str, run: str | os.PathLike, data: str | os.PathLike | None = None) -> Path:
    """Copy the checkpoint of ``run`` into the package as shipped model ``name`` and write its
    ``check.json``."""
    source = Path(run)
    source = source / "checkpoint" if (source / "checkpoint").is_dir() else source
    target = PRETRAINED[name].folder
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    from hotspot_erc.engine.checkpoint import ASSETS_FOLDER, load_checkpoint, save_model_card

    for file in ("checkpoint.json", "weights.npz"):
        shutil.copy2(source / file, target / file)
    if (source / ASSETS_FOLDER).is_dir():  # e.g. the adapters of a tuned text encoder
        shutil.copytree(source / ASSETS_FOLDER, target / ASSETS_FOLDER)
    card = load_checkpoint(source).card
    save_model_card(target, dataclasses.replace(
        card, intended_use=f"{card.intended_use} Shipped with hotspot-erc as {name!r}; its "
                           f"training data's licence: {PRETRAINED[name].licence}."))
    write_json(target / CHECK_FILE, fresh_check(name, data))
    return target


def package_fusion(name: str, data: str | os.PathLike | None = None) -> Path:
    """Write fused model ``name`` (:data:`FUSED`) into the package: ``fusion.json``, a model
    card with its scores on the validation and test splits of its corpus (gold labels read as
    fused labels), and ``check.json``."""
    from hotspot_erc.engine.checkpoint import save_model_card
    from hotspot_erc.engine.datasets import load_conversations
    from hotspot_erc.engine.fusion import (
        FUSION_FILE,
        FUSION_FORMAT,
        FusedPredictor,
        FusionConfig,
        evaluate_fused,
    )
    from hotspot_erc.engine.model_card import ModelCard

    model = PRETRAINED[name]
    members = []
    for member in FUSED[name]["members"]:  # each member's prior: its training split's labels
        corpus = load_conversations(pretrained_card(member["model"]).dataset, data)
        counts = Counter(u.label for d in corpus.split("train") for u in d.utterances
                         if u.label is not None and u.scored)
        members.append({**member, "prior": {label: counts[label] / sum(counts.values())
                                            for label in corpus.label_names}})
    config = FusionConfig.from_json({"format": FUSION_FORMAT, **FUSED[name], "members": members})
    target = model.folder
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    write_json(target / FUSION_FILE, config.to_json())
    predictor = FusedPredictor.load(target, workers=1)
    dataset = load_conversations(model.corpus, data)
    members = [m.model for m in config.members]
    cards = [p.card for p in predictor.predictors]
    save_model_card(target, ModelCard(
        dataset=" + ".join(c.dataset for c in cards),
        domain="; ".join(f"{m}: {c.domain}" for m, c in zip(members, cards, strict=True)),
        label_names=list(config.label_names),
        modalities=[m.modality for m in config.members],
        scores={split: evaluate_fused(predictor, dataset, split) for split in ("valid", "test")},
        intended_use=f"Research. {' and '.join(members)} fused at prediction time (no "
                     f"training); its scores are measured on {model.corpus}'s validation "
                     "and test splits, their gold labels read as the fused labels. Expect "
                     "lower accuracy on conversations unlike both members' training data. "
                     "Shipped with "
                     f"hotspot-erc as {name!r}; licences: {model.licence}."))
    write_json(target / CHECK_FILE, fresh_check(name, data))
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="package a trained run as a shipped model")
    parser.add_argument("name", choices=sorted(PRETRAINED))
    parser.add_argument("run", nargs="?", help="the run (or checkpoint) folder")
    parser.add_argument("--fuse", action="store_true",
                        help="a fused model (FUSED): no run, its members are shipped models")
    parser.add_argument("--data", default=None, help="corpus folder (default: $HOTSPOT_ERC_DATA)")
    options = parser.parse_args()
    if options.fuse != (options.name in FUSED) or (options.run is None) != options.fuse:
        parser.error("a fused model takes --fuse and no run; any other model a run folder")
    print(package_fusion(options.name, options.data) if options.fuse
          else package(options.name, options.run, options.data))
