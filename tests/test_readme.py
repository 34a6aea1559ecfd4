"""The README's Python example, run as the plain script a user would paste it into."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_example() -> str:
    """The indented block of README.md that starts with the Predictor import."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"((?:    from hotspot_erc\.engine\.predict import Predictor\n)"
                      r"(?:    .*\n|\n)+?)(?=\S)", text)
    assert match, "README.md no longer holds the Python example"
    return textwrap.dedent(match.group(1))


def test_the_readme_python_example_runs_as_a_plain_script(tmp_path):
    from hotspot_erc.engine.demo import build_demo

    pytest.importorskip("silero_vad")
    demo = build_demo(tmp_path / "demo", dialogues={"train": 3, "valid": 1, "test": 1},
                      utterances=4, epochs=1, workers=1, progress=False)
    example = _python_example()
    assert "__main__" not in example  # no guard: the point of this test
    out = tmp_path / "call_prediction"
    for placeholder, real in (("runs/my_model", demo["checkpoint"]),
                              ("call.srt", demo["transcript"]), ("call.mp4", demo["media"]),
                              ("call_prediction", str(out))):
        assert f'"{placeholder}"' in example
        example = example.replace(f'"{placeholder}"', repr(real))
    script = tmp_path / "my_script.py"
    script.write_text(example, encoding="utf-8")
    finished = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              timeout=600, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert (out / "predictions.jsonl").is_file() and (out / "report.html").is_file()
