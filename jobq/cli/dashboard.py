"""`jobq dashboard`: serve the web dashboard (`jobq.web`) with uvicorn until interrupted.

With a token every page, the API and every action need it (`jobq.web.auth`). Without one the
dashboard shows job data to whoever can reach it, so it binds only to loopback unless
`--insecure` is given. uvicorn and the web app are imported only when the command runs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

import click

from jobq._urls import masked_url
from jobq.cli.common import db_option, this_option


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True)
@click.option(
    "--token",
    envvar="JOBQ_DASHBOARD_TOKEN",
    default=None,
    help="Token every page, API call and action needs (env JOBQ_DASHBOARD_TOKEN); without "
    "one, reading is open and actions are off.",
)
@click.option(
    "--session-secret",
    envvar="JOBQ_DASHBOARD_SESSION_SECRET",
    default=None,
    help="Key (16+ chars) that signs login sessions, the same for every dashboard process "
    "behind one address (env JOBQ_DASHBOARD_SESSION_SECRET); default: random per process.",
)
@click.option(
    "--session-hours",
    type=click.FloatRange(min=0, min_open=True),
    default=12.0,
    show_default=True,
    help="A login session expires this many hours after logging in.",
)
@click.option(
    "--allow-origin",
    "allowed_origins",
    multiple=True,
    help="An origin (https://ops.example.com) POSTs may come from besides the Host asked for "
    "(a proxy that rewrites Host); repeatable.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Serve a non-loopback address without a token (anyone who reaches it reads job data).",
)
@this_option
def dashboard(
    url: str | None,
    host: str,
    port: int,
    token: str | None,
    session_secret: str | None,
    session_hours: float,
    allowed_origins: tuple[str, ...],
    insecure: bool,
    this_uuid: str | None,
) -> None:
    """Serve the web dashboard (and /metrics) until interrupted."""
    token = token or None
    if not token and not _is_loopback(host):
        if not insecure:
            raise click.UsageError(
                f"refusing to serve the dashboard on {host} without a token: every page shows "
                "job arguments, results and tracebacks. Give --token (or JOBQ_DASHBOARD_TOKEN), "
                "bind 127.0.0.1, or pass --insecure to serve it unauthenticated anyway."
            )
        click.echo(
            f"WARNING: --insecure: the dashboard on {host} has no token; anyone who can reach "
            "it reads every job's arguments, results and tracebacks (actions are off)",
            err=True,
        )
    if session_secret is not None and len(session_secret.encode()) < 16:
        raise click.UsageError("--session-secret must be at least 16 characters long")

    import jobq

    try:
        import uvicorn

        from jobq.web import create_app
    except ImportError as error:
        if error.name and error.name.split(".")[0] in ("starlette", "uvicorn", "jinja2"):
            raise click.ClickException(
                str(jobq.MissingExtra("jobq dashboard", "dashboard", error))
            ) from error
        raise

    try:
        db = jobq.connect(url)
    except (jobq.JobqError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    try:
        app = create_app(
            db,
            token=token,
            this_uuid=this_uuid,
            session_secret=session_secret,
            session_max_age=dt.timedelta(hours=session_hours),
            allowed_origins=allowed_origins,
        )
        access = "token required" if token else "no token: reading open, actions off"
        click.echo(
            f"jobq dashboard on http://{host}:{port}/ ({db.engine} {masked_url(url)}; {access})",
            err=True,
        )
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        db.close()


COMMANDS = [dashboard]
