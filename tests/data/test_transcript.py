"""Tests of one-conversation transcripts: JSON, SubRip, WebVTT and CSV, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotspot_erc.data.dialogue import DataFormatError, Dataset
from hotspot_erc.data.manifest import load_manifest, manifest_dict
from hotspot_erc.data.transcript import FORMATS, load_transcript


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def table(dialogue) -> list[tuple]:
    return [(u.uid, u.speaker, u.text, u.start, u.end, u.label) for u in dialogue.utterances]


SRT = """1
00:00:01,000 --> 00:00:02,500
Alice: Hello there.

2
00:00:02,600 --> 00:01:02,345
Bob: <i>I said</i>
it twice,
<b>really</b>.

3
01:00:00,001 --> 01:00:03,999
Dr Who : time: relative
"""


def test_srt_speakers_texts_and_millisecond_times(tmp_path):
    dialogue, notices = load_transcript(write(tmp_path, "call7.srt", SRT))
    assert dialogue.did == "call7"
    assert dialogue.media == {}
    assert table(dialogue) == [
        ("call7_0", "Alice", "Hello there.", 1.0, 2.5, None),
        ("call7_1", "Bob", "I said it twice, really.", 2.6, 62.345, None),
        ("call7_2", "Dr Who", "time: relative", 3600.001, 3603.999, None)]
    assert notices == []


def test_srt_with_bom_and_crlf_reads_the_same(tmp_path):
    plain, _ = load_transcript(write(tmp_path, "a.srt", SRT))
    windows, notices = load_transcript(write(tmp_path, "a_win.srt",
                                             "\ufeff" + SRT.replace("\n", "\r\n")))
    assert [row[1:] for row in table(windows)] == [row[1:] for row in table(plain)]
    assert notices == []


VTT = """WEBVTT - a call
Kind: captions

NOTE recorded on a phone,
two speakers

STYLE
::cue { color: yellow }

intro
00:01.000 --> 00:02.250 align:start position:10%
<v.loud Ann Lee>Hi &amp; welcome</v>

00:00:02.300 --> 00:00:04.000
<v Bob>first line
<c.yellow>second</c> line</v>

