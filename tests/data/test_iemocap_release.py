"""The IEMOCAP release-folder loader on a small release tree written in the release's layout."""

from __future__ import annotations

import pytest

from hotspot_erc.data.dialogue import DataFormatError
from hotspot_erc.data.iemocap_release import (
    STANDARD_VALID_DIALOGUES,
    load_iemocap_release,
)

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"

# dialogue -> (utterance id, start, end, raw label, text), in file order (not time order).
DIALOGUES = {
    ("Session1", "Ses01F_impro01"): [
        ("Ses01F_impro01_F000", 6.2901, 8.2357, "neu", "Excuse me."),
        ("Ses01F_impro01_F001", 17.5, 19.1, "fru", "That's not fair."),
        ("Ses01F_impro01_M000", 10.01, 11.3925, "xxx", "Do you have your forms?"),
        ("Ses01F_impro01_M001", 12.0, 14.25, "exc", "Great!"),
        ("Ses01F_impro01_M002", 15.0, 16.0, "sur", "What?"),
    ],
    ("Session1", "Ses01M_impro01"): [
        ("Ses01M_impro01_M000", 1.0, 2.0, "ang", "No."),
        ("Ses01M_impro01_F000", 2.5, 3.0, "sad", "Oh."),
    ],
    ("Session5", "Ses05F_script01_1"): [
        ("Ses05F_script01_1_F000", 0.5, 1.5, "hap", "Yay."),
        ("Ses05F_script01_1_M000", 2.0, 4.0, "hap", "Indeed."),
    ],
}


def _evaluation_text(utterances) -> str:
    blocks = [HEADER]
    for uid, start, end, label, _ in utterances:
        blocks.append(f"[{start:.4f} - {end:.4f}]\t{uid}\t{label}\t[2.5000, 3.0000, 3.5000]\n"
                      f"C-E2:\tNeutral;\t()\nC-E3:\tAnger;\t()\nA-E3:\tval 3; act 2; dom  2;\t()\n"
                      f"\n")
    return "".join(blocks)


def _transcription_text(utterances) -> str:
    lines = [f"{uid} [{start:08.4f}-{end:08.4f}]: {text}\n" for uid, start, end, _, text
             in sorted(utterances, key=lambda u: u[1])]
    did = utterances[0][0].rsplit("_", 1)[0]
    # Turns that were never evaluated and notes without an id: neither is an utterance.
    lines.append(f"{did}_MXX0 [020.0000-021.0000]: [overlap]\n")
    lines.append("M: [BREATHING]\n")
    return "".join(lines)


def _write_release(root, dialogues=DIALOGUES, media=True):
    for (session, did), utterances in dialogues.items():
        dialog = root / session / "dialog"
        (dialog / "EmoEvaluation" / "Categorical").mkdir(parents=True, exist_ok=True)
        (dialog / "transcriptions").mkdir(parents=True, exist_ok=True)
        (dialog / "EmoEvaluation" / f"{did}.txt").write_text(_evaluation_text(utterances))
        (dialog / "EmoEvaluation" / "Categorical" / f"{did}_e1_cat.txt").write_text("ignored\n")
        (dialog / "transcriptions" / f"{did}.txt").write_text(_transcription_text(utterances))
    if media:
        wav = root / "Session1" / "dialog" / "wav"
        avi = root / "Session1" / "dialog" / "avi" / "DivX"
        wav.mkdir(parents=True)
        avi.mkdir(parents=True)
        (wav / "Ses01F_impro01.wav").write_bytes(b"RIFF")
        (avi / "Ses01F_impro01.avi").write_bytes(b"RIFF")
    return root


@pytest.fixture
def release(tmp_path):
    return _write_release(tmp_path / "IEMOCAP_full_release")


def test_six_way_keeps_the_labelled_utterances_in_time_order(release):
    dataset = load_iemocap_release(release)
    assert dataset.name == "iemocap6"
    assert dataset.label_names == ["hap", "sad", "neu", "ang", "exc", "fru"]
    dialogue = dataset.dialogue("Ses01F_impro01")
    # xxx and sur are removed; the rest are ordered by start time, not by file order.
    assert [u.uid for u in dialogue.utterances] == [
        "Ses01F_impro01_F000", "Ses01F_impro01_M001", "Ses01F_impro01_F001"]
    assert [u.label for u in dialogue.utterances] == ["neu", "exc", "fru"]
    assert [u.speaker for u in dialogue.utterances] == ["F", "M", "F"]
    first = dialogue.utterances[0]
    assert (first.start, first.end, first.text) == (6.2901, 8.2357, "Excuse me.")
    assert first.extra == {"raw_label": "neu", "valence": "2.5000", "arousal": "3.0000",
                           "dominance": "3.5000"}
    assert all(u.scored for u in dialogue.utterances)
    assert sum(len(d) for d in dataset) == 7


