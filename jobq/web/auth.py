"""Who may act on the dashboard: the token (as `Authorization: Bearer <token>`, or the cookie
the login form sets), or an `authorize(request) -> bool` hook. Reading needs no credentials."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

COOKIE = "jobq_dashboard"


@dataclass(frozen=True, slots=True)
class Settings:
    """The dashboard's settings, kept in `app.state.settings`."""

    token: str | None
    authorize: Callable[[Request], bool] | None
    chart_buckets: int
    chart_width: dt.timedelta

    @property
    def cookie_value(self) -> str | None:
        """What the login cookie holds: a digest of the token, never the token itself."""
        if self.token is None:
            return None
        return hashlib.sha256(b"jobq-dashboard:" + self.token.encode()).hexdigest()

    @property
    def can_act(self) -> bool:
        """Whether actions are enabled at all (a token or a hook was given)."""
        return self.token is not None or self.authorize is not None


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def logged_in(request: Request) -> bool:
    """The request carries the login cookie of this dashboard's token."""
    cookie_value = settings_of(request).cookie_value
    if cookie_value is None:
        return False
    return hmac.compare_digest(request.cookies.get(COOKIE, ""), cookie_value)


def allowed(request: Request) -> bool:
    """The request may perform an action: the hook says so, or it carries the token."""
    settings = settings_of(request)
    if settings.authorize is not None:
        return bool(settings.authorize(request))
    if settings.token is None:
        return False
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and hmac.compare_digest(header[7:], settings.token):
        return True
    return logged_in(request)


def acting(request: Request) -> bool:
    """The pages offer the actions: enabled, and logged in (or judged by the hook)."""
    settings = settings_of(request)
    return settings.can_act and (logged_in(request) or settings.authorize is not None)
