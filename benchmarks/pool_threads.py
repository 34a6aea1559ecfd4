"""Seconds for the process pool to extract the audio of RAVDESS conversations, the environment
left as it is (no ``OMP_NUM_THREADS``): what the default engine costs a user.

    env -u OMP_NUM_THREADS python benchmarks/pool_threads.py --data ../shared/data

Builds --conversations conversations of --clips RAVDESS files each (benchmarks/scale.py's
manifest) and times one whole ``extract_features`` call with --workers processes (models
loading included) into a fresh store.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def ravdess_manifest(data: Path, folder: Path, conversations: int, clips: int) -> Path:
    """benchmarks/scale.py's manifest, without importing what that script sets for itself."""
    spec = importlib.util.spec_from_file_location("scale", Path(__file__).with_name("scale.py"))
    scale = importlib.util.module_from_spec(spec)
    environment = dict(os.environ)
    spec.loader.exec_module(scale)  # it sets OMP_NUM_THREADS=1: undone below
    os.environ.clear()
    os.environ.update(environment)
    return scale.ravdess_manifest(data, folder, conversations, clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("HOTSPOT_ERC_DATA", "../shared/data"))
    parser.add_argument("--conversations", type=int, default=12)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from hotspot_erc.data.manifest import load_manifest
    from hotspot_erc.features.extract import ExtractConfig, extract_features

    with tempfile.TemporaryDirectory() as folder:
        manifest = ravdess_manifest(Path(args.data), Path(folder), args.conversations, args.clips)
        began = time.perf_counter()
        extract_features(load_manifest(manifest), Path(folder) / "store",
                         ExtractConfig(modalities=("audio",), workers=args.workers),
                         progress=False)
        print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}: {args.conversations} "
              f"conversations x {args.clips} clips, {args.workers} workers: "
              f"{time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
