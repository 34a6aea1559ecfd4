"""Shared fixtures. Real corpora come from HOTSPOT_ERC_DATA, else ../shared/data beside the repo."""

from __future__ import annotations

import contextlib
import os
import resource
import tracemalloc
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Far above what a small input file legitimately needs, far below what a memory bomb asks for.
MEMORY_BUDGET = 256 * 2**20

# Deterministic and fair on a 2-core CI machine.
torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = Path(os.environ.get("HOTSPOT_ERC_DATA", REPO.parent / "shared" / "data"))
    if not (root / "iemocap").is_dir():
        pytest.fail(f"real corpora not found at {root}: set HOTSPOT_ERC_DATA")
    return root


@pytest.fixture
def memory_budget():
    """The :func:`within_budget` context manager, as a fixture."""
    return within_budget


@contextlib.contextmanager
def within_budget(limit: int = MEMORY_BUDGET):
    """Fail if the block's Python/numpy allocations peak above ``limit`` bytes, and cap the
    address space so an allocation numpy or torch does not report cannot exhaust the machine
    (it fails with MemoryError instead, which the property then reports)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    usage = _address_space()
    cap = usage + 4 * limit
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
        assert peak <= limit, f"allocated {peak / 2**20:.0f} MiB (budget {limit / 2**20:.0f})"
    finally:
        tracemalloc.stop()
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int:
    """Bytes of virtual memory this process maps now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


@pytest.fixture(scope="module")
def ray_workers(request):
    """One local Ray of two CPUs for the requesting test module (the runner leaves a session it
    did not start); that module's stand-ins travel to the workers by value, since the workers
    cannot import a test file."""
    pytest.importorskip("ray")
    from hotspot_erc.features.ray_engine import ray_session

    with ray_session(None, num_cpus=2) as ray:
        ray.cloudpickle.register_pickle_by_value(request.module)
        yield ray
