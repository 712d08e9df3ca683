"""Who may read and act on the dashboard, and how a browser's session and its CSRF token work.

With a token or an `authorize(request) -> bool` hook configured, every page, API answer and
action needs one of: `Authorization: Bearer <token>`; a session cookie set by the login form;
or the hook's yes. Without either, pages and the API are open (bind to loopback) and actions
are off.

A session cookie is `<payload>.<signature>`, both base64url: the payload is
`v1|<session id>|<issued at, epoch seconds>`, the signature its HMAC-SHA256 under a key held
by the server (random per process, or derived from `session_secret` so that several processes
agree; the token is mixed in, so changing the token ends every session). It never holds the
token. A session expires `max_age` after it was issued, and logout revokes its id.

Every POST is checked (`check_post`): a form body (`application/x-www-form-urlencoded`; a
`text/plain` or multipart body is refused), an `Origin` (or `Referer`) naming this dashboard's
own host, and, unless the request carries the Bearer token (which a browser cannot add to a
cross-site request), a CSRF token in the form field `csrf` or the header `X-CSRF-Token`: an
HMAC of the session id (or, for the hook, of a random `jobq_csrf` cookie).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "jobq_session"
CSRF_COOKIE = "jobq_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
DEFAULT_MAX_AGE = dt.timedelta(hours=12)
FORM_TYPE = "application/x-www-form-urlencoded"

Kind = Literal["bearer", "session", "hook"]


@dataclass(frozen=True, slots=True)
class Identity:
    """How a request was authenticated; `sid` is the session's id (sessions only)."""

    kind: Kind
    sid: str = ""


class Sessions:
    """Signed, expiring session cookies and the ids revoked by logout (this process's)."""

    def __init__(
        self,
        token: str | None,
        secret: str | bytes | None,
        max_age: dt.timedelta,
        clock: Callable[[], dt.datetime],
    ) -> None:
        if max_age <= dt.timedelta(0):
            raise ValueError(f"session max age must be positive, got {max_age}")
        if secret is None:
            base = secrets.token_bytes(32)
        else:
            base = secret.encode() if isinstance(secret, str) else secret
            if len(base) < 16:
                raise ValueError("the session secret must be at least 16 bytes long")
        token_digest = hashlib.sha256((token or "").encode()).digest()
        self._key = hmac.new(base, b"jobq-dashboard-session\0" + token_digest, "sha256").digest()
        self.max_age = max_age
        self._clock = clock
        self._revoked: dict[str, float] = {}  # session id -> when its cookie would expire
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self._clock().timestamp()

    def _sign(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, "sha256").digest()

    def issue(self) -> str:
        """A new session's cookie value."""
        payload = f"v1|{secrets.token_hex(16)}|{int(self._now())}".encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def verify(self, value: str) -> str | None:
        """The session id of a cookie value that is well signed, unexpired and not logged out."""
        try:
            encoded, signature = value.split(".")
            payload = _unb64(encoded)
            if not hmac.compare_digest(_unb64(signature), self._sign(payload)):
                return None
            version, sid, issued_text = payload.decode().split("|")
            issued = int(issued_text)
        except ValueError:  # also binascii.Error and UnicodeDecodeError
            return None
        now = self._now()
        if version != "v1" or not issued - 60 <= now < issued + self.max_age.total_seconds():
            return None
        with self._lock:
            if sid in self._revoked:
                return None
        return sid

    def revoke(self, sid: str) -> None:
        """Logout: this session id is refused from now on (until it would have expired)."""
        now = self._now()
        with self._lock:
            for old in [s for s, until in self._revoked.items() if until < now]:
                del self._revoked[old]
            self._revoked[sid] = now + self.max_age.total_seconds() + 60

    def csrf(self, basis: str) -> str:
        """The CSRF token of a session id (or of a CSRF cookie value)."""
        return self._sign(b"csrf\0" + basis.encode()).hex()


@dataclass(frozen=True, slots=True)
class Settings:
    """The dashboard's settings, kept in `app.state.settings`."""

    token: str | None
    authorize: Callable[[Request], bool] | None
    chart_buckets: int
    chart_width: dt.timedelta
    sessions: Sessions
    allowed_origins: frozenset[str] = field(default_factory=frozenset)

    @property
    def required(self) -> bool:
        """Whether auth is configured (a token or a hook): then every request needs it."""
        return self.token is not None or self.authorize is not None


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def origins(values: Collection[str]) -> frozenset[str]:
    """Normalised `scheme://host[:port]` origins that POSTs may also come from (a proxy)."""
    return frozenset(value.rstrip("/").lower() for value in values)


