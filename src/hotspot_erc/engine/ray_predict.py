"""Batch prediction on Ray: conversations predicted by actors that each hold a loaded predictor.

``predict_many(..., engine="ray")`` (``hotspot-erc predict --engine ray``) hands its
conversations to :func:`predict_on_ray`. It starts ``workers`` actors (one CPU each, on this
machine or on the cluster at ``address``; see :mod:`hotspot_erc.features.ray_engine` for where
Ray runs). Each actor loads the predictor once (the checkpoint, and the extractors' models on
first use) and keeps it: it predicts one conversation at a time, extracting in its own process,
and writes that conversation's ``predictions.jsonl``, ``report.html`` and ``features/`` into the
conversation's folder, the layout of :mod:`~.batch_predict`. So on a cluster the checkpoint, the
recordings and the output folder must be at the same paths on every node (shared storage).

The driver keeps two conversations queued per actor, calls ``on_conversation`` as each one is
written (in the order they finish), and writes ``predictions.csv`` last, its rows in the order of
``conversations``. A worker process that dies is restarted and its conversation retried
(:data:`~hotspot_erc.features.ray_engine.TASK_RETRIES` times); an exception a prediction raises
ends the run, as it does without Ray.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from hotspot_erc.engine.batch_predict import (
    CSV_NAME,
    BatchResult,
    Conversation,
    csv_header,
    csv_rows,
    write_csv,
)
from hotspot_erc.engine.predict import Predictor, load_predictor
from hotspot_erc.engine.prediction import ConversationPrediction
from hotspot_erc.features.ray_engine import IN_FLIGHT_PER_ACTOR, ray_session, start_actors


def predictor_loader(predictor: Predictor) -> Callable[[], Predictor]:
    """What an actor calls to load its own copy of ``predictor``: its checkpoint folder read
    again, extracting in the actor's process (``workers=1``)."""
    from hotspot_erc.engine.fusion import FusedPredictor

    if isinstance(predictor, FusedPredictor):
        path = predictor.path
    else:
        path = predictor.checkpoint.path
    if path is None:
        raise ValueError("predict on Ray: the predictor has no folder to load from (load it "
                         "with Predictor.load or load_predictor)")
    return functools.partial(load_predictor, str(path), workers=1)


class PredictionActor:
    """One Ray worker process of batch prediction: a loaded predictor, kept between
    conversations."""

    def __init__(self, load_predictor: Callable[[], Predictor]) -> None:
        import torch

        torch.set_num_threads(1)
        self.predictor = load_predictor()

    def pid(self) -> int:
        return os.getpid()

    def predict(self, conversation: Conversation, folder: Path, report: bool
                ) -> tuple[ConversationPrediction, dict[str, Path]]:
        """Predict ``conversation`` and write its outputs into ``folder``."""
        from hotspot_erc.report.outputs import write_outputs

        prediction = self.predictor.predict(conversation.dialogue, notices=conversation.notices,
                                            feature_folder=folder / "features")
        return prediction, write_outputs(prediction, folder, report=report)


def predict_on_ray(load_predictor: Callable[[], Predictor],
                   conversations: Sequence[Conversation], out: str | os.PathLike,
                   report: bool = True, workers: int = 2, address: str | None = None,
                   progress: bool = False,
                   on_conversation: Callable[[Conversation, ConversationPrediction,
                                              dict[str, Path]], None] | None = None
                   ) -> BatchResult:
    """Predict ``conversations`` on ``workers`` Ray actors, each built with ``load_predictor``
    (:func:`predictor_loader`), and write the outputs (module docstring)."""
    out = Path(out)
    pending = iter(enumerate(conversations))
    finished: dict[int, tuple[ConversationPrediction, dict[str, Path]]] = {}
    with ray_session(address, workers) as ray:
        actors = start_actors(ray, PredictionActor, min(workers, len(conversations)) or 1,
                              load_predictor)
        running: dict = {}  # object ref -> (actor, index)

        def submit_next(actor) -> None:
            index, conversation = next(pending, (None, None))
            if conversation is not None:
                folder = out if conversation.alone else out / conversation.name
                running[actor.predict.remote(conversation, folder, report)] = (actor, index)

        try:
            for actor in actors:
                for _ in range(IN_FLIGHT_PER_ACTOR):
                    submit_next(actor)
            with tqdm(total=len(conversations), desc="predict", unit="conversation",
                      disable=not progress) as bar:
                while running:
                    (done,), _ = ray.wait(list(running), num_returns=1)
                    actor, index = running.pop(done)
                    submit_next(actor)
                    finished[index] = ray.get(done)
                    bar.update(1)
                    if on_conversation is not None:
                        on_conversation(conversations[index], *finished[index])
        finally:
            for actor in actors:
                ray.kill(actor)
    rows: list[list] = []
    label_names: list[str] = []
    for index, conversation in enumerate(conversations):
        prediction, _ = finished[index]
        label_names = list(prediction.label_names)
        rows += csv_rows(conversation.name, prediction)
    return BatchResult(outputs={c.name: finished[i][1] for i, c in enumerate(conversations)},
                       csv=write_csv(out / CSV_NAME, csv_header(label_names), rows))
