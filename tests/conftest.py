"""Shared fixtures. Real corpora come from HOTSPOT_ERC_DATA, else ../shared/data beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Deterministic and fair on a 2-core CI machine.
torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = Path(os.environ.get("HOTSPOT_ERC_DATA", REPO.parent / "shared" / "data"))
    if not (root / "iemocap").is_dir():
        pytest.fail(f"real corpora not found at {root}: set HOTSPOT_ERC_DATA")
    return root
