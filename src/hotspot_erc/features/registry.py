"""Feature extractors by name: the :class:`Extractor` protocol, its registry, and recipes.

Every kind of features has a registered name, the ``extractor`` of its
:class:`~hotspot_erc.data.dialogue.ModalitySpec`:

=================  ========  ===========================================================
name               modality  what makes the features
=================  ========  ===========================================================
``text-minilm``    text      :class:`~.text.TextExtractor` ``("minilm")``
``text-large``     text      :class:`~.text.TextExtractor` ``("large")``
``text-tuned``     text      :class:`~.text_tuning.TunedTextExtractor` (encoders tuned on a corpus)
``audio-prosody``  audio     :class:`~.audio.AudioExtractor`
``video-face``     video     :class:`~.video.VideoExtractor`
``synthetic``      any       nothing: generated with the data (:mod:`hotspot_erc.data.synthetic`)
``corect-pack``    any       nothing: read from a CORECT/COGMEN pack
``mmgcn-pack``     any       nothing: read from a DialogueRNN/MMGCN pack
=================  ========  ===========================================================

An extractor's **recipe** is a plain JSON dict holding every option that changes its output,
including ``packages``: the versions of the distributions whose models it runs (``None`` for
one that is not installed). The recipe travels in the spec, so it is saved in every feature
store's ``spec.json`` and in every checkpoint; :func:`build_extractor` rebuilds the extractor
from it in one call, and the rebuilt extractor's own :meth:`Extractor.recipe` then says what
*this* installation makes (the package versions found here), which ``predict`` compares with
the checkpoint's. The round trip ``build_extractor(name, e.recipe()).recipe() == e.recipe()``
holds for every registered extractor.

**Assets**: an extractor may need files that no package holds, such as the adapters of encoders
tuned on a corpus (``text-tuned``). Its entry's ``assets`` function names them from a recipe;
``save_checkpoint`` copies them into the checkpoint's ``assets/<modality>/`` folder, and
:func:`extractors_for` hands that folder back to the extractor it rebuilds, so the checkpoint
predicts on a machine that never saw the corpus.

Adding an extractor: its module in ``features/`` (a class following :class:`Extractor`, with a
``from_recipe`` classmethod) and one entry in :data:`EXTRACTORS`.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hotspot_erc.data.dialogue import FeatureSpec, ModalityFeatures, ModalitySpec
from hotspot_erc.data.feature_table import EXTRACTOR_PREFIX as TABLE_EXTRACTOR_PREFIX
from hotspot_erc.data.speaker_norm import without_speaker_norm

PACKAGES = "packages"


class RecipeError(ValueError):
    """A recipe this installation cannot rebuild an extractor from (unknown name or option)."""


class Extractor(Protocol):
    """What every registered extractor offers.

    Attributes:
        name: the registered name, also the spec's ``extractor``.
        version: the extractor's code version (a new one whenever its computation changes).
        modality: ``text``, ``audio`` or ``video``; None for features given with the data.
        extracts: False for the registered names that only describe given features.
    """

    name: str
    version: str
    modality: str | None
    extracts: bool

    def recipe(self) -> dict:
        """Every option that changes the output, as a JSON-able dict (see the module docstring)."""

    @property
    def spec(self) -> ModalitySpec:
        """Name, version, recipe and dimensions of the features this extractor makes."""

    def extract_dialogue(self, segments: Sequence) -> list[ModalityFeatures]:
        """One record per utterance of one dialogue, in order (texts, audio or video segments)."""


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def packages(*distributions: str) -> dict[str, str | None]:
    """``{distribution: installed version or None}``: a recipe's ``packages`` entry."""
    return {name: package_version(name) for name in distributions}


def recipe_options(recipe: dict, name: str, options: Sequence[str]) -> dict:
    """The constructor options of ``recipe`` (its ``packages`` left out, as this installation's
    own are what the rebuilt extractor reports); an unknown or missing option is a
    :class:`RecipeError` naming it."""
    if not isinstance(recipe, dict):
        raise RecipeError(f"extractor {name!r}: the recipe must be an object, got "
                          f"{type(recipe).__name__}")
    unknown = sorted(set(recipe) - set(options) - {PACKAGES})
    missing = [option for option in options if option not in recipe]
    if unknown or missing:
        raise RecipeError(f"extractor {name!r}: recipe fields {unknown} are unknown and "
                          f"{missing} are missing; expected {', '.join([*options, PACKAGES])}")
    return {option: recipe[option] for option in options}


class GivenFeatures:
    """The "extractor" of features that come with the data (generated or read from a pack).

    Its recipe is empty: nothing here chooses how the features were made. It cannot extract
    features from a new conversation, so a checkpoint trained on them cannot ``predict``.
    """

    modality = None
    version = "1"
    extracts = False

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def from_recipe(cls, name: str, recipe: dict) -> GivenFeatures:
        recipe_options(recipe, name, ())
        return cls(name)

    def recipe(self) -> dict:
        return {}

    @property
    def spec(self) -> ModalitySpec:
        raise RecipeError(f"extractor {self.name!r}: its features come with the data, so their "
                          "dimensions are those of the data, not of an extractor")

    def extract_dialogue(self, segments: Sequence) -> list[ModalityFeatures]:
        raise RecipeError(f"extractor {self.name!r}: these features come with the data "
                          "(generated or read from a pack); they cannot be extracted from a new "
                          "conversation")


