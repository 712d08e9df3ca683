"""The web dashboard: a Starlette ASGI app over one `Database` (`jobq dashboard --db URL`).

    app = jobq.web.create_app(db, token="s3cret")      # or authorize=lambda request: ...
    # mount it in your own Starlette app: Mount("/jobq", app=app)

Pages: `/` (queues with their load and actions, dispatchers, throughput/failure chart),
`/dispatchers`, `/jobs?q=<states and filters>&offset=&limit=` (the monitor's filter grammar),
`/jobs/{id}` (call, times, annotations, progress bar, callbacks tree, traceback, actions;
it refreshes itself while the job is unfinished), `/metrics` (Prometheus), and JSON at
`/api/status`, `/api/jobs/{id}`.

Reading needs no credentials (bind to 127.0.0.1, the default, or put it behind your own
auth). Actions (POST `/actions/<name>`) need the token: as `Authorization: Bearer <token>`,
or the cookie set by the login form (HttpOnly, SameSite=Strict, so other sites cannot post
with it); or an `authorize(request) -> bool` hook. With neither, actions are refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from jobq.errors import JobNotFound, JobqError
from jobq.monitor.metrics import CONTENT_TYPE, database_metrics
from jobq.monitor.render import to_jsonable
from jobq.monitor.service import Monitor
from jobq.web import pages as P  # noqa: N812

if TYPE_CHECKING:
    from jobq.database import Database

__all__ = ["create_app"]

_COOKIE = "jobq_dashboard"
_ACTIONS = ("cancel", "fail", "retry", "pause", "resume", "agent-size")


def create_app(
    db: Database,
    *,
    token: str | None = None,
    authorize: Callable[[Request], bool] | None = None,
    this_uuid: str | None = None,
    chart_buckets: int = 30,
    chart_width: dt.timedelta = dt.timedelta(minutes=2),
) -> Starlette:
    """The dashboard as an ASGI app. `token` (or `authorize`) enables the actions."""
    monitor = Monitor(db, this_uuid=this_uuid)
    cookie_value = (
        None if token is None else hashlib.sha256(b"jobq-dashboard:" + token.encode()).hexdigest()
    )

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def logged_in(request: Request) -> bool:
        if cookie_value is None:
            return False
        return hmac.compare_digest(request.cookies.get(_COOKIE, ""), cookie_value)

    def allowed(request: Request) -> bool:
        if authorize is not None:
            return bool(authorize(request))
        if token is None:
            return False
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and hmac.compare_digest(header[7:], token):
            return True
        return logged_in(request)

    can_act = token is not None or authorize is not None

    def page(request: Request, title: str, body: str, **kw: Any) -> HTMLResponse:
        msg = request.query_params.get("msg", "")
        return HTMLResponse(P.layout(root(request), title, body, msg=msg, **kw))

    # -- pages -----------------------------------------------------------------------------------
    def queues_html(request: Request, acting: bool) -> str:
        r = root(request)
        status = monitor.status()
        rows = []
        for q in status.queues:
            capacity = q.capacity
            running = q.assigned + q.active
            load = f"{running}/{capacity}" + (
                f" ({100 * running / capacity:.0f}%)" if capacity else ""
            )
            actions = ""
            if acting:
                action = "resume" if q.paused else "pause"
                actions = P.action_form(r, action, {"queue": q.name}, action)
            rows.append(
                [
                    P.esc(repr(q.name)),
                    '<span class="paused">paused</span>' if q.paused else "no",
                    str(q.pending),
                    str(q.due),
                    str(q.active),
                    str(q.callbacks),
                    str(q.succeeded),
                    f'<span class="failed">{q.failed}</span>' if q.failed else "0",
                    load,
                    actions,
                ]
            )
        headers = ("queue", "paused", "pending", "due", "active", "callbacks", "succeeded")
        return P.table((*headers, "failed", "load", "actions"), rows, numeric=(2, 3, 4, 5, 6, 7))

    def dispatchers_html(request: Request) -> str:
        rows = []
        for d in monitor.dispatchers():
            agents = "<br>".join(
                P.esc(f"{a.queue!r}/{a.name}: {a.held}/{a.size}")
                + (f" filter <code>{P.esc(a.filter)}</code>" if a.filter else "")
                for a in d.agents
            )
            rows.append(
                [
                    P.esc(d.uuid),
                    f'<span class="{d.state}">{d.state}</span>',
                    P.esc(f"{d.host} (pid {d.pid})"),
                    P.show(d.last_ping),
                    P.show(d.since_ping),
                    agents or "-",
                ]
            )
        return P.table(("uuid", "state", "host", "last ping", "since ping", "agents"), rows)

    def home(request: Request) -> Response:
        width = chart_width
        buckets = monitor.throughput(width, chart_buckets)
        acting = can_act and (logged_in(request) or authorize is not None)
        body = (
            "<h2>Queues</h2>"
            + queues_html(request, acting)
            + "<h2>Dispatchers</h2>"
            + dispatchers_html(request)
            + P.chart(buckets, f"Completed jobs per {int(width.total_seconds())} s")
            + P.login_form(root(request), can_act, logged_in(request))
        )
        return page(request, "Queues", body, refresh=10)

    def dispatchers(request: Request) -> Response:
        return page(request, "Dispatchers", dispatchers_html(request), refresh=10)

    def jobs(request: Request) -> Response:
        r = root(request)
        text = request.query_params.get("q", "pending").strip() or "pending"
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
            limit = min(500, max(1, int(request.query_params.get("limit", "50"))))
            query = monitor.select(shlex.split(text)).query
        except ValueError as error:
            body = _filter_form(r, text) + f'<p class="failed">{P.esc(error)}</p>'
            return HTMLResponse(P.layout(r, "Jobs", body), status_code=400)
        records = monitor.list(query, offset=offset, limit=limit + 1)
        more, records = len(records) > limit, records[:limit]
        total = monitor.count(query)
        nav = []
        if offset:
            prev = urlencode({"q": text, "offset": max(0, offset - limit), "limit": limit})
            nav.append(f'<a href="{P.esc(r)}/jobs?{P.esc(prev)}" rel="prev">previous</a>')
        if more:
            nxt = urlencode({"q": text, "offset": offset + limit, "limit": limit})
            nav.append(f'<a href="{P.esc(r)}/jobs?{P.esc(nxt)}" rel="next">next</a>')
        shown = f"{offset + 1}-{offset + len(records)}" if records else "0"
        body = (
            _filter_form(r, text)
            + f"<p>{shown} of <b id='total'>{total}</b> job(s) · {' · '.join(nav)}</p>"
            + P.table(P.JOB_HEADERS, P.jobs_rows(r, monitor.rows(records)), numeric=(0,))
        )
        return page(request, f"Jobs: {text}", body)

    def job(request: Request) -> Response:
        r = root(request)
        job_id = int(request.path_params["job_id"])
        detail = request.query_params.get("detail", "default")
        try:
            summary = monitor.job(job_id)
            tree = monitor.tree(job_id)
            trace = monitor.traceback(job_id, detail)
        except JobNotFound as error:
            return HTMLResponse(P.layout(r, "Job", P.esc(error)), status_code=404)
        except ValueError as error:
            return HTMLResponse(P.layout(r, "Job", P.esc(error)), status_code=400)
        acting = can_act and (logged_in(request) or authorize is not None)
        rows = []
        for key, value in summary.items():
            if key == "status":
                cell = P.status_cell(value, summary.failed)
            elif key == "progress":
                cell = P.progress_bar(value)
            elif key == "result":
                cell = f"<pre>{P.esc(value)}</pre>" if value else "-"
            elif key in ("parent", "waiting on") and value:
                cell = f'<a href="{P.esc(r)}/jobs/{value}">{value}</a>'
            else:
                cell = P.show(value)
            rows.append([P.esc(key), cell])
        actions = []
        if acting:
            if summary.status == "pending":
                actions.append(P.action_form(r, "cancel", {"job_id": job_id}, "cancel (pull)"))
            if summary.status in ("new", "pending", "assigned"):
                actions.append(P.action_form(r, "fail", {"job_id": job_id}, "fail"))
            if summary.status == "completed" and summary.failed:
                actions.append(P.action_form(r, "retry", {"job_id": job_id}, "retry"))
        body = (
            P.table(("", ""), rows)
            + (f"<h2>Actions</h2><p>{' '.join(actions)}</p>" if actions else "")
            + f'<h2>Callbacks</h2><div id="tree">{P.tree_html(r, tree)}</div>'
        )
        if trace is not None:
            links = " · ".join(
                f'<a href="{P.esc(r)}/jobs/{job_id}?detail={d}">{d}</a>'
                for d in ("brief", "default", "verbose")
            )
            body += f'<h2>Traceback ({P.esc(detail)})</h2><p>{links}</p><pre id="traceback">'
            body += f"{P.esc(trace)}</pre>"
        refresh = None if summary.status == "completed" else 2
        return page(request, f"Job {job_id}", body, refresh=refresh)

    def metrics(request: Request) -> Response:
        return Response(database_metrics(monitor), media_type=CONTENT_TYPE)

    def api_status(request: Request) -> Response:
        return JSONResponse(to_jsonable(monitor.status()))

    def api_job(request: Request) -> Response:
        try:
            return JSONResponse(to_jsonable(monitor.job(int(request.path_params["job_id"]))))
        except JobNotFound as error:
            return JSONResponse({"error": str(error)}, status_code=404)

    # -- auth and actions ------------------------------------------------------------------------
    async def form(request: Request) -> dict[str, str]:
        body = (await request.body()).decode()
        return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}

    async def login(request: Request) -> Response:
        r = root(request)
        fields = await form(request)
        if token is None or not hmac.compare_digest(fields.get("token", ""), token):
            return HTMLResponse(P.layout(r, "Log in", "wrong token"), status_code=403)
        response = RedirectResponse(f"{r}/?{urlencode({'msg': 'logged in'})}", status_code=303)
        response.set_cookie(
            _COOKIE, cookie_value or "", httponly=True, samesite="strict", path=r or "/"
        )
        return response

    async def logout(request: Request) -> Response:
        r = root(request)
        response = RedirectResponse(f"{r}/", status_code=303)
        response.delete_cookie(_COOKIE, path=r or "/")
        return response

    async def action(request: Request) -> Response:
        r = root(request)
        name = request.path_params["action"]
        if not allowed(request):
            return JSONResponse({"error": "actions need the dashboard token"}, status_code=403)
        if name not in _ACTIONS:
            return JSONResponse({"error": f"unknown action {name!r}"}, status_code=404)
        fields = await form(request)
        try:
            location = await run_in_threadpool(perform, r, name, fields)
        except KeyError as error:
            return JSONResponse({"error": f"missing field {error}"}, status_code=400)
        except JobNotFound as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        except (JobqError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(location, status_code=303)
        return JSONResponse({"ok": True, "location": location})

    def perform(r: str, name: str, fields: dict[str, str]) -> str:
        """Run one action (in a worker thread); returns where to go next."""
        if name in ("cancel", "fail", "retry"):
            job_id = int(fields["job_id"])
            if name == "cancel":
                monitor.cancel(job_id)
                target, msg = job_id, f"job {job_id} pulled from its queue"
            elif name == "fail":
                monitor.fail(job_id, fields.get("reason") or "failed from the dashboard")
                target, msg = job_id, f"job {job_id} failed"
            else:
                new = monitor.retry(job_id)
                target, msg = new.id, f"job {job_id} retried as job {new.id}"
            location = f"{r}/jobs/{target}?{urlencode({'msg': msg})}"
        elif name in ("pause", "resume"):
            queue = fields["queue"]
            (monitor.pause if name == "pause" else monitor.resume)(queue)
            location = f"{r}/?{urlencode({'msg': f'queue {queue!r} {name}d'})}"
        else:
            queue, agent, size = fields["queue"], fields["name"], int(fields["size"])
            monitor.agent_size(queue, agent, size, fields.get("uuid") or None)
            location = f"{r}/?{urlencode({'msg': f'agent {agent!r} size {size}'})}"
        return location

    routes = [
        Route("/", home),
        Route("/dispatchers", dispatchers),
        Route("/jobs", jobs),
        Route("/jobs/{job_id:int}", job),
        Route("/metrics", metrics),
        Route("/api/status", api_status),
        Route("/api/jobs/{job_id:int}", api_job),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/actions/{action}", action, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _filter_form(root: str, text: str) -> str:
    return (
        f'<form method="get" action="{P.esc(root)}/jobs">States and filters: '
        f'<input type="text" name="q" value="{P.esc(text)}" '
        f'placeholder="failed queue:reports callable:send* end:since1H"> '
        f"<button>show</button></form>"
    )
