"""A registry of named model variants: an ablation is a name, not a fork.

A :class:`Variant` carries three things:

* ``switches``: the settings that *define* it (``no_hgf`` is ``use_hgf=False``). Every variant
  states every switch of :data:`SWITCHES`, so a config records unambiguously what ran, and an
  override that contradicts one is an error naming both (``--variant full --set use_hgf=false``
  is the variant ``no_hgf``, not a ``full`` that lacks HGF);
* ``defaults``: other model settings it brings (CORECT's hidden size and dropout);

Settings are named by their path in :class:`~hotspot_erc.model.config.ModelConfig`
(``hidden``, ``moa.routing``, ``graph.past``).
* ``train_defaults``: training settings it brings (CORECT's optimiser), as
  :class:`~hotspot_erc.engine.config.TrainConfig` field names.

Precedence, lowest first: the config's own defaults and what the dataset fixes (dimensions,
classes), then the variant's defaults and switches, then the user's overrides. So
``--variant corect --set hidden=128`` trains CORECT with hidden 128.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field

from hotspot_erc.model.config import ModelConfig

# The settings that decide which blocks a model has; each variant states all of them.
SWITCHES: tuple[str, ...] = ("use_hgf", "hgf.use_prior", "use_moa", "moa.routing",
                             "use_graph", "graph.temporal_edges", "graph.cross_edges",
                             "pairwise_crossmodal", "causal")
_FULL: dict[str, bool] = {"use_hgf": True, "hgf.use_prior": True, "use_moa": True,
                          "moa.routing": True, "use_graph": True, "graph.temporal_edges": True,
                          "graph.cross_edges": True, "pairwise_crossmodal": False,
                          "causal": False}


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    switches: Mapping[str, bool]
    defaults: Mapping[str, object] = field(default_factory=dict)
    train_defaults: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.switches) != set(SWITCHES):
            raise ValueError(f"variant {self.name}: switches must state exactly {SWITCHES}")
        ModelConfig().override(self.defaults)  # unknown paths are an error here
        overlap = set(self.defaults) & set(SWITCHES)
        if overlap:
            raise ValueError(f"variant {self.name}: {sorted(overlap)} are switches, not defaults")

    def model_config(self, base: ModelConfig, overrides: Mapping[str, object] | None = None
                     ) -> ModelConfig:
        """``base`` with this variant's defaults and switches, then the user's ``overrides``
        (a ValueError if one contradicts a switch)."""
        overrides = dict(overrides or {})
        if "variant" in overrides and overrides["variant"] != self.name:
            raise ValueError(f"--set variant={overrides['variant']} contradicts --variant "
                             f"{self.name}; choose the variant with --variant")
        for key, value in overrides.items():
            if key in self.switches and value != self.switches[key]:
                raise ValueError(self._contradiction(key, value))
        return base.override({**self.defaults, **self.switches, **overrides,
                              "variant": self.name})

    def _contradiction(self, key: str, value: object) -> str:
        wanted = {**self.switches, key: value}
        matching = [v.name for v in _REGISTRY.values() if dict(v.switches) == wanted]
        hint = (f"; that is the variant {matching[0]}: use --variant {matching[0]}" if matching
                else "; no registered variant has that combination")
        return (f"variant {self.name} is defined by {key}={self.switches[key]}, and the override "
                f"{key}={value} contradicts it{hint}")


_REGISTRY: dict[str, Variant] = {}


def register(variant: Variant) -> Variant:
    if variant.name in _REGISTRY:
        raise ValueError(f"variant {variant.name!r} registered twice")
    _REGISTRY[variant.name] = variant
    return variant


def get_variant(name: str) -> Variant:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model variant {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def list_variants(pattern: str = "*") -> list[str]:
    return [name for name in _REGISTRY if fnmatch.fnmatch(name, pattern)]


def describe_variant(name: str) -> str:
    return get_variant(name).description


def variant_config(name: str, base: ModelConfig | None = None,
                   overrides: Mapping[str, object] | None = None) -> ModelConfig:
    """The config of variant ``name``: ``base``, the variant's settings, then ``overrides``
    (keyed by path: ``{"hidden": 32, "graph.past": 3}``)."""
    return get_variant(name).model_config(base or ModelConfig(), overrides)


def build_model(name: str, base: ModelConfig | None = None,
                overrides: Mapping[str, object] | None = None):
    from hotspot_erc.model.model import HotspotERC

    return HotspotERC(variant_config(name, base, overrides))


def _ablation(name: str, description: str, switch: str | None = None) -> Variant:
    """The full model with ``switch`` (a path of :data:`SWITCHES`) turned off."""
    return register(Variant(name, description, {**_FULL, **({switch: False} if switch else {})}))


_ablation("full", "HGF + Mixture-of-Aligners + cross-modal relational graph")
_ablation("no_hgf", "global vectors only (no local hotspots); MoA and graph kept", "use_hgf")
_ablation("no_moa", "no cross-modal alignment: per-modality pooled HGF outputs concatenated",
          "use_moa")
_ablation("no_graph", "no conversation graph: the classifier sees the MoA output only",
          "use_graph")
_ablation("fixed_align", "MoA replaced by one plain cross-attention per modality pair (no "
          "routing)", "moa.routing")
_ablation("no_cross_edges", "graph without same-utterance cross-modal edges",
          "graph.cross_edges")
_ablation("no_temporal_edges", "graph without temporal edges (self loops kept)",
          "graph.temporal_edges")
_ablation("no_prior", "full model without rule-based hotspot priors (hotspots learned end to "
          "end)", "hgf.use_prior")
register(Variant(
    "causal", "full, for live conversations: each utterance is classified from it and earlier "
              "utterances only (graph edges to the past, no future window)",
    switches={**_FULL, "causal": True}, defaults={"graph.future": 0}))
register(Variant(
    "corect", "CORECT baseline: global vectors, pairwise cross-modal transformers, relational "
              "temporal graph; hidden 100, dropout 0.5, windows 11/5, its optimiser settings",
    switches={**_FULL, "use_hgf": False, "use_moa": False, "pairwise_crossmodal": True},
    defaults={"hidden": 100, "dropout": 0.5, "graph.past": 11, "graph.future": 5,
              "moa.balance_weight": 0.0},
    train_defaults={"lr": 2.5e-4, "weight_decay": 1e-8, "batch_size": 10}))
