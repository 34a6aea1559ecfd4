"""Datasets by name or path, with features: what every command that reads a dataset calls.

A built-in corpus name gets its features extracted once and cached (text for IEMOCAP and MELD,
media for RAVDESS and CREMA-D); a path is read in its format (named, or detected from what it
holds) and extracted where it has no features yet; ``synthetic`` is generated.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from hotspot_erc.data.dialogue import Dataset
from hotspot_erc.terminal import printable


def resolve_dataset(name: str, data: str | os.PathLike | None = None,
                    text_setting: str = "minilm", cache_dir: str | os.PathLike | None = None,
                    synthetic_overrides: dict | None = None, fmt: str | None = None,
                    format_options: dict | None = None, progress: bool = True,
                    speaker_norm: Sequence[str] = (), speaker_norm_scope: str = "dataset",
                    feature_tables: Mapping[str, Sequence[str | os.PathLike]] | None = None
                    ) -> Dataset:
    """A dataset with features (``progress``: show extraction progress bars), with
    ``speaker_norm`` modalities normalised per speaker
    (:func:`~hotspot_erc.data.speaker_norm.normalise_speakers`), and with each modality of
    ``feature_tables`` joined from its CSV files (:mod:`hotspot_erc.data.feature_table`; what the
    join found is printed unless ``progress`` is False).

    ``name`` is ``synthetic``, a real corpus name (``iemocap6``, ``iemocap4``, ``meld``: text
    features are extracted once and cached; ``ravdess``, ``crema-d``: features extracted from
    their media, see :data:`~hotspot_erc.data.corpora.MEDIA_CORPORA`), or a path read in format
    ``fmt`` (see :data:`hotspot_erc.data.corpora.FORMATS`; without ``fmt``, what the path holds
    decides: :func:`~hotspot_erc.data.corpora.detect_format`). A path without features (a
    manifest) is extracted: text, and audio and video where it names media files.
    """
    dataset = _resolve_features(name, data, text_setting, cache_dir, synthetic_overrides, fmt,
                                format_options, progress)
    if feature_tables:
        from hotspot_erc.data.feature_table import join_feature_tables, read_feature_tables

        tables = {modality: read_feature_tables(modality, paths)
                  for modality, paths in feature_tables.items()}
        dataset, reports = join_feature_tables(dataset, tables)
        if progress:
            for modality, report in reports.items():
                print(printable(report.summary(modality)), file=sys.stderr)
    if speaker_norm:
        from hotspot_erc.data.speaker_norm import normalise_speakers

        dataset = normalise_speakers(dataset, list(speaker_norm), speaker_norm_scope)
    return dataset


def _resolve_features(name, data, text_setting, cache_dir, synthetic_overrides, fmt,
                      format_options, progress) -> Dataset:
    if name == "synthetic":
        from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset

        return generate_dataset(SyntheticConfig(**(synthetic_overrides or {})))
    if fmt is not None or Path(name).exists():
        from hotspot_erc.data.corpora import detect_format, load_path

        dataset = load_path(name, fmt or detect_format(name), **(format_options or {}))
        if dataset.feature_spec.modalities:
            return dataset
        from hotspot_erc.features.extract import ExtractConfig, extract_dataset, media_modalities

        if media_modalities(dataset):
            return extract_dataset(dataset, ExtractConfig(text_setting=text_setting),
                                   cache_dir=cache_dir, progress=progress)
        from hotspot_erc.features.text_store import extract_text_dataset

        return extract_text_dataset(dataset, setting=text_setting, cache_dir=cache_dir,
                                    progress=progress)
    from hotspot_erc.data.corpora import MEDIA_CORPORA

    if name in MEDIA_CORPORA:
        from hotspot_erc.data.corpora import load_dataset
        from hotspot_erc.features.extract import ExtractConfig, extract_dataset
        from hotspot_erc.features.text_store import default_feature_cache

        config = ExtractConfig(modalities=MEDIA_CORPORA[name], text_setting=text_setting)
        return extract_dataset(load_dataset(name, data), config,
                               folder=default_feature_cache(name, cache_dir), progress=progress)
    if text_setting == "tuned":
        from hotspot_erc.data.corpora import load_dataset
        from hotspot_erc.features.text_tuning import tuned_text_dataset

        return tuned_text_dataset(load_dataset(name, data), cache_dir=cache_dir,
                                  progress=progress)
    from hotspot_erc.features.text_store import load_text_dataset

    return load_text_dataset(name, data, setting=text_setting, cache_dir=cache_dir,
                             progress=progress)