3
00:04.500 --> 00:05.000 line:0
Ann Lee: back to me
"""


def test_vtt_voice_tags_settings_ids_and_skipped_blocks(tmp_path):
    dialogue, notices = load_transcript(write(tmp_path, "meeting.vtt", VTT))
    assert table(dialogue) == [
        ("meeting_0", "Ann Lee", "Hi & welcome", 1.0, 2.25, None),
        ("meeting_1", "Bob", "first line second line", 2.3, 4.0, None),
        ("meeting_2", "Ann Lee", "back to me", 4.5, 5.0, None)]
    assert dialogue.speakers == ["Ann Lee", "Bob"]
    assert notices == []


def test_vtt_with_crlf_and_bom(tmp_path):
    dialogue, _ = load_transcript(write(tmp_path, "m.vtt", "\ufeff" + VTT.replace("\n", "\r\n")))
    assert [u.text for u in dialogue.utterances] == ["Hi & welcome", "first line second line",
                                                     "back to me"]


MELD_CSV = ("Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,"
            "StartTime,EndTime\n"
            '1,"Oh, my God!",Rachel,surprise,positive,4,0,2,5,"00:01:02,003","00:01:03,250"\n'
            '2,"He said ""no"".",Ross,anger,negative,4,1,2,5,"00:01:03,400","00:01:05,000"\n')


def test_meld_like_csv_with_bom_crlf_labels_and_ids(tmp_path):
    path = write(tmp_path, "dia4.csv", "\ufeff" + MELD_CSV.replace("\n", "\r\n"))
    dialogue, notices = load_transcript(path)
    assert table(dialogue) == [
        ("dia4_0", "Rachel", "Oh, my God!", 62.003, 63.25, "surprise"),
        ("dia4_1", "Ross", 'He said "no".', 63.4, 65.0, "anger")]
    assert notices == []


def test_csv_seconds_columns_explicit_ids_and_case_insensitive_header(tmp_path):
    content = "id,speaker,text,start,end\nu1,A,Hi,0,1.25\nu2,B,,1.5,2\n"
    dialogue, notices = load_transcript(write(tmp_path, "c.csv", content))
    assert table(dialogue) == [("u1", "A", "Hi", 0.0, 1.25, None), ("u2", "B", "", 1.5, 2.0, None)]
    assert len(notices) == 1 and "u2" in notices[0] and "no text" in notices[0]


def test_csv_without_times_is_text_only_unless_there_is_a_recording(tmp_path):
    path = write(tmp_path, "t.csv", "Utterance,Speaker\nHi,A\nHello,B\n")
    dialogue, _ = load_transcript(path)
    assert [(u.start, u.end) for u in dialogue.utterances] == [(None, None), (None, None)]
    with pytest.raises(DataFormatError, match=r"t\.csv: line 1 \(header\): missing column.*"
                                              r"StartTime/EndTime or Start/End"):
        load_transcript(path, media={"audio": str(tmp_path / "t.wav")})


MANIFEST = {
    "label_names": ["neutral", "happy"],
    "dialogues": [{"id": "call1", "media": {"audio": "call1.wav"},
                   "utterances": [
                       {"speaker": "A", "text": "Hi!", "start": 0.0, "end": 1.2,
                        "label": "happy"},
                       {"id": "b0", "speaker": "B", "text": "Oh.", "start": 1.4, "end": 2.0,
                        "extra": {"note": "x"}}]}]}


def test_json_manifest_round_trip(tmp_path):
    path = write(tmp_path, "calls.json", json.dumps(MANIFEST))
    dialogue, notices = load_transcript(path)
    expected = load_manifest(path).dialogue("call1")
    assert dialogue == expected
    assert dialogue.did == "call1"
    assert dialogue.media == {"audio": str(tmp_path / "call1.wav")}
    assert table(dialogue) == [("call1_0", "A", "Hi!", 0.0, 1.2, "happy"),
                               ("b0", "B", "Oh.", 1.4, 2.0, None)]
    assert notices == []
    # Dialogue -> manifest -> Dialogue again.
    again = write(tmp_path, "again.json", json.dumps(manifest_dict(
        Dataset("again", [dialogue], ["neutral", "happy"], {"all": ["call1"]}))))
    assert load_transcript(again)[0] == dialogue


def test_bare_json_dialogue_takes_the_file_stem(tmp_path):
    content = {"media": {"video": "v.mp4"},
               "utterances": [{"speaker": "A", "text": "x", "start": 0, "end": 1}]}
    dialogue, _ = load_transcript(write(tmp_path, "talk.json", json.dumps(content)))
    assert dialogue.did == "talk"
    assert table(dialogue) == [("talk_0", "A", "x", 0.0, 1.0, None)]
    assert dialogue.media == {"video": str(tmp_path / "v.mp4")}


def test_json_without_times_is_fine_without_a_recording(tmp_path):
    content = {"utterances": [{"speaker": "A", "text": "x"}, {"speaker": "B", "text": "y"}]}
    dialogue, notices = load_transcript(write(tmp_path, "t.json", json.dumps(content)))
    assert [u.start for u in dialogue.utterances] == [None, None] and notices == []


def test_format_by_extension_or_given(tmp_path):
    upper = write(tmp_path, "X.SRT", SRT)
    assert len(load_transcript(upper)[0]) == 3
    other = write(tmp_path, "subs.txt", SRT)
    with pytest.raises(DataFormatError) as caught:
        load_transcript(other)
    message = str(caught.value)
    assert "subs.txt" in message and "'.txt'" in message
    for name in FORMATS:
        assert name in message
    assert len(load_transcript(other, fmt="srt")[0]) == 3
    with pytest.raises(DataFormatError, match=r"subs\.txt: unknown transcript format 'ass'"):
        load_transcript(other, fmt="ass")


def test_media_argument_replaces_the_file_media_and_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "calls.json", json.dumps(MANIFEST))
    dialogue, notices = load_transcript(path, media={"video": "rec/full.mp4"})
    assert dialogue.media == {"video": str(tmp_path / "rec" / "full.mp4")}
    assert any("replaces" in notice for notice in notices)
    srt_dialogue, _ = load_transcript(write(tmp_path, "a.srt", SRT),
                                      media={"audio": str(tmp_path / "a.wav")})
    assert srt_dialogue.media == {"audio": str(tmp_path / "a.wav")}
    with pytest.raises(DataFormatError, match=r"a\.srt: .*media\.smell: unknown modality"):
        load_transcript(tmp_path / "a.srt", media={"smell": "x.bin"})


def test_json_needs_times_for_a_recording_given_as_argument(tmp_path):
    content = {"utterances": [{"speaker": "A", "text": "x", "start": 0, "end": 1},
                              {"speaker": "B", "text": "y"}]}
    path = write(tmp_path, "t.json", json.dumps(content))
    with pytest.raises(DataFormatError, match=r"t\.json: field utterances\[1\]: utterance t_1 "
                                              r"needs start and end"):
        load_transcript(path, media={"audio": str(tmp_path / "t.wav")})


def test_overlapping_turns_give_a_notice_naming_both(tmp_path):
    content = ("1\n00:00:01,000 --> 00:00:03,600\nA: long turn\n\n"
               "2\n00:00:03,200 --> 00:00:04,000\nB: cutting in\n\n"
               "3\n00:00:04,000 --> 00:00:05,000\nA: fine\n")
    dialogue, notices = load_transcript(write(tmp_path, "o.srt", content))
    assert [u.uid for u in dialogue.utterances] == ["o_0", "o_1", "o_2"]  # transcript order
    assert len(notices) == 1
    assert "o_1" in notices[0] and "o_0" in notices[0] and "0.400 s" in notices[0]
    assert "cue 2 (line 6)" in notices[0]


def test_a_turn_overlapping_an_earlier_long_one_is_noticed(tmp_path):
    content = ("Speaker,Utterance,Start,End\nA,long,0,10\nB,short,2,3\nC,again,4,5\n"
               "D,before,0.5,0.9\n")
    dialogue, notices = load_transcript(write(tmp_path, "o.csv", content))
    assert [u.speaker for u in dialogue.utterances] == ["A", "B", "C", "D"]
    assert len(notices) == 3
    assert "o_2" in notices[1] and "o_0" in notices[1] and "1.000 s" in notices[1]
    assert "o_3" in notices[2] and "0.400 s" in notices[2]


def test_speaker_with_empty_text_is_kept_with_a_notice(tmp_path):
    content = "WEBVTT\n\n00:01.000 --> 00:02.000\nAnn:\n\n00:02.000 --> 00:03.000\n<v Bob></v>\n"
    dialogue, notices = load_transcript(write(tmp_path, "e.vtt", content))
    assert table(dialogue) == [("e_0", "Ann", "", 1.0, 2.0, None),
                               ("e_1", "Bob", "", 2.0, 3.0, None)]
    assert notices == [f"{tmp_path / 'e.vtt'}: no utterance has text; the text modality is "
                       f"missing"]


def test_cue_without_any_text_is_skipped_with_a_notice(tmp_path):
    content = "1\n00:00:01,000 --> 00:00:02,000\n\n2\n00:00:02,000 --> 00:00:03,000\nA: hi\n"
    dialogue, notices = load_transcript(write(tmp_path, "s.srt", content))
    assert table(dialogue) == [("s_0", "A", "hi", 2.0, 3.0, None)]
    assert len(notices) == 1 and "cue 1 (line 2)" in notices[0] and "skipped" in notices[0]


def test_several_voices_in_one_cue_and_subrip_override_tags(tmp_path):
    content = "1\n00:00:01,000 --> 00:00:02,000\n{\\an8}<v B>cut</v> <v C>in</v>\n"
    dialogue, notices = load_transcript(write(tmp_path, "v.srt", content))
    assert table(dialogue) == [("v_0", "B", "cut in", 1.0, 2.0, None)]
    assert len(notices) == 1 and "several voices (B, C)" in notices[0]


def test_media_end_within_tolerance_is_clipped(tmp_path):
    content = "1\n00:00:01,000 --> 00:00:10,300\nA: end\n"
    dialogue, notices = load_transcript(write(tmp_path, "c.srt", content), media_duration=10.0)
    assert dialogue.utterances[0].end == 10.0 and isinstance(dialogue.utterances[0].end, float)
    assert len(notices) == 1 and "c_0" in notices[0] and "clipped" in notices[0]


def test_utterances_with_their_own_media_are_not_checked_against_the_recording(tmp_path):
    content = {"utterances": [{"speaker": "A", "start": 50, "end": 60,
                               "media": {"audio": "clip.wav"}, "text": "x"}]}
    dialogue, notices = load_transcript(write(tmp_path, "own.json", json.dumps(content)),
                                        media_duration=5.0)
    assert dialogue.utterances[0].end == 60.0 and notices == []


CUE = "1\n00:00:01,000 --> 00:00:02,000\nA: hi\n\n"
HEADER = "Utterance,Speaker,Start,End\n"

BAD_INPUTS = [
    ("utf8.srt", CUE.encode() + b"2\n00:00:03,000 --> 00:00:04,000\nB: caf\xe9\n",
     r"byte 77 \(line 7\) is 0xe9; save it as UTF-8"),
    ("utf16.csv", "Utterance,Speaker\n".encode("utf-16"), r"UTF-16.*save it as UTF-8"),
    ("empty.srt", b"", "empty transcript"),
    ("blank.vtt", b"  \r\n\n", "empty transcript"),
    ("header_only.vtt", b"WEBVTT\n\n", "empty transcript"),
    ("header_only.csv", HEADER.encode(), "empty transcript"),
    ("no_utterances.json", b'{"utterances": []}', r"empty transcript \(field utterances"),
    ("no_dialogues.json", b'{"dialogues": []}', "empty transcript"),
    ("no_header.vtt", CUE.encode(), r"line 1: expected the header WEBVTT"),
    ("equal.srt", (CUE + "2\n00:00:03,000 --> 00:00:03,000\nB: x\n").encode(),
     r"cue 2 \(line 6\): end 3\.000 s is not after start 3\.000 s"),
    ("backwards.vtt", b"WEBVTT\n\n00:05.000 --> 00:04.000\nA: x\n",
     r"cue 1 \(line 3\): end 4\.000 s is not after start 5\.000 s"),
    ("backwards.csv", (HEADER + "hi,A,0,1\nho,B,2,1.5\n").encode(),
     r"row 2 \(line 3\): field 'End' \(1\.500 s\) is not after field 'Start'"),
    ("short_ms.srt", b"1\n00:00:01,5 --> 00:00:02,000\nA: x\n",
     r"cue 1 \(line 2\): malformed time '00:00:01,5'"),
    ("minutes.srt", b"1\n00:61:00,000 --> 01:02:00,000\nA: x\n", r"malformed time '00:61:00,000'"),
    ("arrow.srt", b"1\n00:00:01,000 -> 00:00:02,000\nA: x\n",
     r"cue 1 \(line 2\): expected a timing line like"),
    ("clock.csv", b"Utterance,Speaker,StartTime,EndTime\nhi,A,1:02,\"00:00:03,000\"\n",
     r"row 1 \(line 2\): field 'StartTime': '1:02' is not a time HH:MM:SS,mmm"),
    ("words.csv", (HEADER + "hi,A,soon,2\n").encode(),
     r"row 1 \(line 2\): field 'Start': expected a number of seconds, got 'soon'"),
    ("nan.csv", (HEADER + "hi,A,nan,2\n").encode(),
     r"row 1 \(line 2\): field 'Start': expected a finite number of seconds >= 0, got nan"),
    ("inf.csv", (HEADER + "hi,A,0,inf\n").encode(), r"field 'End': expected a finite number"),
    ("negative.csv", (HEADER + "hi,A,-1,2\n").encode(), r"field 'Start': expected a finite"),
    ("nan.json", b'{"utterances": [{"speaker": "A", "start": NaN, "end": 1}]}',
     r"field utterances\[0\]\.start: expected a finite number"),
    ("missing.csv", b"Speaker,Start,End\nA,0,1\n",
     r"line 1 \(header\): missing column\(s\) Utterance"),
    ("half_pair.csv", b"Utterance,Speaker,StartTime\nhi,A,\"00:00:01,000\"\n",
     r"missing column\(s\) EndTime"),
    ("cells.csv", (HEADER + "hi, there,A,0,1\n").encode(),
     r"row 1 \(line 2\): 5 cells but the header has 4"),
    ("few_cells.csv", (HEADER + "hi,A,0\n").encode(),
     r"row 1 \(line 2\): 3 cells but the header has 4; give every column a cell"),
    ("no_speaker.csv", (HEADER + "hi,,0,1\n").encode(), r"row 1 \(line 2\): field 'Speaker' is "
                                                         r"empty"),
    ("dialogues.csv", b"Utterance,Speaker,Dialogue_ID\nhi,A,1\nho,B,2\n",
     r"field 'Dialogue_ID' holds 2 dialogues \('1' from row 1 \(line 2\)"),
    ("duplicate.csv", b"ID,Utterance,Speaker\nu,hi,A\nu,ho,B\n",
     r"row 2 \(line 3\): duplicate utterance id 'u' \(first at row 1 \(line 2\)\)"),
    ("two.json", json.dumps({"dialogues": [MANIFEST["dialogues"][0]] * 2}).encode(),
     r"field dialogues holds 2 dialogues; a transcript is one conversation"),
    ("bad_field.json", b'{"utterances": [{"speaker": "A", "start": 2, "end": 1}]}',
     r"field utterances\[0\]\.end: end 1\.0 is not after start 2\.0"),
    ("bad_field_manifest.json",
     b'{"dialogues": [{"utterances": [{"speaker": "A", "tex": "x"}]}]}',
     r"field dialogues\[0\]\.utterances\[0\]\.tex: unknown field"),
    ("broken.json", b'{"utterances": [', r"not valid JSON \(line 1, column 17"),
    ("list.json", b'[{"speaker": "A"}]', r"expected a manifest .* or one dialogue"),
]


@pytest.mark.parametrize(("name", "content", "pattern"), BAD_INPUTS,
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_names_the_file_and_the_place(tmp_path, name, content, pattern):
    path = write(tmp_path, name, content)
    with pytest.raises(DataFormatError, match=pattern) as caught:
        load_transcript(path)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize(("name", "text", "line"), [
    ("plain.srt", "just words", 7),
    ("clock.srt", "At 10:30 we met", 7),
    ("sentence.srt", "Well. Then: go", 7),
    ("long.srt", "A" * 41 + ": too long a name", 7),
    ("tagless.vtt", "no voice here", 7),
])
def test_a_cue_without_a_speaker_among_named_ones_is_an_error(tmp_path, name, text, line):
    if name.endswith(".vtt"):
        content = ("WEBVTT\n\n00:01.000 --> 00:02.000\n<v A>hi</v>\n\n"
                   f"00:03.000 --> 00:04.000\n{text}\n")
    else:
        content = CUE + f"2\n00:00:03,000 --> 00:00:04,000\n{text}\n"
    path = write(tmp_path, name, content)
    with pytest.raises(DataFormatError) as caught:
        load_transcript(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: cue 2 (line {line}): unknown speaker format")
    assert "`Speaker: text`" in message and "<v Speaker>" in message
    assert "as cue 1 (line " in message and "names 'A'" in message


def test_a_named_cue_after_unnamed_ones_names_the_first_unnamed_cue(tmp_path):
    content = ("1\n00:00:01,000 --> 00:00:02,000\nno name here\n\n"
               "2\n00:00:03,000 --> 00:00:04,000\nNote: this reads as a speaker\n")
    path = write(tmp_path, "mixed.srt", content)
    with pytest.raises(DataFormatError) as caught:
        load_transcript(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: cue 1 (line 3): unknown speaker format in "
                              "'no name here'")
    assert "as cue 2 (line 6) names 'Note'" in message


UNLABELLED_SRT = """1
00:00:01,000 --> 00:00:02,000
Did you get it?

