"""Database URLs as jobq prints them: with any password masked."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def masked_url(url: str | None) -> str:
    """`url` with its password (in the address or as `?password=`) shown as `***`; None is
    the default SQLite file."""
    if url is None:
        return "./jobq.db"
    parts = urlsplit(url)
    if parts.password is None and "password=" not in parts.query:
        return url
    if parts.password is not None:
        user, host = parts.username or "", parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        masked = [(k, "***" if k == "password" else v) for k, v in query]
        parts = parts._replace(query=urlencode(masked, safe="*"))
    return urlunsplit(parts)
