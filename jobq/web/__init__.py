"""The web dashboard: a Starlette ASGI app over one `Database` (`jobq dashboard --db URL`).

    app = jobq.web.create_app(db, token="s3cret")      # or authorize=lambda request: ...
    # mount it in your own Starlette app: Mount("/jobq", app=app)

Pages: `/` (queues with their load and actions, dispatchers, throughput/failure chart),
`/dispatchers`, `/jobs?q=<states and filters>&offset=&limit=` (the monitor's filter grammar),
`/jobs/{id}` (call, times, annotations, progress bar, callbacks tree, traceback, actions;
it refreshes itself while the job is unfinished), `/metrics` (Prometheus), and JSON at
`/api/status`, `/api/jobs/{id}`. The pages are Jinja2 templates (`templates/`, autoescaped)
rendering the monitor's view records; the handlers are in `routes.py`.

Reading needs no credentials (bind to 127.0.0.1, the default, or put it behind your own
auth). Actions (POST `/actions/<name>`) need the token: as `Authorization: Bearer <token>`,
or the cookie set by the login form (HttpOnly, SameSite=Strict, so other sites cannot post
with it); or an `authorize(request) -> bool` hook. With neither, actions are refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request

from jobq.monitor.service import Monitor
from jobq.web.auth import Settings
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
) -> Starlette:
    """The dashboard as an ASGI app. `token` (or `authorize`) enables the actions."""
    app = Starlette(routes=ROUTES)
    app.state.monitor = Monitor(db, this_uuid=this_uuid)
    app.state.settings = Settings(
        token=token, authorize=authorize, chart_buckets=chart_buckets, chart_width=chart_width
    )
    return app
