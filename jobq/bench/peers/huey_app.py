"""The Huey application Huey's consumer loads in `jobq bench --peers` (storage from env)."""

from __future__ import annotations

from jobq.bench.peers.huey_peer import _app_from_env

huey, noop, sleep10ms = _app_from_env()
