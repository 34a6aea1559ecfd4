"""The registry of named variants: each differs from `full` in exactly the part it removes."""

from __future__ import annotations

import re

import pytest

from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.graph import CrossModalGraph
from hotspot_erc.model.hgf import HotspotGatedFusion
from hotspot_erc.model.moa import MixtureOfAligners
from hotspot_erc.model.model import HotspotERC
from hotspot_erc.model.variants import (
    SWITCHES,
    describe_variant,
    get_variant,
    list_variants,
    variant_config,
)

BASE = ModelConfig(input_dims={"text": (8, 8), "audio": (6, 6), "video": (4, 4)},
                   num_classes=3, hidden=16, heads=2)
REQUIRED = ["full", "no_hgf", "no_moa", "no_graph", "fixed_align", "no_cross_edges",
            "no_temporal_edges", "corect"]

EXPECTED_CHANGES = {
    "full": {},
    "no_hgf": {"use_hgf": False},
    "no_moa": {"use_moa": False},
    "no_graph": {"use_graph": False},
    "fixed_align": {"moa.routing": False},
    "no_cross_edges": {"graph.cross_edges": False},
    "no_temporal_edges": {"graph.temporal_edges": False},
    "no_prior": {"hgf.use_prior": False},
}


def changed_fields(config: ModelConfig) -> dict:
    full = variant_config("full", BASE).flat()
    return {path: value for path, value in config.flat().items()
            if path != "variant" and value != full[path]}


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
    assert (config.hidden, config.dropout, config.graph.past, config.graph.future) == (
        100, 0.5, 11, 5)


@pytest.mark.parametrize("name", sorted(EXPECTED_CHANGES))
def test_built_modules_match_the_switches(name):
    model = HotspotERC(variant_config(name, BASE))
    config = model.config
    assert all(isinstance(e, HotspotGatedFusion) for e in model.encoders.values()) == \
        config.use_hgf
    assert isinstance(model.moa, MixtureOfAligners) == config.use_moa
    if model.moa is not None:
        assert model.moa.routing == config.moa.routing
    assert isinstance(model.graph, CrossModalGraph) == config.use_graph
    assert model.pairwise is None


def test_overrides_fail_on_unknown_keys():
    with pytest.raises(ValueError, match="unknown setting 'hiden'"):
        variant_config("full", BASE, {"hiden": 3})
    assert variant_config("full", BASE, {"hidden": 32}).hidden == 32


def test_config_round_trips_through_a_dict():
    config = variant_config("corect", BASE)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({**config.to_dict(), "extra": 1})


# -- issue 13: the user's overrides come last; a contradiction of a switch is an error ---------

def test_user_overrides_win_over_the_variants_defaults():
    """``--variant corect --set hidden=128 --set dropout=0.1`` trained with 100 and 0.5."""
    config = variant_config("corect", BASE, {"hidden": 128, "dropout": 0.1})
    assert (config.hidden, config.dropout, config.variant) == (128, 0.1, "corect")
    assert config.pairwise_crossmodal and not config.use_hgf


@pytest.mark.parametrize("name, override, message", [
    ("full", {"use_hgf": False}, "variant full is defined by use_hgf=True, and the override "
                                 "use_hgf=False contradicts it; that is the variant no_hgf: use "
                                 "--variant no_hgf"),
    ("corect", {"pairwise_crossmodal": False}, "variant corect is defined by "
                                               "pairwise_crossmodal=True, and the override "
                                               "pairwise_crossmodal=False contradicts it; no "
                                               "registered variant has that combination"),
    ("no_graph", {"variant": "full"}, "--set variant=full contradicts --variant no_graph"),
])
def test_an_override_that_contradicts_a_switch_names_both(name, override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        variant_config(name, BASE, override)


def test_restating_a_switch_is_allowed_and_every_variant_states_every_switch():
    assert variant_config("no_hgf", BASE, {"use_hgf": False}).use_hgf is False
    for name in list_variants():
        config = variant_config(name, BASE)
        assert {key: config.get(key) for key in SWITCHES} == dict(get_variant(name).switches)
