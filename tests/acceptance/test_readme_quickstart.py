"""The README's quickstart, run as printed: its files and shell lines are read from README.md
(so the two cannot drift) and run in an empty folder, the worker started by `jobq` from PATH
with nothing on PYTHONPATH, as a user's shell would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block of the README's "Quickstart" section."""
    text = README.read_text()
    section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


def test_the_quickstart_runs_as_printed(tmp_path: Path) -> None:
    blocks = quickstart_blocks()
    files = {}
    for language, code in blocks:
        first = code.splitlines()[0]
        if language == "python" and re.fullmatch(r"# \w+\.py", first):
            files[first[2:]] = code
    assert set(files) == {"reports.py", "app.py"}, files.keys()
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    # The shell lines, up to the one that stops the worker (what follows shows other set-ups).
    shell: list[str] = []
    for language, code in blocks:
        if language == "sh":
            shell.append(code)
            if "kill %1" in code:
                break
    script = "\n".join(shell)
    assert "jobq worker --db sqlite:///jobq.db &" in script and "python app.py" in script

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JOBQ_PATH")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", script + "\nwait"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    lines = done.stdout.splitlines()
    assert "/files/42-A4.pdf" in lines, output
    assert "pending" in lines and "/files/43-A4.pdf" in lines, output
    assert "done: /files/42-A4.pdf" in lines, output  # the callback, printed by the worker
    assert "Traceback" not in output, output
