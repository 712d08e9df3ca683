"""The pi quickstart (examples/pi.py) runs as one command on SQLite and estimates pi."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pi.py"


def test_pi_example_runs_and_estimates_pi(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--samples", "200000", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    estimates = [float(x) for x in re.findall(r"pi ~= (\d+\.\d+)", done.stdout)]
    assert len(estimates) == 2, done.stdout
    assert all(abs(e - 3.14159) < 0.05 for e in estimates), estimates
    assert re.search(r"one part / parallel: \d+\.\d+x", done.stdout), done.stdout
    assert "2 parts of 100,000 samples" in done.stdout
