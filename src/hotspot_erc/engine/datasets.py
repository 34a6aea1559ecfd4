"""Datasets by name or path, with features: what every command that reads a dataset calls.

Two steps, each in one place: :func:`load_conversations` reads the conversations (a built-in
corpus, a path in its format, named or detected from what it holds, or the generated
``synthetic`` benchmark), and :func:`with_features` gives them the features of a recipe (an
:class:`~hotspot_erc.features.extract.ExtractConfig`), extracted once into the folder
:func:`feature_cache` names and read from there afterwards. :func:`resolve_dataset` chains them
with the recipe a corpus uses by default (text for IEMOCAP and MELD, media for RAVDESS and
CREMA-D).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hotspot_erc.data.dialogue import Dataset
from hotspot_erc.features.text_tuning import TUNING_SETTINGS
from hotspot_erc.terminal import printable

if TYPE_CHECKING:
    from hotspot_erc.features.extract import ExtractConfig


def resolve_dataset(name: str, data: str | os.PathLike | None = None,
                    text_setting: str = "minilm", cache_dir: str | os.PathLike | None = None,
                    synthetic_overrides: dict | None = None, fmt: str | None = None,
                    format_options: dict | None = None, progress: bool = True,
                    speaker_norm: Sequence[str] = (), speaker_norm_scope: str = "dataset",
                    feature_tables: Mapping[str, Sequence[str | os.PathLike]] | None = None
                    ) -> Dataset:
    """A dataset with features: the conversations of ``name``
    (:func:`load_conversations`), given the features of the default recipe for them
    (:func:`with_features`) where they come without any, with each modality of
    ``feature_tables`` joined from its CSV files (:mod:`hotspot_erc.data.feature_table`; what
    the join found is printed unless ``progress`` is False), and with the ``speaker_norm``
    modalities normalised per speaker (:func:`~hotspot_erc.data.speaker_norm.normalise_speakers`).

    The default recipe extracts text with ``text_setting``, and the media modalities a media
    corpus uses or a path's files name (:func:`~hotspot_erc.features.extract.default_modalities`).
    """
    dataset = load_conversations(name, data, fmt, format_options, synthetic_overrides)
    if not dataset.feature_spec.modalities:
        from hotspot_erc.features.extract import ExtractConfig, default_modalities

        recipe = ExtractConfig(modalities=default_modalities(dataset, name),
                               text_setting=text_setting)
        dataset = with_features(dataset, recipe, cache_dir, corpus=None if _is_path(name, fmt)
                                else name, progress=progress)
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


def load_conversations(name: str, data: str | os.PathLike | None = None, fmt: str | None = None,
                       format_options: dict | None = None,
                       synthetic_overrides: dict | None = None) -> Dataset:
    """The conversations of ``name``, with the features they come with (none for a corpus of
    transcripts and media, all for a feature store, a pack or the synthetic benchmark).

    ``name`` is ``synthetic``, a built-in corpus (:data:`~hotspot_erc.data.corpora.CORPORA`,
    read from ``data``), or a path read in format ``fmt`` (without ``fmt``, what the path holds
    decides: :func:`~hotspot_erc.data.corpora.detect_format`).
    """
    if name == "synthetic":
        from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset

        return generate_dataset(SyntheticConfig(**(synthetic_overrides or {})))
    if _is_path(name, fmt):
        from hotspot_erc.data.corpora import detect_format, load_path

        return load_path(name, fmt or detect_format(name), **(format_options or {}))
    from hotspot_erc.data.corpora import load_dataset

    return load_dataset(name, data)


def with_features(dataset: Dataset, recipe: ExtractConfig,
                  cache_dir: str | os.PathLike | None = None, corpus: str | None = None,
                  progress: bool = True) -> Dataset:
    """``dataset`` with the features ``recipe`` describes, extracted into the cache once and read
    from it afterwards.

    The cache folder is :func:`feature_cache`'s. Tuned text (``text_setting`` ``"tuned"`` or
    ``"tuned-adapter"``, :data:`~hotspot_erc.features.text_tuning.TUNING_SETTINGS`) is
    cross-fitted on the dataset's own labels and cached under its tuning recipe
    (:mod:`hotspot_erc.features.text_tuning`); text alone is extracted in batches of utterances
    (:mod:`hotspot_erc.features.text_store`); media, per dialogue in worker processes
    (:mod:`hotspot_erc.features.extract`).
    """
    media = [m for m in recipe.modalities if m != "text"]
    if recipe.text_setting in TUNING_SETTINGS:
        if media:
            raise ValueError("text setting 'tuned' is for text-only datasets: tune the text "
                             f"encoder, then join {', '.join(media)} from feature tables")
        from hotspot_erc.features.text_tuning import tuned_text_dataset

        return tuned_text_dataset(dataset, TUNING_SETTINGS[recipe.text_setting],
                                  cache_dir=cache_dir, progress=progress)
    folder = feature_cache(dataset, cache_dir, corpus)
    if media:
        from hotspot_erc.features.extract import extract_dataset

        return extract_dataset(dataset, recipe, folder=folder, progress=progress)
    from hotspot_erc.features.text_store import extract_text_dataset

    return extract_text_dataset(dataset, recipe.text_setting, progress=progress, folder=folder)


def feature_cache(dataset: Dataset, cache_dir: str | os.PathLike | None = None,
                  corpus: str | None = None) -> Path:
    """The one cache folder of a dataset's extracted features: ``<cache>/features/<corpus>`` for
    a built-in corpus (its files are fixed), else ``<cache>/features/<name>-<digest>``, the
    digest covering ids, texts, times and media files
    (:func:`~hotspot_erc.features.extract.dataset_digest`), so an edited transcript or a
    replaced recording never reads stale features."""
    from hotspot_erc.features.extract import dataset_digest
    from hotspot_erc.features.text_store import default_feature_cache

    if corpus is not None:
        return default_feature_cache(corpus, cache_dir)
    return default_feature_cache(f"{dataset.name}-{dataset_digest(dataset)}", cache_dir)


def _is_path(name: str, fmt: str | None) -> bool:
    return fmt is not None or Path(name).exists()
