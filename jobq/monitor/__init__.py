"""Operations layer: the monitor (the original's `async` and `asyncdb` tools), its filter
grammar, JSON rendering and Prometheus metrics. No SQL here: everything goes through the
store's monitoring read models (`jobq.store.base.MonitorStore`).
"""

from __future__ import annotations

from jobq.monitor.filters import Selection, parse_interval, parse_selection, parse_states
from jobq.monitor.render import to_json, to_jsonable
from jobq.monitor.service import Monitor

__all__ = [
    "Monitor",
    "Selection",
    "parse_interval",
    "parse_selection",
    "parse_states",
    "to_json",
    "to_jsonable",
]
