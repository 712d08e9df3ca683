"""HTML of the dashboard: server-rendered pages, inline CSS and inline SVG (no JS build).

Every value shown is escaped with `html.escape`; links are prefixed with the app's mount
path (`root`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from jobq.monitor.render import duration_text, to_jsonable
from jobq.monitor.views import JobRow, TreeNode
from jobq.store.base import ThroughputBucket

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}
header a{color:#cfd8ff;text-decoration:none}header b{font-size:1.1em}
main{padding:1em 1.2em}h2{font-size:1.1em;margin:1.2em 0 .4em}
table{border-collapse:collapse;background:#fff;margin-bottom:1em}
th,td{border:1px solid #dde1e8;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eef0f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pending{color:#0a7d9c}.assigned{color:#2448b8}.active{color:#a36b00}.callbacks{color:#8a2db0}
.completed,.alive,.succeeded{color:#1c7c33}.failed,.dead{color:#c0262d;font-weight:600}
.deactivated{color:#888}.paused{color:#a36b00;font-weight:600}
pre{background:#fff;border:1px solid #dde1e8;padding:.6em;overflow:auto;max-width:100em}
form.inline{display:inline}input[type=text]{width:32em}button{cursor:pointer}
.bar{width:20em;height:1em;background:#e4e7ec;border-radius:.5em;overflow:hidden}
.bar>div{height:100%;background:#3b82f6}.msg{padding:.5em;background:#fff7d6}
ul.tree{margin:.2em 0 .2em 1.2em;padding:0}
"""

_STATES_LINKS = ("pending", "assigned", "active", "callbacks", "completed", "succeeded", "failed")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def show(value: Any) -> str:
    """Human text for a cell (escaped)."""
    if value is None:
        return "-"
    if isinstance(value, dt.timedelta):
        return duration_text(value)
    if isinstance(value, dt.datetime):
        return esc(value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return esc(json.dumps(to_jsonable(value), sort_keys=True)) if value else "-"
    return esc(value)


def status_cell(status: str, failed: bool | None = False) -> str:
    if status == "completed" and failed:
        return '<span class="failed">failed</span>'
    return f'<span class="{esc(status)}">{esc(status)}</span>'


def layout(root: str, title: str, body: str, *, refresh: int | None = None, msg: str = "") -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    links = " ".join(
        f'<a href="{esc(root)}/jobs?{urlencode({"q": s})}">{s}</a>' for s in _STATES_LINKS
    )
    note = f'<p class="msg">{esc(msg)}</p>' if msg else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{meta}"
        f"<title>{esc(title)} · jobq</title><style>{CSS}</style></head><body>"
        f'<header><b><a href="{esc(root)}/">jobq</a></b>'
        f'<a href="{esc(root)}/">queues</a><a href="{esc(root)}/dispatchers">dispatchers</a>'
        f"<span>jobs: {links}</span>"
        f'<a href="{esc(root)}/metrics">metrics</a></header>'
        f"<main><h1>{esc(title)}</h1>{note}{body}</main></body></html>"
    )


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def action_form(root: str, action: str, fields: dict[str, Any], label: str) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in fields.items()
    )
    return (
        f'<form class="inline" method="post" action="{esc(root)}/actions/{esc(action)}">'
        f'{inputs}<button type="submit" name="do" value="{esc(action)}">{esc(label)}</button>'
        "</form>"
    )


def login_form(root: str, can_act: bool, logged_in: bool) -> str:
    if not can_act:
        return "<p><i>Actions are disabled: start the dashboard with a token.</i></p>"
    if logged_in:
        return f'<form method="post" action="{esc(root)}/logout"><button>log out</button></form>'
    return (
        f'<form method="post" action="{esc(root)}/login">Token for actions: '
        f'<input type="password" name="token" autocomplete="off"> <button>log in</button></form>'
    )


def chart(buckets: Sequence[ThroughputBucket], title: str) -> str:
    """Stacked bars (succeeded green, failed red) per bucket, as inline SVG."""
    width, height, pad = 720, 160, 28
    top = max([b.succeeded + b.failed for b in buckets] + [1])
    bar = (width - pad) / max(1, len(buckets))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20}" '
        f'role="img" aria-label="{esc(title)}" id="throughput">',
        f'<text x="0" y="12" font-size="11">{top}</text>',
        f'<line x1="{pad}" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/>',
    ]
    for i, b in enumerate(buckets):
        x = pad + i * bar
        ok_h = (height - 16) * b.succeeded / top
        bad_h = (height - 16) * b.failed / top
        label = f"{b.start:%H:%M}Z: {b.succeeded} succeeded, {b.failed} failed"
        parts.append(
            f"<g><title>{esc(label)}</title>"
            f'<rect class="ok" x="{x:.1f}" y="{height - ok_h:.1f}" width="{bar * 0.8:.1f}" '
            f'height="{ok_h:.1f}" fill="#2f9e44"/>'
            f'<rect class="bad" x="{x:.1f}" y="{height - ok_h - bad_h:.1f}" '
            f'width="{bar * 0.8:.1f}" height="{bad_h:.1f}" fill="#e03131"/></g>'
        )
    if buckets:
        parts.append(
            f'<text x="{pad}" y="{height + 14}" font-size="11">{buckets[0].start:%H:%M}Z</text>'
            f'<text x="{width - 40}" y="{height + 14}" font-size="11">'
            f"{buckets[-1].start:%H:%M}Z</text>"
        )
    parts.append("</svg>")
    return f"<h2>{esc(title)}</h2>" + "".join(parts)


def jobs_rows(root: str, rows: Sequence[JobRow]) -> list[list[str]]:
    return [
        [
            f'<a href="{esc(root)}/jobs/{r.id}">{r.id}</a>',
            status_cell(r.status, r.failed),
            esc(repr(r.queue)),
            esc(r.agent or "-"),
            esc(r.call),
            show(r.begin_after),
            show(r.wait),
            show(r.active),
        ]
        for r in rows
    ]


JOB_HEADERS = ("id", "status", "queue", "agent", "call", "begin after", "wait", "active")


def tree_html(root: str, node: TreeNode) -> str:
    children = "".join(f"<li>{tree_html(root, c)}</li>" for c in node.callbacks)
    waits = f" (waits on {node.waiting_on})" if node.waiting_on else ""
    own = (
        f'<a href="{esc(root)}/jobs/{node.id}">{node.id}</a> '
        f"{status_cell(node.status, node.failed)} {esc(node.call)}{waits}"
    )
    return own + (f'<ul class="tree">{children}</ul>' if children else "")


def progress_bar(fraction: float | None) -> str:
    if fraction is None:
        return "-"
    pct = round(fraction * 100)
    return (
        f'<div class="bar" role="progressbar" aria-valuenow="{pct}" aria-valuemin="0" '
        f'aria-valuemax="100"><div style="width:{pct}%"></div></div> {pct}%'
    )
