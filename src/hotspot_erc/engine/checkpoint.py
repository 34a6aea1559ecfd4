"""Checkpoints: weights + model config + label names + feature spec, loadable with one call.

A checkpoint is a folder::

    checkpoint/
      checkpoint.json   model config, label names, feature spec, training config, epoch, version
      weights.npz       the state dict as plain arrays (no pickle: loading runs no code)
      model_card.json   the model card: training corpus and domain, scores, intended use
                        (:mod:`hotspot_erc.engine.model_card`)

``load_checkpoint(folder)`` rebuilds the model in eval mode, with its card in
``Checkpoint.card``; a checkpoint written before cards gets a card built from ``checkpoint.json``
(labels and modalities; corpus, domain and scores "unknown"). ``Checkpoint.check_features`` refuses
features that do not match what the model was trained on, with a message naming each field.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hotspot_erc import __version__
from hotspot_erc.atomic import atomic_open, write_json, write_npz
from hotspot_erc.data.dialogue import DataFormatError, FeatureSpec
from hotspot_erc.data.safe_npz import ShapeMismatch, read_npz
from hotspot_erc.data.speaker_norm import speaker_norm_scope
from hotspot_erc.engine.model_card import ModelCard, ModelCardError
from hotspot_erc.limits import check_limit
from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.model import HotspotERC

CHECKPOINT_FILE = "checkpoint.json"
WEIGHTS_FILE = "weights.npz"
MODEL_CARD_FILE = "model_card.json"
ASSETS_FOLDER = "assets"  # files extractors need beyond installed packages, per modality


class FeatureSpecMismatch(ValueError):
    """The features given to a checkpoint are not the ones it was trained on."""


@dataclass
class Checkpoint:
    model: HotspotERC
    label_names: list[str]
    feature_spec: FeatureSpec
    train_config: dict = field(default_factory=dict)
    epoch: int | None = None
    path: Path | None = None
    card: ModelCard | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def check_features(self, found: FeatureSpec, source: str = "the dataset") -> list[str]:
        """Raise :class:`FeatureSpecMismatch` on a mismatch; return notices for the caller.

        A modality the checkpoint knows but ``found`` lacks is allowed (it is masked as missing);
        a modality the checkpoint does not know is ignored. Both produce a notice.
        """
        problems = self.feature_spec.mismatches(found)
        if problems:
            raise FeatureSpecMismatch(
                f"checkpoint {self.path or ''} cannot read the features of {source}: "
                + "; ".join(problems) + ". " + self._remedy(found))
        notices = []
        for name in self.feature_spec.modalities:
            if name not in found.modalities:
                notices.append(f"modality {name} is missing from {source}: it is masked")
        for name in found.modalities:
            if name not in self.feature_spec.modalities:
                notices.append(f"modality {name} of {source} is unknown to the checkpoint: "
                               "ignored")
        return notices


    def _remedy(self, found: FeatureSpec) -> str:
        """What to do about a mismatch: the speaker-normalisation flag where that is the only
        difference, else the extractors the checkpoint records."""
        wanted = {name: speaker_norm_scope(spec) for name, spec in
                  self.feature_spec.modalities.items() if name in found.modalities}
        given = {name: speaker_norm_scope(found.modalities[name]) for name in wanted}
        if wanted != given:
            normalised = sorted(name for name, scope in wanted.items() if scope)
            if normalised:
                scopes = sorted({wanted[name] for name in normalised})
                return (f"The checkpoint was trained on per-speaker normalised "
                        f"{', '.join(normalised)} features: add --speaker-norm "
                        f"{','.join(normalised)} --speaker-norm-scope {scopes[0]}.")
            return ("The checkpoint was trained without per-speaker normalisation: drop "
                    "--speaker-norm.")
        return ("Extract the features with the extractors the checkpoint records (see "
                "checkpoint.json, 'feature_spec').")


def state_to_arrays(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {name: value.detach().cpu().numpy() for name, value in state.items()}


def save_checkpoint(folder: str | os.PathLike, model: HotspotERC, label_names: list[str],
                    feature_spec: FeatureSpec, train_config: dict | None = None,
                    epoch: int | None = None, card: ModelCard | None = None) -> Path:
    """Write the checkpoint folder, with ``card`` as its model card when given; each file is
    replaced atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_npz(folder / WEIGHTS_FILE, state_to_arrays(model.state_dict()))
    write_json(folder / CHECKPOINT_FILE, {
        "format": "hotspot-erc-checkpoint/1",
        "hotspot_erc_version": __version__,
        "model_config": model.config.to_dict(),
        "label_names": list(label_names),
        "feature_spec": feature_spec.to_dict(),
        "train_config": train_config or {},
        "epoch": epoch,
    })
    if card is not None:
        save_model_card(folder, card)
    carry_assets(folder, feature_spec)
    return folder


def carry_assets(folder: Path, feature_spec: FeatureSpec) -> None:
    """Copy into ``folder/assets/<modality>/`` the files the extractors of ``feature_spec`` need
    beyond installed packages (:func:`~hotspot_erc.features.registry.extractor_assets`), each
    atomically and only when it differs from what is there."""
    from hotspot_erc.features.registry import extractor_assets

    for modality, files in extractor_assets(feature_spec).items():
        for name, source in files.items():
            if not source.is_file():
                raise FileNotFoundError(f"{source}: the {modality} extractor's file that the "
                                        f"checkpoint {folder} must carry is missing")
            target = folder / ASSETS_FOLDER / modality / name
            data = source.read_bytes()
            if target.is_file() and target.read_bytes() == data:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(target, "wb") as handle:
                handle.write(data)


