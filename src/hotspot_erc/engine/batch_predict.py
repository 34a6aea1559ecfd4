"""Predict on several conversations with one loaded model, and gather the labels in one table.

Two calls, as ``hotspot-erc predict`` makes them::

    conversations = load_conversations(["calls/"], media_folder="recordings/")
    result = predict_many(Predictor.load("runs/my_model"), conversations, "out/")

:func:`load_conversations` reads every transcript (and probes every recording) before any model
loads, so a malformed file fails the run at once, naming the file and the line. Which
transcripts: each path given is a transcript file, or a folder whose transcript files (``.json``,
``.srt``, ``.vtt``, ``.csv``, or only the extension of ``fmt`` when given; not its subfolders,
not hidden files) are read in name order. Each conversation is named by its transcript's file
stem; two transcripts with one stem are an error, since they would share an output folder.
Their recordings:

* ``media`` / ``audio`` / ``video``: the recordings of one conversation
  (:func:`~hotspot_erc.engine.predict.conversation_media`), allowed only with a single
  transcript file;
* ``media_folder``: for each transcript, the file of that folder with the same stem and an
  extension that is not a transcript's (``call1.srt`` -> ``call1.mp4``); none gives a text-only
  conversation with a notice, more than one is an error listing them.

:func:`predict_many` runs :meth:`~hotspot_erc.engine.predict.Predictor.predict` on each
conversation in turn with the same predictor (models load once). It writes each conversation's
``predictions.jsonl`` and ``report.html`` (:func:`hotspot_erc.report.outputs.write_outputs`) and
its feature stores (``features/``, reused by a rerun) into its own folder: ``out/<name>/``, or
``out`` itself for a single transcript file (the layout of one prediction). Then it writes
``out/predictions.csv`` (:data:`CSV_NAME`): one row per utterance of every conversation, in
order, with the columns :data:`CSV_COLUMNS` and ``p_<label>`` for each of the checkpoint's labels
(its class probabilities); ``start`` and ``end`` are empty where the transcript has no times.
Texts are written as in the transcript (a spreadsheet may read a cell starting with ``=`` as a
formula). The file is written atomically, after the last conversation.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hotspot_erc.atomic import atomic_open
from hotspot_erc.data.dialogue import Dialogue
from hotspot_erc.data.transcript import FORMATS, load_transcript
from hotspot_erc.engine.predict import Predictor, conversation_media
from hotspot_erc.engine.prediction import ConversationPrediction

CSV_NAME = "predictions.csv"
CSV_COLUMNS: tuple[str, ...] = ("conversation", "id", "speaker", "start", "end", "text", "label")


@dataclass
class Conversation:
    """One transcript read for prediction: its ``name`` (the file stem), the dialogue with its
    recordings, the notices reading it gave, and whether it is the run's only transcript file
    (then its outputs go straight into the output folder)."""

    name: str
    transcript: Path
    dialogue: Dialogue
    notices: list[str] = field(default_factory=list)
    alone: bool = False


@dataclass
class BatchResult:
    """What :func:`predict_many` wrote: per conversation name its output files
    (``predictions``, ``report``), and the table of all of them."""

    outputs: dict[str, dict[str, Path]]
    csv: Path


def transcript_files(paths: Sequence[str | os.PathLike], fmt: str | None = None) -> list[Path]:
    """The transcript files ``paths`` name: files as given, folders expanded (module docstring).

    A path that does not exist, or a folder without a transcript file, is a ValueError.
    """
    suffixes = {f".{fmt}"} if fmt is not None else {f".{name}" for name in FORMATS}
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(entry for entry in path.iterdir()
                           if entry.is_file() and not entry.name.startswith(".")
                           and entry.suffix.lower() in suffixes)
            if not found:
                raise ValueError(f"--transcript {path}: the folder holds no transcript file "
                                 f"({', '.join(sorted(suffixes))})")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise ValueError(f"--transcript {path}: no such file or folder")
    unique: dict[Path, Path] = {}
    for path in files:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def recordings_by_stem(media_folder: Path) -> dict[str, list[Path]]:
    """The files of ``media_folder`` that are not transcripts (nor hidden), by file stem."""
    transcript_suffixes = {f".{name}" for name in FORMATS}
    found: dict[str, list[Path]] = {}
    for entry in sorted(media_folder.iterdir()):
        if (entry.is_file() and not entry.name.startswith(".")
                and entry.suffix.lower() not in transcript_suffixes):
            found.setdefault(entry.stem, []).append(entry)
    return found


def load_conversations(transcripts: Sequence[str | os.PathLike], fmt: str | None = None,
                       media: str | None = None, audio: str | None = None,
                       video: str | None = None,
                       media_folder: str | os.PathLike | None = None) -> list[Conversation]:
    """Read every transcript and probe every recording (see the module docstring)."""
    files = transcript_files(transcripts, fmt)
    alone = len(transcripts) == 1 and len(files) == 1 and not Path(transcripts[0]).is_dir()
    one_conversation = [option for option, value in
                        (("--media", media), ("--audio", audio), ("--video", video)) if value]
    if one_conversation and media_folder is not None:
        raise ValueError(f"{', '.join(one_conversation)} and --media-folder: give the "
                         "recordings of one transcript, or a folder of recordings, not both")
    if one_conversation and not alone:
        given = f"{len(files)} transcripts" if len(files) > 1 else "a folder of transcripts"
        raise ValueError(
            f"{', '.join(one_conversation)}: the recordings of one conversation go with a single "
            f"transcript file, not {given}; put each conversation's recording in a folder, "
            f"named like its transcript (call1.srt -> call1.mp4), and give --media-folder")
    recordings_named: dict[str, list[Path]] = {}
    if media_folder is not None:
        if not Path(media_folder).is_dir():
            raise ValueError(f"--media-folder {media_folder}: not a folder")
        recordings_named = recordings_by_stem(Path(media_folder))
    names: dict[str, Path] = {}
    for path in files:
        if path.stem in names:
            raise ValueError(f"--transcript: {names[path.stem]} and {path} would share the "
                             f"output folder {path.stem!r}: rename one")
        names[path.stem] = path
    conversations = []
    for path in files:
        notices = []
        if media_folder is None:
            recordings, duration = conversation_media(media, audio, video)
        else:
            matches = recordings_named.get(path.stem, [])
            if len(matches) > 1:
                raise ValueError(f"--media-folder {media_folder}: several recordings are named "
                                 f"like {path.name}: {', '.join(m.name for m in matches)}; keep "
                                 "one per conversation")
            if not matches:
                notices.append(f"{path}: no recording named {path.stem}.* in {media_folder}: "
                               "text only")
            recordings, duration = conversation_media(str(matches[0]) if matches else None)
        dialogue, read_notices = load_transcript(path, fmt, media=recordings,
                                                 media_duration=duration)
        conversations.append(Conversation(name=path.stem, transcript=path, dialogue=dialogue,
                                          notices=notices + read_notices, alone=alone))
    return conversations


def csv_header(label_names: Sequence[str]) -> list[str]:
    """The columns of ``predictions.csv``: :data:`CSV_COLUMNS`, then ``p_<label>`` per label."""
    return [*CSV_COLUMNS, *(f"p_{name}" for name in label_names)]


def csv_rows(name: str, conversation: ConversationPrediction) -> list[list]:
    """The rows of ``predictions.csv`` for one conversation, in utterance order."""
    return [[name, utterance.id, utterance.speaker,
             "" if utterance.start is None else utterance.start,
             "" if utterance.end is None else utterance.end,
             utterance.text, utterance.label,
             *(utterance.probabilities[label] for label in conversation.label_names)]
            for utterance in conversation.utterances]


def write_csv(path: str | os.PathLike, header: list[str], rows: list[list]) -> Path:
    """Write a CSV table atomically (UTF-8, ``\\n`` line ends, quoted where needed)."""
    with atomic_open(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return Path(path)


def predict_many(predictor: Predictor, conversations: Sequence[Conversation],
                 out: str | os.PathLike, report: bool = True, progress: bool = False,
                 on_conversation: Callable[[Conversation, ConversationPrediction,
                                            dict[str, Path]], None] | None = None,
                 engine: str = "local", ray_address: str | None = None) -> BatchResult:
    """Predict on each conversation with ``predictor`` and write the outputs (module
    docstring); ``on_conversation(conversation, prediction, paths)`` is called as each one is
    written. ``engine="ray"``: on ``predictor.workers`` Ray actors instead, each with its own
    copy of the predictor (:mod:`~.ray_predict`; ``ray_address``: the cluster to join)."""
    if engine not in ("local", "ray") or (ray_address and engine != "ray"):
        raise ValueError(f"engine={engine!r}, ray_address={ray_address!r}: expected engine "
                         "local or ray, and an address only with ray")
    if engine == "ray":
        from hotspot_erc.engine.ray_predict import predict_on_ray, predictor_loader

        return predict_on_ray(predictor_loader(predictor), conversations, out, report,
                              predictor.workers, ray_address, progress, on_conversation)
    # The report layer writes the files; imported here, as the command line does.
    from hotspot_erc.report.outputs import write_outputs

    out = Path(out)
    outputs: dict[str, dict[str, Path]] = {}
    rows: list[list] = []
    label_names: list[str] = []
    for conversation in conversations:
        folder = out if conversation.alone else out / conversation.name
        prediction = predictor.predict(conversation.dialogue, notices=conversation.notices,
                                       feature_folder=folder / "features", progress=progress)
        paths = write_outputs(prediction, folder, report=report)
        outputs[conversation.name] = paths
        label_names = list(prediction.label_names)
        rows += csv_rows(conversation.name, prediction)
        if on_conversation is not None:
            on_conversation(conversation, prediction, paths)
    return BatchResult(outputs=outputs, csv=write_csv(out / CSV_NAME, csv_header(label_names),
                                                      rows))
