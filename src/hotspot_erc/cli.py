"""The ``hotspot-erc`` command line: parses options and calls one function of a lower layer.

Everything it prints goes through :func:`~hotspot_erc.terminal.printable` (names and texts come
from input files), and :func:`main` reports an ordinary failure as one ``hotspot-erc: error:``
line on stderr with exit status 2, an interruption with status 130; never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
from collections import Counter
from pathlib import Path

from hotspot_erc.data.corpora import FORMATS
from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.features.text_tuning import TUNING_SETTINGS
from hotspot_erc.terminal import VERBOSE_ENV, printable


def _echo(text: str = "") -> None:
    """Print ``text`` to stdout, control characters escaped line by line."""
    print("\n".join(printable(line) for line in str(text).split("\n")))


def _cmd_data_stats(args: argparse.Namespace) -> int:
    from hotspot_erc.data.corpora import load_dataset

    if args.format is not None:
        from hotspot_erc.data.corpora import load_path

        dataset = load_path(args.dataset, args.format,
                            **_parse_overrides(args.format_option, "--format-option"))
    elif args.dataset == "synthetic":
        from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset

        dataset = generate_dataset(SyntheticConfig.from_dict(
            _parse_overrides(args.synthetic_set, "--synthetic-set")))
    else:
        dataset = load_dataset(args.dataset, args.data)
    _echo(f"{dataset.name}: {dataset.description}")
    stats = dataset.stats()
    labels = dataset.label_names
    header = f"{'split':<8}{'dialogues':>10}{'utterances':>12}{'scored':>8}  " + " ".join(
        f"{name:>8}" for name in labels)
    _echo(header)
    for split, row in stats.items():
        counts = " ".join(f"{row['labels'][name]:>8}" for name in labels)
        _echo(f"{split:<8}{row['dialogues']:>10}{row['utterances']:>12}{row['scored']:>8}  "
              f"{counts}")
    _echo(f"modalities: {_modalities_line(dataset)}")
    return 0


def _modalities_line(dataset) -> str:
    """The modalities with features, else the media the dataset names (to extract)."""
    if dataset.modalities:
        return ", ".join(dataset.modalities)
    from hotspot_erc.features.extract import media_modalities

    media = media_modalities(dataset)
    if media:
        return (f"none extracted yet; media for {', '.join(media)} (run hotspot-erc extract, "
                "or train on it: its features are extracted first)")
    return "none (text only, no features yet)"


def _cmd_data_generate(args: argparse.Namespace) -> int:
    from hotspot_erc.data.store import save_dataset
    from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset

    dataset = generate_dataset(SyntheticConfig.from_dict(
        _parse_overrides(args.synthetic_set, "--synthetic-set")))
    save_dataset(dataset, args.out)
    _echo(f"wrote {len(dataset.dialogues)} dialogues to the feature store {args.out} "
          f"(train on it with --dataset {args.out})")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    if args.pretrained:
        return _show_pretrained(args.pattern)
    from hotspot_erc.model.variants import describe_variant, list_variants

    for name in list_variants(args.pattern):
        _echo(f"{name:<18} {describe_variant(name)}")
    return 0


def _show_pretrained(pattern: str) -> int:
    """The shipped models: what each was trained on, its labels, modalities, scores, licence."""
    import fnmatch

    from hotspot_erc.engine.pretrained import PRETRAINED, pretrained_card, pretrained_names

    for name in fnmatch.filter(pretrained_names(), pattern):
        model, card = PRETRAINED[name], pretrained_card(name)
        _echo(f"{name}: {model.summary}")
        for line in card.summary_lines():
            _echo(f"  {line}")
        _echo(f"  licence: {model.licence}")
        _echo(f"  use: hotspot-erc predict --model {name} --transcript FILE --out FOLDER")
    return 0


def _checkpoint_folder(args: argparse.Namespace, fused: bool = False) -> str:
    """The checkpoint a command runs: ``--checkpoint RUN`` or a shipped ``--model NAME``; a
    fused model (:mod:`hotspot_erc.engine.fusion`) only where ``fused`` (``predict``)."""
    folder = args.checkpoint
    if args.model is not None:
        from hotspot_erc.engine.pretrained import pretrained_folder

        folder = str(pretrained_folder(args.model))
    from hotspot_erc.engine.fusion import is_fusion

    if not fused and is_fusion(folder):
        raise ValueError(f"{args.model or folder} is a fused model (fusion.json): only "
                         "`predict` runs one; this command needs a single checkpoint, such as "
                         "one of its members")
    return folder


def _model_source(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint RUN`` or ``--model NAME`` (one of them)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", default=None, help="run or checkpoint folder")
    source.add_argument("--model", default=None, metavar="NAME",
                        help="a model shipped with the package (hotspot-erc models "
                             "--pretrained)")


def _parse_overrides(pairs: list[str], option: str) -> dict:
    """``key=value`` pairs; values are read as JSON where possible (numbers, booleans, lists)."""
    overrides = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"{option} {pair!r}: expected key=value")
        key, raw = pair.split("=", 1)
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides


@contextlib.contextmanager
def _options(names: str):
    """A config built from options ``names``: a value of the wrong type (TypeError) is reported
    as the ValueError of a bad option it is, with the option names."""
    try:
        yield
    except TypeError as error:
        raise ValueError(f"{names}: {error}") from error


def _overrides(args: argparse.Namespace) -> tuple[dict, dict]:
    """The model and training settings the user asked for (``--set``; ``--epochs`` and the other
    training flags where given, and ``--train-set``), checked by building the configs once.
    They are applied after the variant's own settings
    (:func:`~hotspot_erc.engine.train.run_config`)."""
    from hotspot_erc.engine.train import TrainConfig
    from hotspot_erc.model.config import ModelConfig

    model = _parse_overrides(args.set, "--set")
    train = {name: getattr(args, name) for name in ("epochs", "batch_size", "patience", "threads")
             if getattr(args, name) is not None}
    train.update(_parse_overrides(args.train_set, "--train-set"))
    with _options("--set"):
        ModelConfig().override({k: v for k, v in model.items() if k != "variant"})
    with _options("--epochs, --batch-size, --patience, --threads, --train-set"):
        TrainConfig().replace(**train)
    return model, train


def _dataset(args: argparse.Namespace):
    from hotspot_erc.engine.datasets import resolve_dataset

    if args.dataset == "synthetic":
        from hotspot_erc.data.synthetic import SyntheticConfig

        # Checked here, where an unknown knob can be named with the known ones.
        SyntheticConfig.from_dict(_parse_overrides(args.synthetic_set, "--synthetic-set"))
    return resolve_dataset(args.dataset, args.data, text_setting=args.text_setting,
                           cache_dir=args.cache,
                           synthetic_overrides=_parse_overrides(args.synthetic_set,
                                                                "--synthetic-set"),
                           fmt=args.format,
                           format_options=_parse_overrides(args.format_option,
                                                           "--format-option"),
                           progress=not args.quiet,
                           speaker_norm=[m.strip() for m in (args.speaker_norm or "").split(",")
                                         if m.strip()],
                           speaker_norm_scope=args.speaker_norm_scope,
                           feature_tables=_feature_tables(args.features))


def _feature_tables(options: list[str] | None) -> dict[str, list[str]]:
    """``--features audio=a.csv,b.csv`` as ``{"audio": ["a.csv", "b.csv"]}``."""
    from hotspot_erc.data.dialogue import MODALITIES

    tables: dict[str, list[str]] = {}
    for option in options or []:
        modality, _, paths = option.partition("=")
        modality = modality.strip()
        if modality not in MODALITIES or not paths.strip():
            raise ValueError(f"--features {option}: expected MODALITY=PATH[,PATH...] with a "
                             f"modality of {', '.join(MODALITIES)}")
        tables.setdefault(modality, []).extend(p.strip() for p in paths.split(",") if p.strip())
    return tables


def _cmd_train(args: argparse.Namespace) -> int:
    from hotspot_erc.engine.distributed import launched_rank
    from hotspot_erc.engine.train import run_config, train

    model_overrides, train_overrides = _overrides(args)
    dataset = _dataset(args)
    with _options("--set, --variant"):
        model_config, train_config = run_config(dataset, args.variant, model_overrides,
                                                train_overrides, args.seed)
    result = train(dataset, model_config, train_config, args.out, progress=not args.quiet)
    if launched_rank() != 0:
        return 0  # under torchrun every rank trains, rank 0 reports
    _echo(json.dumps({split: {k: result.metrics[split][k]
                              for k in ("accuracy", "weighted_f1", "macro_f1")}
                      for split in ("valid", "test") if split in result.metrics}, indent=2))
    _echo(f"run folder: {result.run_dir} (checkpoint selected on validation at epoch "
          f"{result.best_epoch})")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from hotspot_erc.atomic import write_json
    from hotspot_erc.engine.diagnostics import format_diagnostics
    from hotspot_erc.engine.evaluate import evaluate_checkpoint

    dataset = _dataset(args)
    result = evaluate_checkpoint(_checkpoint_folder(args), dataset, args.split)
    for notice in result["notices"]:
        _echo(f"notice: {notice}")
    metrics = result["metrics"]
    _echo(json.dumps({k: metrics[k] for k in ("accuracy", "weighted_f1", "macro_f1",
                                              "per_class_f1")}, indent=2))
    _echo(format_diagnostics(result["diagnostics"]))
    if args.out:
        write_json(args.out, result)
    return 0


def _cmd_ablate(args: argparse.Namespace) -> int:
    from hotspot_erc.engine.ablate import ablate, summary_table

    model_overrides, train_overrides = _overrides(args)
    dataset = _dataset(args)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    with _options("--set, --variants"):
        summary = ablate(dataset, variants, seeds, args.out, model_overrides, train_overrides,
                         progress=not args.quiet)
    _echo(summary_table(summary))
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from hotspot_erc.engine.tune import tune

    model_overrides, train_overrides = _overrides(args)
    dataset = _dataset(args)

    def report(trial: dict) -> None:
        scores = ", ".join(f"{100 * score:.1f}" for score in trial["valid"])
        if not args.quiet:
            _echo(f"trial {trial['trial']}: valid weighted F1 {scores}  {trial['params']}")

    with _options("--set, --variant"):
        summary = tune(dataset, args.variant, args.out, args.trials,
                       seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
                       space=args.space, model_overrides=model_overrides,
                       train_overrides=train_overrides, on_trial=report)
    best = summary["best"]
    score = 100 * best["valid_weighted_f1"]
    _echo(f"{summary['trials']} trials of {args.variant} over the space {args.space!r}; best: "
          f"trial {best['trial']}, mean validation weighted F1 {score:.1f}")
    _echo(f"run it for 5 seeds with: hotspot-erc ablate --variants {args.variant} --seeds 5 "
          f"{summary['ablate_flags']} ...")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from hotspot_erc.engine.batch_predict import load_conversations, predict_many
    from hotspot_erc.engine.predict import load_predictor

    # Every transcript is read, and every recording probed, before the model loads.
    conversations = load_conversations(args.transcript, args.transcript_format, media=args.media,
                                       audio=args.audio, video=args.video,
                                       media_folder=args.media_folder)
    predictor = load_predictor(_checkpoint_folder(args, fused=True), workers=args.workers)
    several = len(conversations) > 1

    def show(conversation, prediction, paths: dict) -> None:
        if conversation is conversations[0] and prediction.model_card is not None:
            for line in prediction.model_card.summary_lines():
                _echo(line)
        if several:
            counts = Counter(utterance.label for utterance in prediction.utterances)
            total = len(prediction.utterances)
            _echo(f"{conversation.name}: {total} utterance{'' if total == 1 else 's'} ("
                  + ", ".join(f"{label} {count}" for label, count in counts.most_common())
                  + f") -> {Path(paths['predictions']).parent}")
        for notice in prediction.notices:
            _echo(f"notice: {notice}")
        if not several:
            _show_utterances(prediction)

    result = predict_many(predictor, conversations, args.out, report=not args.no_report,
                          progress=not args.quiet, on_conversation=show, engine=args.engine,
                          ray_address=args.ray_address)
    if several:
        _echo(f"wrote {len(conversations)} conversations into {args.out}, one folder each, and "
              f"{result.csv}")
    else:
        written = [*next(iter(result.outputs.values())).values(), result.csv]
        _echo("wrote " + ", ".join(str(path) for path in written))
    return 0


def _show_utterances(prediction) -> None:
    """One line per utterance: times, speaker, label, its probability, the start of the text."""
    for utterance in prediction.utterances:
        when = "" if utterance.start is None else f"{utterance.start:7.2f}-{utterance.end:<7.2f} "
        # Each field escaped before it is padded, so the columns line up.
        _echo(f"{when}{printable(utterance.speaker):<10} {printable(utterance.label):<10} "
              f"{100 * utterance.probabilities[utterance.label]:5.1f}%  "
              f"{printable(utterance.text[:60])}")


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from hotspot_erc.serve.config import ServeConfig, read_api_key
        from hotspot_erc.serve.server import serve
    except ImportError as error:
        raise ValueError(f"{error}: the service needs FastAPI and uvicorn: pip install -e "
                         "'.[serve]'") from None
    config = ServeConfig(
        checkpoint=_checkpoint_folder(args), host=args.host, port=args.port,
        api_key=None if args.api_key_file is None else read_api_key(args.api_key_file),
        max_request_mb=args.max_request_mb, max_media_seconds=args.max_media_seconds,
        max_utterances=args.max_utterances, concurrency=args.concurrency, queue=args.queue,
        cors_origins=tuple(args.cors_origin or ()), max_reports=args.max_reports,
        workers=args.workers, upload_timeout_s=args.upload_timeout,
        shutdown_timeout_s=args.shutdown_timeout, max_streams=args.max_streams)
    return serve(config)


def _cmd_robustness(args: argparse.Namespace) -> int:
    from hotspot_erc.atomic import atomic_open, write_json, write_text
    from hotspot_erc.engine.checkpoint import load_checkpoint
    from hotspot_erc.engine.robustness import robustness, robustness_figure, robustness_table

    dataset = _dataset(args)
    result = robustness(load_checkpoint(_checkpoint_folder(args)), dataset, args.split,
                        seed=args.seed)
    table = robustness_table(result)
    _echo(table)
    out = Path(args.out)
    write_json(out / "robustness.json", result)
    write_text(out / "robustness.md", table + "\n")
    try:
        figure = robustness_figure(result)
    except ImportError:
        _echo("notice: matplotlib is not installed: no robustness.png (bash install.sh media)")
    else:
        with atomic_open(out / "robustness.png", "wb") as handle:
            handle.write(figure)
    _echo(f"wrote {out}/robustness.json, robustness.md, robustness.png")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from hotspot_erc.engine.demo import build_demo

    demo = build_demo(args.out, epochs=args.epochs, seed=args.seed, workers=args.workers,
                      progress=not args.quiet, threads=args.process_threads or 2)
    test = demo["test"]
    if test:
        _echo(f"demonstration checkpoint {demo['checkpoint']} (selected at epoch "
              f"{demo['best_epoch']}): test accuracy {100 * test['accuracy']:.1f}%, weighted "
              f"F1 {100 * test['weighted_f1']:.1f} on the generated test conversations")
    _echo("It demonstrates the pipeline and is not an emotion model. Try it on a conversation it "
          "never saw:")
    _echo(f"  hotspot-erc predict --checkpoint {demo['checkpoint']} --transcript "
          f"{demo['transcript']} --media {demo['media']} --out {args.out}/prediction")
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    from hotspot_erc.engine.probe import linear_probe

    dataset = _dataset(args)
    modalities = [m.strip() for m in args.modalities.split(",")] if args.modalities else None
    result = linear_probe(dataset, modalities)
    _echo(f"{result['model']} ({', '.join(result['modalities'])}), C={result['C']} chosen on "
          "validation")
    for split in ("valid", "test"):
        metrics = result[split]
        _echo(f"{split:<6} accuracy {100 * metrics['accuracy']:.1f}  weighted F1 "
              f"{100 * metrics['weighted_f1']:.1f}  macro F1 {100 * metrics['macro_f1']:.1f}")
    if args.out:
        from hotspot_erc.atomic import write_json

        write_json(args.out, result)
    return 0


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from hotspot_erc.engine.quickstart import format_quickstart, quickstart

    report = quickstart(args.out, epochs=args.epochs, seed=args.seed, progress=not args.quiet,
                        threads=args.process_threads or 2)
    _echo(format_quickstart(report))
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from hotspot_erc.features.extract import ExtractConfig, default_modalities, extract_features

    if (args.manifest is None) == (args.dataset is None):
        raise ValueError("give either --manifest FILE or --dataset NAME")
    if args.manifest is not None:
        from hotspot_erc.data.manifest import load_manifest

        dataset = load_manifest(args.manifest)
    else:
        from hotspot_erc.data.corpora import load_dataset

        dataset = load_dataset(args.dataset, args.data)
    if args.modalities is None:
        modalities = default_modalities(dataset, args.dataset)
    else:
        modalities = tuple(m.strip() for m in args.modalities.split(",") if m.strip())
    config = ExtractConfig(modalities=modalities, text_setting=args.text_setting, fps=args.fps,
                           max_width=args.max_width, workers=args.workers,
                           engine=args.engine, ray_address=args.ray_address)
    report = extract_features(dataset, args.out, config, progress=not args.quiet)
    _echo(report.summary())
    _echo(f"train on it with: hotspot-erc train --dataset {args.out} --out RUN")
    return 0


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default after its help (not where there is none to show: a default of
    None or a switch's False), and epilogs (the examples) printed line by line as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _command(commands, name: str, summary: str, examples: tuple[str, ...],
             parents: tuple[argparse.ArgumentParser, ...] = ()) -> argparse.ArgumentParser:
    """The parser of one (sub)command, its ``--help`` showing defaults and ``examples``."""
    return commands.add_parser(
        name, parents=list(parents), help=summary, description=summary,
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=_HelpFormatter)


def _parent(build) -> argparse.ArgumentParser:
    """A parent parser (options shared by several commands), filled by ``build``."""
    parent = argparse.ArgumentParser(add_help=False)
    build(parent)
    return parent


def _dataset_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="synthetic",
                        help="synthetic, iemocap6, iemocap4, meld, ravdess, crema-d, or a "
                             "feature-store folder")
    parser.add_argument("--data", default=None,
                        help="corpus folder for real corpora (default: $HOTSPOT_ERC_DATA)")
    parser.add_argument("--text-setting", default="minilm",
                        choices=("minilm", "large", *TUNING_SETTINGS),
                        help="text features for real corpora: frozen MiniLM, frozen mpnet + "
                             "USE, or MiniLM tuned for emotion on the corpus's training split, "
                             "cross-fitted, every weight (tuned) or a low-rank adapter "
                             "(tuned-adapter) (features/text_tuning.py)")
    parser.add_argument("--cache", default=None,
                        help="feature cache folder (default: $HOTSPOT_ERC_CACHE or "
                             "~/.cache/hotspot-erc)")
    parser.add_argument("--format", default=None,
                        help="format of a --dataset path: " + ", ".join(FORMATS))
    parser.add_argument("--format-option", action="append", metavar="KEY=VALUE",
                        help="option of the format's loader, e.g. label_set=meld")
    parser.add_argument("--synthetic-set", action="append", metavar="KEY=VALUE",
                        help="synthetic benchmark knob, e.g. num_train=40 or lag_max=1.5")
    parser.add_argument("--features", action="append", metavar="MODALITY=PATH[,PATH...]",
                        help="join utterance-level features from CSV tables as a modality, e.g. "
                             "audio=iemocap/acoustic/signal.csv,iemocap/acoustic/prosody.csv "
                             "(see docs/formats.md)")
    parser.add_argument("--speaker-norm", default=None, metavar="MODALITIES",
                        help="normalise these modalities per speaker with each speaker's own "
                             "unlabelled features, e.g. audio or audio,video")
    parser.add_argument("--speaker-norm-scope", default="dataset", choices=("dataset", "dialogue"),
                        help="speakers are global names (dataset) or local to each dialogue")


def _training_options(parser: argparse.ArgumentParser) -> None:
    from hotspot_erc.engine.config import TrainConfig

    # Defaults of None: a flag counts as the user's choice only when given, so a variant's own
    # training settings (corect's batch size) apply otherwise.
    defaults = TrainConfig()
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs (default: {defaults.epochs})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"dialogues per batch (default: {defaults.batch_size}, or the "
                             "variant's own)")
    parser.add_argument("--patience", type=int, default=None,
                        help="early-stopping patience: epochs without a better validation score "
                             f"(default: {defaults.patience})")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of training, and of the text tuning and feature "
                             f"extraction before it (default: {defaults.threads} in training)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="model config override, e.g. --set hidden=128 (repeatable; applied "
                             "after the variant's settings)")
    parser.add_argument("--train-set", action="append", metavar="KEY=VALUE",
                        help="training config override, e.g. --train-set lr=5e-4")


def _quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _seed_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed (weights, shuffling, dropout, noise)")


def _workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=2,
                        help="processes that extract audio and video")


def _engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="local", choices=("local", "ray"),
                        help="run the conversations in this machine's processes, or as Ray "
                             "tasks on --workers actors (pip install .[ray]; docs/scaling.md)")
    parser.add_argument("--ray-address", default=None, metavar="ADDRESS",
                        help="with --engine ray: the Ray cluster to join (default: start Ray "
                             "here with --workers CPUs)")


def _epochs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=20, help="training epochs")


def _thread_count(text: str) -> int:
    """The value of ``--threads``: an integer >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def _threads_option(parser: argparse.ArgumentParser) -> None:
    # Its own name: training's --threads goes to TrainConfig, which checks it there.
    parser.add_argument("--threads", type=_thread_count, default=None, dest="process_threads",
                        metavar="N",
                        help="CPU threads of this process: torch's and the BLAS/OpenMP pools of "
                             "numpy and scikit-learn (default: the libraries' choice, about one "
                             "per core; extraction processes are --workers)")


