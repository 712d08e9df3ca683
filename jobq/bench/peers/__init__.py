"""Peer job systems for `jobq bench --peers`, each measured by its own adapter module.

Peers are optional (`pip install 'jobq[bench]'`): nothing here imports a peer library until
`--peers` asks for it, and a missing one is reported as not installed, never an error. Every
adapter measures the workloads with jobq's definitions (see `jobq.bench.workloads`): one-at-a-
time enqueue, bulk enqueue (n/a where the peer has none), a drain of no-op jobs by one worker
process started after enqueueing, put-to-start latency with jobs 20 ms apart on an idle worker,
puts from 8 threads of one process, and the 10 ms sleep workload; each in two profiles: the
peer's worker at its documented defaults, and tuned (its concurrency set to `--agent-size` (8),
logging quiet). Each adapter's docstring says how, and its `System`s say the settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from jobq.bench.workloads import Settings, System

INSTALL_HINT = "pip install 'jobq[bench]'"

# (peer, adapter module); the adapter imports the peer library only in `systems()`.
PEERS: list[tuple[str, str]] = [
    ("huey", "jobq.bench.peers.huey_peer"),
    ("pgqueuer", "jobq.bench.peers.pgqueuer_peer"),
    ("procrastinate", "jobq.bench.peers.procrastinate_peer"),
]


def peer_systems(engine: str, settings: Settings, warn: Callable[[str], None]) -> list[System]:
    """The installed peers' systems on `engine`, each profile's; a line through `warn` for
    each missing peer."""
    systems: list[System] = []
    for peer, module_name in PEERS:
        module = importlib.import_module(module_name)
        if engine not in module.ENGINES:
            continue
        try:
            systems.extend(module.systems(engine, settings))
        except ImportError as error:
            warn(f"{peer}: not installed: {INSTALL_HINT} ({error})")
    return systems
