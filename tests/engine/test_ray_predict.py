"""Batch prediction on Ray actors: folders, table order, which process predicted, errors."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest
import torch

from hotspot_erc.cli import main
from hotspot_erc.engine.batch_predict import CSV_NAME, load_conversations, predict_many
from hotspot_erc.engine.checkpoint import save_checkpoint
from hotspot_erc.engine.predict import Predictor
from hotspot_erc.engine.prediction import ConversationPrediction, UtterancePrediction
from hotspot_erc.engine.ray_predict import predict_on_ray, predictor_loader
from hotspot_erc.model.model import HotspotERC

LABELS = ["neutral", "happy"]




class _TextRule:
    """A stand-in predictor: ``happy`` where the text has an "h"; its notices say which process
    predicted and where the features went. A text ``explode`` raises."""

    def predict(self, dialogue, notices, feature_folder):
        if any(u.text == "explode" for u in dialogue.utterances):
            raise ValueError(f"{dialogue.did}: cannot predict this one")
        utterances = [UtterancePrediction(
            id=u.uid, speaker=u.speaker, start=u.start, end=u.end, text=u.text,
            label="happy" if "h" in u.text else "neutral",
            probabilities={"neutral": 0.25, "happy": 0.75} if "h" in u.text
            else {"neutral": 0.75, "happy": 0.25}) for u in dialogue.utterances]
        return ConversationPrediction(name=dialogue.did, label_names=list(LABELS),
                                      notices=[*notices, f"pid {os.getpid()}",
                                               f"features {feature_folder}"],
                                      utterances=utterances)


def _load_text_rule() -> _TextRule:
    return _TextRule()


def _calls(folder: Path, texts: dict[str, list[str]]) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in texts.items():
        rows = "".join(f"{line},A,{i}.0,{i}.5\n" for i, line in enumerate(lines))
        (folder / f"{name}.csv").write_text("Utterance,Speaker,Start,End\n" + rows)
    return load_conversations([str(folder)])


def test_actors_write_each_folder_and_the_table_keeps_the_conversation_order(ray_workers,
                                                                             tmp_path):
    texts = {f"call{index}": ["hello there", "no"][: 1 + index % 2] for index in range(6)}
    conversations = _calls(tmp_path / "calls", texts)
    seen = []
    out = tmp_path / "out"
    result = predict_on_ray(_load_text_rule, conversations, out, report=False, workers=2,
                            on_conversation=lambda c, p, paths: seen.append((c, p, paths)))
    assert sorted(c.name for c, _, _ in seen) == sorted(texts)
    # The driver's own conversation objects come back, with what the actor wrote for each.
    assert all(any(c is given for given in conversations) for c, _, _ in seen)
    pids = set()
    for conversation, prediction, paths in seen:
        assert paths == {"predictions": out / conversation.name / "predictions.jsonl"}
        assert paths["predictions"].is_file()
        assert f"features {out / conversation.name / 'features'}" in prediction.notices
        pids.add(next(n for n in prediction.notices if n.startswith("pid ")))
    assert len(pids) == 2 and f"pid {os.getpid()}" not in pids
    with open(result.csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert result.csv == out / CSV_NAME
    assert [(r["conversation"], r["text"], r["label"]) for r in rows] == [
        (name, text, "happy" if "h" in text else "neutral")
        for name in sorted(texts) for text in texts[name]]


def test_an_error_in_a_prediction_ends_the_run_as_without_ray(ray_workers, tmp_path):
    conversations = _calls(tmp_path / "calls", {"fine": ["hi"], "bad": ["explode"]})
    with pytest.raises(ValueError, match="bad: cannot predict this one"):
        predict_on_ray(_load_text_rule, conversations, tmp_path / "out", report=False,
                       workers=1)
    assert not (tmp_path / "out" / CSV_NAME).exists()


@pytest.fixture
def checkpoint(tiny_dataset, tiny_model_config, tmp_path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "checkpoint", HotspotERC(tiny_model_config),
                           tiny_dataset.label_names, tiny_dataset.feature_spec)


def test_each_actor_loads_the_checkpoint_again_extracting_in_its_own_process(checkpoint):
    predictor = Predictor.load(checkpoint, workers=2)
    loaded = predictor_loader(predictor)()
    assert loaded is not predictor and loaded.workers == 1
    assert loaded.checkpoint.path == predictor.checkpoint.path
    for name, weights in predictor.checkpoint.model.state_dict().items():
        assert torch.equal(weights, loaded.checkpoint.model.state_dict()[name])


def test_an_unknown_engine_or_a_lone_address_is_refused(tmp_path):
    conversations = _calls(tmp_path / "calls", {"call": ["hello"]})
    for engine, address in (("spark", None), ("local", "10.0.0.1:6379")):
        with pytest.raises(ValueError, match="expected engine local or ray, and an address"):
            predict_many(_TextRule(), conversations, tmp_path / "out", engine=engine,
                         ray_address=address)
    assert not (tmp_path / "out").exists()


def test_without_ray_predict_says_how_to_install_it(checkpoint, tmp_path, monkeypatch, capsys):
    _calls(tmp_path / "calls", {"call": ["hello"]})
    monkeypatch.setitem(sys.modules, "ray", None)
    status = main(["predict", "--checkpoint", str(checkpoint), "--transcript",
                   str(tmp_path / "calls"), "--engine", "ray", "--out", str(tmp_path / "out"),
                   "--quiet"])
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(error) == 1 and "pip install .[ray]" in error[0]