2
00:00:02,500 --> 00:00:04,000
<i>Not yet</i>, at 10:30
maybe.

3
00:00:04,500 --> 00:00:05,000

"""


def test_cues_without_any_speaker_are_one_speaker_with_a_notice(tmp_path):
    path = write(tmp_path, "plain.srt", UNLABELLED_SRT)
    dialogue, notices = load_transcript(path)
    assert table(dialogue) == [
        ("plain_0", "speaker", "Did you get it?", 1.0, 2.0, None),
        ("plain_1", "speaker", "Not yet, at 10:30 maybe.", 2.5, 4.0, None)]
    assert notices[0] == f"{path}: cue 3 (line 11): the cue has no text; skipped"
    assert notices[1] == (f"{path}: speakers are not labelled: no cue names its speaker "
                          "(`Speaker: text` or `<v Speaker>`); all 2 utterances are given one "
                          "speaker, 'speaker', so the model cannot tell the speakers apart")
    assert len(notices) == 2


def test_webvtt_without_voices_or_names_is_one_speaker(tmp_path):
    content = ("WEBVTT\n\n00:01.000 --> 00:02.000\nhello\n\n"
               "00:02.500 --> 00:03.000\nWell. Then: go\n")
    dialogue, notices = load_transcript(write(tmp_path, "captions.vtt", content))
    assert [(u.speaker, u.text) for u in dialogue.utterances] == [
        ("speaker", "hello"), ("speaker", "Well. Then: go")]
    assert len(notices) == 1 and "speakers are not labelled" in notices[0]


def test_unlabelled_cues_still_need_valid_times(tmp_path):
    content = "1\n00:00:02,000 --> 00:00:01,000\nno speaker\n"
    path = write(tmp_path, "backwards.srt", content)
    with pytest.raises(DataFormatError, match=r"cue 1 \(line 2\): end 1\.000 s is not after "
                                              r"start 2\.000 s"):
        load_transcript(path)


def test_csv_without_a_speaker_column_is_one_speaker_with_a_notice(tmp_path):
    path = write(tmp_path, "lines.csv", "Utterance,Start,End\nhello,0,1\nhi back,1.5,2\n")
    dialogue, notices = load_transcript(path)
    assert table(dialogue) == [("lines_0", "speaker", "hello", 0.0, 1.0, None),
                               ("lines_1", "speaker", "hi back", 1.5, 2.0, None)]
    assert notices == [f"{path}: speakers are not labelled: the header has no Speaker column; "
                       "all 2 utterances are given one speaker, 'speaker', so the model cannot "
                       "tell the speakers apart"]


def test_a_name_of_forty_characters_is_a_speaker(tmp_path):
    content = CUE + "2\n00:00:03,000 --> 00:00:04,000\n" + "B" * 40 + ": fine\n"
    dialogue, _ = load_transcript(write(tmp_path, "forty.srt", content))
    assert dialogue.utterances[1].speaker == "B" * 40


@pytest.mark.parametrize(("start", "end", "pattern"), [
    ("00:00:09,000", "00:00:10,600", r"cue 1 \(line 2\): utterance m_0 ends at 10\.600 s, past "
                                     r"the end of the recording \(10\.000 s"),
    ("00:00:10,000", "00:00:10,200", r"cue 1 \(line 2\): utterance m_0 starts at 10\.000 s, at "
                                     r"or after the end of the recording \(10\.000 s\)"),
])
def test_times_past_the_recording_are_errors(tmp_path, start, end, pattern):
    path = write(tmp_path, "m.srt", f"1\n{start} --> {end}\nA: x\n")
    with pytest.raises(DataFormatError, match=pattern):
        load_transcript(path, media_duration=10.0)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataFormatError, match=r"nope\.srt: no such transcript file"):
        load_transcript(tmp_path / "nope.srt")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataFormatError, match=r"dir\.csv: is a folder"):
        load_transcript(tmp_path / "dir.csv")
