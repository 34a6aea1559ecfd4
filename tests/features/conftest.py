"""Helpers shared by the feature tests."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np


def store_arrays(store: Path, modality: str = "audio") -> dict[str, dict[str, np.ndarray]]:
    """Every record file of ``modality`` in a feature store, by file name: its arrays by key."""
    found = {}
    for path in sorted(Path(store).glob(f"{modality}/*/*.npz")):
        with np.load(path, allow_pickle=False) as data:
            found[path.name] = {key: data[key] for key in data.files}
    return found


def kill_once_written(command: list[str], store: Path, seconds: float) -> int:
    """Start ``command``, SIGKILL it as soon as its first audio record lands in ``store`` (or
    after ``seconds``), and return how many records it had written."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not list(store.glob("audio/*/*.npz")):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return len(list(store.glob("audio/*/*.npz")))
