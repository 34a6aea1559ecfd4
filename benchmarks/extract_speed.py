"""Real-time factor of feature extraction from raw media (seconds of processing per second).

Generates a two-speaker conversation (espeak-ng speech, 480x360 face video at 15 fps, muxed as
H.264 mp4; see hotspot_erc.features.synth_media.make_conversation), then extracts it with
``extract_features`` into fresh stores: each modality alone, then all three together with the
workers given (default 2, one per core: audio and video of the conversation run in parallel
while the main process extracts the text). Each timing is the whole call, so it includes decoding,
loading the models and starting the worker processes; the "warm" line re-times the audio and
video description of one dialogue in this process with models already loaded.

    python benchmarks/extract_speed.py [--seconds 60] [--workers 2] [--repeats 1]

Goal (issue 6): the whole extraction below 0.25 (one minute of conversation in under 15 s).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fps", type=float, default=15.0)
    args = parser.parse_args()

    import torch

    from hotspot_erc.data.manifest import load_manifest
    from hotspot_erc.features.extract import (
        ExtractConfig,
        build_extractors,
        extract_features,
        extract_media_dialogue,
    )
    from hotspot_erc.features.synth_media import make_conversation

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        manifest = make_conversation(scratch / "media", seconds=args.seconds, fps=args.fps)
        dataset = load_manifest(manifest)
        utterances = len(dataset.dialogues[0].utterances)
        media = sum(u.end - u.start for u in dataset.dialogues[0].utterances)
        print(f"conversation: {args.seconds:.0f} s of 480x360 video at {args.fps:g} fps with "
              f"16 kHz speech, {utterances} utterances covering {media:.1f} s")
        rows = []
        for label, modalities, workers in (("text", ("text",), 1), ("audio", ("audio",), 1),
                                           ("video", ("video",), 1),
                                           ("all", ("text", "audio", "video"), args.workers)):
            config = ExtractConfig(modalities=modalities, fps=args.fps, workers=workers)
            began = time.perf_counter()
            report = extract_features(dataset, scratch / f"store-{label}", config,
                                      progress=False)
            seconds = time.perf_counter() - began
            if report.failures:
                raise SystemExit(report.summary())
            rows.append((f"{label} ({workers} worker{'s' if workers > 1 else ''})", seconds))
        print(f"{'extraction':<24}{'seconds':>9}{'real-time factor':>18}")
        for label, seconds in rows:
            print(f"{label:<24}{seconds:>9.2f}{seconds / args.seconds:>18.3f}")
        config = ExtractConfig(fps=args.fps, workers=1)
        extractors = build_extractors(config, ["audio", "video"])
        dialogue = dataset.dialogues[0]
        for modality in ("audio", "video"):
            extract_media_dialogue(dialogue, modality, extractors, config)  # load the models
            began = time.perf_counter()
            extract_media_dialogue(dialogue, modality, extractors, config)
            seconds = time.perf_counter() - began
            print(f"warm {modality} (1 core, decode + describe): {seconds:.2f} s, real-time "
                  f"factor {seconds / args.seconds:.3f}")


if __name__ == "__main__":
    main()
