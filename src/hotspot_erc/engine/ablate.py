"""Ablations: every variant x every seed, summarised as mean +- std.

``ablate`` trains every (variant, seed) pair into ``out/<variant>/seed<k>/`` (a finished run is
read back, not retrained, so an interrupted ablation resumes) and writes ``summary.json`` (per
variant: the seeds, and per split and metric the mean, std and per-seed values) and
``summary.md`` (mean +- std, in percent). Selection is always on validation. An existing
``summary.json`` of the same dataset, labels and selection keeps the variants of earlier calls, so
variants run with different seed counts (one call each) end up in one table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from hotspot_erc.atomic import write_json, write_text
from hotspot_erc.data.dialogue import Dataset
from hotspot_erc.engine.metrics import summarise_runs
from hotspot_erc.engine.train import run_config, train

HEADLINE_METRICS = ("weighted_f1", "accuracy", "macro_f1")


def ablate(dataset: Dataset, variants: Sequence[str], seeds: Sequence[int], out_dir,
           model_overrides: Mapping | None = None, train_overrides: Mapping | None = None,
           progress: bool = True) -> dict:
    """Train every variant with every seed (skipping finished runs) into
    ``out_dir/<variant>/seed<k>`` and summarise them in ``summary.json`` / ``summary.md``."""
    out_dir = Path(out_dir)
    configs = {(variant, seed): run_config(dataset, variant, model_overrides, train_overrides,
                                           seed)
               for variant in variants for seed in seeds}  # a bad one fails before training
    selection = {train.selection_metric for _, train in configs.values()}
    if len(selection) > 1:
        raise ValueError(f"the variants would be selected on different metrics {selection}")
    summary = {"dataset": dataset.name, "label_names": dataset.label_names,
               "selection": f"validation {selection.pop()}", "variants": {}}
    previous = out_dir / "summary.json"
    if previous.is_file():
        earlier = json.loads(previous.read_text(encoding="utf-8"))
        if (earlier.get("dataset"), earlier.get("label_names"), earlier.get("selection")) == (
                summary["dataset"], summary["label_names"], summary["selection"]):
            # Variants of earlier calls stay in the summary (e.g. 5 seeds for some variants,
            # 3 for others); this call's variants are recomputed from their run folders.
            summary["variants"] = dict(earlier.get("variants", {}))
    for variant in variants:
        per_seed = []
        for seed in seeds:
            run_dir = out_dir / variant / f"seed{seed}"
            if (run_dir / "metrics.json").exists():
                per_seed.append(json.loads((run_dir / "metrics.json").read_text()))
                continue
            model_config, train_config = configs[(variant, seed)]
            per_seed.append(train(dataset, model_config, train_config, run_dir,
                                  progress=progress).metrics)
        summary["variants"][variant] = summarise_variant(per_seed, list(seeds),
                                                         dataset.label_names)
        write_json(out_dir / "summary.json", summary)
    write_text(out_dir / "summary.md", summary_table(summary))
    return summary


def summarise_variant(per_seed: list[dict], seeds: list[int], label_names: list[str]) -> dict:
    result = {"seeds": seeds, "best_epochs": [m["best_epoch"] for m in per_seed]}
    for split in ("valid", "test"):
        if not all(split in m for m in per_seed):
            continue
        block = {metric: summarise_runs([m[split][metric] for m in per_seed])
                 for metric in HEADLINE_METRICS}
        block["per_class_f1"] = {name: summarise_runs([m[split]["per_class_f1"][name]
                                                       for m in per_seed])
                                 for name in label_names}
        result[split] = block
    return result


def summary_table(summary: dict, split: str = "test") -> str:
    """A markdown table of mean +- std (percent) per variant and metric, per-class F1 after."""
    labels = summary["label_names"]
    head = ["variant", "seeds", *[f"{m} ({split})" for m in HEADLINE_METRICS],
            "weighted_f1 (valid)"]
    lines = [f"Dataset `{summary['dataset']}`; selection on {summary['selection']}; "
             "mean +- std over seeds, percent.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, block in summary["variants"].items():
        cells = [variant, str(len(block["seeds"]))]
        cells += [_pm(block.get(split, {}).get(m)) for m in HEADLINE_METRICS]
        cells.append(_pm(block.get("valid", {}).get("weighted_f1")))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Per-class F1 ({split}):", "",
              "| variant | " + " | ".join(labels) + " |", "|" + "---|" * (len(labels) + 1)]
    for variant, block in summary["variants"].items():
        per_class = block.get(split, {}).get("per_class_f1", {})
        lines.append(f"| {variant} | " + " | ".join(_pm(per_class.get(n)) for n in labels) + " |")
    return "\n".join(lines) + "\n"


def _pm(stat: dict | None) -> str:
    if not stat:
        return "-"
    return f"{100 * stat['mean']:.1f} +- {100 * stat['std']:.1f}"