def _text(setting: str) -> Callable[[str, dict, Path | None], Extractor]:
    def build(name: str, recipe: dict, assets: Path | None) -> Extractor:
        from hotspot_erc.features.text import TextExtractor

        return TextExtractor.from_recipe(recipe, setting)
    return build


def _tuned(name: str, recipe: dict, assets: Path | None) -> Extractor:
    from hotspot_erc.features.text_tuning import TunedTextExtractor

    return TunedTextExtractor.from_recipe(recipe, assets)


def _tuned_assets(recipe: dict) -> dict[str, Path]:
    from hotspot_erc.features.text_tuning import carried_files

    return carried_files(recipe)


def _given(name: str, recipe: dict, assets: Path | None) -> Extractor:
    return GivenFeatures.from_recipe(name, recipe)


def _audio(name: str, recipe: dict, assets: Path | None) -> Extractor:
    from hotspot_erc.features.audio import AudioExtractor

    return AudioExtractor.from_recipe(recipe)


def _video(name: str, recipe: dict, assets: Path | None) -> Extractor:
    from hotspot_erc.features.video import VideoExtractor

    return VideoExtractor.from_recipe(recipe)


@dataclass(frozen=True)
class Registered:
    """One registry entry: the modality it makes (None: any), how to build it from a recipe and
    its assets folder (None when there is none), whether its features are measurements in
    physical units (Hz, dB, pixels), which a model standardises with training-split statistics,
    unlike embeddings or generated features, and which files a checkpoint must carry for it
    (``assets``: recipe -> {name inside the assets folder: file here}; None: none).

    ``build`` imports its module only when called, so reading the registry loads no model code.
    """

    modality: str | None
    build: Callable[[str, dict, Path | None], Extractor]
    measured: bool = False
    assets: Callable[[dict], dict[str, Path]] | None = None


EXTRACTORS: dict[str, Registered] = {
    "text-minilm": Registered("text", _text("minilm")),
    "text-large": Registered("text", _text("large")),
    "text-tuned": Registered("text", _tuned, assets=_tuned_assets),
    "audio-prosody": Registered("audio", _audio, measured=True),
    "video-face": Registered("video", _video, measured=True),
    "synthetic": Registered(None, _given),
    "corect-pack": Registered(None, _given),
    "mmgcn-pack": Registered(None, _given),
}


def is_measured(name: str) -> bool:
    """Whether the features of extractor ``name`` are measurements in physical units: a
    registered measuring extractor, or a feature table's columns
    (:mod:`hotspot_erc.data.feature_table`, e.g. openSMILE descriptors, facial action units)."""
    entry = EXTRACTORS.get(name)
    return entry.measured if entry is not None else name.startswith(TABLE_EXTRACTOR_PREFIX)


def build_extractor(name: str, recipe: dict, assets: Path | None = None) -> Extractor:
    """The registered extractor ``name`` configured by ``recipe``, with the files a checkpoint
    carried for it in ``assets``; an unknown name or an option this version does not know is a
    :class:`RecipeError`."""
    entry = EXTRACTORS.get(name)
    if entry is None:
        raise RecipeError(f"unknown extractor {name!r}; registered: {', '.join(EXTRACTORS)}")
    try:
        return entry.build(name, recipe, assets)
    except RecipeError:
        raise
    except (TypeError, ValueError) as error:
        raise RecipeError(f"extractor {name!r}: recipe {recipe} is refused: {error}") from None


def extractor_assets(feature_spec: FeatureSpec) -> dict[str, dict[str, Path]]:
    """The files a checkpoint of ``feature_spec`` carries, by modality: ``{modality: {name in
    assets/<modality>/: file here}}``; modalities whose extractor needs none are left out."""
    carried = {}
    for modality, spec in feature_spec.modalities.items():
        entry = EXTRACTORS.get(spec.extractor)
        if entry is not None and entry.assets is not None:
            files = entry.assets(spec.recipe)
            if files:
                carried[modality] = files
    return carried


def extractors_for(feature_spec: FeatureSpec, assets: Path | None = None
                   ) -> dict[str, Extractor]:
    """The extractors that make ``feature_spec``'s features, by modality, rebuilt in one call;
    ``assets`` is a checkpoint's assets folder (each extractor gets its modality's subfolder).

    Speaker normalisation is a recipe entry applied after extraction
    (:mod:`hotspot_erc.data.speaker_norm`), so it is left out of the rebuilt recipes.
    """
    extractors = {}
    for modality, spec in feature_spec.modalities.items():
        own = assets / modality if assets is not None and (assets / modality).is_dir() else None
        extractor = build_extractor(spec.extractor, without_speaker_norm(spec).recipe, own)
        if extractor.modality not in (None, modality):
            raise RecipeError(f"modality {modality!r}: extractor {spec.extractor!r} makes "
                              f"{extractor.modality} features")
        extractors[modality] = extractor
    return extractors
