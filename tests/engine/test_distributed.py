"""Data-parallel training under torchrun: the shards, the same weights as one process, resume,
rank 0 alone in the run folder."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hotspot_erc.engine.distributed import (
    backend_for,
    launched_world_size,
    rank_loss,
    shard_indices,
)

# The gradient two ranks average against the gradient of the whole global batch in one process,
# relative to the largest gradient: they differ only in the order of floating-point sums.
GRADIENT_TOLERANCE = 1e-6
# Weights after the same epochs of Adam. Adam divides each gradient by its own running magnitude,
# so an element whose exact gradient is zero (an attention key bias) or nearly so moves by
# rounding noise amplified to the size of a step: these drift apart by up to a few 1e-5.
WEIGHT_TOLERANCE = 2e-4

# One run of a tiny synthetic corpus: dropout and the MoA balance loss off, so that the ranks
# compute the single-process gradient of each global batch (see engine/distributed.py).
# argv: run folder, epochs, the epoch to stop after ("-": none), and optionally where each rank
# writes its gradient check (PREFIX<rank>.json), made before training on the batches of epoch 0
# with class weights (so the ranks' shares are weighted).
RUN = """
import copy, json, sys
import numpy as np
import torch
from hotspot_erc.data.batch import collate
from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset
from hotspot_erc.engine import distributed
from hotspot_erc.engine.config import TrainConfig
from hotspot_erc.engine.train import fit_standardisers, model_config_for, train
from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.model import HotspotERC

TINY = dict(num_train=7, num_valid=3, num_test=3, min_utterances=4, max_utterances=6,
            min_duration=1.0, max_duration=2.0, audio_rate_hz=10.0, video_rate_hz=6.0)
dataset = generate_dataset(SyntheticConfig(**TINY))
model_config = model_config_for(dataset, ModelConfig(hidden=16, heads=2, dropout=0.0).override(
    {"graph.past": 2, "graph.future": 1, "moa.balance_weight": 0.0}))
train_config = TrainConfig(epochs=int(sys.argv[2]), batch_size=3, patience=10, threads=1)
torch.set_num_threads(1)


def gradient_check(path):
    torch.manual_seed(0)
    model = HotspotERC(model_config.replace(class_weights=[1.0, 2.0, 0.5, 1.5, 1.0, 3.0]))
    dialogues = dataset.split("train")
    fit_standardisers(model, dialogues)
    reference = copy.deepcopy(model)
    network = distributed.data_parallel(model)
    found = []
    shards = distributed.shard_indices(len(dialogues), 3, np.random.default_rng(0),
                                       distributed.rank(), distributed.world_size())
    batches = distributed.shard_batches(dialogues, dataset.label_names, dataset.feature_spec, 3,
                                        np.random.default_rng(0))
    for (whole, part), batch in zip(shards, batches, strict=True):
        model.zero_grad()
        labels = batch.labels
        distributed.rank_loss(model.loss(network(batch), labels), labels,
                              model.class_weights).backward()
        reference.zero_grad()
        everything = collate([dialogues[i] for i in whole], dataset.label_names,
                             dataset.feature_spec)
        reference.loss(reference(everything), everything.labels).backward()
        pairs = [(p.grad, q.grad) for p, q in zip(model.parameters(), reference.parameters())
                 if q.grad is not None]
        found.append({"dialogues": len(part),
                      "gap": max(float((a - b).abs().max()) for a, b in pairs),
                      "scale": max(float(b.abs().max()) for _, b in pairs)})
    with open(f"{path}{distributed.rank()}.json", "w") as handle:
        json.dump(found, handle)


with distributed.process_group():
    if len(sys.argv) > 4:
        gradient_check(sys.argv[4])
    stop = None if sys.argv[3] == "-" else int(sys.argv[3])
    train(dataset, model_config, train_config, sys.argv[1], progress=False,
          stop_after_epoch=stop)
