"""Tests of the acted corpora read from raw media: RAVDESS speech and the CREMA-D clips."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from hotspot_erc.data.acted import (
    CREMA_EMOTIONS,
    RAVDESS_EMOTIONS,
    RAVDESS_SPLITS,
    RAVDESS_STATEMENTS,
    load_crema_d,
    load_ravdess,
)
from hotspot_erc.data.dialogue import DataFormatError


@pytest.fixture(scope="module")
def ravdess(shared_data):
    return load_ravdess(shared_data)


def _utterances(dataset, split=None):
    dialogues = dataset.dialogues if split is None else dataset.split(split)
    return [u for d in dialogues for u in d.utterances]


@pytest.mark.real_data
def test_ravdess_size_splits_and_labels(ravdess):
    assert ravdess.name == "ravdess"
    assert len(ravdess.dialogues) == 960
    assert all(len(d) == 1 and d.did == d.utterances[0].uid for d in ravdess)
    assert {split: len(ids) for split, ids in ravdess.splits.items()} == {
        "train": 600, "valid": 120, "test": 240}
    assert ravdess.label_names == list(RAVDESS_EMOTIONS) and len(ravdess.label_names) == 8
    assert sorted(uid for ids in ravdess.splits.values() for uid in ids) == sorted(
        d.did for d in ravdess)


@pytest.mark.real_data
def test_ravdess_actors_are_disjoint_and_as_documented(ravdess):
    actors = {split: {u.speaker for u in _utterances(ravdess, split)} for split in ravdess.splits}
    assert actors == {split: {f"actor{n:02d}" for n in numbers}
                      for split, numbers in RAVDESS_SPLITS.items()}
    assert actors["train"] == {f"actor{n:02d}" for n in range(1, 11)}
    assert actors["valid"] == {"actor11", "actor12"}
    assert actors["test"] == {"actor13", "actor14", "actor15", "actor16"}
    assert not (actors["train"] & actors["valid"] or actors["train"] & actors["test"]
                or actors["valid"] & actors["test"])


@pytest.mark.real_data
@pytest.mark.parametrize("split, per_actor", [("train", 10), ("valid", 2), ("test", 4)])
def test_ravdess_label_counts_per_split(ravdess, split, per_actor):
    # Each actor records neutral 4 times (normal intensity only) and every other emotion 8.
    counts = Counter(u.label for u in _utterances(ravdess, split))
    expected = {label: 8 * per_actor for label in RAVDESS_EMOTIONS}
    expected["neutral"] = 4 * per_actor
    assert counts == expected
    assert ravdess.stats()[split]["labels"] == expected


@pytest.mark.real_data
def test_ravdess_utterances_follow_their_file_names(ravdess):
    intensities = Counter()
    for utterance in _utterances(ravdess):
        path = Path(utterance.media["audio"])
        assert set(utterance.media) == {"audio"}
        assert path.is_absolute() and path.is_file()
        assert path.stem == utterance.uid
        _, _, emotion, intensity, statement, _, actor = path.stem.split("-")
        assert utterance.label == RAVDESS_EMOTIONS[int(emotion) - 1]
        assert utterance.speaker == f"actor{actor}" and path.parent.name == f"Actor_{actor}"
        assert utterance.text == RAVDESS_STATEMENTS[statement]
        assert utterance.extra == {"intensity": {"01": "normal", "02": "strong"}[intensity]}
        assert utterance.start is None and utterance.end is None
        intensities[utterance.extra["intensity"]] += 1
    assert intensities == {"normal": 16 * 32, "strong": 16 * 28}


def _fake_ravdess(root: Path, names: list[str]) -> None:
    for name in names:
        actor = name.split("-")[-1].split(".")[0] if name.startswith("03-") else "01"
        path = root / "ravdess" / f"Actor_{actor}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # the loader reads names only


def test_fake_ravdess_reads_names_and_splits(tmp_path):
    _fake_ravdess(tmp_path, ["03-01-05-02-01-01-03.wav", "03-01-01-01-02-02-12.flac",
                             "03-01-08-01-01-01-20.flac"])
    dataset = load_ravdess(tmp_path)
    assert dataset.splits == {"train": ["03-01-05-02-01-01-03"],
                              "valid": ["03-01-01-01-02-02-12"], "test": []}
    angry = dataset.dialogue("03-01-05-02-01-01-03").utterances[0]
    assert (angry.label, angry.speaker, angry.extra["intensity"]) == ("angry", "actor03",
                                                                      "strong")
    # An actor outside the documented ranges is kept, but in no split.
    assert "03-01-08-01-01-01-20" in {d.did for d in dataset}


@pytest.mark.parametrize("bad_name", [
    "notes.txt", "03-01-01-01-01-01.flac", "03-01-09-01-01-01-01.flac",
    "03-01-01-01-03-01-01.flac", "03-02-01-01-01-01-01.flac", "03-01-01-01-01-01-01.mp3"])
def test_fake_ravdess_with_a_bad_file_name(tmp_path, bad_name):
    _fake_ravdess(tmp_path, ["03-01-01-01-01-01-01.flac"])
    bad = tmp_path / "ravdess" / "Actor_01" / bad_name
    bad.write_bytes(b"")
    with pytest.raises(DataFormatError) as caught:
        load_ravdess(tmp_path)
    assert str(bad) in str(caught.value)


def test_missing_folders(tmp_path):
    with pytest.raises(DataFormatError, match="no RAVDESS files") as caught:
        load_ravdess(tmp_path)
    assert str(tmp_path / "ravdess") in str(caught.value)
    with pytest.raises(DataFormatError, match="no CREMA-D clips") as caught:
        load_crema_d(tmp_path)
    assert str(tmp_path / "crema-d") in str(caught.value)
    (tmp_path / "crema-d" / "VideoFlash").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="no CREMA-D clips"):
        load_crema_d(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_ravdess(tmp_path / "absent")


def test_fake_crema_d_with_a_bad_file_name(tmp_path):
    folder = tmp_path / "crema-d" / "VideoFlash"
    folder.mkdir(parents=True)
    (folder / "1001_DFA_ANG_XX.flv").write_bytes(b"")
    bad = folder / "1001_DFA_BOR_XX.flv"  # BOR is no CREMA-D emotion
    bad.write_bytes(b"")
    with pytest.raises(DataFormatError) as caught:
        load_crema_d(tmp_path)
    assert str(bad) in str(caught.value)


@pytest.mark.real_data
def test_crema_d_clips(shared_data):
    dataset = load_crema_d(shared_data)
    assert dataset.name == "crema-d" and len(dataset.dialogues) == 12
    assert dataset.label_names == list(CREMA_EMOTIONS)
    assert dataset.splits == {"test": [d.did for d in dataset]}
    by_extension = Counter(Path(d.utterances[0].media["audio"]).suffix for d in dataset)
    assert by_extension == {".flv": 6, ".mp3": 6}
    for dialogue in dataset:
        (utterance,) = dialogue.utterances
        audio = Path(utterance.media["audio"])
        assert audio.is_file() and audio.is_absolute()
        actor, sentence, emotion, level = audio.stem.split("_")
        assert utterance.uid == dialogue.did == f"{audio.stem}{audio.suffix}"
        assert utterance.label == emotion and utterance.speaker == f"actor{actor}"
        assert utterance.text == "Don't forget a jacket" and utterance.extra == {"level": level}
        if audio.suffix == ".flv":
            assert utterance.media == {"audio": str(audio), "video": str(audio)}
            assert actor == "1001"
        else:
            assert set(utterance.media) == {"audio"}
            assert actor == "1002"
    assert Counter(d.utterances[0].label for d in dataset) == {e: 2 for e in CREMA_EMOTIONS}
