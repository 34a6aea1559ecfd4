"""The shipped models: each listed one is in the package, loads offline with its card, and
still gives the predictions it gave when it was packaged."""

from __future__ import annotations

import json

import pytest

from hotspot_erc.engine.predict import Predictor
from hotspot_erc.engine.pretrained import (
    CHECK_FILE,
    PRETRAINED,
    fresh_check,
    pretrained_folder,
    pretrained_names,
)

MAX_MODEL_BYTES = 25 * 2**20


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_every_listed_model_ships_small_and_loads_with_its_card(name):
    assert name in pretrained_names()
    folder = pretrained_folder(name)
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < MAX_MODEL_BYTES
    predictor = Predictor.from_pretrained(name, workers=1)
    card = predictor.card
    # A fused model's card names its members' corpora, "meld + ravdess".
    assert PRETRAINED[name].corpus in card.dataset.split(" + ") and not card.demonstration
    assert set(card.scores) == {"valid", "test"}
    assert 0 < card.scores["test"]["weighted_f1"] <= 1
    assert card.label_names == predictor.label_names
    assert predictor.check_recipe() is None  # this installation makes its features


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ValueError, match="no such shipped model; shipped: .*meld-text"):
        pretrained_folder("meld-txt")


@pytest.mark.real_data
@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_a_fresh_evaluation_gives_the_stored_predictions(name, shared_data):
    """The stored check was made when the model was packaged; probabilities may drift across
    CPUs in the last digits, so labels are compared where the top two are not a near tie."""
    stored = json.loads((pretrained_folder(name) / CHECK_FILE).read_text())
    fresh = fresh_check(name, shared_data)
    assert fresh["dialogues"] == stored["dialogues"]
    assert fresh["utterances"].keys() == stored["utterances"].keys()
    for uid, then in stored["utterances"].items():
        now = fresh["utterances"][uid]
        assert now["probabilities"] == pytest.approx(then["probabilities"], abs=0.02), uid
        first, second = sorted(then["probabilities"].values())[-2:][::-1]
        if first - second > 0.05:
            assert now["label"] == then["label"], uid
    assert fresh["weighted_f1"] == pytest.approx(stored["weighted_f1"], abs=0.05)


def test_the_command_line_lists_and_runs_a_shipped_model(tmp_path, capsys):
    from hotspot_erc.cli import main

    assert main(["models", "--pretrained"]) == 0
    listing = capsys.readouterr().out
    for name, model in PRETRAINED.items():
        assert f"{name}: {model.summary}" in listing and model.licence in listing
    assert "non-commercial" in listing
    transcript = tmp_path / "call.srt"
    transcript.write_text("1\n00:00:00,000 --> 00:00:02,000\nAna: I can't believe you did "
                          "that, this is wonderful!\n\n2\n00:00:02,500 --> 00:00:04,000\nBen: "
                          "Oh no. I'm so sorry.\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["predict", "--model", "meld-text", "--transcript", str(transcript), "--out",
                 str(out), "--quiet", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "trained on meld" in printed
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    labels = json.loads((pretrained_folder("meld-text") / "checkpoint.json").read_text())[
        "label_names"]
    assert len(rows) == 2 and all(row["label"] in labels for row in rows)


def test_the_readme_example_transcript_runs_with_the_shipped_text_model(tmp_path, capsys):
    from pathlib import Path

    from hotspot_erc.cli import main

    example = Path(__file__).resolve().parents[2] / "examples" / "dinner.srt"
    assert main(["predict", "--model", "meld-text", "--transcript", str(example), "--out",
                 str(tmp_path), "--quiet"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text()
            .splitlines()]
    assert [row["speaker"] for row in rows] == ["Maya", "Sam"] * 5
    printed = capsys.readouterr().out
    assert "Maya       neutral" in printed  # the README shows this output
