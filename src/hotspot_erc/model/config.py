"""The typed configuration every model variant is built from, saved beside each checkpoint.

A :class:`ModelConfig` holds what the whole model shares (sizes, dropout, which blocks it has)
and one section per block, each consumed by that block alone::

    ModelConfig   variant, input_dims, num_classes, hidden, heads, dropout, standardise,
                  use_hgf, use_moa, use_graph, pairwise_crossmodal, pairwise_layers,
                  neutral_start, neutral_map, class_weights
      .hgf        HGFConfig    -> model/hgf.py   HotspotGatedFusion (one per modality)
      .moa        MoAConfig    -> model/moa.py   MixtureOfAligners and its balance loss
      .graph      GraphConfig  -> model/graph.py CrossModalGraph, model/dialogue_context.py

Settings are named by their path: ``hidden``, ``hgf.layers``, ``moa.top_k``, ``graph.past``.
:meth:`ModelConfig.override` applies such paths (``--set graph.past=3``, a variant's switches, a
tuning trial); :meth:`ModelConfig.from_dict` reads the nested JSON form and, for checkpoints
written before the sections existed, the flat one (:data:`FLAT_NAMES`). Every option, and every
combination of options, is checked when a config is made, here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from hotspot_erc.data.dialogue import MODALITIES
from hotspot_erc.fields import type_problems


def reject_unknown_keys(config_class, keys) -> None:
    """Raise ValueError naming the keys of ``keys`` that are not fields of ``config_class``."""
    unknown = sorted(set(keys) - {f.name for f in dataclasses.fields(config_class)})
    if unknown:
        raise ValueError(f"{config_class.__name__}: unknown keys {unknown}")


def _check(config, least: Mapping[str, int], choices: Mapping[str, tuple[str, ...]]) -> None:
    """Raise ValueError listing every field of ``config`` of the wrong type, below its least
    value, or not one of its choices."""
    wrong_type = type_problems(config)
    problems = [f"{name}: {problem}" for name, problem in wrong_type.items()]
    problems += [f"{name}: expected an integer >= {low}, got {getattr(config, name)}"
                 for name, low in least.items()
                 if name not in wrong_type and getattr(config, name) < low]
    problems += [f"{name}: expected one of {', '.join(map(repr, allowed))}, got "
                 f"{getattr(config, name)!r}" for name, allowed in choices.items()
                 if name not in wrong_type and getattr(config, name) not in allowed]
    if problems:
        raise ValueError(f"{type(config).__name__}: " + "; ".join(problems))


@dataclass
class HGFConfig:
    """Hotspot-Gated Fusion (:class:`~hotspot_erc.model.hgf.HotspotGatedFusion`); the field
    names are that block's keyword arguments."""

    encoder: str = "transformer"
    layers: int = 1
    smoothing_kernel: int = 3
    use_prior: bool = True
    weighting: str = "sigmoid"
    # Windows kept by the "topk_softmax" weighting.
    top_k: int = 3
    local_contrast: bool = True
    # The longest local sequence the transformer encoder's positions cover.
    max_positions: int = 512

    def __post_init__(self) -> None:
        _check(self, {"layers": 1, "smoothing_kernel": 1, "top_k": 1, "max_positions": 1},
               {"encoder": ("transformer", "gru"), "weighting": ("sigmoid", "topk_softmax")})
        if self.smoothing_kernel % 2 == 0:
            raise ValueError(f"HGFConfig: smoothing_kernel: expected an odd number (centred "
                             f"windows), got {self.smoothing_kernel}")


@dataclass
class MoAConfig:
    """Mixture-of-Aligners (:class:`~hotspot_erc.model.moa.MixtureOfAligners`) and the weight
    of its load-balancing loss."""

    routing: bool = True
    num_experts: int = 4
    top_k: int = 2
    max_shift: int = 4
    conv_kernel: int = 9
    # How the shift and convolution experts start (model/aligners.py, INITS).
    init: str = "uniform"
    balance_weight: float = 0.01
    # A relative-time bias in every cross-attention, one lag profile per expert
    # (model/time_bias.py); off, the attention compares contents only.
    time_bias: bool = False
    time_knots: int = 33
    time_gain: float = 8.0
    time_init: str = "zero"

    def __post_init__(self) -> None:
        _check(self, {"num_experts": 1, "top_k": 1, "max_shift": 0, "conv_kernel": 1,
                      "time_knots": 2},
               {"init": ("uniform", "identity"), "time_init": ("zero", "centred")})
        if self.top_k > self.num_experts:
            raise ValueError(f"MoAConfig: top_k: expected 1..num_experts ({self.num_experts}), "
                             f"got {self.top_k}")
        if self.balance_weight < 0:
            raise ValueError(f"MoAConfig: balance_weight: expected a number >= 0, got "
                             f"{self.balance_weight}")
        if self.time_gain <= 0:
            raise ValueError(f"MoAConfig: time_gain: expected a number > 0, got "
                             f"{self.time_gain}")


