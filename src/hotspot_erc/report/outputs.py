"""The files of a prediction run: ``predictions.jsonl`` and ``report.html`` (with its figures).

``predictions.jsonl`` holds one JSON object per utterance, in conversation order: the
``to_json()`` of each :class:`~hotspot_erc.engine.prediction.UtterancePrediction` of the
conversation made by :meth:`hotspot_erc.engine.predict.Predictor.predict` (id, speaker, start,
end, text, predicted label, class probabilities, per modality the hotspot weights, prior, gate
mean and top hotspot spans, and the aligner experts per modality pair; docs/formats.md, section
4.6). Every file is written atomically: an interrupted run leaves the previous file or none,
never half of one. :func:`read_predictions` reads the file back, for instance to render the
report again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hotspot_erc.atomic import atomic_open
from hotspot_erc.engine.prediction import (
    ConversationPrediction,
    PredictionFormatError,
    UtterancePrediction,
)

PREDICTIONS_NAME = "predictions.jsonl"


def write_outputs(conversation: ConversationPrediction, folder: str | os.PathLike,
                  report: bool = True) -> dict[str, Path]:
    """Write ``predictions.jsonl`` and, with ``report``, ``report.html``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"predictions": folder / PREDICTIONS_NAME}
    with atomic_open(paths["predictions"], "w") as handle:
        for utterance in conversation.utterances:
            handle.write(json.dumps(utterance.to_json(), ensure_ascii=False) + "\n")
    if report:
        from hotspot_erc.report.html import write_report

        paths["report"] = write_report(conversation, folder)
    return paths


def read_predictions(path: str | os.PathLike, name: str | None = None
                     ) -> ConversationPrediction:
    """The conversation of a ``predictions.jsonl`` (or of the run folder holding one).

    The file holds the utterances only: the label names are the keys of the first utterance's
    ``probabilities`` (the checkpoint's label names, in order), ``name`` defaults to the name of
    the run folder, and checkpoint, media, notices, timings and the model card are unknown (the
    report then says that nothing is known about the model). A line that is not
    JSON, or not a well-formed prediction, is a
    :class:`~hotspot_erc.engine.prediction.PredictionFormatError` naming the file, the line and
    the field.
    """
    path = Path(path)
    if path.is_dir():
        path = path / PREDICTIONS_NAME
    lines = [(number, line) for number, line
             in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if line.strip()]
    if not lines:
        raise PredictionFormatError(f"{path}: no predictions (expected one JSON object per "
                                    "utterance)")
    rows = []
    for number, line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise PredictionFormatError(f"{path} line {number}: not JSON ({error.msg})") from None
    first = rows[0].get("probabilities") if isinstance(rows[0], dict) else None
    label_names = list(first) if isinstance(first, dict) else []
    utterances = [UtterancePrediction.from_json(row, label_names or None,
                                                f"{path} line {number}")
                  for (number, _), row in zip(lines, rows, strict=True)]
    return ConversationPrediction(name=name or path.parent.name, label_names=label_names,
                                  utterances=utterances)
