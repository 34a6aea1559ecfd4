"""Fuzzing of the project's own file formats when they come from someone else: feature stores
(:func:`load_store`) and checkpoints (:func:`load_checkpoint`).

Each example copies a small valid store or checkpoint and damages one of its files: byte edits
of ``store.json``, a ``spec.json`` or a dialogue's ``.npz`` (zip and ``.npy`` headers included),
or one field of ``checkpoint.json`` replaced by any JSON value. The property of
tests/fuzz/conftest.py: a valid result or a DataFormatError naming the file, never another
exception, never more than the memory budget.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hotspot_erc.data.dialogue import DataFormatError, Dataset
from hotspot_erc.data.store import load_store, save_dataset
from hotspot_erc.data.synthetic import SyntheticConfig, generate_dataset
from hotspot_erc.engine.checkpoint import load_checkpoint, save_checkpoint
from hotspot_erc.engine.train import model_config_for
from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.model import HotspotERC

from .edits import byte_edits

SMALL = SyntheticConfig(num_train=2, num_valid=1, num_test=1, min_utterances=2,
                        max_utterances=3, min_duration=1.0, max_duration=2.0)
# Tokens of JSON and of .npy headers and zip records.
_TOKENS = [b"{", b"}", b"[", b"]", b'"', b"null", b"-1", b"1e999", b"NaN", b"\x93NUMPY",
           b"'descr': '|O'", b"'shape': (4294967296,)", b"'fortran_order': True", b"PK\x03\x04",
           b"PK\x01\x02", b"\xff\xff\xff\xff", b"\x00" * 8]


@pytest.fixture(scope="module")
def store_seed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seed") / "store"
    save_dataset(generate_dataset(SMALL), folder)
    return folder


@pytest.fixture(scope="module")
def checkpoint_seed(tmp_path_factory):
    dataset = generate_dataset(SMALL)
    torch.manual_seed(0)
    model = HotspotERC(model_config_for(dataset, ModelConfig(hidden=8, heads=2).override(
        {"graph.past": 2, "graph.future": 1})))
    return save_checkpoint(tmp_path_factory.mktemp("seed") / "ckpt", model, dataset.label_names,
                           dataset.feature_spec, {"lr": 0.1}, epoch=1)


def _check(path, read, memory_budget):
    with memory_budget():
        try:
            return read()
        except DataFormatError as error:
            assert str(path) in str(error), f"the error does not name the file: {error}"
            return None


def test_damaged_store_files(tmp_path, store_seed, memory_budget):
    files = sorted(p.relative_to(store_seed) for p in store_seed.rglob("*") if p.is_file())

    @settings(settings.get_profile("fuzz"))
    @given(data=st.data())
    def run(data):
        folder = tmp_path / "store"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(store_seed, folder)
        damaged = folder / data.draw(st.sampled_from(files))
        damaged.write_bytes(data.draw(byte_edits(damaged.read_bytes(), _TOKENS)))
        dataset = _check(damaged, lambda: load_store(folder), memory_budget)
        if dataset is not None:
            assert isinstance(dataset, Dataset)
            for dialogue in dataset:
                for utterance in dialogue.utterances:
                    for features in utterance.features.values():
                        if not features.present:
                            continue
                        assert features.local.ndim == 2
                        assert features.global_vector.ndim == 1

    run()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3), max_leaves=8)


def _fields(node, path=()):
    if isinstance(node, dict):
        for key, child in node.items():
            yield (*path, key)
            yield from _fields(child, (*path, key))


def test_damaged_checkpoint_json(tmp_path, checkpoint_seed, memory_budget):
    meta = json.loads((checkpoint_seed / "checkpoint.json").read_text())
    fields = list(_fields(meta))

    @settings(settings.get_profile("fuzz"))
    @given(field=st.sampled_from(fields), value=json_values, remove=st.booleans())
    def run(field, value, remove):
        folder = tmp_path / "ckpt"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(checkpoint_seed, folder)
        edited = json.loads(json.dumps(meta))
        container = edited
        for step in field[:-1]:
            container = container[step]
        if remove:
            del container[field[-1]]
        else:
            container[field[-1]] = value
        (folder / "checkpoint.json").write_text(json.dumps(edited))
        checkpoint = _check(folder / "checkpoint.json", lambda: load_checkpoint(folder),
                            memory_budget)
        if checkpoint is not None:
            assert all(torch.isfinite(p).all() for p in checkpoint.model.parameters())

    run()


def test_damaged_weights(tmp_path, checkpoint_seed, memory_budget):
    seed = (checkpoint_seed / "weights.npz").read_bytes()

    @settings(settings.get_profile("fuzz"))
    @given(content=byte_edits(seed, _TOKENS))
    def run(content):
        folder = tmp_path / "ckpt"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(checkpoint_seed, folder)
        (folder / "weights.npz").write_bytes(content)
        checkpoint = _check(folder / "weights.npz", lambda: load_checkpoint(folder),
                            memory_budget)
        if checkpoint is not None:
            for parameter in checkpoint.model.parameters():
                assert np.isfinite(parameter.detach().numpy()).all()

    run()
