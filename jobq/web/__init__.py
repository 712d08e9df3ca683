"""The web dashboard: a Starlette ASGI app over one `Database` (`jobq dashboard --db URL`).

    app = jobq.web.create_app(db, token="s3cret")      # or authorize=lambda request: ...
    # mount it in your own Starlette app: Mount("/jobq", app=app)

Pages: `/` (queues with their load and actions, dispatchers, throughput/failure chart),
`/dispatchers`, `/jobs?q=<states and filters>&offset=&limit=` (the monitor's filter grammar),
`/jobs/{id}` (call, times, annotations, progress bar, callbacks tree, traceback, actions;
it refreshes itself while the job is unfinished), `/metrics` (Prometheus), and JSON at
`/api/status`, `/api/jobs/{id}`. The pages are Jinja2 templates (`templates/`, autoescaped)
rendering the monitor's view records; the handlers are in `routes.py`.

With a `token` or an `authorize(request) -> bool` hook, every page, the JSON API, `/metrics`
and every action need auth: `Authorization: Bearer <token>` (API clients, Prometheus), or the
signed session cookie the login form (`/login`) sets (expires after `session_max_age`, default
12 h; ended by logout), or the hook's yes. A page asked for without it goes to the login form,
an API request gets 401. Every POST must be a form from this dashboard's own origin carrying
the page's CSRF token (Bearer requests need no CSRF token); see `jobq.web.auth`. `/healthz`
is always open and shows nothing. With neither a token nor a hook, reading is open (bind to
127.0.0.1, the default) and actions are refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request

from jobq.monitor.service import Monitor
from jobq.web.auth import DEFAULT_MAX_AGE, Sessions, Settings, origins
from jobq.web.routes import ROUTES

if TYPE_CHECKING:
    from jobq.database import Database

__all__ = ["create_app"]


def create_app(
    db: Database,
    *,
    token: str | None = None,
    authorize: Callable[[Request], bool] | None = None,
    this_uuid: str | None = None,
    chart_buckets: int = 30,
    chart_width: dt.timedelta = dt.timedelta(minutes=2),
    session_secret: str | bytes | None = None,
    session_max_age: dt.timedelta = DEFAULT_MAX_AGE,
    allowed_origins: Collection[str] = (),
    clock: Callable[[], dt.datetime] | None = None,
) -> Starlette:
    """The dashboard as an ASGI app. `token` (or `authorize`) protects every page and enables
    the actions.

    `session_secret` (at least 16 bytes) signs the session cookies, so that several dashboard
    processes behind one address accept each other's sessions; by default each process has a
    random key. `allowed_origins` (`https://ops.example.com`) are origins other than the
    request's own `Host` that POSTs may come from (a proxy that rewrites `Host`). `clock`
    (default: the database's) dates and expires the sessions.
    """
    if token is not None and not token:
        raise ValueError("the dashboard token must not be empty (give None for no token)")
    app = Starlette(routes=ROUTES)
    app.state.monitor = Monitor(db, this_uuid=this_uuid)
    app.state.settings = Settings(
        token=token,
        authorize=authorize,
        chart_buckets=chart_buckets,
        chart_width=chart_width,
        sessions=Sessions(token, session_secret, session_max_age, clock or db.clock.now),
        allowed_origins=origins(allowed_origins),
    )
    return app
