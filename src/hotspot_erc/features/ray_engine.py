"""Ray as the engine of batch extraction: conversations run on Ray actors that keep the extractors.

``extract_features`` with ``ExtractConfig(engine="ray")`` (``hotspot-erc extract --engine ray``)
hands its (dialogue, modality) tasks to :class:`RayMediaRunner` instead of the local process
pool. Everything else stays with the caller: text is extracted in the driver, every result is
written by the driver into the feature store with the store's atomic writes, and the dialogues
the store already has are never sent, so a rerun after a killed driver resumes where it stopped.

The runner starts ``config.workers`` actors (one CPU each). Each actor is a process holding the
extractors, whose models load on its first task and stay loaded for the next ones; at most two
tasks per actor are in flight, so the next one is queued on the actor while the current one runs
and a killed driver loses at most those. Where Ray runs:

* ``config.ray_address`` None: a Ray started here for the run (``ray.init(address="local")``
  with ``num_cpus=config.workers``, no dashboard, quiet logging) and shut down after it;
* an address (``ray start --head`` printed it; ``auto`` finds the one on this machine): that
  cluster; every node needs this package installed and the media at the same paths. Ray 2.59
  and later start clusters with token authentication: a driver joining by address needs
  ``RAY_AUTH_MODE=token`` and the cluster's token (``ray get-auth-token`` on the head; in
  ``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token`` here), and a refused connection says so;
* Ray already initialised in this process (a script of one's own, the tests): that session, left
  running.

Failures: a worker process that dies (killed, out of memory, lost node) is restarted by Ray with
its extractors, and its task is retried (:data:`TASK_RETRIES` times). A task that still fails, or
that raises, leaves its dialogue's modality unwritten and is reported as a
:class:`~.extract.Failure`, so the run goes on and a rerun tries that dialogue again.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from hotspot_erc.data.dialogue import Dialogue
from hotspot_erc.features.extract import (
    ExtractConfig,
    Failure,
    _sources,
    extract_media_dialogue,
)

# Attempts after the first for a task whose worker process died; a task that raises is not
# retried (the same input would raise again).
TASK_RETRIES = 2
# Tasks queued per actor: one running, one waiting, so an actor never idles between tasks.
IN_FLIGHT_PER_ACTOR = 2


class RayNotInstalled(ValueError):
    """``engine="ray"`` was asked for where Ray is not installed."""


def import_ray():
    """The ``ray`` module, or :class:`RayNotInstalled` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayNotInstalled('engine "ray" needs Ray, which is not installed here: '
                              "pip install .[ray] (or pip install hotspot-erc[ray])") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int) -> Iterator:
    """Ray for the block (see the module docstring): yields the ``ray`` module."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **quiet)
    else:
        try:
            ray.init(address=address, **quiet)
        except ConnectionError as error:
            raise ConnectionError(join_failure(address, error)) from error
    try:
        yield ray
    finally:
        ray.shutdown()


def join_failure(address: str, error: BaseException) -> str:
    """Why joining the cluster at ``address`` failed, with the usual cause's fix when it is not
    set up here: Ray's token authentication, on by default since Ray 2.59."""
    message = f"cannot join the Ray cluster at {address}: {error}"
    if os.environ.get("RAY_AUTH_MODE") != "token":
        message += (". If the cluster runs Ray 2.59 or later it expects a token: set "
                    "RAY_AUTH_MODE=token here, with the cluster's token (ray get-auth-token on "
                    "the head) in RAY_AUTH_TOKEN or ~/.ray/auth_token (docs/scaling.md)")
    return message


def start_actors(ray, actor_class: type, count: int, *args) -> list:
    """``count`` actors of ``actor_class`` (one CPU each, restarted when their process dies),
    built with ``args``, once all of them have started; too few CPUs in the cluster for them is
    a ValueError (the actors would wait for CPUs forever)."""
    cpus = ray.cluster_resources().get("CPU", 0)
    if count > cpus:
        raise ValueError(f"workers={count}: the Ray cluster has {cpus:g} CPU(s), one per worker "
                         "is needed; ask for fewer workers or add nodes")
    remote_class = ray.remote(num_cpus=1, max_restarts=-1,
                              max_task_retries=TASK_RETRIES)(actor_class)
    actors = [remote_class.remote(*args) for _ in range(count)]
    ray.get([actor.pid.remote() for actor in actors])
    return actors


def failure_reason(error: Exception) -> str:
    """What a failed Ray task says about itself, in one line: the exception the task raised,
    or how its worker process ended."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, Exception):
        return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"


class ExtractionActor:
    """One Ray worker process of the extraction: the extractors, kept between tasks."""

    def __init__(self, extractors: dict, config: ExtractConfig) -> None:
        import torch

        # One core per actor, as the local pool's workers: Ray places one actor per CPU.
        torch.set_num_threads(1)
        self.extractors = extractors
        self.config = config

    def pid(self) -> int:
        return os.getpid()

    def extract(self, dialogue: Dialogue, modality: str):
        """:func:`~.extract.extract_media_dialogue` with this actor's extractors."""
        return extract_media_dialogue(dialogue, modality, self.extractors, self.config)


class RayMediaRunner:
    """Runs (dialogue, modality) tasks on ``config.workers`` Ray actors and yields their results
    as they finish, in any order: the interface of the local pool's runner in
    :mod:`~.extract`, so ``extract_features`` treats both alike. A failed task yields ``None``
    for its records (nothing to write) and one :class:`~.extract.Failure` for its dialogue."""

    def __init__(self, tasks: list[tuple[Dialogue, str]], extractors: dict,
                 config: ExtractConfig) -> None:
        self.tasks = iter(tasks)
        self.task_count = len(tasks)
        self.extractors = extractors
        self.config = config
        self.running: dict = {}  # object ref -> (actor, dialogue, modality)
        self._stack = contextlib.ExitStack()
        self.ray = None
        self.actors: list = []

    def __enter__(self) -> RayMediaRunner:
        if not self.task_count:
            return self  # a finished store: no Ray to start
        self.ray = self._stack.enter_context(ray_session(self.config.ray_address,
                                                         self.config.workers))
        try:
            # The extractors travel unloaded (a few hundred bytes) inside each actor's creation
            # task, from which Ray rebuilds an actor whose process died.
            self.actors = start_actors(self.ray, ExtractionActor, self.config.workers,
                                       self.extractors, self.config)
            for actor in self.actors:
                for _ in range(IN_FLIGHT_PER_ACTOR):
                    self._submit_next(actor)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors, self.running = [], {}
        self._stack.close()

    def _submit_next(self, actor) -> None:
        task = next(self.tasks, None)
        if task is not None:
            self.running[actor.extract.remote(*task)] = (actor, *task)

    def results(self):
        """Yield (did, modality, records or None, failures, media seconds)."""
        while self.running:
            (finished,), _ = self.ray.wait(list(self.running), num_returns=1)
            actor, dialogue, modality = self.running.pop(finished)
            self._submit_next(actor)
            try:
                result = self.ray.get(finished)
            except self.ray.exceptions.RayError as error:
                reason = (f"the Ray task failed ({failure_reason(error)}); nothing was written "
                          "for this dialogue, a rerun tries it again")
                result = (dialogue.did, modality, None, [Failure(
                    modality, _sources(dialogue, dialogue.utterances, modality), reason,
                    [u.uid for u in dialogue.utterances])], 0.0)
            yield result
