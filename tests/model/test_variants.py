"""The registry of named variants: each differs from `full` in exactly the part it removes."""

from __future__ import annotations

import dataclasses

import pytest

from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.graph import CrossModalGraph
from hotspot_erc.model.hgf import HotspotGatedFusion
from hotspot_erc.model.moa import MixtureOfAligners
from hotspot_erc.model.model import HotspotERC
from hotspot_erc.model.variants import describe_variant, list_variants, variant_config

BASE = ModelConfig(input_dims={"text": (8, 8), "audio": (6, 6), "video": (4, 4)},
                   num_classes=3, hidden=16, heads=2)
REQUIRED = ["full", "no_hgf", "no_moa", "no_graph", "fixed_align", "no_cross_edges",
            "no_temporal_edges", "corect"]

EXPECTED_CHANGES = {
    "full": {},
    "no_hgf": {"use_hgf": False},
    "no_moa": {"use_moa": False},
    "no_graph": {"use_graph": False},
    "fixed_align": {"moa_routing": False},
    "no_cross_edges": {"cross_edges": False},
    "no_temporal_edges": {"temporal_edges": False},
    "no_prior": {"use_prior": False},
}


def changed_fields(config: ModelConfig) -> dict:
    full = variant_config("full", BASE)
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.name != "variant" and getattr(config, f.name) != getattr(full, f.name)}


def test_registry_lists_the_required_variants():
    assert set(REQUIRED) <= set(list_variants())
    assert list_variants("no_*") == [n for n in list_variants() if n.startswith("no_")]
    assert all(describe_variant(name) for name in list_variants())


def test_unknown_variant_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown model variant 'nope'"):
        variant_config("nope", BASE)


@pytest.mark.parametrize("name", sorted(EXPECTED_CHANGES))
def test_ablation_changes_exactly_its_switch(name):
    config = variant_config(name, BASE)
    assert config.variant == name
    assert changed_fields(config) == EXPECTED_CHANGES[name]


def test_corect_is_the_published_configuration():
    config = variant_config("corect", BASE)
    assert (config.use_hgf, config.use_moa, config.pairwise_crossmodal, config.use_graph) == (
        False, False, True, True)
    assert (config.hidden, config.dropout, config.past, config.future) == (100, 0.5, 11, 5)


@pytest.mark.parametrize("name", sorted(EXPECTED_CHANGES))
def test_built_modules_match_the_switches(name):
    model = HotspotERC(variant_config(name, BASE))
    config = model.config
    assert all(isinstance(e, HotspotGatedFusion) for e in model.encoders.values()) == \
        config.use_hgf
    assert isinstance(model.moa, MixtureOfAligners) == config.use_moa
    if model.moa is not None:
        assert model.moa.routing == config.moa_routing
    assert isinstance(model.graph, CrossModalGraph) == config.use_graph
    assert model.pairwise is None


def test_overrides_fail_on_unknown_keys():
    with pytest.raises(ValueError, match="unknown keys"):
        variant_config("full", BASE, hiden=3)
    assert variant_config("full", BASE, hidden=32).hidden == 32


def test_config_round_trips_through_a_dict():
    config = variant_config("corect", BASE)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({**config.to_dict(), "extra": 1})