def test_splits_put_session5_in_test_and_the_standard_dialogues_in_valid(release):
    dataset = load_iemocap_release(release)
    assert dataset.splits == {"train": ["Ses01F_impro01"], "valid": ["Ses01M_impro01"],
                              "test": ["Ses05F_script01_1"]}
    assert len(STANDARD_VALID_DIALOGUES) == 12
    assert not any(did.startswith("Ses05") for did in STANDARD_VALID_DIALOGUES)
    assert "Session1, Session5" in dataset.description


def test_media_paths_are_recorded_when_present(release):
    dataset = load_iemocap_release(release)
    media = dataset.dialogue("Ses01F_impro01").media
    assert media == {"audio": str(release / "Session1/dialog/wav/Ses01F_impro01.wav"),
                     "video": str(release / "Session1/dialog/avi/DivX/Ses01F_impro01.avi")}
    assert dataset.dialogue("Ses05F_script01_1").media == {}


def test_four_way_removes_or_keeps_the_other_utterances(release):
    four = load_iemocap_release(release, ways=4)
    assert four.name == "iemocap4" and four.label_names == ["hap", "sad", "neu", "ang"]
    assert [u.uid for u in four.dialogue("Ses01F_impro01").utterances] == ["Ses01F_impro01_F000"]
    kept = load_iemocap_release(release, ways=4, keep_other_as_context=True)
    utterances = kept.dialogue("Ses01F_impro01").utterances
    assert len(utterances) == 5
    assert [u.extra["raw_label"] for u in utterances] == ["neu", "xxx", "exc", "sur", "fru"]
    assert [u.label for u in utterances] == ["neu", None, None, None, None]
    assert [u.scored for u in utterances] == [True, False, False, False, False]
    assert kept.stats()["train"]["scored"] == 1


def _evaluation_path(root, did="Ses01F_impro01", session="Session1"):
    return root / session / "dialog" / "EmoEvaluation" / f"{did}.txt"


def _transcription_path(root, did="Ses01F_impro01", session="Session1"):
    return root / session / "dialog" / "transcriptions" / f"{did}.txt"


def _replace(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("[6.2901 - 8.2357]", "[6.2901 - 8.x]", "line 3: field 'times'"),
    ("[6.2901 - 8.2357]", "[9.0000 - 8.2357]", "line 3: field 'times'"),
    ("\tneu\t", "\tbored\t", "line 3: field 'label' 'bored' is not an IEMOCAP label"),
    ("[2.5000, 3.0000, 3.5000]", "[2.5000, 3.0000]", "line 3: field '[V, A, D]'"),
    ("\tSes01F_impro01_F000\tneu\t[2.5000, 3.0000, 3.5000]", "\tSes01F_impro01_F000\tneu",
     "line 3: expected '[start - end]<TAB>utterance id<TAB>label<TAB>[V, A, D]'"),
    ("Ses01F_impro01_M000", "Ses01F_impro01_F000", "line 13: field 'utterance id'"),
    ("Ses01F_impro01_M001", "Ses01F_impro01_X001", "line 18: field 'utterance id'"),
])
def test_malformed_evaluation_lines_name_file_line_and_field(release, old, new, message):
    path = _evaluation_path(release)
    _replace(path, old, new)
    with pytest.raises(DataFormatError) as error:
        load_iemocap_release(release)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_malformed_transcription_line_names_file_line_and_field(release):
    path = _transcription_path(release)
    _replace(path, "[010.0100-011.3925]", "[010.0100 to 011.3925]")
    with pytest.raises(DataFormatError, match=r"line 2: field 'times'") as error:
        load_iemocap_release(release)
    assert str(path) in str(error.value)
    _replace(path, "Ses01F_impro01_M000 [010.0100 to 011.3925]: ", "Ses01F_impro01_M000 ")
    with pytest.raises(DataFormatError, match=r"line 2: expected '<utterance id> \[start-end\]"):
        load_iemocap_release(release)


def test_an_evaluated_utterance_without_transcription_is_an_error(release):
    path = _transcription_path(release)
    _replace(path, "Ses01F_impro01_F001 [", "Ses01F_impro01_F009 [")
    with pytest.raises(DataFormatError, match="no transcription line for utterance "
                                              "Ses01F_impro01_F001") as error:
        load_iemocap_release(release)
    assert str(path) in str(error.value)


def test_missing_files_and_folders_are_clear_errors(tmp_path, release):
    path = _transcription_path(release, "Ses05F_script01_1", "Session5")
    path.unlink()
    with pytest.raises(DataFormatError, match="transcription file of dialogue "
                                              "Ses05F_script01_1 is missing"):
        load_iemocap_release(release)
    with pytest.raises(FileNotFoundError, match="no Session1..Session5 folders"):
        load_iemocap_release(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="ways must be 4 or 6"):
        load_iemocap_release(release, ways=5)
