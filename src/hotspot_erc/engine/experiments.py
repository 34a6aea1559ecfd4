"""Experiments: datasets by name, ablations over variants x seeds, and the README's main job.

``ablate`` trains every (variant, seed) pair into ``out/<variant>/seed<k>/`` (a finished run is
read back, not retrained, so an interrupted ablation resumes) and writes ``summary.json`` (per
variant: the seeds, and per split and metric the mean, std and per-seed values) and
``summary.md`` (mean +- std, in percent). Selection is always on validation. An existing
``summary.json`` of the same dataset, labels and selection keeps the variants of earlier calls, so
variants run with different seed counts (one call each) end up in one table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from hotspot_erc.atomic import write_json, write_text
from hotspot_erc.data.dialogue import Dataset
from hotspot_erc.engine.metrics import summarise_runs
from hotspot_erc.engine.train import TrainConfig, model_config_for, train
from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.variants import get_variant

HEADLINE_METRICS = ("weighted_f1", "accuracy", "macro_f1")


def resolve_dataset(name: str, data: str | os.PathLike | None = None,
                    text_setting: str = "minilm", cache_dir: str | os.PathLike | None = None,
                    synthetic_overrides: dict | None = None, fmt: str | None = None,
                    format_options: dict | None = None, progress: bool = True,
                    speaker_norm: Sequence[str] = (), speaker_norm_scope: str = "dataset"
                    ) -> Dataset:
    """A dataset with features (``progress``: show extraction progress bars), with
    ``speaker_norm`` modalities normalised per speaker
    (:func:`~hotspot_erc.data.speaker_norm.normalise_speakers`).

    ``name`` is ``synthetic``, a real corpus name (``iemocap6``, ``iemocap4``, ``meld``: text
    features are extracted once and cached; ``ravdess``, ``crema-d``: features extracted from
    their media, see :data:`~hotspot_erc.data.corpora.MEDIA_CORPORA`), or a path read in format
    ``fmt`` (see :data:`hotspot_erc.data.corpora.FORMATS`; without ``fmt``, what the path holds
    decides: :func:`~hotspot_erc.data.corpora.detect_format`). A path without features (a
    manifest) is extracted: text, and audio and video where it names media files.
    """
    dataset = _resolve_features(name, data, text_setting, cache_dir, synthetic_overrides, fmt,
                                format_options, progress)
    if speaker_norm:
        from hotspot_erc.data.speaker_norm import normalise_speakers

        dataset = normalise_speakers(dataset, list(speaker_norm), speaker_norm_scope)
    return dataset


def _resolve_features(name, data, text_setting, cache_dir, synthetic_overrides, fmt,
                      format_options, progress) -> Dataset:
    if name == "synthetic":
        from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset

        return generate_dataset(SyntheticConfig(**(synthetic_overrides or {})))
    if fmt is not None or Path(name).exists():
        from hotspot_erc.data.corpora import detect_format, load_path

        dataset = load_path(name, fmt or detect_format(name), **(format_options or {}))
        if dataset.feature_spec.modalities:
            return dataset
        from hotspot_erc.features.extract import ExtractConfig, extract_dataset, media_modalities

        if media_modalities(dataset):
            return extract_dataset(dataset, ExtractConfig(text_setting=text_setting),
                                   cache_dir=cache_dir, progress=progress)
        from hotspot_erc.features.text_store import extract_text_dataset

        return extract_text_dataset(dataset, setting=text_setting, cache_dir=cache_dir,
                                    progress=progress)
    from hotspot_erc.data.corpora import MEDIA_CORPORA

    if name in MEDIA_CORPORA:
        from hotspot_erc.data.corpora import load_dataset
        from hotspot_erc.features.extract import ExtractConfig, extract_dataset
        from hotspot_erc.features.text_store import default_feature_cache

        config = ExtractConfig(modalities=MEDIA_CORPORA[name], text_setting=text_setting)
        return extract_dataset(load_dataset(name, data), config,
                               folder=default_feature_cache(name, cache_dir), progress=progress)
    from hotspot_erc.features.text_store import load_text_dataset

    return load_text_dataset(name, data, setting=text_setting, cache_dir=cache_dir,
                             progress=progress)


def run_config(dataset: Dataset, variant: str, model_overrides: Mapping | None = None,
               train_overrides: Mapping | None = None, seed: int = 0
               ) -> tuple[ModelConfig, TrainConfig]:
    """The configs that train ``variant`` on ``dataset``: each config's defaults, then what the
    dataset fixes (dimensions, classes), then the variant's settings, then the user's
    ``model_overrides`` / ``train_overrides`` (:class:`~hotspot_erc.model.variants.Variant`)."""
    chosen = get_variant(variant)
    model_config = chosen.model_config(model_config_for(dataset, ModelConfig()), model_overrides)
    train_config = TrainConfig().replace(**chosen.train_defaults).replace(
        **dict(train_overrides or {}), seed=seed)
    return model_config, train_config


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


def quickstart(out_dir, epochs: int = 20, seed: int = 0, progress: bool = True) -> dict:
    """The README's main job: ``full`` and ``no_hgf`` on the built-in synthetic benchmark.

    Returns, per variant, the test metrics and the hotspot-localisation AUROC of the learned
    hotspot weights against the generator's ground truth.
    """
    dataset = resolve_dataset("synthetic")
    report = {"dataset": dataset.description, "variants": {}}
    for variant in ("full", "no_hgf"):
        model_config, train_config = run_config(dataset, variant, {},
                                                {"epochs": epochs, "patience": epochs}, seed)
        result = train(dataset, model_config, train_config, Path(out_dir) / variant,
                       progress=progress)
        localisation = {m: (block.get("localisation") or {}).get("auroc")
                        for m, block in result.diagnostics["test"].get("modalities", {}).items()}
        report["variants"][variant] = {"test": result.metrics["test"],
                                       "best_epoch": result.best_epoch,
                                       "hotspot_auroc": localisation,
                                       "run_dir": str(result.run_dir)}
    write_json(Path(out_dir) / "quickstart.json", report)
    return report


def format_quickstart(report: dict) -> str:
    lines = ["", "Synthetic hotspot benchmark, test split (model selected on validation):", "",
             f"{'variant':<10}{'acc':>8}{'w-F1':>8}{'m-F1':>8}   hotspot AUROC (text/audio/video)"]
    for variant, block in report["variants"].items():
        test = block["test"]
        aurocs = "/".join("-" if block["hotspot_auroc"].get(m) is None
                          else f"{block['hotspot_auroc'][m]:.3f}"
                          for m in ("text", "audio", "video"))
        lines.append(f"{variant:<10}{100 * test['accuracy']:>8.1f}{100 * test['weighted_f1']:>8.1f}"
                     f"{100 * test['macro_f1']:>8.1f}   {aurocs}")
    full, base = report["variants"]["full"]["test"], report["variants"]["no_hgf"]["test"]
    lines.append("")
    lift = 100 * (full["weighted_f1"] - base["weighted_f1"])
    lines.append(f"HGF lifts weighted F1 by {lift:+.1f} points over no_hgf "
                 "(one seed; `hotspot-erc ablate` runs several).")
    return "\n".join(lines)
