"""The shipped models on a corpus they were not trained on, over the labels both share.

Two cases (issue 15): the MELD text model on IEMOCAP's test split (transcripts, whole dialogues
as context; IEMOCAP's happy and excited read as happy, frustrated has no MELD counterpart and
is left out), and the RAVDESS audio model on the CREMA-D clips in the shared data (RAVDESS calm
reads as neutral; surprised has no CREMA-D counterpart). A prediction is the shared label whose
model labels hold the most probability (the model's other labels are ignored); the score of the
plain argmax over all the model's labels, where a label outside the shared set counts as wrong,
is printed beside it.

    python benchmarks/cross_corpus.py --data ../shared/data [--cases meld-text@iemocap6]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# (model, corpus, split): (model label -> shared label, corpus label -> shared label)
CASES = {
    ("meld-text", "iemocap6", "test"): (
        {"neutral": "neutral", "joy": "happy", "sadness": "sad", "anger": "angry"},
        {"neu": "neutral", "hap": "happy", "exc": "happy", "sad": "sad", "ang": "angry"}),
    ("ravdess-audio", "crema-d", "test"): (
        {"neutral": "neutral", "calm": "neutral", "happy": "happy", "sad": "sad",
         "angry": "angry", "fearful": "fear", "disgust": "disgust"},
        {"NEU": "neutral", "HAP": "happy", "SAD": "sad", "ANG": "angry", "FEA": "fear",
         "DIS": "disgust"}),
}


def evaluate(model: str, corpus: str, split: str, data) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    from hotspot_erc.engine.datasets import load_conversations
    from hotspot_erc.engine.predict import Predictor

    to_shared, gold_to_shared = CASES[(model, corpus, split)]
    predictor = Predictor.from_pretrained(model, workers=1)
    dataset = load_conversations(corpus, data)
    shared = sorted(set(to_shared.values()))
    gold, restricted, plain = [], [], []
    began = time.perf_counter()
    for dialogue in dataset.split(split):
        bare = dialogue.unannotated()
        for truth, row in zip(dialogue.utterances, predictor.predict(bare).utterances,
                              strict=True):
            if truth.label not in gold_to_shared or not truth.scored:
                continue
            mass = Counter()
            for label, probability in row.probabilities.items():
                if label in to_shared:
                    mass[to_shared[label]] += probability
            gold.append(gold_to_shared[truth.label])
            restricted.append(max(shared, key=lambda label: mass[label]))
            plain.append(to_shared.get(row.label, f"other:{row.label}"))
    return {"utterances": len(gold), "seconds": time.perf_counter() - began,
            "labels": shared, "gold": Counter(gold),
            **{f"{name}_{metric}": function(gold, predicted)
               for name, predicted in (("shared", restricted), ("plain", plain))
               for metric, function in (
                   ("weighted_f1", lambda g, p: f1_score(g, p, labels=shared,
                                                         average="weighted", zero_division=0)),
                   ("accuracy", accuracy_score))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="corpus folder (default: $HOTSPOT_ERC_DATA)")
    parser.add_argument("--cases", default=",".join(f"{m}@{c}" for m, c, _ in CASES),
                        help="MODEL@CORPUS, comma-separated")
    options = parser.parse_args()
    chosen = {tuple(case.split("@")) for case in options.cases.split(",")}
    for (model, corpus, split) in CASES:
        if (model, corpus) not in chosen:
            continue
        result = evaluate(model, corpus, split, options.data)
        print(f"{model} on {corpus} {split}: {result['utterances']} utterances over "
              f"{', '.join(result['labels'])} (gold: "
              + ", ".join(f"{k} {v}" for k, v in sorted(result["gold"].items())) + ")")
        print(f"  shared labels: weighted F1 {100 * result['shared_weighted_f1']:.1f}, "
              f"accuracy {100 * result['shared_accuracy']:.1f}; plain argmax: weighted F1 "
              f"{100 * result['plain_weighted_f1']:.1f}, accuracy "
              f"{100 * result['plain_accuracy']:.1f}  ({result['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
