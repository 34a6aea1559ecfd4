"""Streaming latency: seconds from a new text utterance to its prediction, encoder included.

Replays conversations one utterance at a time through
:class:`~hotspot_erc.engine.stream.StreamingPredictor` (in this process: the latency a server
adds on top is the WebSocket round trip) and prints, over every push, p50/p95/p99 of the whole
push and of its two parts (encoding the utterance's text; the model over the conversation so
far, evidence included), the same by conversation length, and how many labels were revised.

    python benchmarks/stream_latency.py --checkpoint RUN --dataset iemocap6 --data ../shared/data
    python benchmarks/stream_latency.py            # the demonstration checkpoint, its transcript

The conversations are the test dialogues of --dataset (a corpus name with text, read from
--data), at most --dialogues of them; without --dataset, the demonstration's conversation
repeated --repeat times. Without --checkpoint it builds the demonstration checkpoint once into
~/.cache/hotspot-erc/demo (about 2 minutes). Target (issue 16): p95 <= 50 ms per new text
utterance on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def conversations(args) -> list:
    from hotspot_erc.data.dialogue import Dialogue, Utterance

    if args.dataset:
        from hotspot_erc.data.corpora import load_dataset

        corpus = load_dataset(args.dataset, args.data)
        chosen = corpus.split("test")[:args.dialogues]
    else:
        from hotspot_erc.data.transcript import load_transcript

        dialogue, _ = load_transcript(args.transcript)
        chosen = [Dialogue(f"{dialogue.did}-{n}", dialogue.utterances)
                  for n in range(args.repeat)]
    return [Dialogue(d.did, [Utterance(u.uid, u.speaker, u.text, u.start, u.end)
                             for u in d.utterances]) for d in chosen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--dataset", default=None, help="a corpus with text: iemocap6, meld...")
    parser.add_argument("--data", default=None)
    parser.add_argument("--dialogues", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()

    import torch

    from hotspot_erc.engine.predict import Predictor
    from hotspot_erc.engine.stream import StreamingPredictor

    torch.set_num_threads(args.threads)
    args.transcript = None
    checkpoint = args.checkpoint
    if checkpoint is None or not args.dataset:
        from hotspot_erc.engine.demo import build_demo
        from hotspot_erc.features.text import cache_root

        demo = build_demo(cache_root() / "demo", progress=False)
        checkpoint = checkpoint or demo["checkpoint"]
        args.transcript = demo["transcript"]
    predictor = Predictor.load(checkpoint, workers=1)
    deadline = time.monotonic() + args.max_seconds
    totals, encodes, models, by_length, revisions, pushes = [], [], [], {}, 0, 0
    replayed = conversations(args)
    for dialogue in replayed:
        stream = StreamingPredictor(predictor, name=dialogue.did)
        for index, utterance in enumerate(dialogue.utterances):
            began = time.perf_counter()
            update = stream.push(utterance)
            total = time.perf_counter() - began
            totals.append(total)
            encodes.append(update.timings["extract_s"])
            models.append(update.timings["model_s"])
            by_length.setdefault(min(index // 20, 3), []).append(total)
            revisions += len(update.revisions)
            pushes += 1
        if time.monotonic() > deadline:
            print(f"stopped after {args.max_seconds:g} s (--max-seconds)")
            break
    causal = predictor.checkpoint.config.causal
    print(f"checkpoint {checkpoint} ({'causal' if causal else 'offline'}: variant "
          f"{predictor.checkpoint.config.variant}), {args.threads} threads")
    print(f"{pushes} pushes in {len(replayed)} conversations; {revisions} earlier labels "
          "revised")
    print("milliseconds per push      p50     p95     p99    mean")
    for name, values in (("whole push", totals), ("text encoding", encodes),
                         ("model + evidence", models)):
        print(f"  {name:<22} {1000 * percentile(values, 50):7.1f} "
              f"{1000 * percentile(values, 95):7.1f} {1000 * percentile(values, 99):7.1f} "
              f"{1000 * statistics.fmean(values):7.1f}")
    print("whole push by position in the conversation (ms, p50 / p95)")
    for bucket, values in sorted(by_length.items()):
        label = f"utterances {20 * bucket + 1}-{20 * bucket + 20}" if bucket < 3 \
            else "utterances 61+"
        print(f"  {label:<22} {1000 * percentile(values, 50):7.1f} "
              f"{1000 * percentile(values, 95):7.1f}  ({len(values)} pushes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
