"""Load a dataset by name: the real corpora and the synthetic benchmark.

======================  ==========================================================================
name                    what it is
======================  ==========================================================================
``iemocap6``            IEMOCAP, 6 emotions, standard split (:func:`~.iemocap.load_iemocap`)
``iemocap4``            IEMOCAP, 4 emotions (hap sad neu ang), other utterances removed
``meld``                MELD, 7 emotions, official CSV release (:func:`~.meld.load_meld`)
``synthetic``           the generated benchmark with known hotspots (default configuration)
``ravdess``             RAVDESS speech files, 8 emotions, split by actor (:mod:`~.acted`)
``crema-d``             the CREMA-D clips, video with speech (:mod:`~.acted`)
======================  ==========================================================================

The real corpora are read from ``root`` (or the ``HOTSPOT_ERC_DATA`` variable, see
:func:`~.paths.data_root`); the synthetic one needs no files.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path

from hotspot_erc.data.dialogue import Dataset
from hotspot_erc.data.iemocap import load_iemocap
from hotspot_erc.data.meld import load_meld
from hotspot_erc.data.paths import data_root

DATASET_NAMES: tuple[str, ...] = ("iemocap6", "iemocap4", "meld", "synthetic", "ravdess",
                                   "crema-d")
# Corpora read from raw media: their features come from the audio and video extractors.
MEDIA_CORPORA: dict[str, tuple[str, ...]] = {"ravdess": ("audio",),
                                             "crema-d": ("text", "audio", "video")}


def load_dataset(name: str, root: str | os.PathLike | None = None) -> Dataset:
    """Return the dataset called ``name`` (one of :data:`DATASET_NAMES`)."""
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASET_NAMES)}")
    if name == "synthetic":
        # Imported here so that loading a real corpus never builds the synthetic generator.
        from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset

        return generate_dataset(SyntheticConfig())
    if name in MEDIA_CORPORA:
        from hotspot_erc.data.acted import load_crema_d, load_ravdess

        return load_ravdess(root) if name == "ravdess" else load_crema_d(root)
    folder = data_root(root)
    if name == "meld":
        return load_meld(folder)
    return load_iemocap(folder, ways=6 if name == "iemocap6" else 4)


# Files users bring from other ERC projects: format name -> (loader, what it reads).
FORMATS: dict[str, str] = {
    "store": "a hotspot-erc feature-store folder",
    "manifest": "a conversation manifest (JSON: dialogues, utterances, times, media files)",
    "corect-pack": "CORECT / COGMEN processed pickle (dict of train/dev/test dialogues)",
    "mmgcn-pack": "DialogueRNN / MMGCN feature tuple (IEMOCAP_features.pkl, MELD features)",
    "iemocap-release": "the IEMOCAP release folder (Session1..5)",
    "cosmic-iemocap": "COSMIC IEMOCAP text pickle",
    "cosmic-meld": "COSMIC MELD text pickle",
    "cosmic-emorynlp": "COSMIC EmoryNLP text pickle",
}


def load_path(path: str | os.PathLike, fmt: str, **options) -> Dataset:
    """Load a file or folder in one of the :data:`FORMATS`.

    ``options`` go to the format's loader (e.g. ``label_set="meld"`` for a pack, ``ways=4`` for
    the IEMOCAP release); one the loader does not take is a ValueError listing those it takes.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known formats: "
                         + "; ".join(f"{k} ({v})" for k, v in FORMATS.items()))
    loader = _loader(fmt)
    accepted = format_options(fmt)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"format {fmt}: unknown option(s) {', '.join(unknown)}; it accepts "
                         + (", ".join(accepted) if accepted else "no options"))
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or folder (format {fmt})")
    return loader(path, **options)


def detect_format(path: str | os.PathLike) -> str:
    """The format of ``path`` where what it holds says it: a folder with ``store.json`` is a
    feature store, a folder with ``Session1`` the IEMOCAP release, a ``.json`` file a manifest.
    A pickle could be any of the packs, so it must be named; anything else is a ValueError that
    lists the formats."""
    path = Path(path)
    if path.is_dir():
        if (path / "store.json").is_file():
            return "store"
        if (path / "Session1").is_dir():
            return "iemocap-release"
        raise ValueError(f"{path}: a folder without store.json (a feature store) or Session1 "
                         "(the IEMOCAP release); name its format with --format: "
                         + ", ".join(FORMATS))
    if path.suffix.lower() == ".json":
        return "manifest"
    if path.suffix.lower() in (".pkl", ".pickle"):
        packs = [name for name in FORMATS if name.endswith("-pack") or name.startswith("cosmic")]
        raise ValueError(f"{path}: a pickle can hold several layouts; name it with --format "
                         f"({', '.join(packs)})")
    raise ValueError(f"{path}: cannot tell its format; name it with --format: "
                     + ", ".join(FORMATS))


def format_options(fmt: str) -> list[str]:
    """The options (keyword arguments) the loader of format ``fmt`` takes besides the path."""
    loader = _loader(fmt)
    fixed = set(loader.keywords) if isinstance(loader, functools.partial) else set()
    parameters = list(inspect.signature(loader).parameters.values())[1:]
    return [p.name for p in parameters if p.name not in fixed
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _loader(fmt: str) -> Callable[..., Dataset]:
    """The function that reads format ``fmt``, imported only when that format is asked for."""
    if fmt == "store":
        from hotspot_erc.data.store import load_store

        return load_store
    if fmt == "manifest":
        from hotspot_erc.data.manifest import load_manifest

        return load_manifest
    if fmt == "corect-pack":
        from hotspot_erc.data.feature_packs import load_corect_pack

        return load_corect_pack
    if fmt == "mmgcn-pack":
        from hotspot_erc.data.feature_packs import load_mmgcn_pack

        return load_mmgcn_pack
    if fmt == "iemocap-release":
        from hotspot_erc.data.iemocap_release import load_iemocap_release

        return load_iemocap_release
    from hotspot_erc.data.cosmic import load_cosmic

    return functools.partial(load_cosmic, corpus=fmt.split("-", 1)[1])
