"""A plain `pip install jobq` runs SQLite workers: the extras (`postgres`, `dashboard`) are
needed only by what uses them, and asking for such a feature without its extra says which
one to install (issue: "Core install is heavy").

The extras' packages are installed in the test environment, so each process here hides them
(`sys.modules[name] = None` makes `import name` fail as if the package were absent).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jobfuncs
from worker_helpers import subprocess_env, wait_until

import jobq

EXTRAS_PACKAGES = ("psycopg", "psycopg_pool", "starlette", "uvicorn", "jinja2")

LAUNCHER = f"""
import sys
for name in {EXTRAS_PACKAGES!r}:
    sys.modules[name] = None
from jobq.cli import main
main()
"""


def _launcher(tmp_path: Path) -> Path:
    path = tmp_path / "without_extras.py"
    path.write_text(LAUNCHER)
    return path


def test_a_sqlite_worker_runs_without_any_extra(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    with jobq.connect(url) as db:
        job = db.queue().put(jobq.Job(jobfuncs.add, 20, 22))
        worker = subprocess.Popen(
            [sys.executable, str(_launcher(tmp_path)), "worker", "--db", url],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until(lambda: job.refresh().status == "completed", 30, "the job to complete")
            assert job.result == 42
        finally:
            worker.terminate()
            output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, output


def test_postgres_without_its_extra_names_the_extra(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/test"
    code = (
        f"import sys\nfor name in {EXTRAS_PACKAGES!r}:\n    sys.modules[name] = None\n"
        "import jobq\n"
        "try:\n"
        f"    jobq.connect({url!r})\n"
        "except jobq.MissingExtra as error:\n"
        "    print('refused:', error, isinstance(error, ValueError))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "refused: PostgreSQL" in done.stdout
    assert "pip install 'jobq[postgres]'" in done.stdout and "True" in done.stdout

    cli = subprocess.run(
        [sys.executable, str(_launcher(tmp_path)), "status", "--db", url],
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert cli.returncode != 0
    assert "jobq[postgres]" in cli.stdout + cli.stderr
    assert "Traceback" not in cli.stdout + cli.stderr


def test_the_dashboard_without_its_extra_names_the_extra(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    done = subprocess.run(
        [sys.executable, str(_launcher(tmp_path)), "dashboard", "--db", url, "--port", "0"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pip install 'jobq[dashboard]'" in done.stderr and "Traceback" not in done.stderr
