"""The model config: sections per block, settings by path, checks in one place, old files."""

import pytest

from hotspot_erc.model.config import (
    FLAT_NAMES,
    SECTIONS,
    GraphConfig,
    HGFConfig,
    MoAConfig,
    ModelConfig,
)
from hotspot_erc.model.model import HotspotERC

DIMS = {"text": (8, 6), "audio": (5, 4)}


def test_override_sets_settings_by_path_and_leaves_the_rest():
    config = ModelConfig().override({"hidden": 32, "graph.past": 3, "moa.init": "identity",
                                     "hgf.layers": 2})
    assert (config.hidden, config.graph.past, config.moa.init, config.hgf.layers) == (
        32, 3, "identity", 2)
    assert config.graph.future == GraphConfig().future
    assert ModelConfig().hidden == 64  # the original is untouched


@pytest.mark.parametrize("changes, message", [
    ({"past": 3}, "unknown setting 'past': it is 'graph.past' now"),
    ({"nodes": "hgf"}, "unknown setting 'nodes'; did you mean 'graph.nodes'?"),
    ({"graph.pst": 3}, "unknown setting 'graph.pst'"),
    ({"hgf": {}}, "unknown setting 'hgf'"),
    ({"tokens.past": 1}, "unknown setting 'tokens.past'"),
    ({"graph.past": -1}, "GraphConfig: past: expected an integer >= 0, got -1"),
    ({"moa.top_k": 9}, r"MoAConfig: top_k: expected 1..num_experts \(4\), got 9"),
    ({"hgf.smoothing_kernel": 4}, "smoothing_kernel: expected an odd number"),
    ({"hgf.encoder": "lstm"}, "encoder: expected one of 'transformer', 'gru', got 'lstm'"),
    ({"moa.balance_weight": "high"}, "balance_weight: expected a finite number, got 'high'"),
    ({"hidden": 0}, "hidden: expected an integer >= 1, got 0"),
])
def test_a_bad_setting_is_an_error_naming_it(changes, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig().override(changes)


def test_pairwise_transformers_without_a_graph_are_refused():
    """They feed the graph; without it they would be built and never run."""
    with pytest.raises(ValueError, match="pairwise_crossmodal: .* need use_graph=true"):
        ModelConfig(pairwise_crossmodal=True, use_graph=False)


def test_every_section_round_trips_through_json_and_flat_paths():
    config = ModelConfig(input_dims=DIMS).override({"graph.speaker_relations": True,
                                                    "hgf.weighting": "topk_softmax"})
    assert ModelConfig.from_dict(config.to_dict()) == config
    flat = config.flat()
    assert flat["graph.speaker_relations"] is True and flat["hgf.weighting"] == "topk_softmax"
    assert all(config.get(path) == value for path, value in flat.items()
               if path != "input_dims")  # JSON lists there, tuples in the config
    assert not set(SECTIONS) & set(flat)


def test_a_flat_config_of_an_older_version_loads_with_every_name_moved():
    """Checkpoints written before the sections existed hold these names at the top level."""
    values = {"hgf_encoder": "gru", "hgf_layers": 2, "smoothing_kernel": 5, "use_prior": False,
              "hotspot_weighting": "topk_softmax", "local_contrast": False,
              "moa_routing": False, "num_experts": 5, "top_k": 3, "max_shift": 2,
              "conv_kernel": 7, "balance_weight": 0.5, "aligner_init": "identity",
              "graph_nodes": "global", "past": 4, "future": 0, "temporal_edges": False,
              "cross_edges": False, "speaker_relations": True, "dialogue_context": True,
              "speaker_embedding": False, "max_speakers": 3}
    assert set(values) == set(FLAT_NAMES)
    config = ModelConfig.from_dict({"variant": "full", "hidden": 32, **values})
    assert all(config.get(FLAT_NAMES[name]) == value for name, value in values.items())
    assert config.hidden == 32 and config.standardise == []
    with pytest.raises(ValueError, match="flat names of an older version beside nested"):
        ModelConfig.from_dict({"past": 4, "graph": {"future": 1}})


def test_the_hgf_section_reaches_the_block_top_k_and_max_positions_included():
    config = ModelConfig(input_dims=DIMS, hidden=16, heads=2).override(
        {"hgf.weighting": "topk_softmax", "hgf.top_k": 2, "hgf.max_positions": 40,
         "hgf.smoothing_kernel": 5})
    fusion = HotspotERC(config).encoders["text"]
    assert (fusion.weighting, fusion.top_k, fusion.max_positions) == ("topk_softmax", 2, 40)


def test_the_moa_and_graph_sections_reach_their_blocks():
    config = ModelConfig(input_dims=DIMS, hidden=16, heads=2).override(
        {"moa.num_experts": 3, "moa.top_k": 1, "moa.routing": False, "graph.past": 2,
         "graph.future": 0, "graph.speaker_relations": True})
    model = HotspotERC(config)
    assert (model.moa.num_experts, model.moa.top_k, model.moa.routing) == (3, 1, False)
    assert (model.graph.past, model.graph.future, model.graph.speaker_relations) == (2, 0, True)


def test_sections_have_their_own_defaults():
    assert ModelConfig().hgf == HGFConfig() and ModelConfig().moa == MoAConfig()


def test_a_checkpoint_with_the_flat_config_of_an_older_version_loads_the_same_model(tmp_path):
    """checkpoint.json files written before the sections existed keep loading."""
    import json

    import torch

    from hotspot_erc.data.dialogue import FeatureSpec, ModalitySpec
    from hotspot_erc.engine.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    config = ModelConfig(input_dims=DIMS, num_classes=3, hidden=16, heads=2).override(
        {"graph.past": 2, "moa.init": "identity", "hgf.layers": 2})
    spec = FeatureSpec({m: ModalitySpec("test", "1", *dims) for m, dims in DIMS.items()})
    model = HotspotERC(config)
    folder = save_checkpoint(tmp_path / "ckpt", model, ["a", "b", "c"], spec)
    meta = json.loads((folder / "checkpoint.json").read_text())
    flat = {name: value for name, value in meta["model_config"].items() if name not in SECTIONS}
    for old, path in FLAT_NAMES.items():
        section, _, name = path.partition(".")
        flat[old] = meta["model_config"][section][name]
    (folder / "checkpoint.json").write_text(json.dumps({**meta, "model_config": flat}))
    loaded = load_checkpoint(folder)
    assert loaded.config == config
    reloaded = loaded.model.state_dict()
    assert all(torch.equal(value, reloaded[name]) for name, value in model.state_dict().items())
