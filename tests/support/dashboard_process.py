"""`jobq dashboard` as a real process for tests: started on a free port, asked over HTTP,
stopped with SIGTERM, its output kept."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time

from worker_helpers import subprocess_env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dashboard_env(**extra: str) -> dict[str, str]:
    env = {**subprocess_env(), **extra}
    for name in ("JOBQ_DASHBOARD_TOKEN", "JOBQ_DB"):
        if name not in extra:
            env.pop(name, None)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "jobq", "dashboard", *args]


def get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


class Served:
    """A `jobq dashboard` process, ready to answer (its /healthz), stopped with SIGTERM."""

    def __init__(self, args: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                raise AssertionError(f"dashboard exited {self.process.returncode}: {out}{err}")
            try:
                if get(port, "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.1)

    def stop(self) -> str:
        """Stop it; everything it printed (stdout and stderr)."""
        self.process.terminate()
        try:
            out, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return out + err