@dataclass
class GraphConfig:
    """The relational cross-modal conversation graph
    (:class:`~hotspot_erc.model.graph.CrossModalGraph`) and what feeds its nodes."""

    # What the nodes read: the pooled HGF output ("hgf", docs/method.md) or a projection of the
    # global vector ("global"), in which case the hotspot evidence reaches the classifier
    # through the utterance's own path only.
    nodes: str = "hgf"
    past: int = 11
    future: int = 5
    temporal_edges: bool = True
    cross_edges: bool = True
    speaker_relations: bool = False
    # A BiGRU over each modality's utterances before the graph, with a speaker embedding
    # (model/dialogue_context.py; speakers beyond max_speakers share one).
    dialogue_context: bool = False
    speaker_embedding: bool = True
    max_speakers: int = 8

    def __post_init__(self) -> None:
        _check(self, {"past": 0, "future": 0, "max_speakers": 1}, {"nodes": ("hgf", "global")})


SECTIONS: dict[str, type] = {"hgf": HGFConfig, "moa": MoAConfig, "graph": GraphConfig}

# The flat names of checkpoints written before the sections existed, and the path of each now.
FLAT_NAMES: dict[str, str] = {
    "hgf_encoder": "hgf.encoder", "hgf_layers": "hgf.layers",
    "smoothing_kernel": "hgf.smoothing_kernel", "use_prior": "hgf.use_prior",
    "hotspot_weighting": "hgf.weighting", "local_contrast": "hgf.local_contrast",
    "moa_routing": "moa.routing", "num_experts": "moa.num_experts", "top_k": "moa.top_k",
    "max_shift": "moa.max_shift", "conv_kernel": "moa.conv_kernel",
    "balance_weight": "moa.balance_weight", "aligner_init": "moa.init",
    "graph_nodes": "graph.nodes", "past": "graph.past", "future": "graph.future",
    "temporal_edges": "graph.temporal_edges", "cross_edges": "graph.cross_edges",
    "speaker_relations": "graph.speaker_relations", "dialogue_context": "graph.dialogue_context",
    "speaker_embedding": "graph.speaker_embedding", "max_speakers": "graph.max_speakers",
}


