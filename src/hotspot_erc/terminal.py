"""Text from input files made safe to print on a terminal, and whether third-party log output
reaches it (:func:`verbose`).

Speaker names, transcripts, labels and dataset names come from files the user did not write. A
control character in them is an instruction to the terminal, not text: ``\\x1b[2J`` clears the
screen, ``\\r`` overwrites what was printed, an OSC sequence can set the window title or a
hyperlink. :func:`printable` shows every such character as a visible escape instead.
"""

from __future__ import annotations

import os
import re

# C0 controls (tab and newline included: one printed field must stay one field on one line), DEL,
# C1 controls, and lone surrogates, which a JSON file can hold ("\ud800") but no terminal
# encoding can write (print() would fail with UnicodeEncodeError).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with each control character replaced by its escape (``\\x1b``, ``\\x0a``,
    ``\\ud800``); everything else, other scripts and emoji included, is left as it is."""
    return _UNPRINTABLE.sub(_escape, str(text))


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


VERBOSE_ENV = "HOTSPOT_ERC_VERBOSE"


def verbose() -> bool:
    """Whether third-party log output is wanted (``hotspot-erc --verbose``, or
    ``HOTSPOT_ERC_VERBOSE=1``; an environment variable, so worker processes inherit it). By
    default the native TFLite/MediaPipe messages and the model-loading progress bars are hidden:
    they say nothing a user can act on and bury the command's own output."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")
