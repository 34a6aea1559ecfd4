"""Seconds per training epoch (train + validation) of model variants on a real corpus.

Trains each variant for a few epochs with its own training defaults (``corect``: CORECT's batch
of 10 dialogues) and the given thread count, and prints the mean seconds per epoch from the
run's ``epochs.jsonl``. With ``--epochs-run`` it also prints the time of a whole multi-seed run
(seconds per epoch x the epochs that run trained, e.g. counted from its ``epochs.jsonl`` files).
Run it on an otherwise idle machine: other processes on the same cores inflate the numbers.

    python benchmarks/epoch_time.py --dataset iemocap6 --data ../shared/data
    python benchmarks/epoch_time.py --variants full,corect --threads 2 --epochs 3 \\
        --epochs-run full=100,corect=755
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="iemocap6")
    parser.add_argument("--data", default=os.environ.get("HOTSPOT_ERC_DATA", "../shared/data"))
    parser.add_argument("--text-setting", default="minilm")
    parser.add_argument("--variants", default="full,corect")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs-run", default="",
                        help="VARIANT=EPOCHS,...: epochs of a whole run to price, e.g. full=100")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from hotspot_erc.engine.datasets import resolve_dataset
    from hotspot_erc.engine.train import run_config, train

    dataset = resolve_dataset(args.dataset, args.data, text_setting=args.text_setting,
                              progress=False)
    priced = dict(item.split("=") for item in args.epochs_run.split(",") if item)
    train_overrides = {"epochs": args.epochs, "threads": args.threads, "patience": args.epochs,
                       "min_epochs": 0}
    print(f"dataset {dataset.name} ({args.text_setting}), {args.threads} threads, "
          f"{args.epochs} epochs per variant")
    for variant in args.variants.split(","):
        model_config, train_config = run_config(dataset, variant, {}, train_overrides, 0)
        with tempfile.TemporaryDirectory() as folder:
            train(dataset, model_config, train_config, Path(folder) / "run", progress=False)
            lines = (Path(folder) / "run" / "epochs.jsonl").read_text().splitlines()
        seconds = [json.loads(line)["seconds"] for line in lines]
        per_epoch = statistics.mean(seconds)
        line = (f"{variant:10s} {per_epoch:6.2f} s/epoch (epochs: "
                f"{', '.join(f'{s:.2f}' for s in seconds)}; batch {train_config.batch_size})")
        if variant in priced:
            total = per_epoch * int(priced[variant])
            line += f"; {priced[variant]} epochs: {total / 60:.1f} min"
        print(line, flush=True)


if __name__ == "__main__":
    main()