# -- who is asking -------------------------------------------------------------------------------
_UNSET = object()


def identity(request: Request) -> Identity | None:
    """How this request is authenticated (None: it is not), worked out once per request."""
    known = getattr(request.state, "jobq_identity", _UNSET)
    if known is _UNSET:
        known = _identify(request)
        request.state.jobq_identity = known
    assert known is None or isinstance(known, Identity)
    return known


def _identify(request: Request) -> Identity | None:
    settings = settings_of(request)
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        # a Bearer header is judged alone: a wrong token is not rescued by a cookie
        if settings.token is not None and hmac.compare_digest(
            header[7:].strip().encode("latin-1"), settings.token.encode()
        ):
            return Identity("bearer")
        return None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and settings.token is not None:
        sid = settings.sessions.verify(cookie)
        if sid is not None:
            return Identity("session", sid)
    if settings.authorize is not None and settings.authorize(request):
        return Identity("hook")
    return None


def token_matches(request: Request, given: str) -> bool:
    """The login form's token is the dashboard's (compared in constant time)."""
    token = settings_of(request).token
    return token is not None and hmac.compare_digest(given.encode(), token.encode())


def may_read(request: Request) -> bool:
    """Pages and the API: open without auth configured, else authenticated."""
    return not settings_of(request).required or identity(request) is not None


def acting(request: Request) -> bool:
    """The pages offer the actions: auth is configured and this request passed it."""
    return settings_of(request).required and identity(request) is not None


def logged_in(request: Request) -> bool:
    """The request carries a live session (so the pages offer "log out")."""
    who = identity(request)
    return who is not None and who.kind == "session"


# -- CSRF ----------------------------------------------------------------------------------------
def csrf_token(request: Request) -> str:
    """The CSRF token the pages put in their forms ("" where no form can be used)."""
    who = identity(request)
    sessions = settings_of(request).sessions
    if who is None or who.kind == "bearer":
        return ""
    if who.kind == "session":
        return sessions.csrf("s:" + who.sid)
    cookie = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "jobq_new_csrf", "")
    if not cookie:
        cookie = secrets.token_hex(16)
        request.state.jobq_new_csrf = cookie  # set on the response by `finish`
    return sessions.csrf("c:" + cookie)


def finish(request: Request, response: Response) -> Response:
    """Set the hook's CSRF cookie if this request created one."""
    new = getattr(request.state, "jobq_new_csrf", "")
    if new:
        set_cookie(request, response, CSRF_COOKIE, new, None)
    return response


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: dt.timedelta | None
) -> None:
    """HttpOnly, SameSite=Lax (every POST also needs a CSRF token), Secure over https, on the
    dashboard's own path; `max_age` None: until the browser closes."""
    response.set_cookie(
        name,
        value,
        max_age=None if max_age is None else int(max_age.total_seconds()),
        path=_cookie_path(request),
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def delete_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name,
        path=_cookie_path(request),
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def _cookie_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/") or "/"


def check_post(request: Request, fields: dict[str, str], *, need_csrf: bool = True) -> str | None:
    """Why this POST is refused (None: it may go on). See the module's docstring."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE and (content_type or fields):
        return f"refused: a POST must be a form ({FORM_TYPE}), not {content_type or 'untyped'}"
    if request.headers.get("sec-fetch-site", "") == "cross-site" or not _same_origin(request):
        return "refused: the request comes from another site (Origin / Referer)"
    who = identity(request)
    if not need_csrf or who is None or who.kind == "bearer":
        return None
    given = fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not given or not hmac.compare_digest(given.encode(), csrf_token(request).encode()):
        return "refused: missing or wrong CSRF token (reload the page and try again)"
    return None


def _same_origin(request: Request) -> bool:
    """The `Origin` (else `Referer`) names this dashboard's host, or an allowed origin.
    Neither header: not a browser (browsers send Origin with every POST)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (sandboxed frames, file: pages) and the like
    host = request.headers.get("host", "").lower()
    if parts.netloc.lower() == host:
        return True
    return f"{parts.scheme}://{parts.netloc}".lower() in settings_of(request).allowed_origins


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
