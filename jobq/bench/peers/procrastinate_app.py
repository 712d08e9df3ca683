"""The Procrastinate application its worker loads in `jobq bench --peers` (database from env)."""

from __future__ import annotations

from jobq.bench.peers.procrastinate_peer import app_from_env

app = app_from_env()