"""


def _torchrun(*args: str, processes: int = 2, timeout: float = 300
              ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc-per-node={processes}", *args],
                          capture_output=True, text=True, timeout=timeout)


def _weights(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "resume" / "state.npz", allow_pickle=False) as arrays:
        return {k: arrays[k] for k in arrays.files if k.startswith("model/")}


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "epochs.jsonl").read_text().splitlines()]


def test_the_shards_of_a_batch_partition_it_and_one_rank_takes_it_whole():
    def batches(rank_index: int, ranks: int) -> list:
        return list(shard_indices(10, 4, np.random.default_rng([3, 1]), rank_index, ranks))

    single = batches(0, 1)
    order = np.random.default_rng([3, 1]).permutation(10)
    assert [batch for batch, _ in single] == [list(order[0:4]), list(order[4:8]),
                                              list(order[8:])]
    assert all(part == batch for batch, part in single)
    for ranks in (2, 3, 4):
        parts = [batches(r, ranks) for r in range(ranks)]
        for index, (batch, _) in enumerate(single):
            shards = [parts[r][index][1] for r in range(ranks)]
            assert all(parts[r][index][0] == batch for r in range(ranks))
            assert sorted(i for shard in shards for i in shard) == sorted(batch)
    # The last batch holds two dialogues: with four ranks, two of them get none (padding).
    assert [batches(r, 4)[2][1] for r in range(4)] == [[order[8]], [order[9]], [], []]


def test_without_torchrun_the_helpers_are_those_of_one_process(monkeypatch):
    import torch

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launched_world_size() == 1
    loss = torch.tensor(2.5, requires_grad=True)
    assert rank_loss(loss, torch.tensor([[0, 1, -100]]), None) is loss
    assert backend_for(torch.device("cpu")) == "gloo"
    assert backend_for(torch.device("cuda", 0)) == "nccl"
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two': expected an integer >= 1"):
        launched_world_size()


@pytest.mark.slow
def test_two_ranks_give_the_gradient_and_after_a_resume_the_weights_of_one_process(tmp_path):
    """Seven training dialogues in batches of three: shards of two and one dialogue, and a last
    batch that leaves rank 1 without a dialogue (the padding case). Rank 0 stops after epoch 0
    (as a kill would), the same command resumes, and three epochs end where one uninterrupted
    process ends."""
    script = tmp_path / "run.py"
    script.write_text(RUN)
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "single"), "3", "-"],
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    stopped = _torchrun(str(script), str(tmp_path / "ranks"), "3", "0",
                        str(tmp_path / "gradients"))
    assert stopped.returncode == 0, stopped.stderr
    checks = [json.loads((tmp_path / f"gradients{rank}.json").read_text()) for rank in (0, 1)]
    assert [[check["dialogues"] for check in checks[rank]] for rank in (0, 1)] == [
        [2, 2, 1], [1, 1, 0]]
    for check in checks[0] + checks[1]:
        assert check["gap"] <= GRADIENT_TOLERANCE * check["scale"], check
    assert len(_log(tmp_path / "ranks")) == 1
    assert not (tmp_path / "ranks" / "metrics.json").exists()
    resumed = _torchrun(str(script), str(tmp_path / "ranks"), "3", "-")
    assert resumed.returncode == 0, resumed.stderr
    one, two = _weights(tmp_path / "single"), _weights(tmp_path / "ranks")
    assert one.keys() == two.keys()
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=0, atol=WEIGHT_TOLERANCE,
                                   err_msg=name)
    # The logged training loss is the mean over ranks: the single-process loss of each batch.
    assert [e["train_loss"] for e in _log(tmp_path / "ranks")] == pytest.approx(
        [e["train_loss"] for e in _log(tmp_path / "single")], abs=1e-5)
    assert [e["valid"] for e in _log(tmp_path / "ranks")] == [
        e["valid"] for e in _log(tmp_path / "single")]
    metrics = [json.loads((tmp_path / run / "metrics.json").read_text())
               for run in ("single", "ranks")]
    assert metrics[0]["best_epoch"] == metrics[1]["best_epoch"]
    assert metrics[0]["test"]["accuracy"] == metrics[1]["test"]["accuracy"]


@pytest.mark.slow
def test_a_run_folder_in_use_stops_every_rank_with_rank_0s_reason(tmp_path):
    run = tmp_path / "busy"
    run.mkdir()
    with open(run / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4242\n")
        lock.flush()
        finished = _torchrun("-m", "hotspot_erc.cli", "train", "--dataset", "synthetic",
                             "--synthetic-set", "num_train=4", "--synthetic-set", "num_valid=2",
                             "--synthetic-set", "num_test=2", "--set", "hidden=16", "--epochs",
                             "1", "--threads", "1", "--quiet", "--out", str(run), timeout=180)
    assert finished.returncode != 0
    # Rank 0's error line, from both ranks (rank 1 raises the error rank 0 sent it).
    assert finished.stderr.count(f"hotspot-erc: error: {run}: another train run (pid 4242) is "
                                 "using this run folder") == 2
    assert not (run / "config.json").exists()
