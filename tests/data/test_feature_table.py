"""Feature tables: reading, grouping, joining, missing rows, unknown ids, bad cells."""

from __future__ import annotations

import numpy as np
import pytest

from hotspot_erc.data.dialogue import DataFormatError, Dataset, Dialogue, Utterance
from hotspot_erc.data.feature_table import join_feature_tables, read_feature_tables


def _dataset() -> Dataset:
    def dialogue(did, count):
        return Dialogue(did, [Utterance(f"{did}_u{k}", "A", "hi", label="neu")
                              for k in range(count)])

    dialogues = [dialogue("train_d0", 3), dialogue("dev_d0", 1), dialogue("test_d0", 2)]
    return Dataset("toy", dialogues, ["neu"], {"train": ["train_d0"], "valid": ["dev_d0"],
                                               "test": ["test_d0"]})


def _write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return path


def test_two_tables_join_column_wise_with_imputation_and_flags(tmp_path):
    signal = _write(tmp_path, "signal.csv", "id,a,b\ntrain_d0_u0,1,2\ntrain_d0_u1,3,\n"
                                            "test_d0_u0,-1,0\n")
    prosody = _write(tmp_path, "prosody.csv", "id,c\ntrain_d0_u0,10\ntrain_d0_u2,20\n"
                                              "nobody,5\n")
    dataset, reports = join_feature_tables(_dataset(),
                                           {"audio": read_feature_tables("audio",
                                                                         [signal, prosody])})
    spec = dataset.feature_spec.modalities["audio"]
    # a, b, c, then flags for the columns with a value not measured: b and c (a is complete
    # wherever a row exists, but train_d0_u2 has no signal row: a, b imputed there).
    assert spec.extractor == "table-audio" and spec.global_dim == 6
    assert spec.recipe["missing_flags"] == ["a", "b", "c"]
    log = lambda x: np.sign(x) * np.log1p(np.abs(x))  # noqa: E731
    u = {u.uid: u for d in dataset for u in d.utterances}
    # training means over measured values: a = (1 + 3) / 2, b = 2, c = (10 + 20) / 2
    np.testing.assert_allclose(u["train_d0_u1"].features["audio"].global_vector,
                               [*log(np.array([3, 2, 15])), 0, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(u["test_d0_u0"].features["audio"].global_vector,
                               [*log(np.array([-1, 0, 15])), 0, 0, 1], rtol=1e-6)
    assert not u["dev_d0_u0"].has("audio") and not u["test_d0_u1"].has("audio")
    report = reports["audio"]
    assert (report.matched, report.utterances_without_row, report.unmatched_ids) == (
        4, 2, ["nobody"])
    assert report.imputed_values == 5
    assert "audio missing there" in report.summary("audio")


def test_per_split_files_match_through_their_stem(tmp_path):
    """MELD's openface/dev.csv keys a clip dia0_utt0; the corpus calls it dev_dia0_utt0."""
    files = [_write(tmp_path, f"{split}.csv", f"utt,x\nd0_u0,{k}\n")
             for k, split in enumerate(("train", "dev", "test"))]
    dataset, reports = join_feature_tables(_dataset(),
                                           {"video": read_feature_tables("video", files)})
    values = {u.uid: float(u.features["video"].global_vector[0])
              for d in dataset for u in d.utterances if u.has("video")}
    assert values == pytest.approx({"train_d0_u0": 0.0, "dev_d0_u0": np.log1p(1),
                                    "test_d0_u0": np.log1p(2)})
    assert reports["video"].unmatched_ids == []


@pytest.mark.parametrize("text, message", [
    ("id,a\nx,abc\n", r"t\.csv: row 2: column 'a': 'abc' is not a number \(leave the cell empty"),
    ("id,a\nx,nan\n", r"row 2: column 'a': 'nan' is not a finite number"),
    ("id,a\nx,1,2\n", r"row 2: 3 cells, expected 2 as in the header"),
    ("id,a\nx,1\nx,2\n", r"row 3: utterance id 'x' appears again \(first at row 2\)"),
    ("id,a\n,1\n", r"row 2: column 'id': empty utterance id"),
    ("id\nx\n", r"row 1: expected an id column and at least one feature column"),
    ("id,a,a\nx,1,2\n", r"row 1: feature column names must be non-empty and distinct"),
    ("", r"t\.csv: empty file"),
])
def test_bad_files_name_the_row_and_column(tmp_path, text, message):
    with pytest.raises(DataFormatError, match=message):
        read_feature_tables("audio", [_write(tmp_path, "t.csv", text)])


def test_refusals_of_the_join(tmp_path):
    table = read_feature_tables("audio", [_write(tmp_path, "t.csv", "id,a\nelsewhere,1\n")])
    with pytest.raises(ValueError, match="no row matches an utterance of the training split"):
        join_feature_tables(_dataset(), {"audio": table})
    ok = read_feature_tables("audio", [_write(tmp_path, "u.csv", "id,a\ntrain_d0_u0,1\n")])
    joined, _ = join_feature_tables(_dataset(), {"audio": ok})
    with pytest.raises(ValueError, match="already has audio features"):
        join_feature_tables(joined, {"audio": ok})
    twice = [_write(tmp_path, "one.csv", "id,a\ntrain_d0_u0,1\n"),
             _write(tmp_path, "two.csv", "id,a\ntrain_d0_u0,2\n")]
    with pytest.raises(DataFormatError, match="two.csv: row 2: utterance id 'train_d0_u0' is "
                                              "also in .*one.csv; it is ambiguous"):
        join_feature_tables(_dataset(), {"audio": read_feature_tables("audio", twice)})
    clash = [_write(tmp_path, "p.csv", "id,a\nx,1\n"), _write(tmp_path, "q.csv", "id,a,b\nx,1,2\n")]
    with pytest.raises(DataFormatError, match=r"columns \['a'\] appear in two tables"):
        read_feature_tables("audio", clash)


@pytest.mark.real_data
def test_the_shared_iemocap_acoustic_tables(shared_data):
    from hotspot_erc.data.corpora import load_dataset

    folder = shared_data / "iemocap" / "acoustic"
    table = read_feature_tables("audio", [folder / "signal.csv", folder / "prosody.csv"])
    dataset, reports = join_feature_tables(load_dataset("iemocap6", shared_data),
                                           {"audio": table})
    assert reports["audio"].matched == 7433 and reports["audio"].utterances_without_row == 0
    assert dataset.feature_spec.modalities["audio"].global_dim == 28
