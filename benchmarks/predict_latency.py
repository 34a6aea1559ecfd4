"""End-to-end latency of `predict` on a 60-second two-speaker conversation, by stage.

Generates a 60 s conversation (espeak-ng speech in two voices, 480x360 face video at 15 fps,
H.264 mp4; see hotspot_erc.features.synth_media.make_conversation) and runs what
`hotspot-erc predict` runs: load the checkpoint, read the transcript, extract text, audio and
video with the checkpoint's extractors (2 workers: decoding included), run the model, write
predictions.jsonl and report.html. Prints the seconds and share of each stage, and the model's
latency per utterance (median of 20 forward passes over the conversation's batch).

    python benchmarks/predict_latency.py [--checkpoint RUN] [--seconds 60]

Without --checkpoint it builds the demonstration checkpoint once into
~/.cache/hotspot-erc/demo (about 2 minutes) and reuses it afterwards.
Goal (issue 7): the whole run under 15 s, the model under 10 ms per utterance.
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
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import torch

    from hotspot_erc.data.batch import collate
    from hotspot_erc.data.transcript import load_transcript
    from hotspot_erc.engine.demo import build_demo
    from hotspot_erc.engine.predict import Predictor
    from hotspot_erc.features.decode import probe
    from hotspot_erc.features.synth_media import make_conversation
    from hotspot_erc.features.text import cache_root
    from hotspot_erc.report.outputs import write_outputs

    torch.set_num_threads(2)
    checkpoint = args.checkpoint or build_demo(cache_root() / "demo", progress=False,
                                               workers=args.workers)["checkpoint"]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        manifest = make_conversation(scratch / "media", seconds=args.seconds)
        video = scratch / "media" / "conversation.mp4"
        stages = {}
        began = time.perf_counter()
        predictor = Predictor.load(checkpoint, workers=args.workers)
        dialogue, notices = load_transcript(manifest, media={"video": str(video),
                                                             "audio": str(video)},
                                            media_duration=probe(video).duration)
        stages["load checkpoint + transcript"] = time.perf_counter() - began
        conversation = predictor.predict(dialogue, notices=notices)
        timings = conversation.timings
        stages["extraction (decode, text, audio, video; models loaded)"] = timings["extract_s"]
        stages["model (batch + forward)"] = timings["model_s"]
        stages["evidence (hotspot spans, routing)"] = timings["evidence_s"]
        mark = time.perf_counter()
        write_outputs(conversation, scratch / "out")
        stages["predictions.jsonl + report.html"] = time.perf_counter() - mark
        total = time.perf_counter() - began
        utterances = len(dialogue.utterances)
        print(f"{args.seconds:.0f} s conversation, {utterances} utterances, checkpoint "
              f"{checkpoint}")
        for name, seconds in stages.items():
            print(f"  {name:<58}{seconds:7.2f} s  {100 * seconds / total:5.1f}%")
        print(f"  {'total':<58}{total:7.2f} s  (real-time factor {total / args.seconds:.3f})")
        # Model only: the forward pass over the whole conversation, features already in memory.
        from hotspot_erc.data.dialogue import Dataset
        from hotspot_erc.features.extract import extract_features, load_extracted

        dataset = Dataset(dialogue.did, [dialogue], predictor.checkpoint.label_names,
                          {"all": [dialogue.did]})
        report = extract_features(dataset, scratch / "features", predictor.extract_config(),
                                  progress=False)
        loaded = load_extracted(scratch / "features", report)
        batch = collate(loaded.dialogues, loaded.label_names, loaded.feature_spec)
        model = predictor.checkpoint.model.eval()
        runs = []
        with torch.no_grad():
            for _ in range(20):
                mark = time.perf_counter()
                model(batch)
                runs.append(time.perf_counter() - mark)
        runs.sort()
        median = runs[len(runs) // 2]
        print(f"model only: {1000 * median:.1f} ms per forward pass over the {utterances} "
              f"utterances = {1000 * median / utterances:.2f} ms per utterance (2 threads)")


if __name__ == "__main__":
    main()
