"""The CORECT/COGMEN and DialogueRNN/MMGCN pack loaders on small fixture pickles of each layout."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import torch

from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.data.feature_packs import (
    LABEL_SETS,
    load_corect_pack,
    load_mmgcn_pack,
)
from hotspot_erc.data.safe_pickle import UnsafePickleError

IEMOCAP_DIMS = {"text": 768, "audio": 100, "visual": 512}


def _vectors(rng, count: int, dim: int) -> list[np.ndarray]:
    return [rng.standard_normal(dim).astype(np.float32) for _ in range(count)]


def _corect_record(rng, vid: str, speakers: list[str], labels: list[int],
                   dims: dict[str, int] = IEMOCAP_DIMS) -> dict:
    count = len(labels)
    record = {"vid": vid, "speakers": speakers, "labels": labels,
              "sentence": [f"{vid} line {k}" for k in range(count)]}
    for field, dim in dims.items():
        record[field] = _vectors(rng, count, dim)
    return record


def _corect_payload(dims: dict[str, int] = IEMOCAP_DIMS) -> dict:
    rng = np.random.default_rng(0)
    return {
        "train": [_corect_record(rng, "Ses01F_impro01", ["F", "M", "F"], [0, 5, 4], dims),
                  _corect_record(rng, "Ses02M_script01_1", ["M", "F"], [2, 3], dims)],
        "dev": [_corect_record(rng, "Ses03F_impro02", ["F"], [1], dims)],
        "test": [_corect_record(rng, "Ses05F_impro03", ["M", "F"], [3, 0], dims)],
    }


def _write(tmp_path, payload, name: str = "pack.pkl"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(payload, protocol=4))
    return path


def test_corect_pack_splits_labels_speakers_and_dimensions(tmp_path):
    payload = _corect_payload()
    dataset = load_corect_pack(_write(tmp_path, payload), label_set="iemocap6")
    assert dataset.name == "iemocap6"
    assert dataset.label_names == ["hap", "sad", "neu", "ang", "exc", "fru"]
    assert dataset.splits == {"train": ["Ses01F_impro01", "Ses02M_script01_1"],
                              "valid": ["Ses03F_impro02"], "test": ["Ses05F_impro03"]}
    first = dataset.dialogue("Ses01F_impro01")
    assert [u.label for u in first.utterances] == ["hap", "fru", "exc"]
    assert [u.speaker for u in first.utterances] == ["F", "M", "F"]
    assert [u.uid for u in first.utterances] == [f"Ses01F_impro01_{k}" for k in range(3)]
    assert first.utterances[1].text == "Ses01F_impro01 line 1"
    assert sum(len(d) for d in dataset) == 8
    utterance = first.utterances[2]
    np.testing.assert_allclose(utterance.features["video"].global_vector,
                               payload["train"][0]["visual"][2])
    assert utterance.features["text"].local.shape == (1, 768)  # one position: nothing to localise
    spec = dataset.feature_spec.to_dict()
    assert {name: entry["global_dim"] for name, entry in spec.items()} == {
        "text": 768, "audio": 100, "video": 512}
    assert {entry["extractor"] for entry in spec.values()} == {"corect-pack"}
    assert "text 768, audio 100, video 512" in dataset.description
    assert "match the documented CORECT IEMOCAP dims" in dataset.description
    assert "nothing to localise" in dataset.description and "`corect`" in dataset.description


def test_corect_pack_with_unexpected_dims_notes_them_without_failing(tmp_path):
    dataset = load_corect_pack(_write(tmp_path, _corect_payload({"text": 8, "audio": 4,
                                                                  "visual": 3})))
    assert "Note: differs from the documented CORECT IEMOCAP dims" in dataset.description
    assert "audio 4 (documented: 100)" in dataset.description
    assert dataset.feature_spec.modalities["audio"].global_dim == 4


def test_corect_pack_accepts_two_dimensional_arrays_and_label_names(tmp_path):
    payload = _corect_payload({"text": 6, "audio": 4, "visual": 3})
    record = payload["test"][0]
    record["text"] = np.stack(record["text"])  # sentence-BERT's encode returns one (n, dim) array
    record["labels"] = ["ang", "hap"]
    dataset = load_corect_pack(_write(tmp_path, payload))
    test = dataset.dialogue("Ses05F_impro03")
    assert [u.label for u in test.utterances] == ["ang", "hap"]
    np.testing.assert_allclose(test.utterances[1].features["text"].global_vector,
                               record["text"][1])


def test_cogmen_sample_records_use_the_sentence_bert_vectors(tmp_path, monkeypatch):
    # COGMEN pickles instances of cogmen.Sample.Sample; stand up that module so pickle can name it.
    module = types.ModuleType("cogmen.Sample")

    class Sample:
        def __init__(self, vid, speaker, label, text, audio, visual, sentence, sbert):
            self.vid, self.speaker, self.label = vid, speaker, label
            self.text, self.audio, self.visual = text, audio, visual
            self.sentence, self.sbert_sentence_embeddings = sentence, sbert

    Sample.__module__, Sample.__qualname__ = "cogmen.Sample", "Sample"
    module.Sample = Sample
    monkeypatch.setitem(sys.modules, "cogmen", types.ModuleType("cogmen"))
    monkeypatch.setitem(sys.modules, "cogmen.Sample", module)
    rng = np.random.default_rng(1)

    def sample(vid, labels):
        count = len(labels)
        return Sample(vid, ["M"] * count, labels, _vectors(rng, count, 100),
                      _vectors(rng, count, 100), _vectors(rng, count, 512),
                      ["x"] * count, _vectors(rng, count, 768))

    payload = {"train": [sample("a", [0, 1])], "dev": [sample("b", [2])],
               "test": [sample("c", [3, 3, 1])]}
    path = _write(tmp_path, payload)
    # Loading must not need the class: take the module away again.
    monkeypatch.delitem(sys.modules, "cogmen.Sample")
    monkeypatch.delitem(sys.modules, "cogmen")
    dataset = load_corect_pack(path, label_set="iemocap4")
    assert dataset.label_names == ["hap", "sad", "neu", "ang"]
    assert [u.label for u in dataset.dialogue("c").utterances] == ["ang", "ang", "sad"]
    assert dataset.feature_spec.modalities["text"].global_dim == 768
    np.testing.assert_allclose(dataset.dialogue("a").utterances[1].features["text"].global_vector,
                               payload["train"][0].sbert_sentence_embeddings[1])


def test_torch_tensors_in_a_pack_become_numpy_arrays(tmp_path):
    payload = _corect_payload({"text": 6, "audio": 4, "visual": 3})
    record = payload["train"][1]
    original = np.stack(record["audio"])
    record["audio"] = torch.from_numpy(original)[:, :]  # one (n, dim) tensor
    record["visual"] = [torch.tensor(vector) for vector in record["visual"]]
    dataset = load_corect_pack(_write(tmp_path, payload))
    utterances = dataset.dialogue("Ses02M_script01_1").utterances
    np.testing.assert_allclose(utterances[1].features["audio"].global_vector, original[1])
    np.testing.assert_allclose(utterances[0].features["video"].global_vector,
                               record["visual"][0].numpy())


def test_mosei_label_set_of_a_corect_pack(tmp_path):
    rng = np.random.default_rng(2)
    dims = {"text": 768, "audio": 80, "visual": 35}
    payload = {"train": [_corect_record(rng, "v1", ["M"] * 3, [0, 3, 6], dims)],
               "dev": [_corect_record(rng, "v2", ["M"], [4], dims)],
               "test": [_corect_record(rng, "v3", ["M"], [2], dims)]}
    dataset = load_corect_pack(_write(tmp_path, payload), label_set="mosei7")
    assert dataset.name == "mosei7" and len(dataset.label_names) == 7
    assert [u.label for u in dataset.dialogue("v1").utterances] == [
        "strongly_negative", "neutral", "strongly_positive"]
    assert "CMU-MOSEI" in dataset.description
    assert "match the documented CORECT CMU-MOSEI dims" in dataset.description


@pytest.mark.parametrize(("corrupt", "message"), [
    (lambda p: p.pop("dev"), "missing key(s) ['dev']"),
    (lambda p: p["train"][0].pop("visual"), "train[0]: missing key 'visual'"),
    (lambda p: p["test"][0]["labels"].__setitem__(1, 7),
     "dialogue Ses05F_impro03, utterance 1: field 'labels' value 7"),
    (lambda p: p["train"][1]["audio"].pop(),
     "dialogue Ses02M_script01_1: field 'audio' has 1 entries but 'labels' has 2"),
    (lambda p: p["dev"][0]["text"].__setitem__(0, np.zeros(5)),
     "dialogue Ses03F_impro02, utterance 0: field 'text' has dimension 5, but the pack's text "
     "vectors have dimension 768"),
    (lambda p: p["train"][0]["visual"].__setitem__(1, [[1.0, 2.0]]),
     "utterance 1: field 'visual' must hold one numeric vector per utterance"),
    (lambda p: p["train"][0]["speakers"].__setitem__(0, 2.5), "field 'speakers' must be"),
    (lambda p: p["test"].append(p["train"][0]), "dialogue Ses01F_impro01 appears twice"),
])
def test_corect_pack_errors_name_the_file_and_the_key(tmp_path, corrupt, message):
    payload = _corect_payload()
    corrupt(payload)
    path = _write(tmp_path, payload)
    with pytest.raises(DataFormatError) as error:
        load_corect_pack(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_a_pack_that_asks_for_os_system_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    payload = _corect_payload({"text": 2, "audio": 2, "visual": 2})
    payload["train"][0]["sentence"] = Exploit()
    path = _write(tmp_path, payload)
    with pytest.raises(UnsafePickleError, match="refused global (posix|nt).system"):
        load_corect_pack(path)
    assert not marker.exists()


def test_a_tensor_storage_that_hides_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    class StorageFromBytes:
        # What a tensor's storage pickles as, but with a payload that calls os.system.
        def __reduce__(self):
            return torch.storage._load_from_bytes, (pickle.dumps(Exploit(), protocol=2),)

    payload = _corect_payload({"text": 2, "audio": 2, "visual": 2})
    payload["train"][0]["audio"] = StorageFromBytes()
    path = _write(tmp_path, payload)
    with pytest.raises(DataFormatError, match="tensor storage could not be read safely"):
        load_corect_pack(path)
    assert not marker.exists()


def test_unknown_label_set_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="unknown label set 'iemocap5'"):
        load_corect_pack(_write(tmp_path, _corect_payload()), label_set="iemocap5")
    assert sorted(LABEL_SETS) == ["iemocap4", "iemocap6", "meld", "mosei-emotion", "mosei2",
                                  "mosei7"]


def _mmgcn_iemocap(train_count: int = 10, audio_dim: int = 1582) -> tuple:
    rng = np.random.default_rng(3)
    ids, speakers, labels, text, audio, visual, sentences = {}, {}, {}, {}, {}, {}, {}
    train = [f"Ses0{1 + k % 4}F_impro{k:02d}" for k in range(train_count)]
    test = ["Ses05M_script01_1", "Ses05F_impro01"]
    for number, vid in enumerate(train + test):
        count = 2 + number % 3
        ids[vid] = [f"{vid}_{'FM'[k % 2]}{k:03d}" for k in range(count)]
        speakers[vid] = ["FM"[k % 2] for k in range(count)]
        labels[vid] = [(number + k) % 6 for k in range(count)]
        text[vid] = _vectors(rng, count, 100)
        audio[vid] = _vectors(rng, count, audio_dim)
        visual[vid] = _vectors(rng, count, 342)
        sentences[vid] = [f"turn {k}" for k in range(count)]
    return ids, speakers, labels, text, audio, visual, sentences, train, test


def test_mmgcn_iemocap_pack_cuts_valid_from_the_start_of_train(tmp_path):
    pack = _mmgcn_iemocap()
    dataset = load_mmgcn_pack(_write(tmp_path, pack), label_set="iemocap6")
    train_ids = pack[7]
    # int(0.1 * 10) = 1: the first train dialogue in pack order, as CORECT/COGMEN cut their dev.
    assert dataset.splits == {"train": train_ids[1:], "valid": train_ids[:1],
                              "test": ["Ses05M_script01_1", "Ses05F_impro01"]}
    dialogue = dataset.dialogue(train_ids[4])
    assert [u.uid for u in dialogue.utterances] == pack[0][train_ids[4]]
    assert [u.speaker for u in dialogue.utterances] == pack[1][train_ids[4]]
    assert [dataset.label_index(u.label) for u in dialogue.utterances] == pack[2][train_ids[4]]
    np.testing.assert_allclose(dialogue.utterances[1].features["audio"].global_vector,
                               pack[4][train_ids[4]][1])
    assert {m: s.global_dim for m, s in dataset.feature_spec.modalities.items()} == {
        "text": 100, "audio": 1582, "video": 342}
    assert {s.extractor for s in dataset.feature_spec.modalities.values()} == {"mmgcn-pack"}
    assert "first 1 of the pack's 10 train dialogues" in dataset.description
    assert "match the documented DialogueRNN/MMGCN IEMOCAP dims" in dataset.description
    assert "nothing to localise" in dataset.description


def test_mmgcn_pack_sorts_a_set_of_train_ids_and_notes_other_dims(tmp_path):
    pack = list(_mmgcn_iemocap(train_count=20, audio_dim=300))
    pack[7] = set(pack[7])
    dataset = load_mmgcn_pack(_write(tmp_path, tuple(pack)), valid_fraction=0.1)
    ordered = sorted(pack[7])
    assert dataset.splits["valid"] == ordered[:2] and dataset.splits["train"] == ordered[2:]
    assert "audio 300 (documented: 100 or 1582)" in dataset.description


def _mmgcn_meld(with_visual: bool) -> tuple:
    rng = np.random.default_rng(4)
    one_hot = [[1 if k == i else 0 for k in range(9)] for i in range(9)]
    vids = [0, 1, 2, 3]
    ids = {v: list(range(2)) for v in vids}
    speakers = {v: [one_hot[v], one_hot[(v + 3) % 9]] for v in vids}
    labels = {v: [v % 7, 6] for v in vids}
    text = {v: _vectors(rng, 2, 600) for v in vids}
    audio = {v: _vectors(rng, 2, 300) for v in vids}
    visual = {v: _vectors(rng, 2, 342) for v in vids}
    sentences = {v: ["Hi.", "Go away!"] for v in vids}
    sentiments = {v: [0, 2] for v in vids}
    if with_visual:
        return ids, speakers, labels, text, audio, visual, sentences, [0, 1, 2], [3], sentiments
    return ids, speakers, labels, text, audio, sentences, [0, 1, 2], [3], sentiments


@pytest.mark.parametrize("with_visual", [False, True])
def test_mmgcn_meld_packs_keep_sentiment_and_one_hot_speakers(tmp_path, with_visual):
    dataset = load_mmgcn_pack(_write(tmp_path, _mmgcn_meld(with_visual)), label_set="meld")
    assert dataset.label_names[:2] == ["neutral", "surprise"] and len(dataset.label_names) == 7
    assert dataset.splits == {"train": ["0", "1", "2"], "valid": [], "test": ["3"]}
    dialogue = dataset.dialogue("2")
    assert [u.uid for u in dialogue.utterances] == ["2_0", "2_1"]
    assert [u.speaker for u in dialogue.utterances] == ["speaker2", "speaker5"]
    assert [u.label for u in dialogue.utterances] == ["fear", "anger"]
    assert [u.extra["sentiment"] for u in dialogue.utterances] == ["neutral", "negative"]
    expected = {"text", "audio", "video"} if with_visual else {"text", "audio"}
    assert set(dataset.feature_spec.modalities) == expected
    assert "No reference dimensions are documented for DialogueRNN/MMGCN MELD" in \
        dataset.description


@pytest.mark.parametrize(("corrupt", "message"), [
    (lambda p: p.pop(), "expected a tuple of 9 entries"),
    (lambda p: p[4].pop("Ses05F_impro01"),
     "dialogue Ses05F_impro01: missing key 'Ses05F_impro01' in field 'videoAudio'"),
    (lambda p: p[2]["Ses05F_impro01"].__setitem__(1, "bored"),
     "dialogue Ses05F_impro01, utterance 1: field 'videoLabels' value 'bored'"),
    (lambda p: p[5]["Ses05F_impro01"].__setitem__(1, np.zeros(10)),
     "dialogue Ses05F_impro01, utterance 1: field 'videoVisual' has dimension 10"),
    (lambda p: p[7].append("Ses05F_impro01"), "in both 'trainVid' and 'testVid'"),
    (lambda p: p[1]["Ses05F_impro01"].pop(),
     "dialogue Ses05F_impro01: field 'videoSpeakers' has 3 entries but 'videoLabels' has 4"),
])
def test_mmgcn_pack_errors_name_the_file_and_the_key(tmp_path, corrupt, message):
    pack = list(_mmgcn_iemocap())
    corrupt(pack)
    path = _write(tmp_path, tuple(pack))
    with pytest.raises(DataFormatError) as error:
        load_mmgcn_pack(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_mmgcn_pack_rejects_label_sets_it_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="label_set must be"):
        load_mmgcn_pack(_write(tmp_path, _mmgcn_iemocap()), label_set="mosei2")


# -- issue 12: sizes a pack decides, and empty dialogues ---------------------------------------

def test_a_stride_zero_tensor_cannot_ask_for_more_than_its_storage(tmp_path):
    """The reported case: a 1.9 KB pack whose tensor repeated one element 0.8 GB worth."""
    payload = _corect_payload({"text": 6, "audio": 4, "visual": 3})
    payload["train"][0]["audio"] = torch.zeros(1).expand(50_000_000, 4)
    path = _write(tmp_path, payload)
    assert path.stat().st_size < 20_000
    with pytest.raises(DataFormatError, match=r"pack\.pkl: a tensor of size \(50000000, 4\) and "
                                              r"stride \(0, 0\) at offset 0 reads beyond or "
                                              r"repeats its storage of 1 elements"):
        load_corect_pack(path)


def test_a_transposed_tensor_is_still_read(tmp_path):
    payload = _corect_payload({"text": 6, "audio": 4, "visual": 3})
    original = np.arange(12, dtype=np.float32).reshape(4, 3)
    payload["dev"][0]["audio"] = torch.from_numpy(original.copy()).t()[:1]  # (1, 4), stride (1, 3)
    dataset = load_corect_pack(_write(tmp_path, payload))
    np.testing.assert_array_equal(
        dataset.dialogue("Ses03F_impro02").utterances[0].features["audio"].global_vector,
        original[:, 0])


def test_an_empty_dialogue_is_an_error_naming_it(tmp_path):
    payload = _corect_payload({"text": 6, "audio": 4, "visual": 3})
    record = payload["dev"][0]
    for field in ("speakers", "labels", "sentence", "text", "audio", "visual"):
        record[field] = []
    with pytest.raises(DataFormatError, match=r"pack\.pkl.*Ses03F_impro02.*field 'labels' is "
                                              "empty: a dialogue needs at least one utterance"):
        load_corect_pack(_write(tmp_path, payload))
