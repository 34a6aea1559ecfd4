"""The report in a real browser: headless Chromium loads it, dumps the DOM, logs the console and
takes a screenshot. Skipped only when no Chromium binary is installed (Debian: ``chromium``).

Chromium (156 on Debian 12) writes every console message of a page, errors and blocked actions
included, to stderr as ``[pid:tid:date:INFO:CONSOLE:LINE] "message", source: URL (LINE)``
(older releases: ``INFO:CONSOLE(LINE)``); the report has no script, so any such line is a fault.
"""

import base64
import os
import re
import shutil
import signal
import struct
import subprocess
from pathlib import Path

import pytest

from hotspot_erc.engine.prediction import ConversationPrediction
from hotspot_erc.report.html import render_report, write_report

pytestmark = pytest.mark.slow

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser")
                 if shutil.which(name)), None)
if CHROMIUM is None:
    pytest.skip("no chromium or chromium-browser binary on PATH (Debian package: chromium)",
                allow_module_level=True)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
TIMEOUT_S = 60
CONSOLE_LINE = re.compile(r":CONSOLE(?::\d+|\(\d+\))\]|\bUncaught\b")
SCRIPT_PAYLOAD = "<script>alert(1)</script>"
ONERROR_PAYLOAD = "<img src=x onerror=alert(1)>"


def run_chromium(arguments: list[str], profile: Path) -> subprocess.CompletedProcess:
    """Run Chromium with the fixed flags; on timeout kill its whole process group (renderers
    and GPU process included) so no browser outlives the test."""
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *arguments]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chromium took more than {TIMEOUT_S} s: {' '.join(command)}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def console_messages(stderr: str) -> list[str]:
    """The lines of Chromium's log that come from a page's console."""
    return [line for line in stderr.splitlines() if CONSOLE_LINE.search(line)]


def hostile_conversation(example_conversation) -> ConversationPrediction:
    conversation = example_conversation()
    conversation.utterances[0].text = f"I said {SCRIPT_PAYLOAD} twice"
    for utterance in conversation.utterances:
        if utterance.speaker == "Ben":
            utterance.speaker = ONERROR_PAYLOAD
    return conversation


@pytest.fixture(scope="module")
def report(example_conversation, tmp_path_factory) -> Path:
    return write_report(hostile_conversation(example_conversation),
                        tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def dumped(report, tmp_path_factory) -> subprocess.CompletedProcess:
    return run_chromium(["--dump-dom", report.as_uri()], tmp_path_factory.mktemp("profile"))


def test_checker_catches_a_deliberate_console_error(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><p>hi</p><script>"
                      "console.error('deliberate failure'); notDefinedAnywhere();"
                      "</script></body></html>", encoding="utf-8")
    clean = tmp_path / "clean.html"
    clean.write_text("<!DOCTYPE html><html><body><p>hi</p></body></html>", encoding="utf-8")
    result = run_chromium(["--dump-dom", broken.as_uri()], tmp_path / "profile")
    messages = console_messages(result.stderr)
    assert any("deliberate failure" in m for m in messages), result.stderr[-3000:]
    assert any("Uncaught ReferenceError" in m and "notDefinedAnywhere" in m for m in messages)
    assert console_messages(run_chromium(["--dump-dom", clean.as_uri()],
                                         tmp_path / "profile").stderr) == []


def test_report_loads_without_console_messages(dumped):
    assert dumped.returncode == 0, dumped.stderr[-3000:]
    assert console_messages(dumped.stderr) == []


def test_dom_has_the_timeline_and_the_payloads_as_text(example_conversation, dumped,
                                                      parse_page):
    dom = parse_page(dumped.stdout)
    conversation = hostile_conversation(example_conversation)
    bars = [e for e in dom.find(cls="utt") if e.inside("timeline")]
    assert len(bars) == len(conversation.utterances) == 6
    assert sorted(b.attrs["data-id"] for b in bars) == sorted(
        u.id for u in conversation.utterances)
    assert dom.find("script") == []
    assert not [e for e in dom.elements for name in e.attrs if name.startswith("on")]
    assert all(e.attrs["src"].startswith("data:image/png;base64,") for e in dom.find("img"))
    text = dom.visible_text()
    assert f"I said {SCRIPT_PAYLOAD} twice" in text
    assert [e.content() for e in dom.find(cls="who")] == ["Ana", ONERROR_PAYLOAD]
    assert [e.content() for e in dom.find(cls="speaker")].count(ONERROR_PAYLOAD) == 3
    # The model card, summary and glossary come before the cards; ticks sit in the timeline.
    sections = [e.attrs.get("id") for e in dom.find("section") if e.attrs.get("id")]
    assert sections[:3] == ["model-card", "summary", "how-to-read"]
    assert sections[3:] == [f"utt-{index}" for index in range(6)]
    assert dom.find(cls="tick") and all(t.inside("timeline") for t in dom.find(cls="tick"))


def test_a_payload_that_slipped_through_would_be_blocked_and_reported(example_conversation,
                                                                      tmp_path):
    """Proves the console check guards escaping: raw markup in the page is refused by the
    page's Content-Security-Policy, and Chromium says so on the console."""
    page = render_report(example_conversation(2), figures=False)
    page = page.replace("</main>", f"{SCRIPT_PAYLOAD}{ONERROR_PAYLOAD}</main>")
    path = tmp_path / "unescaped.html"
    path.write_text(page, encoding="utf-8")
    messages = console_messages(run_chromium(["--dump-dom", path.as_uri()],
                                             tmp_path / "profile").stderr)
    assert any("Content Security Policy" in m and "inline script" in m for m in messages)
    assert any("Content Security Policy" in m and "img-src" in m for m in messages)


def test_screenshot_is_a_real_png(report, tmp_path):
    screenshot = tmp_path / "report.png"
    result = run_chromium([f"--screenshot={screenshot}", "--window-size=1280,2000",
                           report.as_uri()], tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-3000:]
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (1280, 2000)
    assert len(png) > 50_000  # a rendered page, not a blank one
    assert console_messages(result.stderr) == []
    folder = os.environ.get("HOTSPOT_ERC_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, Path(folder) / "report.png")


def test_embedded_figures_decode(report, dumped, parse_page):
    """What the browser got is what write_report saved beside the page."""
    embedded = sorted(base64.b64decode(e.attrs["src"].split(",", 1)[1])
                      for e in parse_page(dumped.stdout).find("img"))
    saved = sorted(p.read_bytes() for p in (report.parent / "figures").iterdir())
    assert embedded == saved and len(saved) == 11  # curves only: the timeline is HTML


def test_a_report_with_players_loads_cleanly(example_conversation, tmp_path):
    from hotspot_erc.features.synth_media import silence, write_wav

    conversation = example_conversation()
    write_wav(tmp_path / "call.wav", silence(1.0))
    conversation.media = {"audio": str(tmp_path / "call.wav")}
    page = write_report(conversation, tmp_path / "report", figures=False)
    result = run_chromium(["--dump-dom", page.as_uri()], tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-3000:]
    assert console_messages(result.stderr) == []
    assert '<audio class="playback" controls="" preload="none" src="../call.wav#t=' in result.stdout
