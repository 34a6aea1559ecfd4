"""The shipped fused model (text-audio) on RAVDESS against each of its members alone.

RAVDESS actors say two fixed, neutral sentences, so the words carry no emotion there: this
measures what pooling the text model's probabilities costs (or gives) where the voice alone
carries the answer. Scores are in the fused labels (MELD's 7; RAVDESS calm read as neutral).

    python benchmarks/fusion_ravdess.py --data ../shared/data [--splits valid,test]
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="corpus folder (default: $HOTSPOT_ERC_DATA)")
    parser.add_argument("--splits", default="valid,test")
    parser.add_argument("--model", default="text-audio")
    options = parser.parse_args()

    from hotspot_erc.engine.datasets import load_conversations
    from hotspot_erc.engine.fusion import evaluate_fused
    from hotspot_erc.engine.predict import Predictor
    from hotspot_erc.engine.pretrained import PRETRAINED

    predictor = Predictor.from_pretrained(options.model, workers=1)
    dataset = load_conversations(PRETRAINED[options.model].corpus, options.data)
    rows = [("fused", None), *((f"{m.model} alone", m.modality)
                               for m in predictor.config.members)]
    print(f"{options.model} on {dataset.name}, fused labels; weighted F1 / accuracy / macro F1")
    with tempfile.TemporaryDirectory() as features:
        for split in options.splits.split(","):
            for name, only in rows:
                scores = evaluate_fused(predictor, dataset, split, only, feature_folder=features)
                print(f"{split:6} {name:22} " + " / ".join(
                    f"{100 * scores[k]:.1f}" for k in ("weighted_f1", "accuracy", "macro_f1")),
                    flush=True)


if __name__ == "__main__":
    main()