def save_model_card(folder: str | os.PathLike, card: ModelCard) -> Path:
    """Write (or replace) ``model_card.json`` in the checkpoint ``folder``, atomically."""
    path = Path(folder) / MODEL_CARD_FILE
    write_json(path, card.to_json())
    return path


def load_checkpoint(folder: str | os.PathLike) -> Checkpoint:
    """Rebuild the model of a checkpoint folder (or of a run folder holding ``checkpoint/``).

    Everything is checked before memory is committed to it: the config's fields and the number
    of parameters it asks for (limit ``model_params``, counted on PyTorch's ``meta`` device,
    which allocates nothing), then each array's name and shape against that model before the
    array is read, then that every weight is finite. A problem is a :class:`DataFormatError`
    naming the file and the field.
    """
    folder = Path(folder)
    if not (folder / CHECKPOINT_FILE).exists() and (folder / "checkpoint" /
                                                     CHECKPOINT_FILE).exists():
        folder = folder / "checkpoint"
    meta_path = folder / CHECKPOINT_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{folder} is not a checkpoint: {CHECKPOINT_FILE} not found")
    meta = _read_meta(meta_path)
    config = _model_config(meta["model_config"], meta_path)
    with torch.device("meta"):
        shapes = {name: tuple(value.shape) for name, value in
                  _build(config, meta_path).state_dict().items()}
    check_limit("model_params", sum(math.prod(shape) for shape in shapes.values()),
                f"{meta_path}: field model_config: the model's parameters")
    weights_path = folder / WEIGHTS_FILE
    try:
        arrays = read_npz(weights_path, expected=shapes)
    except ShapeMismatch as error:
        raise ShapeMismatch(f"{error} (the model that field model_config of {meta_path} "
                            "describes)") from None
    state = _weights(arrays, weights_path)
    model = _build(config, meta_path)
    model.load_state_dict(state)
    model.eval()
    return Checkpoint(model, meta["label_names"], meta["feature_spec"], meta["train_config"],
                      meta["epoch"], folder, _read_card(folder / MODEL_CARD_FILE, meta))


def _read_card(path: Path, meta: dict) -> ModelCard:
    """The card at ``path``; without one (a checkpoint older than cards), a card of what
    ``meta`` (``checkpoint.json``) holds. A card that is there but malformed is a
    :class:`DataFormatError` naming the file and the field."""
    if not path.exists():
        return ModelCard(label_names=list(meta["label_names"]),
                         modalities=list(meta["feature_spec"].modalities))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise DataFormatError(f"{path}: not valid JSON ({error})") from None
    try:
        card = ModelCard.from_json(data, where="")
    except ModelCardError as error:
        raise DataFormatError(f"{path}: {error}") from None
    if card.label_names != meta["label_names"]:
        raise DataFormatError(f"{path}: field label_names: expected the label names of "
                              f"{CHECKPOINT_FILE} {meta['label_names']}, got "
                              f"{card.label_names}")
    return card


def _read_meta(path: Path) -> dict:
    """``checkpoint.json`` with its fields checked; ``feature_spec`` parsed."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise DataFormatError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise DataFormatError(f"{path}: expected a JSON object")
    for key, kind in (("model_config", dict), ("label_names", list), ("feature_spec", dict)):
        if key not in meta:
            raise DataFormatError(f"{path}: missing field {key!r}")
        if not isinstance(meta[key], kind):
            raise DataFormatError(f"{path}: field {key!r}: expected {kind.__name__}, got "
                                  f"{type(meta[key]).__name__}")
    if not meta["label_names"] or not all(isinstance(n, str) for n in meta["label_names"]):
        raise DataFormatError(f"{path}: field 'label_names': expected a non-empty list of names")
    meta.setdefault("train_config", {})
    meta.setdefault("epoch", None)
    if not isinstance(meta["train_config"], dict):
        raise DataFormatError(f"{path}: field 'train_config': expected an object")
    if meta["epoch"] is not None and (isinstance(meta["epoch"], bool)
                                      or not isinstance(meta["epoch"], int)):
        raise DataFormatError(f"{path}: field 'epoch': expected an integer or null")
    try:
        meta["feature_spec"] = FeatureSpec.from_dict(meta["feature_spec"])
    except DataFormatError as error:
        raise DataFormatError(f"{path}: field 'feature_spec': {error}") from None
    return meta


def _model_config(data: dict, path: Path) -> ModelConfig:
    try:
        return ModelConfig.from_dict(data)
    except (TypeError, ValueError) as error:
        raise DataFormatError(f"{path}: field 'model_config': {error}") from None


def _build(config: ModelConfig, path: Path) -> HotspotERC:
    """The model of ``config``; a config its modules refuse is an error about ``path``."""
    try:
        return HotspotERC(config)
    except (TypeError, ValueError) as error:
        raise DataFormatError(f"{path}: field 'model_config': {error}") from None


def _weights(arrays: dict[str, np.ndarray], path: Path) -> dict[str, torch.Tensor]:
    """The arrays as tensors, after checking they are numbers and finite."""
    state = {}
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise DataFormatError(f"{path}: member {name}: dtype {array.dtype} is not numeric")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise DataFormatError(f"{path}: member {name} holds NaN or infinite weights; the "
                                  "checkpoint is damaged or its training diverged")
        state[name] = torch.from_numpy(array)
    return state
