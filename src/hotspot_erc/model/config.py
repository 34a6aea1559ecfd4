"""The one typed configuration every model variant is built from, saved beside each checkpoint."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hotspot_erc.data.dialogue import MODALITIES
from hotspot_erc.fields import type_problems


def reject_unknown_keys(config_class, keys) -> None:
    """Raise ValueError naming the keys of ``keys`` that are not fields of ``config_class``."""
    unknown = sorted(set(keys) - {f.name for f in dataclasses.fields(config_class)})
    if unknown:
        raise ValueError(f"{config_class.__name__}: unknown keys {unknown}")


# The least value of each integer field; the modules check what depends on several fields
# (heads dividing hidden, odd kernels).
_LEAST = {"num_classes": 1, "hidden": 1, "heads": 1, "hgf_layers": 1, "smoothing_kernel": 1,
          "num_experts": 1, "top_k": 1, "max_shift": 0, "conv_kernel": 1, "max_speakers": 1,
          "past": 0, "future": 0, "pairwise_layers": 1}


@dataclass
class ModelConfig:
    """Hyperparameters of :class:`hotspot_erc.model.model.HotspotERC`.

    ``input_dims`` maps each modality the model reads to ``(global_dim, local_dim)``; it is filled
    from the dataset's feature spec. The switches ``use_hgf``, ``use_moa``, ``moa_routing``,
    ``use_graph``, ``temporal_edges``, ``cross_edges`` and ``pairwise_crossmodal`` are what the
    named variants of :mod:`hotspot_erc.model.variants` change.
    """

    variant: str = "full"
    # Modalities whose inputs are standardised with training-split statistics. None: decided
    # from the features when training starts (engine.train.model_config_for: the raw-media
    # extractors audio-* and video-*, whose descriptors come in physical units).
    standardise: list[str] | None = None
    input_dims: dict[str, tuple[int, int]] = field(default_factory=dict)
    num_classes: int = 6
    hidden: int = 64
    dropout: float = 0.2
    heads: int = 4
    # Hotspot-Gated Fusion
    use_hgf: bool = True
    # The hotspot path as a zero-initialised residual over the global projection, with
    # edge-replicating aligners (model.py, "Neutral start"). Off by default: on the synthetic
    # benchmark the zero-scaled path did not grow within the training budget (docs/results.md).
    neutral_start: bool = False
    hgf_encoder: str = "transformer"
    hgf_layers: int = 1
    smoothing_kernel: int = 3
    use_prior: bool = True
    hotspot_weighting: str = "sigmoid"
    local_contrast: bool = True
    # Mixture-of-Aligners
    use_moa: bool = True
    moa_routing: bool = True
    num_experts: int = 4
    top_k: int = 2
    max_shift: int = 4
    conv_kernel: int = 9
    balance_weight: float = 0.01
    # How the shift and convolution experts start (model/aligners.py, INITS).
    aligner_init: str = "uniform"
    # Dialogue context encoder before the graph (model/dialogue_context.py): a BiGRU over each
    # modality's utterances, with a speaker embedding (speakers beyond max_speakers share one).
    dialogue_context: bool = False
    speaker_embedding: bool = True
    max_speakers: int = 8
    # Cross-modal graph. graph_nodes: what the graph's nodes read, the pooled HGF output
    # ("hgf", docs/method.md) or a projection of the global vector ("global"), in which case the
    # hotspot evidence reaches the classifier through the utterance's own path only.
    graph_nodes: str = "hgf"
    use_graph: bool = True
    past: int = 11
    future: int = 5
    temporal_edges: bool = True
    cross_edges: bool = True
    speaker_relations: bool = False
    # CORECT's pairwise cross-modal transformers over the dialogue (the `corect` baseline)
    pairwise_crossmodal: bool = False
    pairwise_layers: int = 2
    # Loss
    class_weights: list[float] | None = None

    def __post_init__(self) -> None:
        # Types first (values come from --set and checkpoint.json): the checks below and the
        # modules built from the config compare them with numbers.
        wrong_type = type_problems(self)
        if wrong_type:
            raise ValueError("ModelConfig: " + "; ".join(f"{name}: {problem}"
                                                         for name, problem in wrong_type.items()))
        problems = [f"{name}: expected an integer >= {least}, got {getattr(self, name)}"
                    for name, least in _LEAST.items() if getattr(self, name) < least]
        problems += [f"input_dims.{m}: expected dimensions >= 1, got {list(dims)}"
                     for m, dims in self.input_dims.items() if min(dims) < 1]
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout: expected a number in [0, 1), got {self.dropout}")
        if self.balance_weight < 0:
            problems.append(f"balance_weight: expected a number >= 0, got {self.balance_weight}")
        if problems:
            raise ValueError("ModelConfig: " + "; ".join(problems))
        unknown = [m for m in self.input_dims if m not in MODALITIES]
        if unknown:
            raise ValueError(f"ModelConfig.input_dims: unknown modalities {unknown}; "
                             f"expected a subset of {MODALITIES}")
        self.input_dims = {m: (int(g), int(loc)) for m, (g, loc) in self.input_dims.items()}
        if self.standardise is not None:
            self.standardise = list(self.standardise)
        if any(m not in MODALITIES for m in self.standardise or []):
            raise ValueError(f"ModelConfig.standardise: {self.standardise}; expected a subset "
                             f"of {MODALITIES}")
        if self.aligner_init not in ("uniform", "identity"):
            raise ValueError(f"ModelConfig.aligner_init must be 'uniform' or 'identity', got "
                             f"{self.aligner_init!r}")
        if self.graph_nodes not in ("hgf", "global"):
            raise ValueError(f"ModelConfig.graph_nodes must be 'hgf' or 'global', "
                             f"got {self.graph_nodes!r}")
        if self.top_k < 1 or self.top_k > self.num_experts:
            raise ValueError(f"ModelConfig.top_k must be in 1..num_experts ({self.num_experts}), "
                             f"got {self.top_k}")
        if self.class_weights is not None and len(self.class_weights) != self.num_classes:
            raise ValueError(f"ModelConfig.class_weights: expected {self.num_classes} weights, "
                             f"got {len(self.class_weights)}")

    @property
    def modalities(self) -> list[str]:
        """The modalities the model reads, in canonical order."""
        return [m for m in MODALITIES if m in self.input_dims]

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["input_dims"] = {m: list(d) for m, d in self.input_dims.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        reject_unknown_keys(cls, data)
        data = dict(data)
        # Configs saved before input standardisation existed were trained without it.
        data.setdefault("standardise", [])
        dims = data.get("input_dims", {})
        if isinstance(dims, dict):  # anything else is reported by the type check
            data["input_dims"] = {m: tuple(d) if isinstance(d, list) else d
                                  for m, d in dims.items()}
        return cls(**data)

    def replace(self, **changes) -> ModelConfig:
        reject_unknown_keys(type(self), changes)
        return dataclasses.replace(self, **changes)
