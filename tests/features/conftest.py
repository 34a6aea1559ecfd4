"""Helpers shared by the feature tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def store_arrays(store: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every audio record file of a feature store, by file name: its arrays by key."""
    found = {}
    for path in sorted(Path(store).glob("audio/*/*.npz")):
        with np.load(path, allow_pickle=False) as data:
            found[path.name] = {key: data[key] for key in data.files}
    return found
