"""The dashboard's routes: one handler per page, action and API answer, each reading the
`Monitor` and settings that `create_app` put in `app.state`, and rendering a template."""

from __future__ import annotations

import hmac
import shlex
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from jobq.errors import JobNotFound, JobqError
from jobq.monitor.metrics import CONTENT_TYPE, database_metrics
from jobq.monitor.render import to_jsonable
from jobq.monitor.service import Monitor
from jobq.web import auth
from jobq.web.pages import chart, templates

ACTIONS = ("cancel", "fail", "retry", "pause", "resume", "agent-size")


def _monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


def _root(request: Request) -> str:
    """The mount path the links start with ("" at the top)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _render(
    request: Request,
    template: str,
    title: str,
    *,
    status_code: int = 200,
    refresh: int | None = None,
    msg: str = "",
    **context: Any,
) -> Response:
    context.update(root=_root(request), title=title, refresh=refresh, msg=msg)
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _message(request: Request, title: str, text: object, status_code: int) -> Response:
    return _render(request, "message.html", title, status_code=status_code, text=str(text))


# -- pages ---------------------------------------------------------------------------------------
def home(request: Request) -> Response:
    """Queues with their load (and pause / resume), dispatchers, the throughput chart."""
    monitor, settings = _monitor(request), auth.settings_of(request)
    width = settings.chart_width
    buckets = monitor.throughput(width, settings.chart_buckets)
    return _render(
        request,
        "home.html",
        "Queues",
        refresh=10,
        msg=request.query_params.get("msg", ""),
        status=monitor.status(),
        dispatchers=monitor.dispatchers(),
        chart=chart(buckets, f"Completed jobs per {int(width.total_seconds())} s"),
        acting=auth.acting(request),
        can_act=settings.can_act,
        logged_in=auth.logged_in(request),
    )


def dispatchers(request: Request) -> Response:
    """Every dispatcher record with its agents and their load."""
    return _render(
        request,
        "dispatchers.html",
        "Dispatchers",
        refresh=10,
        msg=request.query_params.get("msg", ""),
        dispatchers=_monitor(request).dispatchers(),
    )


def jobs(request: Request) -> Response:
    """The jobs selected by `q` (the monitor's filter grammar), a page at a time."""
    monitor, root = _monitor(request), _root(request)
    text = request.query_params.get("q", "pending").strip() or "pending"
    try:
        offset = max(0, int(request.query_params.get("offset", "0")))
        limit = min(500, max(1, int(request.query_params.get("limit", "50"))))
        query = monitor.select(shlex.split(text)).query
    except ValueError as error:
        return _render(request, "jobs.html", "Jobs", status_code=400, text=text, error=str(error))
    records = monitor.list(query, offset=offset, limit=limit + 1)
    more, records = len(records) > limit, records[:limit]
    total = monitor.count(query)
    nav = []
    if offset:
        prev = urlencode({"q": text, "offset": max(0, offset - limit), "limit": limit})
        nav.append(("prev", "previous", f"{root}/jobs?{prev}"))
    if more:
        nxt = urlencode({"q": text, "offset": offset + limit, "limit": limit})
        nav.append(("next", "next", f"{root}/jobs?{nxt}"))
    return _render(
        request,
        "jobs.html",
        f"Jobs: {text}",
        msg=request.query_params.get("msg", ""),
        text=text,
        error=None,
        shown=f"{offset + 1}-{offset + len(records)}" if records else "0",
        total=total,
        nav=nav,
        rows=monitor.rows(records),
    )


def job(request: Request) -> Response:
    """A job: its summary, actions, callbacks tree and traceback; it refreshes itself while
    the job is unfinished."""
    monitor = _monitor(request)
    job_id = int(request.path_params["job_id"])
    detail = request.query_params.get("detail", "default")
    try:
        summary = monitor.job(job_id)
        node = monitor.tree(job_id)
        trace = monitor.traceback(job_id, detail)
    except JobNotFound as error:
        return _message(request, "Job", error, 404)
    except ValueError as error:
        return _message(request, "Job", error, 400)
    actions = []
    if auth.acting(request):
        if summary.status == "pending":
            actions.append(("cancel", "cancel (pull)"))
        if summary.status in ("new", "pending", "assigned"):
            actions.append(("fail", "fail"))
        if summary.status == "completed" and summary.failed:
            actions.append(("retry", "retry"))
    return _render(
        request,
        "job.html",
        f"Job {job_id}",
        refresh=None if summary.status == "completed" else 2,
        msg=request.query_params.get("msg", ""),
        summary=summary,
        node=node,
        trace=trace,
        detail=detail,
        actions=actions,
    )


def metrics(request: Request) -> Response:
    """Prometheus metrics of the whole database."""
    return Response(database_metrics(_monitor(request)), media_type=CONTENT_TYPE)


def api_status(request: Request) -> Response:
    """`jobq status --json`, as JSON over HTTP."""
    return JSONResponse(to_jsonable(_monitor(request).status()))


def api_job(request: Request) -> Response:
    """`jobq job ID --json`, as JSON over HTTP."""
    try:
        return JSONResponse(to_jsonable(_monitor(request).job(int(request.path_params["job_id"]))))
    except JobNotFound as error:
        return JSONResponse({"error": str(error)}, status_code=404)


# -- auth and actions ----------------------------------------------------------------------------
async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode()
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


async def login(request: Request) -> Response:
    """Check the token and set the login cookie (HttpOnly, SameSite=Strict)."""
    root, settings = _root(request), auth.settings_of(request)
    fields = await _form(request)
    token = settings.token
    if token is None or not hmac.compare_digest(fields.get("token", ""), token):
        return _message(request, "Log in", "wrong token", 403)
    response = RedirectResponse(f"{root}/?{urlencode({'msg': 'logged in'})}", status_code=303)
    response.set_cookie(
        auth.COOKIE,
        settings.cookie_value or "",
        httponly=True,
        samesite="strict",
        path=root or "/",
    )
    return response


async def logout(request: Request) -> Response:
    root = _root(request)
    response = RedirectResponse(f"{root}/", status_code=303)
    response.delete_cookie(auth.COOKIE, path=root or "/")
    return response


async def action(request: Request) -> Response:
    """POST /actions/<name>: perform it if allowed; redirect a browser, answer JSON otherwise."""
    name = request.path_params["action"]
    if not auth.allowed(request):
        return JSONResponse({"error": "actions need the dashboard token"}, status_code=403)
    if name not in ACTIONS:
        return JSONResponse({"error": f"unknown action {name!r}"}, status_code=404)
    fields = await _form(request)
    monitor, root = _monitor(request), _root(request)
    try:
        location = await run_in_threadpool(_perform, monitor, root, name, fields)
    except KeyError as error:
        return JSONResponse({"error": f"missing field {error}"}, status_code=400)
    except JobNotFound as error:
        return JSONResponse({"error": str(error)}, status_code=404)
    except (JobqError, ValueError) as error:
        return JSONResponse({"error": str(error)}, status_code=409)
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse(location, status_code=303)
    return JSONResponse({"ok": True, "location": location})


def _perform(monitor: Monitor, root: str, name: str, fields: dict[str, str]) -> str:
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
        return f"{root}/jobs/{target}?{urlencode({'msg': msg})}"
    if name in ("pause", "resume"):
        queue = fields["queue"]
        (monitor.pause if name == "pause" else monitor.resume)(queue)
        return f"{root}/?{urlencode({'msg': f'queue {queue!r} {name}d'})}"
    queue, agent, size = fields["queue"], fields["name"], int(fields["size"])
    monitor.agent_size(queue, agent, size, fields.get("uuid") or None)
    return f"{root}/?{urlencode({'msg': f'agent {agent!r} size {size}'})}"


ROUTES = [
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
