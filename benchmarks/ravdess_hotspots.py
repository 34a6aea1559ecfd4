"""Where the audio hotspots fall in RAVDESS sentences: the rule-based prior and the learned weights.

For the test files of RAVDESS (actors 13-16) it runs a trained checkpoint and, per file, finds
the frame of the highest hotspot prior and of the highest learned HGF hotspot weight among the
speech frames, and places each in the sentence as a fraction of the speech span (0 = first
speech frame, 1 = last). RAVDESS sentences have a fixed wording ("Kids are talking by the door",
"Dogs are sitting by the door"), so thirds of the speech span roughly hold the subject
("Kids are"), the verb ("talking/sitting") and "by the door". Prints a few examples and, per
emotion, how often each peak falls in each third.

    python benchmarks/ravdess_hotspots.py --checkpoint results/ravdess/full/seed0 [--data DIR]
"""

from __future__ import annotations

import argparse
import os
from collections import Counter, defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")

THIRDS = ("start", "middle", "end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", default=None)
    parser.add_argument("--examples", type=int, default=8)
    args = parser.parse_args()

    import numpy as np
    import torch

    from hotspot_erc.data.batch import collate
    from hotspot_erc.engine.checkpoint import load_checkpoint
    from hotspot_erc.engine.datasets import resolve_dataset

    torch.set_num_threads(2)
    dataset = resolve_dataset("ravdess", args.data, progress=False)
    checkpoint = load_checkpoint(args.checkpoint)
    checkpoint.check_features(dataset.feature_spec)
    model = checkpoint.model.eval()
    rows = []
    dialogues = dataset.split("test")
    for start in range(0, len(dialogues), 32):
        group = dialogues[start:start + 32]
        batch = collate(group, dataset.label_names, dataset.feature_spec)
        with torch.no_grad():
            output = model(batch)
        weights = output.hotspots["audio"].hotspot_weights.numpy()  # (B, 1, L)
        predicted = output.logits.argmax(-1).numpy()
        for index, dialogue in enumerate(group):
            utterance = dialogue.utterances[0]
            record = utterance.features["audio"]
            valid = np.flatnonzero(record.local_mask)
            times = record.position_times
            span = max(times[valid[-1]] - times[valid[0]], 1e-6)
            learned = weights[index, 0, :record.num_positions]
            peaks = {"prior": valid[np.argmax(record.prior[valid])],
                     "learned": valid[np.argmax(learned[valid])]}
            rows.append({
                "uid": utterance.uid, "label": utterance.label, "text": utterance.text,
                "predicted": dataset.label_names[predicted[index, 0]],
                "speech": (times[valid[0]], times[valid[-1]]),
                **{f"{name}_time": float(times[peak]) for name, peak in peaks.items()},
                **{f"{name}_fraction": float((times[peak] - times[valid[0]]) / span)
                   for name, peak in peaks.items()}})
    print(f"{len(rows)} test files; peak times in seconds from the file start, and as a "
          "fraction of the speech span")
    print(f"{'file':<22}{'label':<10}{'predicted':<10}{'speech (s)':>13}{'prior peak':>16}"
          f"{'learned peak':>16}")
    for row in rows[::max(1, len(rows) // args.examples)][:args.examples]:
        print(f"{row['uid']:<22}{row['label']:<10}{row['predicted']:<10}"
              f"{row['speech'][0]:>6.2f}-{row['speech'][1]:<6.2f}"
              f"{row['prior_time']:>8.2f} ({row['prior_fraction']:.2f})"
              f"{row['learned_time']:>8.2f} ({row['learned_fraction']:.2f})")
    for name in ("prior", "learned"):
        print(f"\n{name} peak position in the sentence (share of files per third):")
        by_label: dict[str, Counter] = defaultdict(Counter)
        for row in rows:
            third = THIRDS[min(2, int(row[f"{name}_fraction"] * 3))]
            by_label[row["label"]][third] += 1
            by_label["all"][third] += 1
        for label in [*dataset.label_names, "all"]:
            counts = by_label[label]
            total = sum(counts.values())
            print(f"  {label:<10}" + "  ".join(f"{third} {100 * counts[third] / total:4.0f}%"
                                               for third in THIRDS))
    agree = np.mean([abs(r["prior_time"] - r["learned_time"]) <= 0.2 for r in rows])
    print(f"\nprior and learned peaks within 0.2 s of each other: {100 * agree:.0f}% of files")


if __name__ == "__main__":
    main()
