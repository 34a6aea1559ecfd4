"""How much cross-modal timing can decide on the synthetic benchmark's decoys, per setting.

For each setting (``--setting`` takes the same ``KEY=VALUE`` knobs as ``--synthetic-set``; the
knobs ``decoy_probability=1`` and ``with_prior=false`` are always added), generates the dataset
and prints, over the training utterances that carry a decoy in at least two modalities, the share
where an ideal reader of timing picks the true class
(:func:`hotspot_erc.data.synthetic.timing_picks_truth`: the class whose spans lie closer
together across modalities, each modality's systematic delay removed). 50% is chance: there,
no aligner, however good, can tell the true spans from the decoys by when they happen.

    python benchmarks/synthetic_timing.py --setting lag_max=0.5 --setting lag_max=1.5 \\
        --setting lag_max=0.25 audio_delay=0.75 video_delay=1.5
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", nargs="+", action="append", metavar="KEY=VALUE",
                        help="one setting's knobs (repeat the option for more settings)")
    args = parser.parse_args()

    import numpy as np

    from hotspot_erc.cli import _parse_overrides
    from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset, timing_picks_truth

    settings = args.setting or [["lag_max=0.5"], ["lag_max=1.5"]]
    print("| setting | decided utterances | timing picks the true class |")
    print("|---|---|---|")
    for pairs in settings:
        knobs = {**_parse_overrides(pairs, "--setting"), "decoy_probability": 1.0,
                 "with_prior": False}
        config = SyntheticConfig.from_dict(knobs)
        train = generate_dataset(config).split("train")
        picks = [timing_picks_truth(utterance.extra, config)
                 for dialogue in train for utterance in dialogue.utterances]
        decided = np.array([pick for pick in picks if pick is not None])
        print(f"| {' '.join(pairs)} | {decided.size} | {100 * decided.mean():.1f}% |")


if __name__ == "__main__":
    main()
