"""Where the real corpora live: an explicit path, else the ``HOTSPOT_ERC_DATA`` variable."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "HOTSPOT_ERC_DATA"


def data_root(path: str | os.PathLike | None = None) -> Path:
    """Return the corpus root (the folder holding ``iemocap/``, ``meld/``, ...).

    ``path`` wins over the environment variable; neither given is a clear error, because the
    corpora are never bundled with the project (their licences forbid it).
    """
    chosen = path if path is not None else os.environ.get(DATA_ENV)
    if not chosen:
        raise FileNotFoundError(
            f"no data folder given: pass --data PATH or set {DATA_ENV} to the folder that holds "
            "iemocap/, meld/, ravdess/ (for example ../shared/data)")
    root = Path(chosen).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist (from "
                                f"{'the path option' if path is not None else DATA_ENV})")
    return root