@dataclass
class ModelConfig:
    """Hyperparameters of :class:`hotspot_erc.model.model.HotspotERC`.

    ``input_dims`` maps each modality the model reads to ``(global_dim, local_dim)``; it is filled
    from the dataset's feature spec. The switches the named variants of
    :mod:`hotspot_erc.model.variants` change are ``use_hgf``, ``hgf.use_prior``, ``use_moa``,
    ``moa.routing``, ``use_graph``, ``graph.temporal_edges``, ``graph.cross_edges`` and
    ``pairwise_crossmodal``. The section of a block a variant turns off is kept, unread, so that
    one set of overrides applies to every variant of an ablation.
    """

    variant: str = "full"
    # Modalities whose inputs are standardised with training-split statistics. None: decided
    # from the features when training starts (engine.train.model_config_for).
    standardise: list[str] | None = None
    input_dims: dict[str, tuple[int, int]] = field(default_factory=dict)
    num_classes: int = 6
    hidden: int = 64
    dropout: float = 0.2
    heads: int = 4
    use_hgf: bool = True
    # The hotspot path as a zero-initialised residual over the global projection, with
    # edge-replicating aligners (model.py, "Neutral start").
    neutral_start: bool = False
    # With the neutral start, the hotspot path enters through a zero-initialised linear map
    # (H x H) instead of a per-channel scale (model.py, "Neutral start").
    neutral_map: bool = False
    use_moa: bool = True
    use_graph: bool = True
    # CORECT's pairwise cross-modal transformers over the dialogue (the `corect` baseline); they
    # feed the graph, so they need one.
    pairwise_crossmodal: bool = False
    pairwise_layers: int = 2
    # Each utterance's output depends on it and earlier utterances only (a live conversation):
    # graph edges to the past (graph.future=0), no bidirectional dialogue context, no pairwise
    # transformers over the whole dialogue.
    causal: bool = False
    class_weights: list[float] | None = None
    hgf: HGFConfig = field(default_factory=HGFConfig)
    moa: MoAConfig = field(default_factory=MoAConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)

    def __post_init__(self) -> None:
        _check(self, {"num_classes": 1, "hidden": 1, "heads": 1, "pairwise_layers": 1}, {})
        problems = [f"input_dims.{m}: expected dimensions >= 1, got {list(dims)}"
                    for m, dims in self.input_dims.items() if min(dims) < 1]
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout: expected a number in [0, 1), got {self.dropout}")
        unknown = [m for m in self.input_dims if m not in MODALITIES]
        if unknown:
            problems.append(f"input_dims: unknown modalities {unknown}; expected a subset of "
                            f"{MODALITIES}")
        if any(m not in MODALITIES for m in self.standardise or []):
            problems.append(f"standardise: {self.standardise}; expected a subset of "
                            f"{MODALITIES}")
        if self.class_weights is not None and len(self.class_weights) != self.num_classes:
            problems.append(f"class_weights: expected {self.num_classes} weights, got "
                            f"{len(self.class_weights)}")
        if self.neutral_map and not self.neutral_start:
            problems.append("neutral_map: it is the form of the neutral start; set "
                            "neutral_start=true")
        if self.pairwise_crossmodal and not self.use_graph:
            problems.append("pairwise_crossmodal: the pairwise transformers feed the graph; "
                            "they need use_graph=true")
        if self.causal:
            problems += [f"causal: {reason}" for broken, reason in (
                (self.graph.future > 0, f"graph edges may not reach future utterances; got "
                                        f"graph.future={self.graph.future}, expected 0"),
                (self.graph.dialogue_context, "the dialogue context reads the dialogue in both "
                                              "directions; set graph.dialogue_context=false"),
                (self.pairwise_crossmodal, "the pairwise transformers attend over the whole "
                                           "dialogue; set pairwise_crossmodal=false"))
                if broken]
        if problems:
            raise ValueError("ModelConfig: " + "; ".join(problems))
        self.input_dims = {m: (int(g), int(loc)) for m, (g, loc) in self.input_dims.items()}
        if self.standardise is not None:
            self.standardise = list(self.standardise)

    @property
    def modalities(self) -> list[str]:
        """The modalities the model reads, in canonical order."""
        return [m for m in MODALITIES if m in self.input_dims]

    def get(self, path: str):
        """The setting at ``path`` (``"hidden"``, ``"graph.past"``)."""
        section, _, name = path.rpartition(".")
        return getattr(getattr(self, section) if section else self, name)

    def flat(self) -> dict[str, object]:
        """Every setting by its path, the sections' fields as ``"section.field"``."""
        data = self.to_dict()
        for section in SECTIONS:
            data.update({f"{section}.{name}": value
                         for name, value in data.pop(section).items()})
        return data

    def override(self, changes: Mapping[str, object]) -> ModelConfig:
        """A copy with ``changes`` applied, each keyed by its path; an unknown path is a
        ValueError naming it (and its new path, for a flat name of an older version)."""
        top, sections = {}, {name: {} for name in SECTIONS}
        for path, value in changes.items():
            section, _, name = path.rpartition(".")
            owner = SECTIONS.get(section) if section else type(self)
            if owner is None or name not in {f.name for f in dataclasses.fields(owner)} or (
                    not section and name in SECTIONS):
                raise ValueError(f"ModelConfig: unknown setting {path!r}"
                                 + _known_as(path))
            (sections[section] if section else top)[name] = value
        for section, values in sections.items():
            if values:
                top[section] = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **top)

    def replace(self, **changes) -> ModelConfig:
        """A copy with top-level fields (sections as whole objects) replaced."""
        reject_unknown_keys(type(self), changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["input_dims"] = {m: list(d) for m, d in self.input_dims.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """The config of its JSON form: nested, or flat as written before the sections
        existed."""
        data = dict(data)
        flat = {name: data.pop(name) for name in list(data) if name in FLAT_NAMES}
        if flat and any(isinstance(data.get(section), dict) for section in SECTIONS):
            raise ValueError(f"ModelConfig: {sorted(flat)} are flat names of an older version "
                             "beside nested sections; use " + ", ".join(
                                 FLAT_NAMES[name] for name in sorted(flat)))
        reject_unknown_keys(cls, data)
        # Configs saved before input standardisation existed were trained without it.
        data.setdefault("standardise", [])
        dims = data.get("input_dims", {})
        if isinstance(dims, dict):  # anything else is reported by the type check
            data["input_dims"] = {m: tuple(d) if isinstance(d, list) else d
                                  for m, d in dims.items()}
        for section, section_class in SECTIONS.items():
            values = data.get(section, {})
            if not isinstance(values, dict):
                raise ValueError(f"ModelConfig: {section}: expected a mapping, got "
                                 f"{type(values).__name__}")
            values = {**values, **{FLAT_NAMES[name].partition(".")[2]: value
                                   for name, value in flat.items()
                                   if FLAT_NAMES[name].startswith(section + ".")}}
            reject_unknown_keys(section_class, values)
            data[section] = section_class(**values)
        return cls(**data)


def _known_as(path: str) -> str:
    if path in FLAT_NAMES:
        return f": it is {FLAT_NAMES[path]!r} now"
    matching = [f"{section}.{path}" for section, owner in SECTIONS.items()
                if path in {f.name for f in dataclasses.fields(owner)}]
    return f"; did you mean {' or '.join(map(repr, matching))}?" if matching else ""
