"""The command line: thin wrappers, clear errors, exit codes."""

from __future__ import annotations

import argparse
import json

import pytest

from hotspot_erc.cli import build_parser, main


def test_models_lists_the_variants(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("full", "no_hgf", "no_moa", "no_graph", "fixed_align", "no_cross_edges",
                 "no_temporal_edges", "corect"):
        assert f"\n{name} " in "\n" + out
    assert main(["models", "no_*"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "full" not in names and "no_hgf" in names


def test_data_stats_prints_the_split_counts(capsys, shared_data):
    assert main(["data", "stats", "--dataset", "iemocap6", "--data", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "train          108        5163" in out
    assert "test            31        1623" in out
    assert main(["data", "stats", "--dataset", "meld", "--data", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "valid          114        1109" in out


def test_data_stats_synthetic_needs_no_files(capsys, monkeypatch):
    monkeypatch.delenv("HOTSPOT_ERC_DATA", raising=False)
    assert main(["data", "stats", "--dataset", "synthetic"]) == 0
    assert "synthetic" in capsys.readouterr().out


def test_bad_input_is_a_clear_error_without_traceback(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("HOTSPOT_ERC_DATA", raising=False)
    assert main(["data", "stats", "--dataset", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert main(["data", "stats", "--dataset", "iemocap6"]) == 2
    assert "HOTSPOT_ERC_DATA" in capsys.readouterr().err
    assert main(["train", "--dataset", "synthetic", "--out", str(tmp_path / "r"),
                 "--set", "hiden=3"]) == 2
    assert "unknown setting 'hiden'" in capsys.readouterr().err


def test_train_then_evaluate(capsys, tmp_path):
    run = tmp_path / "run"
    tiny = ["--synthetic-set", "num_train=4", "--synthetic-set", "num_valid=2",
            "--synthetic-set", "num_test=2", "--synthetic-set", "max_utterances=5",
            "--synthetic-set", "min_utterances=3", "--synthetic-set", "max_duration=2.0"]
    assert main(["train", "--dataset", "synthetic", *tiny, "--epochs", "1", "--threads", "1",
                 "--set", "hidden=16", "--set", "heads=2", "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "checkpoint selected on validation" in out
    assert (run / "metrics.json").exists()
    assert main(["evaluate", "--dataset", "synthetic", *tiny, "--checkpoint", str(run),
                 "--split", "valid", "--out", str(tmp_path / "eval.json")]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert set(result["metrics"]) >= {"accuracy", "weighted_f1", "macro_f1"}


def test_generate_then_read_the_store(capsys, tmp_path):
    out = tmp_path / "store"
    assert main(["data", "generate", "--out", str(out), "--synthetic-set", "num_train=3",
                 "--synthetic-set", "num_valid=1", "--synthetic-set", "num_test=1"]) == 0
    capsys.readouterr()
    assert main(["data", "stats", "--dataset", str(out), "--format", "store"]) == 0
    out_text = capsys.readouterr().out
    assert "train            3" in out_text
    assert "modalities: text, audio, video" in out_text


def test_train_corect_on_a_feature_pack_then_refuse_other_features(capsys, tmp_path):
    """A CORECT-style pack (utterance-level vectors) trains the corect variant end to end, and
    its checkpoint refuses a pack with other dimensions."""
    import pickle

    import numpy as np

    def pack(path, audio_dim):
        rng = np.random.default_rng(0)

        def record(vid, count):
            return {"vid": vid, "speakers": ["F", "M"] * (count // 2) + ["F"] * (count % 2),
                    "labels": [int(k) for k in rng.integers(0, 6, count)],
                    "sentence": [f"line {k}" for k in range(count)],
                    "text": list(rng.standard_normal((count, 768), dtype=np.float32)),
                    "audio": list(rng.standard_normal((count, audio_dim), dtype=np.float32)),
                    "visual": list(rng.standard_normal((count, 512), dtype=np.float32))}

        payload = {"train": [record(f"Ses01F_impro0{k}", 5) for k in range(3)],
                   "dev": [record("Ses03F_impro01", 4)], "test": [record("Ses05F_impro01", 4)]}
        path.write_bytes(pickle.dumps(payload, protocol=4))
        return str(path)

    good, other = pack(tmp_path / "pack.pkl", 100), pack(tmp_path / "other.pkl", 80)
    run = tmp_path / "run"
    assert main(["train", "--dataset", good, "--format", "corect-pack", "--variant", "corect",
                 "--epochs", "1", "--threads", "1", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--dataset", good, "--format", "corect-pack",
                 "--checkpoint", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--dataset", other, "--format", "corect-pack",
                 "--checkpoint", str(run)]) == 2
    assert "audio.global_dim: expected 100, found 80" in capsys.readouterr().err


def test_unknown_training_override_is_a_clear_error(capsys, tmp_path):
    assert main(["train", "--dataset", "synthetic", "--out", str(tmp_path / "r"),
                 "--train-set", "lrr=0.1"]) == 2
    assert "TrainConfig: unknown keys ['lrr']" in capsys.readouterr().err


# -- issue 12: ordinary mistakes and faults end in one clear line, never a traceback -----------

TINY = ["--synthetic-set", "num_train=3", "--synthetic-set", "num_valid=2",
        "--synthetic-set", "num_test=1", "--synthetic-set", "max_utterances=4",
        "--synthetic-set", "min_utterances=3", "--synthetic-set", "max_duration=2.0"]


def error_line(capsys) -> str:
    """The command's stderr, which must be exactly one line."""
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


def _manifest(folder, name="calls", speaker="A", label="happy", media=True) -> str:
    path = folder / "calls.json"
    dialogue = {"id": "d1", "utterances": [
        {"speaker": speaker, "text": "Hi there.", "start": 0.0, "end": 1.0, "label": label},
        {"speaker": "B", "text": "Oh no.", "start": 1.0, "end": 2.0, "label": "sad"}]}
    if media:
        dialogue["media"] = {"audio": "call.wav"}
    path.write_text(json.dumps({"name": name, "dialogues": [dialogue]}))
    return str(path)


@pytest.mark.parametrize("command", [
    ["train", "--dataset", "synthetic"],
    ["data", "generate"],
    ["extract", "--manifest", "nowhere.json"],
    ["predict", "--checkpoint", "nowhere", "--transcript", "nowhere.json"],
    ["robustness", "--checkpoint", "nowhere"],
    ["ablate"],
    ["demo"],
    ["quickstart"],
])
def test_out_naming_an_existing_file_is_refused_before_anything_loads(capsys, tmp_path, command):
    """``predict --out FILE`` even aborted in C++ (rc 134) after loading the model: --out is
    checked first (the checkpoint and transcript here do not even exist)."""
    existing = tmp_path / "taken"
    existing.write_text("mine")
    assert main([*command, "--out", str(existing)]) == 2
    assert error_line(capsys) == (f"hotspot-erc: error: --out {existing}: is an existing file; "
                                  "expected a folder (a new or an existing one)")
    assert existing.read_text() == "mine"


@pytest.mark.parametrize("command", [
    ["evaluate", "--dataset", "synthetic", "--checkpoint", "nowhere"],
    ["probe", "--dataset", "synthetic"]])
def test_a_file_out_that_cannot_be_a_file_is_refused(capsys, tmp_path, command):
    assert main([*command, "--out", str(tmp_path)]) == 2
    assert error_line(capsys) == f"hotspot-erc: error: --out {tmp_path}: is a folder; expected " \
                                 "a file name"
    inside_a_file = tmp_path / "taken"
    inside_a_file.write_text("mine")
    assert main([*command, "--out", str(inside_a_file / "result.json")]) == 2
    assert error_line(capsys).endswith(f"{inside_a_file} is a file, not a folder")


def test_out_below_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "taken").write_text("mine")
    assert main(["data", "generate", "--out", str(tmp_path / "taken" / "store")]) == 2
    assert error_line(capsys).endswith(f"{tmp_path / 'taken'} is a file, not a folder")


@pytest.mark.parametrize("command, target", [
    (["train", "--dataset", "synthetic", *TINY, "--quiet"], "hotspot_erc.engine.train.train"),
    (["extract", "--modalities", "text", "--quiet"],
     "hotspot_erc.features.extract.extract_features"),
])
def test_ctrl_c_says_how_to_resume(capsys, tmp_path, monkeypatch, command, target):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupted)
    if command[0] == "extract":
        command = [*command, "--manifest", _manifest(tmp_path)]
    assert main([*command, "--out", str(tmp_path / "out")]) == 130
    assert error_line(capsys) == "hotspot-erc: interrupted: rerun the same command to resume"


def test_a_full_disk_is_one_line(capsys, tmp_path, monkeypatch):
    import errno
    import os

    store = tmp_path / "store"

    def full(dataset, folder):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(folder, "f.npz"))

    monkeypatch.setattr("hotspot_erc.data.store.save_dataset", full)
    assert main(["data", "generate", "--out", str(store), *TINY]) == 2
    assert error_line(capsys) == (f"hotspot-erc: error: {store / 'f.npz'}: No space left "
                                  "on device (free some space, then rerun the same command to "
                                  "resume)")


def test_other_os_errors_name_the_path(capsys, tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/locked/run")

    monkeypatch.setattr("hotspot_erc.engine.train.train", denied)
    assert main(["train", "--dataset", "synthetic", *TINY, "--out", str(tmp_path / "r")]) == 2
    assert error_line(capsys) == "hotspot-erc: error: /locked/run: Permission denied"


@pytest.mark.parametrize("option, message", [
    (["--train-set", "lr=nan"], "TrainConfig: lr: expected a finite number, got 'nan'"),
    (["--train-set", "lr=NaN"], "TrainConfig: lr: expected a finite number, got nan"),
    (["--threads", "0"], "TrainConfig: threads: expected an integer >= 1, got 0"),
    (["--epochs", "0"], "TrainConfig: epochs: expected an integer >= 1, got 0"),
    (["--batch-size", "0"], "TrainConfig: batch_size: expected an integer >= 1, got 0"),
    (["--patience", "-1"], "TrainConfig: patience: expected an integer >= 0, got -1"),
    (["--synthetic-set", "bogus=1"],
     "SyntheticConfig: unknown keys ['bogus']; known keys: seed, num_train, num_valid"),
    (["--synthetic-set", "num_train=0"],
     "SyntheticConfig: num_train must be >= 1 (training needs dialogues), got 0"),
    (["--synthetic-set", "num_valid=0"], "the 'valid' split is empty"),
])
def test_bad_options_are_one_clear_line(capsys, tmp_path, option, message):
    run = tmp_path / "r"
    assert main(["train", "--dataset", "synthetic", *TINY, *option, "--out", str(run),
                 "--quiet"]) == 2
    assert message in error_line(capsys)
    assert not (run / "config.json").exists()


@pytest.mark.parametrize("value, shown", [("banana", "'banana'"), ("3.7", "3.7")])
def test_a_badly_typed_model_option_is_one_clear_line(capsys, tmp_path, value, shown):
    """``--set hidden=banana`` and ``hidden=3.7`` (ModelConfig's check) are one line naming the
    field and the type expected."""
    assert main(["train", "--dataset", "synthetic", *TINY, "--set", f"hidden={value}", "--out",
                 str(tmp_path / "r"), "--quiet"]) == 2
    assert error_line(capsys) == ("hotspot-erc: error: ModelConfig: hidden: expected an integer, "
                                  f"got {shown}")


def test_a_type_error_from_an_option_names_the_option(capsys, tmp_path, monkeypatch):
    from hotspot_erc.model.config import ModelConfig

    def badly_typed(self, changes):
        raise TypeError("hidden must be an integer, got 'banana'")

    monkeypatch.setattr(ModelConfig, "override", badly_typed)
    assert main(["train", "--dataset", "synthetic", "--set", "hidden=banana", "--out",
                 str(tmp_path / "r")]) == 2
    assert error_line(capsys) == ("hotspot-erc: error: --set: hidden must be an integer, got "
                                  "'banana'")


def test_an_unknown_format_option_lists_the_accepted_ones(capsys, tmp_path):
    pack = tmp_path / "pack.pkl"
    pack.write_bytes(b"x")
    assert main(["train", "--dataset", str(pack), "--format", "corect-pack", "--format-option",
                 "bogus=1", "--out", str(tmp_path / "r")]) == 2
    assert error_line(capsys) == ("hotspot-erc: error: format corect-pack: unknown option(s) "
                                  "bogus; it accepts label_set")


def test_stats_of_a_manifest_with_media_names_the_media(capsys, tmp_path):
    assert main(["data", "stats", "--dataset", _manifest(tmp_path), "--format", "manifest"]) == 0
    assert ("modalities: none extracted yet; media for audio (run hotspot-erc extract"
            in capsys.readouterr().out)
    assert main(["data", "stats", "--dataset", _manifest(tmp_path, media=False), "--format",
                 "manifest"]) == 0
    assert "modalities: none (text only, no features yet)" in capsys.readouterr().out


def test_stats_escape_names_and_labels_from_the_file(capsys, tmp_path):
    manifest = _manifest(tmp_path, name="calls\x1b]0;pwned\x07", label="ha\x1b[2Jppy")
    assert main(["data", "stats", "--dataset", manifest, "--format", "manifest"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "calls\\x1b]0;pwned\\x07: manifest" in out and "ha\\x1b[2Jppy" in out


def test_predict_escapes_speakers_labels_and_text(capsys, tmp_path, monkeypatch):
    from hotspot_erc.engine import predict
    from hotspot_erc.engine.prediction import ConversationPrediction, UtterancePrediction

    class Fake:
        def predict(self, dialogue, notices, feature_folder, progress):
            label = "ang\x1b[8m"
            return ConversationPrediction(
                label_names=[label], notices=["cue 2\x1b[1A: overlaps"],
                utterances=[UtterancePrediction(id=u.uid, speaker=u.speaker, label=label,
                                                text=u.text, probabilities={label: 0.5})
                            for u in dialogue.utterances])

    monkeypatch.setattr(predict.Predictor, "load", classmethod(lambda cls, folder, workers: Fake()))
    monkeypatch.setattr("hotspot_erc.report.outputs.write_outputs",
                        lambda conversation, folder, report: {"predictions": "p.jsonl"})
    transcript = tmp_path / "talk.json"
    transcript.write_text(json.dumps({"utterances": [
        {"speaker": "Eve\x1b[2J\r", "text": "hello\x1b]8;;http://x\x07link\tnow"}]}))
    assert main(["predict", "--checkpoint", "ckpt", "--transcript", str(transcript), "--out",
                 str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out and "\t" not in out
    assert "notice: cue 2\\x1b[1A: overlaps" in out
    assert "Eve\\x1b[2J\\x0d ang\\x1b[8m  50.0%  hello\\x1b]8;;http://x\\x07link\\x09now" in out


def test_the_error_line_escapes_what_it_quotes(capsys, tmp_path, monkeypatch):
    def hostile(*args, **kwargs):
        raise ValueError("speaker 'x\x1b[2J': bad\nsecond line")

    monkeypatch.setattr("hotspot_erc.engine.train.train", hostile)
    assert main(["train", "--dataset", "synthetic", *TINY, "--out", str(tmp_path / "r")]) == 2
    assert error_line(capsys) == ("hotspot-erc: error: speaker 'x\\x1b[2J': bad\\x0asecond "
                                  "line")


def test_a_closed_pipe_ends_quietly(tmp_path):
    import subprocess
    import sys

    listing = subprocess.Popen([sys.executable, "-c",
                                "import sys; from hotspot_erc.cli import main; "
                                "sys.stdin.read(); sys.exit(main(['models']))"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    listing.stdout.close()  # the reader went away before anything was written
    _, err = listing.communicate(b"")
    assert listing.returncode == 141
    assert b"Traceback" not in err and b"Exception ignored" not in err


def test_a_variant_and_a_contradicting_switch_is_one_clear_line(capsys, tmp_path):
    assert main(["train", "--dataset", "synthetic", *TINY, "--variant", "full", "--set",
                 "use_hgf=false", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert error_line(capsys).endswith("the override use_hgf=False contradicts it; that is the "
                                       "variant no_hgf: use --variant no_hgf")
    assert not (tmp_path / "r").exists()


def test_a_manifest_path_is_read_as_a_manifest_without_format(capsys, tmp_path, monkeypatch):
    """It was read as a feature store: "no feature store here ... FeatureStore.create"."""
    import hotspot_erc.features.text_store as text_store

    seen = {}

    def extracted(dataset, *args, **options):
        seen["name"] = dataset.name
        raise ValueError("stop here: the manifest was read")

    monkeypatch.setattr(text_store, "extract_text_dataset", extracted)
    manifest = _manifest(tmp_path, media=False)
    assert main(["train", "--dataset", manifest, "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert error_line(capsys) == "hotspot-erc: error: stop here: the manifest was read"
    assert seen == {"name": "calls"}


def test_extract_defaults_to_the_modalities_the_corpus_is_read_with(capsys, tmp_path,
                                                                    monkeypatch):
    import hotspot_erc.features.extract as extract

    seen = {}

    def extracting(dataset, out, config, progress):
        seen["modalities"] = config.modalities
        raise ValueError("stop")

    monkeypatch.setattr(extract, "extract_features", extracting)
    main(["extract", "--manifest", _manifest(tmp_path), "--out", str(tmp_path / "s")])
    assert seen["modalities"] == ("text", "audio")
    main(["extract", "--manifest", _manifest(tmp_path, media=False), "--out",
          str(tmp_path / "s")])
    assert seen["modalities"] == ("text",)
    capsys.readouterr()


def test_features_joins_a_table_and_bad_options_are_one_line(capsys, tmp_path):
    table = tmp_path / "audio.csv"
    table.write_text("id,a\nnobody,1\n")
    assert main(["data", "stats", "--dataset", "synthetic", *TINY]) == 0
    capsys.readouterr()
    assert main(["train", "--dataset", "synthetic", *TINY, "--features", f"text={table}",
                 "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "already has text features" in error_line(capsys)
    assert main(["train", "--dataset", "synthetic", *TINY, "--features", "smell=x.csv",
                 "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert error_line(capsys).startswith("hotspot-erc: error: --features smell=x.csv: expected "
                                         "MODALITY=PATH")


def test_tune_prints_each_trial_and_the_ablate_command(capsys, tmp_path):
    pytest.importorskip("optuna")
    assert main(["tune", "--dataset", "synthetic", *TINY, "--variant", "no_graph", "--trials",
                 "1", "--seeds", "1", "--epochs", "1", "--threads", "1", "--set", "heads=2",
                 "--out", str(tmp_path / "study")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("trial 0: valid weighted F1 ")
    assert "run it for 5 seeds with: hotspot-erc ablate --variants no_graph --seeds 5 " in out
    assert main(["tune", "--dataset", "synthetic", *TINY, "--train-set", "lr=0.1", "--out",
                 str(tmp_path / "other")]) == 2
    assert "are searched by the space 'common'" in error_line(capsys)


def test_version_prints_the_package_version(capsys):
    import hotspot_erc

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"hotspot-erc {hotspot_erc.__version__}\n"


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) of every command and subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield (*path, name), command
                yield from _commands(command, (*path, name))


def test_every_command_shows_examples_and_defaults_in_its_help():
    commands = list(_commands(build_parser()))
    assert len(commands) == 15
    for words, parser in commands:
        text = parser.format_help()
        assert "\nexamples:\n" in text, words
        examples = text.split("\nexamples:\n", 1)[1].splitlines()
        # One example per line, as written: the epilog keeps its line breaks.
        assert 1 <= len(examples) <= 3, words
        for line in examples:
            assert line.startswith(f"  hotspot-erc {' '.join(words)}"), (words, line)
        flat = " ".join(text.split())
        assert "(default: None)" not in flat and "(default: False)" not in flat
        for action in parser._actions:
            if action.help and action.default not in (None, False, argparse.SUPPRESS):
                assert f"(default: {action.default})" in flat, (words, action.dest)


def test_threads_is_one_option_of_the_commands_that_run_a_trained_model():
    parser = build_parser()
    for command in (["predict", "--checkpoint", "c", "--transcript", "t.srt", "--out", "o"],
                    ["evaluate", "--checkpoint", "c"], ["probe"],
                    ["robustness", "--checkpoint", "c", "--out", "o"]):
        assert parser.parse_args([*command, "--threads", "3"]).process_threads == 3
        assert parser.parse_args(command).process_threads is None


def test_training_threads_also_bound_the_tuning_and_extraction_before_training():
    from hotspot_erc.cli import _command_threads

    parser = build_parser()
    for command in (["train", "--dataset", "synthetic", "--out", "o"],
                    ["ablate", "--dataset", "synthetic", "--out", "o"]):
        assert _command_threads(parser.parse_args([*command, "--threads", "1"])) == 1
        assert _command_threads(parser.parse_args(command)) is None
        # Left to TrainConfig, which names the field in its error.
        assert _command_threads(parser.parse_args([*command, "--threads", "0"])) is None
    assert _command_threads(parser.parse_args(["probe", "--threads", "3"])) == 3


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_threads_below_one_are_refused(capsys, value):
    with pytest.raises(SystemExit):
        main(["probe", "--threads", value])
    assert f"argument --threads: expected an integer >= 1, got '{value}'" in \
        capsys.readouterr().err


def test_threads_limits_torch_and_blas_while_the_command_runs(capsys, monkeypatch):
    import torch
    from threadpoolctl import threadpool_info

    seen = {}

    def probe(dataset, modalities):
        seen["torch"] = torch.get_num_threads()
        seen["pools"] = [pool["num_threads"] for pool in threadpool_info()]
        scores = {"accuracy": 0.5, "weighted_f1": 0.5, "macro_f1": 0.5}
        return {"model": "probe", "modalities": ["text"], "C": 1.0, "valid": scores,
                "test": scores}

    monkeypatch.setattr("hotspot_erc.engine.probe.linear_probe", probe)
    before = torch.get_num_threads()
    assert main(["probe", "--dataset", "synthetic", *TINY, "--threads", "2"]) == 0
    assert seen["torch"] == 2
    assert seen["pools"] and all(threads <= 2 for threads in seen["pools"])
    assert torch.get_num_threads() == before
    assert main(["probe", "--dataset", "synthetic", *TINY]) == 0
    assert seen["torch"] == before
    capsys.readouterr()


def _prediction_of(dialogue, notices):
    from hotspot_erc.engine.prediction import ConversationPrediction, UtterancePrediction

    return ConversationPrediction(
        label_names=["calm", "upset"], notices=list(notices),
        utterances=[UtterancePrediction(id=u.uid, speaker=u.speaker, start=u.start, end=u.end,
                                        text=u.text, label="upset",
                                        probabilities={"calm": 0.25, "upset": 0.75})
                    for u in dialogue.utterances])


def test_predict_several_transcripts_loads_the_model_once(capsys, tmp_path, monkeypatch):
    import csv

    from hotspot_erc.engine import predict

    loaded = []

    class Fake:
        def predict(self, dialogue, notices, feature_folder, progress):
            return _prediction_of(dialogue, notices)

    monkeypatch.setattr(predict.Predictor, "load", classmethod(
        lambda cls, folder, workers: loaded.append(folder) or Fake()))
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "a.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nAnn: hi\n\n"
                                 "2\n00:00:03,000 --> 00:00:04,000\nBob: ho\n")
    (calls / "b.vtt").write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nno names here\n")
    other = tmp_path / "c.csv"
    other.write_text("Utterance,Speaker\nfine,Cy\n")
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", "ckpt", "--transcript", str(calls), "--transcript",
                 str(other), "--out", str(out), "--no-report", "--quiet"]) == 0
    assert loaded == ["ckpt"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"a: 2 utterances (upset 2) -> {out / 'a'}"
    assert printed[1] == f"b: 1 utterance (upset 1) -> {out / 'b'}"
    assert printed[2].startswith(f"notice: {calls / 'b.vtt'}: speakers are not labelled")
    assert printed[3] == f"c: 1 utterance (upset 1) -> {out / 'c'}"
    assert printed[4] == (f"wrote 3 conversations into {out}, one folder each, and "
                          f"{out / 'predictions.csv'}")
    assert [p.name for p in sorted(out.iterdir())] == ["a", "b", "c", "predictions.csv"]
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["conversation", "id", "speaker", "start", "end", "text", "label", "p_calm", "p_upset"],
        ["a", "a_0", "Ann", "1.0", "2.0", "hi", "upset", "0.25", "0.75"],
        ["a", "a_1", "Bob", "3.0", "4.0", "ho", "upset", "0.25", "0.75"],
        ["b", "b_0", "speaker", "1.0", "2.0", "no names here", "upset", "0.25", "0.75"],
        ["c", "c_0", "Cy", "", "", "fine", "upset", "0.25", "0.75"]]


def test_predict_refuses_one_recording_for_several_transcripts_before_loading(capsys, tmp_path,
                                                                              monkeypatch):
    from hotspot_erc.engine import predict

    def never(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(predict.Predictor, "load", never)
    for name in ("a.srt", "b.srt"):
        (tmp_path / name).write_text("1\n00:00:01,000 --> 00:00:02,000\nAnn: hi\n")
    assert main(["predict", "--checkpoint", "ckpt", "--transcript", str(tmp_path / "a.srt"),
                 "--transcript", str(tmp_path / "b.srt"), "--media", "call.mp4", "--out",
                 str(tmp_path / "out")]) == 2
    assert error_line(capsys) == (
        "hotspot-erc: error: --media: the recordings of one conversation go with a single "
        "transcript file, not 2 transcripts; put each conversation's recording in a folder, "
        "named like its transcript (call1.srt -> call1.mp4), and give --media-folder")
