"""Data-parallel training over several processes started by torchrun.

Launch ``train`` under torchrun, one process (rank) per core or machine::

    torchrun --standalone --nproc-per-node 2 -m hotspot_erc.cli train --dataset ... --out RUN

:func:`~.train.train` calls the helpers of this module. Without torchrun's environment
(``WORLD_SIZE`` unset or 1) each of them is what a single process does, so a plain run is
unchanged bit for bit. With ``N`` ranks:

* **Process group**: initialised from torchrun's environment (``RANK``, ``WORLD_SIZE``,
  ``MASTER_ADDR``, ``MASTER_PORT``): gloo for a model on the CPU (the trainer's), NCCL for one on
  a CUDA device; destroyed when training ends. A group the caller initialised is used as it is.
* **Run folder**: rank 0 alone takes the run-folder lock; the other ranks start once it holds
  it, and fail with rank 0's error if it cannot (another run is using the folder).
* **Batches**: every rank draws the same order of the training dialogues for epoch ``e``
  (seeded from ``(seed, e)``, as a single process does) and cuts it into the same global batches
  of ``batch_size`` dialogues; rank ``r`` takes dialogues ``r, r + N, ...`` of each global batch
  (:func:`shard_indices`). A rank left without a dialogue (a last batch smaller than ``N``) runs
  the batch's first dialogue with every label ignored: a zero gradient, so that every rank takes
  part in every gradient reduction.
* **Gradients**: averaged over the ranks by :class:`~torch.nn.parallel.DistributedDataParallel`.
  Each rank's loss is multiplied by ``N`` times its share of the global batch's label weight
  (:func:`rank_loss`), so the average is the gradient of the single-process loss of the whole
  global batch: its cross-entropy, a weighted mean over the batch's scored utterances, up to the
  order of floating-point sums. Two things differ from one process: dropout (each rank draws its
  own masks) and the MoA balance loss (the share-weighted mean of the ranks' balance losses
  instead of the whole batch's). With dropout 0 and ``moa.balance_weight`` 0 the run reproduces
  the single-process one; docs/scaling.md gives the tolerance the tests hold it to.
* **Validation, checkpoint, log, resume point**: rank 0 alone, after each epoch, while the other
  ranks wait for its next word (:func:`announce_epoch`, :func:`follow_main_rank`): the next epoch
  to train, or the end with the run's result, which every rank then returns.
* **Resume**: as a single run; every rank reads rank 0's resume point. A rank that fails ends
  the run (torchrun stops the others); the same command resumes it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from hotspot_erc.data.batch import IGNORE_INDEX, Batch, collate
from hotspot_erc.data.dialogue import Dialogue, FeatureSpec


def world_size() -> int:
    """Ranks training together (1 without an initialised process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without an initialised process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_rank() -> bool:
    """Whether this process is rank 0, the one that validates and writes (a single process
    is)."""
    return rank() == 0


def launched_world_size() -> int:
    """The ``WORLD_SIZE`` torchrun gave this process (1 when it is not set)."""
    value = os.environ.get("WORLD_SIZE", "1").strip()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"environment variable WORLD_SIZE={value!r}: expected an integer >= 1 "
                         "(torchrun sets it)")
    return int(value)


def launched_rank() -> int:
    """The ``RANK`` torchrun gave this process (0 when it is not set): known before, and after,
    the process group."""
    value = os.environ.get("RANK", "0").strip()
    if not value.isdigit():
        raise ValueError(f"environment variable RANK={value!r}: expected an integer >= 0 "
                         "(torchrun sets it)")
    return int(value)


