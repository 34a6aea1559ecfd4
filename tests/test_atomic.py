"""Atomic writes: all or nothing, no temporary files left behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hotspot_erc.atomic import atomic_open, write_json, write_npz


def test_write_json_replaces_the_file(tmp_path):
    path = tmp_path / "sub" / "a.json"
    write_json(path, {"x": 1})
    write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_an_interrupted_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_open(path) as stream:
        stream.write("half of the new")
        raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_write_npz_refuses_object_arrays(tmp_path):
    with pytest.raises(TypeError, match="dtype object"):
        write_npz(tmp_path / "a.npz", {"bad": np.array([{"a": 1}], dtype=object)})
    assert not (tmp_path / "a.npz").exists()
    write_npz(tmp_path / "a.npz", {"good": np.arange(3)})
    with np.load(tmp_path / "a.npz", allow_pickle=False) as arrays:
        assert arrays["good"].tolist() == [0, 1, 2]


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from hotspot_erc.atomic import write_text

    previous = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