def build_parser() -> argparse.ArgumentParser:
    from hotspot_erc import __version__

    parser = argparse.ArgumentParser(
        prog="hotspot-erc",
        description="Emotion recognition in conversations centred on emotion hotspots.",
        epilog="examples:\n"
               "  hotspot-erc demo --out demo\n"
               "  hotspot-erc predict --checkpoint demo/run --transcript "
               "demo/unseen/transcript.json --out demo/prediction\n"
               "  hotspot-erc COMMAND --help     (its options, defaults and examples)",
        formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="show the third-party log output hidden by default (TFLite and "
                             "MediaPipe messages, model-loading progress bars)")
    commands = parser.add_subparsers(dest="command", required=True)
    dataset, training, quiet, seed, workers, epochs, threads = (
        _parent(build) for build in (_dataset_options, _training_options, _quiet_option,
                                     _seed_option, _workers_option, _epochs_option,
                                     _threads_option))

    data = _command(commands, "data", "inspect datasets", (
        "hotspot-erc data stats --dataset synthetic",
        "hotspot-erc data generate --out stores/synthetic"))
    data_commands = data.add_subparsers(dest="data_command", required=True)
    stats = _command(data_commands, "stats", "print split and label counts", (
        "hotspot-erc data stats --dataset synthetic",
        "hotspot-erc data stats --dataset iemocap6 --data /data/corpora",
        "hotspot-erc data stats --dataset my_calls.json --format manifest"))
    stats.add_argument("--dataset", required=True,
                       help="iemocap6, iemocap4, meld, synthetic, ravdess or crema-d")
    stats.add_argument("--data", default=None,
                       help="corpus folder (default: $HOTSPOT_ERC_DATA)")
    stats.add_argument("--format", default=None,
                       help="read --dataset as a path in this format: " + ", ".join(FORMATS))
    stats.add_argument("--format-option", action="append", metavar="KEY=VALUE",
                       help="option of the format's loader, e.g. label_set=meld")
    stats.add_argument("--synthetic-set", action="append", metavar="KEY=VALUE",
                       help="synthetic benchmark knob, e.g. num_train=40")
    stats.set_defaults(func=_cmd_data_stats)

    generate = _command(
        data_commands, "generate", "write the synthetic benchmark to a feature-store folder", (
            "hotspot-erc data generate --out stores/synthetic",
            "hotspot-erc data generate --out stores/lagged --synthetic-set lag_max=1.5"))
    generate.add_argument("--out", required=True, help="feature-store folder")
    generate.add_argument("--synthetic-set", action="append", metavar="KEY=VALUE",
                          help="generator knob, e.g. lag_max=1.5 (see SyntheticConfig)")
    generate.set_defaults(func=_cmd_data_generate, out_kind="folder")

    models = _command(commands, "models", "list the named model variants, or the shipped models",
                      ("hotspot-erc models", "hotspot-erc models 'no_*'",
                       "hotspot-erc models --pretrained"))
    models.add_argument("pattern", nargs="?", default="*", help="wildcard filter, e.g. 'no_*'")
    models.add_argument("--pretrained", action="store_true",
                        help="list the trained models that ship with the package: corpus, "
                             "labels, modalities, test scores, licence")
    models.set_defaults(func=_cmd_models)

    quick = _command(
        commands, "quickstart", "the main job: train full and no_hgf on the synthetic benchmark",
        ("hotspot-erc quickstart", "hotspot-erc quickstart --epochs 5 --out runs/quick5"),
        parents=(epochs, seed, threads, quiet))
    quick.add_argument("--out", default="runs/quickstart",
                       help="folder of the two runs and quickstart.json")
    quick.set_defaults(func=_cmd_quickstart, out_kind="folder")

    extract = _command(
        commands, "extract", "extract text, audio and video features from media into a store", (
            "hotspot-erc extract --manifest my_calls.json --out stores/my_calls",
            "hotspot-erc extract --dataset ravdess --out stores/ravdess --modalities audio"),
        parents=(workers, quiet))
    extract.add_argument("--manifest", default=None,
                         help="conversation manifest (JSON; see docs/formats.md)")
    extract.add_argument("--dataset", default=None, help="or a corpus: ravdess, crema-d, ...")
    extract.add_argument("--data", default=None,
                         help="corpus folder for --dataset (default: $HOTSPOT_ERC_DATA)")
    extract.add_argument("--out", required=True, help="feature-store folder (resumes)")
    extract.add_argument("--modalities", default=None,
                         help="comma-separated (default: those the corpus is read with, e.g. "
                              "audio for ravdess; for a manifest, text and the media it names)")
    extract.add_argument("--text-setting", default="minilm", choices=("minilm", "large"),
                         help="text features: frozen MiniLM, or frozen mpnet + USE")
    extract.add_argument("--fps", type=float, default=15.0, help="video frames per second")
    extract.add_argument("--max-width", type=int, default=480,
                         help="downscale wider video to this width")
    _engine_options(extract)
    extract.set_defaults(func=_cmd_extract, out_kind="folder")

    train = _command(
        commands, "train", "train one variant, select on validation", (
            "hotspot-erc train --dataset synthetic --out runs/full",
            "hotspot-erc train --dataset iemocap6 --variant no_hgf --epochs 30 --out "
            "runs/no_hgf"),
        parents=(dataset, training, seed, quiet))
    train.add_argument("--variant", default="full", help="see `hotspot-erc models`")
    train.add_argument("--out", required=True, help="run folder (resumes if it exists)")
    train.set_defaults(func=_cmd_train, out_kind="folder")

    evaluate = _command(
        commands, "evaluate", "evaluate a checkpoint on a split", (
            "hotspot-erc evaluate --checkpoint runs/full --dataset synthetic",
            "hotspot-erc evaluate --checkpoint runs/my_calls --dataset stores/my_calls --split "
            "valid --out valid.json"),
        parents=(dataset, threads, quiet))
    _model_source(evaluate)
    evaluate.add_argument("--split", default="test", help="the split to evaluate on")
    evaluate.add_argument("--out", default=None, help="write the full result as JSON here")
    evaluate.set_defaults(func=_cmd_evaluate, out_kind="file")

    predict = _command(
        commands, "predict",
        "predict emotions on conversations and write predictions, reports and "
        "predictions.csv", (
            "hotspot-erc predict --model meld-text --transcript call.srt --out call_prediction",
            "hotspot-erc predict --checkpoint runs/my_model --transcript call.srt --media "
            "call.mp4 --out call_prediction",
            "hotspot-erc predict --checkpoint runs/my_model --transcript calls/ --media-folder "
            "recordings/ --threads 2 --out calls_prediction"),
        parents=(workers, threads, quiet))
    _model_source(predict)
    predict.add_argument("--transcript", required=True, action="append",
                         metavar="FILE_OR_FOLDER",
                         help="JSON (manifest schema), SRT/WebVTT cues ('Speaker: text', or no "
                              "speakers at all), or MELD-like CSV; repeatable, and a folder "
                              "stands for its transcript files")
    predict.add_argument("--transcript-format", default=None,
                         choices=("json", "srt", "vtt", "csv"),
                         help="default: from the file extension")
    predict.add_argument("--media", default=None,
                         help="one recording of the conversation (video with sound, or audio); "
                              "one transcript file only")
    predict.add_argument("--audio", default=None, help="a separate audio recording")
    predict.add_argument("--video", default=None, help="a separate video recording")
    predict.add_argument("--media-folder", default=None,
                         help="recordings named like the transcripts (call1.srt -> call1.mp4); "
                              "a transcript without one is predicted on its text")
    predict.add_argument("--out", required=True,
                         help="output folder: predictions.csv for all conversations, and "
                              "predictions.jsonl, report.html, figures/ per conversation (in "
                              "OUT/<transcript name>/, or OUT itself for one transcript file)")
    predict.add_argument("--no-report", action="store_true", help="predictions.jsonl only")
    _engine_options(predict)
    predict.set_defaults(func=_cmd_predict, out_kind="folder")

    service = _command(
        commands, "serve",
        "serve predictions over HTTP (FastAPI + uvicorn), the model loaded once", (
            "hotspot-erc serve --model meld-text",
            "hotspot-erc serve --checkpoint runs/my_model",
            "hotspot-erc serve --checkpoint runs/my_model --host 0.0.0.0 --api-key-file "
            "key.txt"))
    _model_source(service)
    service.add_argument("--host", default="127.0.0.1",
                         help="address to listen on; 127.0.0.1 serves this machine only")
    service.add_argument("--port", type=int, default=8000, help="port to listen on")
    service.add_argument("--api-key-file", default=None,
                         help="file holding the key clients must send (Authorization: Bearer "
                              "KEY, or X-API-Key: KEY); default: no key")
    service.add_argument("--max-request-mb", type=float, default=64.0,
                         help="largest request body, MiB")
    service.add_argument("--max-media-seconds", type=float, default=600.0,
                         help="longest recording, seconds")
    service.add_argument("--max-utterances", type=int, default=1000,
                         help="most turns in a transcript")
    service.add_argument("--concurrency", type=int, default=1,
                         help="predictions running at once")
    service.add_argument("--queue", type=int, default=8,
                         help="requests admitted beyond those running; more get 503 with "
                              "Retry-After")
    service.add_argument("--cors-origin", action="append", default=None, metavar="ORIGIN",
                         help="let browser pages from ORIGIN call the service (repeatable; "
                              "default: no CORS)")
    service.add_argument("--max-reports", type=int, default=100,
                         help="reports kept for their links, oldest dropped")
    service.add_argument("--workers", type=int, default=1,
                         help="processes extracting audio and video per request (1 keeps the "
                              "media models loaded between requests)")
    service.add_argument("--upload-timeout", type=float, default=120.0,
                         help="seconds a client may take to send its body")
    service.add_argument("--shutdown-timeout", type=float, default=60.0,
                         help="seconds running requests get to finish on SIGTERM")
    service.add_argument("--max-streams", type=int, default=8,
                         help="/v1/stream connections (live conversations) open at once")
    service.set_defaults(func=_cmd_serve)

    robust = _command(
        commands, "robustness",
        "evaluate a checkpoint with each modality dropped, noised, shifted", (
            "hotspot-erc robustness --checkpoint runs/full --dataset synthetic --out "
            "robustness/full",),
        parents=(dataset, seed, threads, quiet))
    _model_source(robust)
    robust.add_argument("--split", default="test", help="the split to evaluate on")
    robust.add_argument("--out", required=True, help="folder for robustness.json/.md/.png")
    robust.set_defaults(func=_cmd_robustness, out_kind="folder")

    demo = _command(
        commands, "demo",
        "build a demonstration checkpoint from generated conversations (no data needed) "
        "and a new conversation to predict on", (
            "hotspot-erc demo", "hotspot-erc demo --epochs 10 --out demo10"),
        parents=(epochs, seed, workers, threads, quiet))
    demo.add_argument("--out", default="demo",
                      help="folder of the corpus, features, run and unseen conversation")
    demo.set_defaults(func=_cmd_demo, out_kind="folder")

    probe = _command(
        commands, "probe", "context-free baseline: logistic regression on global vectors", (
            "hotspot-erc probe --dataset synthetic",
            "hotspot-erc probe --dataset ravdess --modalities audio --out probe.json"),
        parents=(dataset, threads, quiet))
    probe.add_argument("--modalities", default=None,
                       help="comma-separated (default: every modality with features)")
    probe.add_argument("--out", default=None, help="write the result as JSON here")
    probe.set_defaults(func=_cmd_probe, out_kind="file")

    tuning = _command(
        commands, "tune", "search hyperparameters (Optuna) on validation only; resumable", (
            "hotspot-erc tune --dataset synthetic --trials 20 --out studies/full",
            "hotspot-erc tune --dataset iemocap6 --variant no_hgf --seeds 3 --out "
            "studies/no_hgf"),
        parents=(dataset, training, quiet))
    tuning.add_argument("--variant", default="full", help="see `hotspot-erc models`")
    tuning.add_argument("--trials", type=int, default=20, help="finished trials wanted")
    tuning.add_argument("--seeds", type=int, default=2,
                        help="seeds per trial; the objective is their mean")
    tuning.add_argument("--first-seed", type=int, default=0,
                        help="the seeds are FIRST_SEED, FIRST_SEED + 1, ...")
    tuning.add_argument("--space", default="common",
                        help="search space (see hotspot_erc.engine.tune.SPACES)")
    tuning.add_argument("--out", required=True, help="study folder (resumes if it exists)")
    tuning.set_defaults(func=_cmd_tune, out_kind="folder")

    ablation = _command(
        commands, "ablate", "variants x seeds, mean +- std table", (
            "hotspot-erc ablate --dataset synthetic --out runs/ablation",
            "hotspot-erc ablate --dataset iemocap6 --variants full,no_hgf --seeds 3 --out "
            "runs/iemocap_ablation"),
        parents=(dataset, training, quiet))
    ablation.add_argument("--variants", default="full,no_hgf,no_moa,no_graph,fixed_align,corect",
                          help="comma-separated variant names (see `hotspot-erc models`)")
    ablation.add_argument("--seeds", type=int, default=5, help="number of seeds")
    ablation.add_argument("--first-seed", type=int, default=0,
                          help="the seeds are FIRST_SEED, FIRST_SEED + 1, ...")
    ablation.add_argument("--out", required=True,
                          help="folder of the runs and the summary (resumes if it exists)")
    ablation.set_defaults(func=_cmd_ablate, out_kind="folder")
    return parser


