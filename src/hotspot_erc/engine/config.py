"""Training settings: the optimiser, selection and batching, saved beside every checkpoint."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hotspot_erc.fields import type_problems
from hotspot_erc.model.config import ModelConfig, reject_unknown_keys

# Validation metrics a run can be selected on (scalars of engine.metrics.classification_metrics).
SELECTION_METRICS: tuple[str, ...] = ("weighted_f1", "accuracy", "macro_f1")


@dataclass
class TrainConfig:
    """Optimisation and selection settings (Adam).

    The defaults were chosen on the synthetic benchmark's validation split (docs/results.md,
    "How the training defaults were chosen"). A variant may bring its own settings
    (:attr:`~hotspot_erc.model.variants.Variant.train_defaults`: ``corect`` brings CORECT's
    optimiser). Every field is checked when the config is made: a value of the wrong type or out
    of range is a ValueError naming the field and the range expected.
    """

    epochs: int = 30
    lr: float = 3e-3
    weight_decay: float = 1e-5
    batch_size: int = 4
    patience: int = 8
    # Early stopping may not end a run before this many epochs: some seeds sit on the class-prior
    # plateau for several epochs before they start to learn (docs/results.md).
    min_epochs: int = 10
    seed: int = 0
    grad_clip: float = 1.0
    # Decay of the exponential moving average of the weights that is validated, selected and
    # saved (engine/ema.py); 0 selects the raw weights of each epoch.
    ema: float = 0.0
    selection_metric: str = "weighted_f1"
    max_positions: dict[str, int] = field(default_factory=dict)
    threads: int = 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        reject_unknown_keys(cls, data)
        return cls(**data)

    def __post_init__(self) -> None:
        wrong_type = type_problems(self)
        problems = [f"{name}: {problem}" for name, problem in wrong_type.items()]
        for name, least in (("epochs", 1), ("batch_size", 1), ("patience", 0),
                            ("min_epochs", 0), ("seed", 0), ("threads", 1)):
            if name not in wrong_type and getattr(self, name) < least:
                problems.append(f"{name}: expected an integer >= {least}, got "
                                f"{getattr(self, name)!r}")
        for name, wanted, valid in (("lr", "> 0", lambda v: v > 0),
                                    ("weight_decay", ">= 0", lambda v: v >= 0),
                                    ("grad_clip", ">= 0 (0: no clipping)", lambda v: v >= 0),
                                    ("ema", "in [0, 1) (0: no average)", lambda v: 0 <= v < 1)):
            if name not in wrong_type and not valid(getattr(self, name)):
                problems.append(f"{name}: expected a finite number {wanted}, got "
                                f"{getattr(self, name)!r}")
        if self.selection_metric not in SELECTION_METRICS:
            problems.append(f"selection_metric: expected one of {', '.join(SELECTION_METRICS)}, "
                            f"got {self.selection_metric!r}")
        if "max_positions" not in wrong_type and any(v < 1 for v in self.max_positions.values()):
            problems.append("max_positions: expected {modality: integer >= 1}, got "
                            f"{self.max_positions!r}")
        if problems:
            raise ValueError("TrainConfig: " + "; ".join(problems))

    def replace(self, **changes) -> TrainConfig:
        reject_unknown_keys(type(self), changes)
        return dataclasses.replace(self, **changes)


def batch_positions(model_config: ModelConfig, train_config: TrainConfig) -> dict[str, int]:
    """Positions to batch per modality: a model without HGF reads global vectors only, so its
    batches carry one position instead of copying local sequences it never reads."""
    if model_config.use_hgf:
        return dict(train_config.max_positions)
    return {m: 1 for m in model_config.modalities}
