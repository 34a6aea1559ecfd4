"""Forward + backward time and peak memory of model variants on one batch (prints numbers).

The batch: 10 dialogues x 50 utterances x 3 modalities with 32 text, 100 audio and 50 video
positions (dims 384 / 25 / 32, like MiniLM tokens, eGeMAPS descriptors and face descriptors),
random values, 2 CPU threads. Each variant runs in its own process so its peak resident memory
is its own.

    python benchmarks/model_speed.py                 # full, corect, fixed_align, no_hgf
    python benchmarks/model_speed.py --variants full,no_moa --repeats 5
    python benchmarks/model_speed.py --variants full,fixed_align --set moa.time_bias=true
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

SHAPE = {"dialogues": 10, "utterances": 50,
         "positions": {"text": 32, "audio": 100, "video": 50},
         "dims": {"text": 384, "audio": 25, "video": 32}}


def make_batch(seed: int = 0):
    import torch

    from hotspot_erc.data.batch import Batch, ModalityBatch

    generator = torch.Generator().manual_seed(seed)
    num, width = SHAPE["dialogues"], SHAPE["utterances"]
    modalities = {}
    for m, positions in SHAPE["positions"].items():
        dim = SHAPE["dims"][m]
        ones = torch.ones(num, width, dtype=torch.bool)
        modalities[m] = ModalityBatch(
            global_vector=torch.randn(num, width, dim, generator=generator),
            local=torch.randn(num, width, positions, dim, generator=generator),
            local_mask=torch.ones(num, width, positions, dtype=torch.bool), present=ones,
            prior=torch.rand(num, width, positions, generator=generator), has_prior=ones,
            hotspot_truth=torch.zeros(num, width, positions, dtype=torch.bool),
            has_truth=torch.zeros(num, width, dtype=torch.bool))
    speakers = torch.randint(0, 2, (num, width), generator=generator)
    labels = torch.randint(0, 6, (num, width), generator=generator)
    ids = [[f"d{b}_u{u}" for u in range(width)] for b in range(num)]
    return Batch([f"d{b}" for b in range(num)], ids, torch.ones(num, width, dtype=torch.bool),
                 labels, speakers, modalities)


def measure(variant: str, repeats: int, threads: int, settings: dict) -> dict:
    import torch

    from hotspot_erc.model.config import ModelConfig
    from hotspot_erc.model.variants import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    base = ModelConfig(input_dims={m: (d, d) for m, d in SHAPE["dims"].items()}, num_classes=6)
    model = build_model(variant, base, settings)
    model.train()
    batch = make_batch()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for step in range(repeats + 1):
        started = time.perf_counter()
        output = model(batch)
        model.loss(output, batch.labels).backward()
        model.zero_grad(set_to_none=True)
        if step:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"variant": variant, "seconds_median": statistics.median(times),
            "seconds_min": min(times), "peak_rss_mib": peak / 1024,
            "step_rss_growth_mib": (peak - before) / 1024,
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="full,corect,fixed_align,no_hgf")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="model setting for every variant, e.g. moa.time_bias=true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from hotspot_erc.cli import _parse_overrides

    settings = _parse_overrides(args.set, "--set")
    if args.one:
        print(json.dumps(measure(args.one, args.repeats, args.threads, settings)))
        return
    results = {}
    for variant in args.variants.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", variant, "--repeats",
                              str(args.repeats), "--threads", str(args.threads),
                              *[f"--set={pair}" for pair in args.set]],
                             check=True, capture_output=True, text=True).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    print(f"batch: {SHAPE['dialogues']} dialogues x {SHAPE['utterances']} utterances, positions "
          f"{SHAPE['positions']}, {args.threads} threads, median of {args.repeats}"
          + (f", settings {settings}" if settings else ""))
    print(f"{'variant':<14}{'fwd+bwd s':>11}{'peak RSS MiB':>14}{'parameters':>12}")
    for name, row in results.items():
        print(f"{name:<14}{row['seconds_median']:>11.3f}{row['peak_rss_mib']:>14.0f}"
              f"{row['parameters']:>12,}")
    for other in ("corect", "fixed_align", "no_hgf"):
        if "full" in results and other in results:
            ratio = results["full"]["seconds_median"] / results[other]["seconds_median"]
            print(f"full / {other}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
