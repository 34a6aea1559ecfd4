"""The files of a prediction run: ``predictions.jsonl`` and ``report.html`` (with its figures).

``predictions.jsonl`` holds one JSON object per utterance, in conversation order, exactly the
``utterances`` entries of the conversation dict made by
:meth:`hotspot_erc.engine.predict.Predictor.predict` (id, speaker, start, end, text, predicted
label, class probabilities, per modality the hotspot weights, prior, gate mean and top hotspot
spans, and the aligner experts per modality pair). Every file is written atomically: an
interrupted run leaves the previous file or none, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hotspot_erc.atomic import atomic_open


def write_outputs(conversation: dict, folder: str | os.PathLike, report: bool = True
                  ) -> dict[str, Path]:
    """Write ``predictions.jsonl`` and, with ``report``, ``report.html``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"predictions": folder / "predictions.jsonl"}
    with atomic_open(paths["predictions"], "w") as handle:
        for utterance in conversation["utterances"]:
            handle.write(json.dumps(utterance, ensure_ascii=False) + "\n")
    if report:
        from hotspot_erc.report.html import write_report

        paths["report"] = write_report(conversation, folder)
    return paths
