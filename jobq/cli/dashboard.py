"""`jobq dashboard`: serve the web dashboard (`jobq.web`) with uvicorn until interrupted.

uvicorn and the web app are imported only when the command runs.
"""

from __future__ import annotations

import click

from jobq.cli.common import db_option, this_option


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True)
@click.option(
    "--token",
    envvar="JOBQ_DASHBOARD_TOKEN",
    default=None,
    help="Token required for actions (env JOBQ_DASHBOARD_TOKEN); without one, actions are off.",
)
@this_option
def dashboard(
    url: str | None, host: str, port: int, token: str | None, this_uuid: str | None
) -> None:
    """Serve the web dashboard (and /metrics) until interrupted."""
    import uvicorn

    import jobq
    from jobq.web import create_app

    db = jobq.connect(url)
    try:
        app = create_app(db, token=token, this_uuid=this_uuid)
        if host not in ("127.0.0.1", "localhost", "::1") and not token:
            click.echo("warning: dashboard reachable from the network, actions disabled", err=True)
        click.echo(f"jobq dashboard on http://{host}:{port}/ ({db!r})", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        db.close()


COMMANDS = [dashboard]
