"""The main job's report: what it prints from the two runs."""

from __future__ import annotations

from hotspot_erc.engine.quickstart import format_quickstart


def _block(weighted_f1: float, auroc: dict) -> dict:
    return {"test": {"accuracy": 0.5, "weighted_f1": weighted_f1, "macro_f1": 0.4},
            "best_epoch": 3, "hotspot_auroc": auroc, "run_dir": "r"}


def test_the_report_shows_both_variants_and_the_lift():
    report = {"dataset": "synthetic", "variants": {
        "full": _block(0.458, {"text": 0.847, "audio": 0.906, "video": 0.849}),
        "no_hgf": _block(0.181, {})}}
    text = format_quickstart(report)
    assert "full          50.0    45.8    40.0   0.847/0.906/0.849" in text
    assert "no_hgf        50.0    18.1    40.0   -/-/-" in text
    assert "HGF lifts weighted F1 by +27.7 points over no_hgf" in text
