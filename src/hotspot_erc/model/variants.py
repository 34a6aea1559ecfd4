"""A registry of named model variants: an ablation is a name, not a fork.

Every variant is a function that takes the base :class:`ModelConfig` (dimensions, classes, hidden
size) and returns it with its switches set. ``build_model(name, **overrides)`` creates the model.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from hotspot_erc.model.config import ModelConfig

_REGISTRY: dict[str, tuple[Callable[[ModelConfig], ModelConfig], str]] = {}


def register(name: str, description: str):
    def wrap(fn: Callable[[ModelConfig], ModelConfig]):
        if name in _REGISTRY:
            raise ValueError(f"variant {name!r} registered twice")
        _REGISTRY[name] = (fn, description)
        return fn
    return wrap


def list_variants(pattern: str = "*") -> list[str]:
    return [name for name in _REGISTRY if fnmatch.fnmatch(name, pattern)]


def describe_variant(name: str) -> str:
    return _lookup(name)[1]


def variant_config(name: str, base: ModelConfig | None = None, **overrides) -> ModelConfig:
    """The config of variant ``name``: ``base`` with the variant's switches, then ``overrides``."""
    fn, _ = _lookup(name)
    config = fn((base or ModelConfig()).replace(variant=name))
    return config.replace(**overrides) if overrides else config


def build_model(name: str, base: ModelConfig | None = None, **overrides):
    from hotspot_erc.model.model import HotspotERC

    return HotspotERC(variant_config(name, base, **overrides))


def _lookup(name: str):
    if name not in _REGISTRY:
        raise KeyError(f"unknown model variant {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


@register("full", "HGF + Mixture-of-Aligners + cross-modal relational graph")
def _full(c: ModelConfig) -> ModelConfig:
    return c


@register("no_hgf", "global vectors only (no local hotspots); MoA and graph kept")
def _no_hgf(c: ModelConfig) -> ModelConfig:
    return c.replace(use_hgf=False)


@register("no_moa", "no cross-modal alignment: per-modality pooled HGF outputs concatenated")
def _no_moa(c: ModelConfig) -> ModelConfig:
    return c.replace(use_moa=False)


@register("no_graph", "no conversation graph: the classifier sees the MoA output only")
def _no_graph(c: ModelConfig) -> ModelConfig:
    return c.replace(use_graph=False)


@register("fixed_align", "MoA replaced by one plain cross-attention per modality pair (no routing)")
def _fixed_align(c: ModelConfig) -> ModelConfig:
    return c.replace(moa_routing=False)


@register("no_cross_edges", "graph without same-utterance cross-modal edges")
def _no_cross_edges(c: ModelConfig) -> ModelConfig:
    return c.replace(cross_edges=False)


@register("no_temporal_edges", "graph without temporal edges (self loops kept)")
def _no_temporal_edges(c: ModelConfig) -> ModelConfig:
    return c.replace(temporal_edges=False)


@register("no_prior", "full model without rule-based hotspot priors (hotspots learned end to end)")
def _no_prior(c: ModelConfig) -> ModelConfig:
    return c.replace(use_prior=False)


@register("corect", "CORECT baseline: global vectors, pairwise cross-modal transformers, "
                    "relational temporal graph; hidden 100, dropout 0.5, windows 11/5")
def _corect(c: ModelConfig) -> ModelConfig:
    return c.replace(use_hgf=False, use_moa=False, pairwise_crossmodal=True, use_graph=True,
                     temporal_edges=True, cross_edges=True, hidden=100, dropout=0.5,
                     past=11, future=5, balance_weight=0.0)