def backend_for(device: torch.device) -> str:
    """The collective backend for a model on ``device``: NCCL on CUDA, gloo otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


@contextlib.contextmanager
def process_group(device: torch.device | None = None) -> Iterator[None]:
    """The default process group for the block, from torchrun's environment, when torchrun
    started several ranks and none is initialised yet; otherwise nothing is done."""
    if (dist.is_available() and dist.is_initialized()) or launched_world_size() == 1:
        yield
        return
    dist.init_process_group(backend_for(device or torch.device("cpu")))
    try:
        yield
    finally:
        dist.destroy_process_group()


def _from_main_rank(value):
    """``value`` as rank 0 gives it, on every rank."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling (to be raised again on the other ranks), else a
    RuntimeError that names it."""
    try:
        return pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"rank 0 could not start: {type(error).__name__}: {error}")


@contextlib.contextmanager
def held_by_main_rank(context: Callable[..., contextlib.AbstractContextManager],
                      *args) -> Iterator[None]:
    """``context(*args)`` held by rank 0 alone for the block (every rank in a single process).
    The other ranks enter the block once rank 0 holds it, or raise the error rank 0 got when it
    could not (a RuntimeError naming it, if it does not pickle)."""
    if world_size() == 1:
        with context(*args):
            yield
        return
    if not is_main_rank():
        problem = _from_main_rank(None)
        if problem is not None:
            raise problem
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(context(*args))
        except BaseException as error:
            _from_main_rank(_portable(error))
            raise
        _from_main_rank(None)
        yield


def shard_indices(count: int, batch_size: int, generator: np.random.Generator,
                  rank_index: int, ranks: int) -> Iterator[tuple[list[int], list[int]]]:
    """(global batch, this rank's part of it) as indices into ``count`` training dialogues.

    The global batches are those of :func:`~hotspot_erc.data.batch.iterate_batches` with
    ``shuffle=True`` and the same generator; the part is every ``ranks``-th dialogue from
    ``rank_index`` (empty when the batch has fewer dialogues than ranks).
    """
    order = generator.permutation(count)
    for start in range(0, count, batch_size):
        batch = [int(i) for i in order[start:start + batch_size]]
        yield batch, batch[rank_index::ranks]


def shard_batches(dialogues: Sequence[Dialogue], label_names: Sequence[str],
                  feature_spec: FeatureSpec, batch_size: int, generator: np.random.Generator,
                  max_positions: dict[str, int] | None = None) -> Iterator[Batch]:
    """This rank's :class:`~hotspot_erc.data.batch.Batch` of each global batch of shuffled
    ``dialogues`` (module docstring); in a single process exactly the batches of
    ``iterate_batches(..., shuffle=True, generator=generator)``."""
    for batch, part in shard_indices(len(dialogues), batch_size, generator, rank(),
                                     world_size()):
        if part:
            yield collate([dialogues[i] for i in part], label_names, feature_spec, max_positions)
        else:
            padding = collate([dialogues[batch[0]]], label_names, feature_spec, max_positions)
            padding.labels.fill_(IGNORE_INDEX)
            yield padding


def rank_loss(loss: torch.Tensor, labels: torch.Tensor,
              class_weights: torch.Tensor | None) -> torch.Tensor:
    """``loss`` (this rank's weighted mean over its scored ``labels``) scaled so that the mean
    over ranks of its gradient is the gradient over the global batch (module docstring); the
    loss itself in a single process, or when no rank has a scored label."""
    ranks = world_size()
    if ranks == 1:
        return loss
    scored = labels[labels != IGNORE_INDEX]
    weight = (class_weights[scored].sum() if class_weights is not None
              else torch.tensor(float(scored.numel()))).detach().to(torch.float64)
    total = weight.clone()
    dist.all_reduce(total)
    if float(total) == 0.0:
        return loss
    return loss * float(ranks * weight / total)


def mean_over_ranks(value: float) -> float:
    """The mean of ``value`` over the ranks (``value`` itself in a single process)."""
    ranks = world_size()
    if ranks == 1:
        return value
    total = torch.tensor(value, dtype=torch.float64)
    dist.all_reduce(total)
    return float(total) / ranks


def data_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel when several ranks train (its gradients
    averaged over them in backward), else ``model`` itself. Parameters a batch leaves unused
    (a modality absent from a rank's dialogues) are allowed. The buffers (input standardisers,
    class weights, constant tables) are fixed before training and equal on every rank from the
    start, so they are not broadcast again at every step."""
    if world_size() == 1:
        return model
    return DistributedDataParallel(model, find_unused_parameters=True, broadcast_buffers=False)


def announce_epoch(epoch: int) -> None:
    """Rank 0: tell the other ranks to train ``epoch`` (:func:`follow_main_rank`)."""
    if world_size() > 1:
        _from_main_rank(("epoch", epoch))


def announce_end(result):
    """Rank 0: tell the other ranks the run ended with ``result``. Every rank returns the run's
    result (the others got it in :func:`follow_main_rank`)."""
    if world_size() > 1 and is_main_rank():
        _from_main_rank(("end", result))
    return result


def follow_main_rank(train_epoch: Callable[[int], object]):
    """Ranks other than 0: ``train_epoch(e)`` for each epoch rank 0 announces, waiting for its
    word in between (while it validates and writes), until it announces the end; return the
    run's result it sends."""
    while True:
        kind, value = _from_main_rank(None)
        if kind == "end":
            return value
        train_epoch(value)

