"""The CMU-MOSEI .csd loader on small computational-sequence files written in the SDK's layout."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.data.mosei import (
    EMOTIONS,
    SENTIMENT7_LABELS,
    TASKS,
    load_mosei,
    rows_in_segment,
    sentiment2_index,
    sentiment7_index,
)

h5py = pytest.importorskip("h5py")

VIDEOS = [f"vid{k:02d}" for k in range(10)]
# vid00's segments in file order (not time order): start, end, sentiment, then six intensities.
VID00_LABELS = [
    (4.0, 6.0, 1.5, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0),
    (0.0, 2.0, -3.4, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0),
    (2.0, 4.0, 0.5, 0.667, 0.0, 0.0, 0.0, 0.0, 0.0),
]


def _write_csd(path, name: str, videos: dict[str, tuple[np.ndarray, np.ndarray]]):
    """``videos``: id -> (features, intervals), stored as the SDK stores a sequence."""
    with h5py.File(path, "w") as handle:
        data = handle.create_group(name).create_group("data")
        handle[name].create_group("metadata")
        for video, (features, intervals) in videos.items():
            group = data.create_group(video)
            group.create_dataset("features", data=features)
            group.create_dataset("intervals", data=intervals)
    return path


def _frames(start: float, end: float, dim: int, step: float = 0.5, seed: int = 0):
    times = np.arange(start, end, step)
    intervals = np.stack([times, times + step], axis=1)
    return np.random.default_rng(seed).standard_normal((len(times), dim)), intervals


@pytest.fixture
def csd_files(tmp_path):
    labels = {}
    for number, video in enumerate(VIDEOS):
        rows = VID00_LABELS if number == 0 else [(0.0, 3.0, -0.5 + number * 0.1) + (0.0,) * 6]
        table = np.array(rows)
        labels[video] = (table[:, 2:], table[:, :2])
    audio = {video: _frames(0.0, 6.0, 74, seed=k) for k, video in enumerate(VIDEOS)}
    audio["vid00"][0][0, 3] = -np.inf  # COVAREP's -inf on unvoiced frames
    visual = {video: _frames(0.0, 6.0, 35, step=1.0, seed=20 + k)
              for k, video in enumerate(VIDEOS) if video != "vid01"}
    words = np.array([[b"hello"], [b"sp"], [b"there"], [b"good"], [b"day"], [b"sp"]])
    word_times = np.array([[0.1, 0.5], [0.5, 1.0], [1.0, 1.6], [2.2, 2.8], [4.2, 4.9],
                           [5.0, 5.5]])
    return {
        "labels": _write_csd(tmp_path / "CMU_MOSEI_Labels.csd", "All Labels", labels),
        "audio": _write_csd(tmp_path / "CMU_MOSEI_COVAREP.csd", "COVAREP", audio),
        "video": _write_csd(tmp_path / "CMU_MOSEI_VisualFacet42.csd", "FACET 4.2", visual),
        "words": _write_csd(tmp_path / "CMU_MOSEI_TimestampedWords.csd", "words",
                            {"vid00": (words, word_times)}),
        "audio_rows": audio,
    }


def test_label_conventions():
    assert [sentiment7_index(s) for s in (-3.4, -2.6, -0.5, 0.5, 1.5, 2.49, 3.0)] == [
        0, 0, 3, 3, 5, 5, 6]  # clipped to [-3, 3], then rounded half to even
    assert SENTIMENT7_LABELS[3] == "neutral" and len(SENTIMENT7_LABELS) == 7
    assert [sentiment2_index(s) for s in (-0.01, 0.0, 2.0)] == [0, 1, 1]
    assert EMOTIONS == ("happy", "sad", "angry", "surprise", "disgust", "fear")
    assert "emotion:fear" in TASKS
    intervals = np.array([[0.0, 1.0], [1.0, 3.0], [3.0, 3.2]])
    assert rows_in_segment(intervals, 0.4, 3.1).tolist() == [True, True, False]


def test_sentiment7_dialogues_labels_times_and_default_split(csd_files):
    dataset = load_mosei(csd_files["labels"], {"audio": csd_files["audio"]}, task="sentiment7")
    assert dataset.name == "mosei-sentiment7"
    assert dataset.splits == {"train": VIDEOS[:7], "valid": VIDEOS[7:8], "test": VIDEOS[8:]}
    dialogue = dataset.dialogue("vid00")
    assert [u.uid for u in dialogue.utterances] == ["vid00[1]", "vid00[2]", "vid00[0]"]
    assert [(u.start, u.end) for u in dialogue.utterances] == [(0.0, 2.0), (2.0, 4.0),
                                                                (4.0, 6.0)]
    assert [u.label for u in dialogue.utterances] == ["strongly_negative", "neutral", "positive"]
    assert {u.speaker for u in dialogue.utterances} == {"vid00"}
    assert dialogue.utterances[1].extra["sentiment"] == "0.5"
    assert dialogue.utterances[1].extra["happy"] == "0.667"
    assert "sorted video ids cut 70/10/20" in dataset.description


@pytest.mark.parametrize(("task", "expected"), [
    ("sentiment2", ["negative", "non_negative", "non_negative"]),
    ("emotion:happy", ["absent", "present", "absent"]),
    ("emotion:sad", ["present", "absent", "absent"]),
    ("emotion:angry", ["absent", "absent", "present"]),
])
def test_binary_tasks(csd_files, task, expected):
    dataset = load_mosei(csd_files["labels"], {}, task=task)
    assert [u.label for u in dataset.dialogue("vid00").utterances] == expected
    assert dataset.label_names == (["negative", "non_negative"] if task == "sentiment2"
                                   else ["absent", "present"])


def test_features_are_segment_means_with_non_finite_values_zeroed(csd_files):
    dataset = load_mosei(csd_files["labels"], {"audio": csd_files["audio"],
                                               "video": csd_files["video"]})
    rows, _ = csd_files["audio_rows"]["vid00"]
    first = dataset.dialogue("vid00").utterances[0]  # [0, 2): the frames 0..3, one is -inf
    expected = np.where(np.isfinite(rows[:4]), rows[:4], 0.0).mean(axis=0)
    np.testing.assert_allclose(first.features["audio"].global_vector, expected, rtol=1e-5)
    assert first.features["audio"].local.shape == (1, 74)
    assert not dataset.dialogue("vid01").utterances[0].has("video")
    spec = dataset.feature_spec.modalities
    assert (spec["audio"].global_dim, spec["video"].global_dim) == (74, 35)
    assert spec["audio"].extractor == "mosei-csd:COVAREP"
    assert "audio 74 ('COVAREP'), video 35 ('FACET 4.2')" in dataset.description
    assert "1 videos have no video features" in dataset.description
    assert "1 non-finite audio values were set to 0" in dataset.description
    assert "nothing to localise" in dataset.description


def test_keep_sequences_keeps_the_frames_and_their_times(csd_files):
    dataset = load_mosei(csd_files["labels"], {"video": csd_files["video"]},
                         keep_sequences=True)
    middle = dataset.dialogue("vid00").utterances[1]  # [2, 4): frames [2, 3) and [3, 4)
    assert middle.features["video"].local.shape == (2, 35)
    np.testing.assert_allclose(middle.features["video"].position_times, [0.5, 1.5])
    assert "kept as local sequences" in dataset.description


def test_words_give_the_utterance_text(csd_files):
    dataset = load_mosei(csd_files["labels"], {}, words_csd=csd_files["words"])
    assert [u.text for u in dataset.dialogue("vid00").utterances] == [
        "hello there", "good", "day"]
    assert dataset.dialogue("vid03").utterances[0].text == ""


def test_folds_place_the_videos(csd_files):
    folds = {"train": ["vid03", "vid01", "unknown"], "valid": ["vid00"], "test": ["vid09"]}
    dataset = load_mosei(csd_files["labels"], {}, folds=folds)
    assert dataset.splits == {"train": ["vid03", "vid01"], "valid": ["vid00"],
                              "test": ["vid09"]}
    assert len(dataset.dialogues) == 4
    assert "1 fold ids not in the label file skipped" in dataset.description
    with pytest.raises(ValueError, match="video vid00 is in both 'valid' and 'test'"):
        load_mosei(csd_files["labels"], {}, folds={**folds, "test": ["vid00"]})


def _one_video(features, intervals):
    return {"vid00": (np.asarray(features), np.asarray(intervals))}


@pytest.mark.parametrize(("build", "message"), [
    (lambda path: path.write_bytes(b"not hdf5"), "not a readable HDF5 .csd file"),
    (lambda path: h5py.File(path, "w").close(), "expected one top-level group"),
    (lambda path: h5py.File(path, "w").create_group("COVAREP").file.close(),
     "missing key 'COVAREP/data'"),
    (lambda path: _write_csd(path, "COVAREP", _one_video(np.zeros((2, 3)), np.zeros((2, 3)))),
     "key 'COVAREP/data/vid00/intervals' must be finite numbers of shape (rows, 2)"),
    (lambda path: _write_csd(path, "COVAREP", _one_video(np.zeros((3, 3)), np.zeros((2, 2)))),
     "key 'COVAREP/data/vid00/features' must have shape (rows, dim) with one row per interval"),
    (lambda path: _write_csd(path, "COVAREP", {
        "vid00": (np.zeros((2, 3)), np.zeros((2, 2))),
        "vid01": (np.zeros((2, 4)), np.zeros((2, 2)))}),
     "key 'COVAREP/data/vid01/features' has dimension 4, but video vid00 has 3"),
])
def test_malformed_feature_files_name_the_file_and_key(csd_files, tmp_path, build, message):
    path = tmp_path / "broken.csd"
    build(path)
    with pytest.raises(DataFormatError) as error:
        load_mosei(csd_files["labels"], {"audio": path})
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_missing_features_key_and_bad_label_rows(tmp_path):
    path = tmp_path / "labels.csd"
    with h5py.File(path, "w") as handle:
        handle.create_group("All Labels/data/vid00").create_dataset("intervals",
                                                                    data=np.zeros((1, 2)))
    with pytest.raises(DataFormatError, match="missing key 'All Labels/data/vid00/features'"):
        load_mosei(path, {})
    _write_csd(path, "All Labels", _one_video(np.zeros((1, 3)), [[0.0, 1.0]]))
    with pytest.raises(DataFormatError, match="expected 7 columns"):
        load_mosei(path, {})
    _write_csd(path, "All Labels", _one_video([[np.nan] + [0.0] * 6], [[0.0, 1.0]]))
    with pytest.raises(DataFormatError, match="segment 0 holds NaN or infinite labels"):
        load_mosei(path, {})


def test_bad_arguments_and_missing_h5py(csd_files, monkeypatch):
    with pytest.raises(ValueError, match="unknown MOSEI task 'emotion:joy'"):
        load_mosei(csd_files["labels"], {}, task="emotion:joy")
    with pytest.raises(ValueError, match="unknown modalities \\['visual'\\]"):
        load_mosei(csd_files["labels"], {"visual": csd_files["video"]})
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes ``import h5py`` fail
    with pytest.raises(ImportError, match="pip install h5py"):
        load_mosei(csd_files["labels"], {})
