"""The dashboard's routes: one handler per page, action and API answer, each reading the
`Monitor` and settings that `create_app` put in `app.state`, and rendering a template."""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from jobq.errors import JobExpired, JobNotFound, JobqError
from jobq.monitor.metrics import CONTENT_TYPE, database_metrics
from jobq.monitor.render import to_jsonable
from jobq.monitor.service import Monitor
from jobq.web import auth
from jobq.web.pages import chart, templates

MAX_OFFSET = 2**31 - 1  # past any listing; larger numbers only overflow the database's ints
ACTIONS = (
    "cancel", "fail", "retry", "pause", "resume", "agent-size", "schedule-pause", "schedule-resume",
)  # fmt: skip


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
    context.update(
        root=_root(request),
        title=title,
        refresh=refresh,
        msg=msg,
        csrf=auth.csrf_token(request),
        logged_in=auth.logged_in(request),
    )
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _message(request: Request, title: str, text: object, status_code: int) -> Response:
    return _render(request, "message.html", title, status_code=status_code, text=str(text))


# -- pages ---------------------------------------------------------------------------------------
def home(request: Request) -> Response:
    """Queues with their load (and pause / resume), schedules with their next and last run
    (and pause / resume), dispatchers, the throughput chart."""
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
        schedules=monitor.db.schedules(),
        now=monitor.now(),
        dispatchers=monitor.dispatchers(),
        chart=chart(buckets, f"Completed jobs per {int(width.total_seconds())} s"),
        acting=auth.acting(request),
        can_act=settings.required,
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
        offset = min(MAX_OFFSET, max(0, int(request.query_params.get("offset", "0"))))
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
    except JobExpired as error:  # pruned at its keep_result expiry: say when and why
        body = {
            "error": str(error),
            "expired_at": error.expires_at.isoformat(),
            "pruned_at": error.pruned_at.isoformat(),
            "reason": error.reason,
        }
        return JSONResponse(body, status_code=404)
    except JobNotFound as error:
        return JSONResponse({"error": str(error)}, status_code=404)


# -- auth and actions ----------------------------------------------------------------------------
async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode(errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _refuse(request: Request, text: str, status_code: int = 403) -> Response:
    """A refusal: a page for a browser, JSON otherwise."""
    if "text/html" in request.headers.get("accept", ""):
        return _message(request, "Refused", text, status_code)
    return JSONResponse({"error": text}, status_code=status_code)


def _safe_next(request: Request, target: str) -> str:
    """Where to go after logging in: a path of this dashboard (never another site)."""
    root = _root(request)
    ours = target.startswith(root + "/") and not target.startswith("//")
    if ours and "\\" not in target and not urlsplit(target).netloc:
        return target
    return f"{root}/"


def _login_form(request: Request, target: str, error: str = "", status_code: int = 200) -> Response:
    return _render(
        request,
        "login.html",
        "Log in",
        status_code=status_code,
        msg=request.query_params.get("msg", ""),
        error=error,
        next=_safe_next(request, target),
        has_token=auth.settings_of(request).token is not None,
    )


def login_page(request: Request) -> Response:
    """GET /login: the login form (`next`: where to go afterwards)."""
    return _login_form(request, request.query_params.get("next", ""))


async def login(request: Request) -> Response:
    """POST /login: check the token (constant time), start a signed session, go to `next`.
    A wrong token shows the form again (401)."""
    fields = await _form(request)
    refusal = auth.check_post(request, fields, need_csrf=False)
    if refusal is not None:
        return _refuse(request, refusal)
    target = fields.get("next", "")
    if auth.settings_of(request).token is None:
        return _login_form(request, target, "this dashboard has no token to log in with", 400)
    if not auth.token_matches(request, fields.get("token", "")):
        return _login_form(request, target, "wrong token", 401)
    sessions = auth.settings_of(request).sessions
    response = RedirectResponse(_safe_next(request, target), status_code=303)
    auth.set_cookie(request, response, auth.SESSION_COOKIE, sessions.issue(), sessions.max_age)
    return response


async def logout(request: Request) -> Response:
    """POST /logout: end the session (its id is refused from now on) and clear the cookie."""
    fields = await _form(request)
    who = auth.identity(request)
    if who is not None and who.kind == "session":
        refusal = auth.check_post(request, fields)
        if refusal is not None:
            return _refuse(request, refusal)
        auth.settings_of(request).sessions.revoke(who.sid)
    location = f"{_root(request)}/login?{urlencode({'msg': 'logged out'})}"
    response = RedirectResponse(location, status_code=303)
    auth.delete_cookie(request, response, auth.SESSION_COOKIE)
    return response


async def action(request: Request) -> Response:
    """POST /actions/<name>: perform it if allowed; redirect a browser, answer JSON otherwise."""
    name = request.path_params["action"]
    if not auth.acting(request):
        return _refuse(request, "actions need the dashboard token")
    fields = await _form(request)
    refusal = auth.check_post(request, fields)
    if refusal is not None:
        return _refuse(request, refusal)
    if name not in ACTIONS:
        return JSONResponse({"error": f"unknown action {name!r}"}, status_code=404)
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
    if name in ("schedule-pause", "schedule-resume"):
        schedule = fields["schedule"]
        if name == "schedule-pause":
            monitor.db.pause_schedule(schedule)
        else:
            monitor.db.resume_schedule(schedule)
        return f"{root}/?{urlencode({'msg': f'schedule {schedule!r} {name[9:]}d'})}"
    queue, agent, size = fields["queue"], fields["name"], int(fields["size"])
    monitor.agent_size(queue, agent, size, fields.get("uuid") or None)
    return f"{root}/?{urlencode({'msg': f'agent {agent!r} size {size}'})}"


def healthz(request: Request) -> Response:
    """Open to all: the process answers (no job data, no database read)."""
    return Response("ok\n", media_type="text/plain")


Endpoint = Callable[[Request], Response | Awaitable[Response]]


def _guarded(kind: str, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """`endpoint` behind the read check: with auth configured, a page without it goes to the
    login form (keeping where it was going), an API answer is 401 JSON."""
    is_async = inspect.iscoroutinefunction(endpoint)

    async def guarded(request: Request) -> Response:
        if not auth.may_read(request):
            if kind == "api":
                return JSONResponse(
                    {"error": "authentication required (Authorization: Bearer <token>)"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if auth.settings_of(request).token is None:
                return _message(request, "Not authorized", "not authorized", 401)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(
                f"{_root(request)}/login?{urlencode({'next': target})}", status_code=303
            )
        if is_async:
            response = await endpoint(request)  # type: ignore[misc]
        else:
            response = await run_in_threadpool(endpoint, request)
        assert isinstance(response, Response)
        return auth.finish(request, response)

    guarded.__name__ = guarded.__qualname__ = getattr(endpoint, "__name__", "guarded")
    return guarded


ROUTES = [
    Route("/", _guarded("page", home)),
    Route("/dispatchers", _guarded("page", dispatchers)),
    Route("/jobs", _guarded("page", jobs)),
    Route("/jobs/{job_id:int}", _guarded("page", job)),
    Route("/metrics", _guarded("api", metrics)),
    Route("/api/status", _guarded("api", api_status)),
    Route("/api/jobs/{job_id:int}", _guarded("api", api_job)),
    Route("/healthz", healthz),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/actions/{action}", action, methods=["POST"]),
]