def _check_out(out: str | None, kind: str | None) -> None:
    """``--out`` must be able to become what the command writes (``kind``: a ``folder`` or a
    ``file``): checked before anything is loaded, so a wrong path fails at once."""
    if out is None or kind is None:
        return
    path = Path(out)
    if kind == "folder" and path.exists() and not path.is_dir():
        raise ValueError(f"--out {out}: is an existing file; expected a folder (a new or an "
                         "existing one)")
    if kind == "file" and path.is_dir():
        raise ValueError(f"--out {out}: is a folder; expected a file name")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"--out {out}: {parent} is a file, not a folder")
            return


def _command_threads(args: argparse.Namespace) -> int | None:
    """The command's ``--threads``: its own (commands that run a trained model) or training's,
    which also holds for the tuning and extraction a training command runs first; None when
    not given (or not >= 1: TrainConfig rejects that with its own message)."""
    threads = getattr(args, "process_threads", None) or getattr(args, "threads", None)
    return threads if isinstance(threads, int) and threads >= 1 else None


@contextlib.contextmanager
def _thread_limit(threads: int | None):
    """At most ``threads`` CPU threads in torch and in the BLAS/OpenMP pools of numpy and
    scikit-learn while a command runs (``--threads`` of the commands that run a trained model;
    None: as the libraries choose), restored afterwards."""
    if threads is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def _os_error_line(error: OSError) -> str:
    """``path: reason``, with what to do where there is something to do."""
    where = " -> ".join(str(name) for name in (error.filename, error.filename2)
                        if name is not None)
    reason = error.strerror or str(error)
    line = f"{where}: {reason}" if where and error.strerror else reason
    if error.errno == errno.ENOSPC:
        line += " (free some space, then rerun the same command to resume)"
    return line


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"
    from hotspot_erc.features.decode import MediaError

    try:
        _check_out(getattr(args, "out", None), getattr(args, "out_kind", None))
        with _thread_limit(_command_threads(args)):
            status = args.func(args)
        # Flushed here, so a closed pipe is the BrokenPipeError below, not an error at exit.
        sys.stdout.flush()
        return status
    except KeyboardInterrupt:
        print("hotspot-erc: interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (| head): nothing more to say, and nowhere to say it.
        # Python's own advice: point stdout at devnull, or the flush at exit fails once more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (DataFormatError, KeyError, ValueError, MediaError) as error:
        # A KeyError's str() is the repr of its message; the message itself reads better.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        return _fail(str(message))
    except OSError as error:
        return _fail(_os_error_line(error))
    except MemoryError as error:
        return _fail(f"out of memory{': ' + str(error) if str(error) else ''} (an input asks "
                     "for more memory than this machine has)")
    except ImportError as error:
        return _fail(f"{error} (the media stack installs with: bash install.sh media)")


def _fail(message: str) -> int:
    """Print ``message`` as the one error line (escaped: it may quote input files) and give
    the exit status of a failed command."""
    print(f"hotspot-erc: error: {printable(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
