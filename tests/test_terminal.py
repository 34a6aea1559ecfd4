"""Text from input files printed safely: control characters become visible escapes."""

from __future__ import annotations

import pytest

from hotspot_erc.terminal import printable


@pytest.mark.parametrize("text, shown", [
    ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),      # clear screen, colour
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),           # OSC: window title
    ("a\tb\nc\rd", "a\\x09b\\x0ac\\x0dd"),                 # tab and line breaks too
    ("nul\x00 del\x7f", "nul\\x00 del\\x7f"),
    ("c1 \x9b2J \x85", "c1 \\x9b2J \\x85"),                # C1 CSI and NEL
    ("lone \ud800 surrogate", "lone \\ud800 surrogate"),   # JSON allows it, no encoding does
])
def test_control_characters_become_visible_escapes(text, shown):
    assert printable(text) == shown
    assert printable(text).encode("utf-8")  # printable on any UTF-8 terminal


def test_ordinary_text_is_unchanged():
    text = "Ça va? 日本語, emoji 🙂, back\\slash, quotes \"'"
    assert printable(text) == text


def test_escaping_twice_changes_nothing_more():
    once = printable("\x1b[0m\n")
    assert printable(once) == once


def test_native_log_output_is_hidden_unless_verbose(capfd, monkeypatch):
    import os

    from hotspot_erc.cli import main
    from hotspot_erc.features.video import _native_stderr_silenced
    from hotspot_erc.terminal import VERBOSE_ENV, verbose

    monkeypatch.setenv(VERBOSE_ENV, "0")  # and restored after the test, as main() sets it
    assert not verbose()
    with _native_stderr_silenced():
        os.write(2, b"W0000 inference_feedback_manager.cc: feedback\n")
    assert "feedback" not in capfd.readouterr().err
    assert main(["--verbose", "models"]) == 0  # the flag sets it for this process and workers
    assert verbose() and os.environ[VERBOSE_ENV] == "1"
    with _native_stderr_silenced():
        os.write(2, b"W0000 inference_feedback_manager.cc: feedback\n")
    assert "feedback" in capfd.readouterr().err
