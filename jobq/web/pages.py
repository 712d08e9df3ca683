"""What the dashboard's Jinja2 templates (`jobq/web/templates/`) are given: the template
renderer with autoescape on, the filters for cell text, and the throughput chart's geometry.

Templates escape every value they print; nothing here builds HTML.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.templating import Jinja2Templates

from jobq.monitor.render import duration_text, to_jsonable
from jobq.store.base import ThroughputBucket

STATE_LINKS = tuple(
    (state, urlencode({"q": state}))
    for state in ("pending", "assigned", "active", "callbacks", "completed", "succeeded", "failed")
)


def cell(value: Any) -> str:
    """Human text for a table cell (the template escapes it)."""
    if value is None:
        return "-"
    if isinstance(value, dt.timedelta):
        return duration_text(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(to_jsonable(value), sort_keys=True) if value else "-"
    return str(value)


def percent(fraction: float) -> int:
    """A fraction 0..1 as a whole percentage."""
    return round(fraction * 100)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bucket of the chart: succeeded (green) below failed (red), SVG coordinates."""

    label: str
    x: str
    width: str
    ok_y: str
    ok_height: str
    bad_y: str
    bad_height: str


@dataclass(frozen=True, slots=True)
class Chart:
    """The throughput chart: stacked bars per bucket, scaled to the fullest bucket."""

    title: str
    bars: tuple[Bar, ...]
    top: int
    first: str
    last: str
    width: int
    height: int
    pad: int


def chart(buckets: Sequence[ThroughputBucket], title: str) -> Chart:
    """The chart of `buckets` (oldest first)."""
    width, height, pad = 720, 160, 28
    top = max([b.succeeded + b.failed for b in buckets] + [1])
    step = (width - pad) / max(1, len(buckets))
    bars = []
    for i, b in enumerate(buckets):
        ok = (height - 16) * b.succeeded / top
        bad = (height - 16) * b.failed / top
        bars.append(
            Bar(
                label=f"{b.start:%H:%M}Z: {b.succeeded} succeeded, {b.failed} failed",
                x=f"{pad + i * step:.1f}",
                width=f"{step * 0.8:.1f}",
                ok_y=f"{height - ok:.1f}",
                ok_height=f"{ok:.1f}",
                bad_y=f"{height - ok - bad:.1f}",
                bad_height=f"{bad:.1f}",
            )
        )
    first = f"{buckets[0].start:%H:%M}Z" if buckets else ""
    last = f"{buckets[-1].start:%H:%M}Z" if buckets else ""
    return Chart(title, tuple(bars), top, first, last, width=width, height=height, pad=pad)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("jobq.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(cell=cell, percent=percent, pyrepr=repr)
    env.globals.update(state_links=STATE_LINKS)
    return env


templates = Jinja2Templates(env=_environment())
