"""The service's parts that need no server: its options, its container check, its command."""

from __future__ import annotations

import socket

import pytest

from hotspot_erc.cli import main
from hotspot_erc.serve.config import ServeConfig, read_api_key
from hotspot_erc.serve.containers import SNIFF_BYTES, container_of


@pytest.mark.parametrize("head, container", [
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
    (b"RIFF\x24\x00\x00\x00AVI LIST", "avi"),
    (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "mp4"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "matroska"),
    (b"OggS\x00\x02", "ogg"),
    (b"fLaC\x00\x00\x00\x22", "flac"),
    (b"ID3\x04\x00\x00", "mp3"),
    (b"\xff\xfb\x90\x64", "mpeg-audio"),
    (b"\xff\xf1\x50\x80", "mpeg-audio"),
    ((b"\x47" + b"\x00" * 187) * 3, "mpeg-ts"),
])
def test_recordings_are_recognised(head, container):
    assert container_of(head) == container


@pytest.mark.parametrize("head", [
    b"#EXTM3U\n#EXT-X-VERSION:3\nhttp://example.org/a.ts\n",  # HLS playlist
    b"ffconcat version 1.0\nfile '/etc/passwd'\n",  # concat list
    b'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011">',  # DASH manifest
    b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n",  # SDP
    b"[playlist]\nFile1=/etc/passwd\n",
    b"", b"RIFF", b"\x47" * 10,
])
def test_anything_else_never_reaches_ffmpeg(head):
    assert container_of(head[:SNIFF_BYTES]) is None


def test_options_are_checked_with_the_flag_named():
    assert ServeConfig("run").loopback and ServeConfig("run").max_request_bytes == 64 * 2**20
    for options, flag in (({"port": 70000}, "--port"), ({"concurrency": 0}, "--concurrency"),
                          ({"queue": -1}, "--queue"), ({"max_request_mb": float("nan")},
                                                       "--max-request-mb"),
                          ({"max_media_seconds": 0}, "--max-media-seconds"),
                          ({"cors_origins": ("app.example.org",)}, "--cors-origin")):
        with pytest.raises(ValueError, match=flag):
            ServeConfig("run", **options)
    assert "api_key" not in repr(ServeConfig("run", api_key="secret-secret-secret"))


def test_the_api_key_file_holds_one_long_enough_line(tmp_path):
    key = tmp_path / "key"
    key.write_text("  a-long-enough-key-0123  \n")
    assert read_api_key(key) == "a-long-enough-key-0123"
    for content, problem in (("short\n", "at least 16"), ("\n", "one line"),
                             ("a-long-enough-key-0123\nsecond line\n", "one line")):
        key.write_text(content)
        with pytest.raises(ValueError, match=problem):
            read_api_key(key)


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path, capsys):
    assert main(["serve", "--model", "minilm-iemocap"]) == 2
    assert "--model 'minilm-iemocap': no such shipped model" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one of --checkpoint, --model is required
        main(["serve"])
    assert "--checkpoint" in capsys.readouterr().err
    assert main(["serve", "--checkpoint", "run", "--queue", "-1"]) == 2
    assert "--queue" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--checkpoint", str(tmp_path), "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in error


def test_a_checkpoint_that_fails_to_load_ends_the_service_with_its_error(tmp_path, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["serve", "--checkpoint", str(tmp_path), "--port", str(port)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("hotspot-erc: error:") and "is not a checkpoint" in error
