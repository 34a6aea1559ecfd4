"""Checkpoints: weights + model config + label names + feature spec, loadable with one call.

A checkpoint is a folder::

    checkpoint/
      checkpoint.json   model config, label names, feature spec, training config, epoch, version
      weights.npz       the state dict as plain arrays (no pickle: loading runs no code)

``load_checkpoint(folder)`` rebuilds the model in eval mode. ``Checkpoint.check_features`` refuses
features that do not match what the model was trained on, with a message naming each field.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hotspot_erc import __version__
from hotspot_erc.atomic import write_json, write_npz
from hotspot_erc.data.dialogue import DataFormatError, FeatureSpec
from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.model import HotspotERC

CHECKPOINT_FILE = "checkpoint.json"
WEIGHTS_FILE = "weights.npz"


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
                + "; ".join(problems)
                + ". Extract the features with the extractors the checkpoint records "
                  "(see checkpoint.json, 'feature_spec').")
        notices = []
        for name in self.feature_spec.modalities:
            if name not in found.modalities:
                notices.append(f"modality {name} is missing from {source}: it is masked")
        for name in found.modalities:
            if name not in self.feature_spec.modalities:
                notices.append(f"modality {name} of {source} is unknown to the checkpoint: "
                               "ignored")
        return notices


def state_to_arrays(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {name: value.detach().cpu().numpy() for name, value in state.items()}


def arrays_to_state(arrays) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.array(arrays[name])) for name in arrays.files}


def save_checkpoint(folder: str | os.PathLike, model: HotspotERC, label_names: list[str],
                    feature_spec: FeatureSpec, train_config: dict | None = None,
                    epoch: int | None = None) -> Path:
    """Write the checkpoint folder; each file is replaced atomically."""
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
    return folder


def load_checkpoint(folder: str | os.PathLike) -> Checkpoint:
    """Rebuild the model of a checkpoint folder (or of a run folder holding ``checkpoint/``)."""
    folder = Path(folder)
    if not (folder / CHECKPOINT_FILE).exists() and (folder / "checkpoint" /
                                                     CHECKPOINT_FILE).exists():
        folder = folder / "checkpoint"
    meta_path = folder / CHECKPOINT_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{folder} is not a checkpoint: {CHECKPOINT_FILE} not found")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataFormatError(f"{meta_path}: not valid JSON ({error})") from error
    for key in ("model_config", "label_names", "feature_spec"):
        if key not in meta:
            raise DataFormatError(f"{meta_path}: missing field {key!r}")
    model = HotspotERC(ModelConfig.from_dict(meta["model_config"]))
    weights_path = folder / WEIGHTS_FILE
    try:
        with np.load(weights_path, allow_pickle=False) as arrays:
            state = arrays_to_state(arrays)
    except (OSError, ValueError) as error:
        raise DataFormatError(f"{weights_path}: cannot read the weights ({error})") from error
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DataFormatError(f"{weights_path}: weights do not fit the config "
                              f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.eval()
    return Checkpoint(model, list(meta["label_names"]), FeatureSpec.from_dict(meta["feature_spec"]),
                      meta.get("train_config", {}), meta.get("epoch"), folder)
