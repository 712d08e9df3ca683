"""`Failure`: a sanitized record of an exception, stored as a failed job's result.

It holds no live frames, only text (the original's sanitized Twisted Failure), so it can be
pickled, stored, shown by monitoring tools and compared across processes. Frame locals (the
original's verbose traceback) are recorded only when asked for: they are where a job's
passwords and tokens live, and a failure is logged, stored and shown on the dashboard.
"""

from __future__ import annotations

import re
import traceback as _tb
from dataclasses import dataclass, field
from typing import Any

_MAX_REPR = 300

#: Locals whose names match this (case-insensitive, anywhere in the name) are recorded as
#: `<redacted>` when frame locals are on: `password`, `api_key`, `secret_token`, `auth`...
DEFAULT_REDACT = r"pass|secret|token|key|auth|cred|cookie|session|private|signature"
REDACTED = "<redacted>"
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def _qualified(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _is_runner_frame(frame: Any) -> bool:
    return str(frame.f_globals.get("__name__", "")).startswith("jobq.worker")


def redact_pattern(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    """`pattern` compiled case-insensitively, or a ValueError saying what is wrong with it."""
    if isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise ValueError(
            f"the pattern of locals to redact, {pattern!r}, is not a regular expression: {error}"
        ) from None


def _verbose_traceback(exc: BaseException, redact: re.Pattern[str]) -> str:
    """The traceback with each frame's locals as reprs (the original's verbose traceback):
    locals whose names match `redact` show as `<redacted>`, and a URL's password as `***`."""
    lines: list[str] = []
    for frame, lineno in _tb.walk_tb(exc.__traceback__):
        if _is_runner_frame(frame):
            continue  # the runner's own frames say nothing about the job
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {lineno}, in {code.co_name}')
        for name, value in frame.f_locals.items():
            if redact.search(name):
                lines.append(f"    {name} = {REDACTED}")
                continue
            try:
                text = _URL_PASSWORD.sub(r"\1***@", repr(value))
            except Exception as repr_error:  # a broken __repr__ must not hide the failure
                text = f"<unrepresentable: {repr_error!r}>"
            if len(text) > _MAX_REPR:
                text = text[:_MAX_REPR] + "..."
            lines.append(f"    {name} = {text}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong in a job: exception type, message and traceback text.

    A callable may also *return* a Failure, which then counts as a failed result.
    """

    type_name: str
    message: str
    traceback: str = ""
    type_names: tuple[str, ...] = field(default=())
    verbose: str = ""

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        *,
        with_locals: bool = False,
        redact: str | re.Pattern[str] = DEFAULT_REDACT,
    ) -> Failure:
        """Capture `exc` (with its traceback, if it was raised) as a Failure. With
        `with_locals`, each frame's locals are kept too (as `verbose`), those whose names
        match `redact` replaced by `<redacted>`; off by default, as locals hold secrets."""
        names = tuple(_qualified(k) for k in type(exc).__mro__ if k not in (object, BaseException))
        tb = exc.__traceback__
        while tb is not None and _is_runner_frame(tb.tb_frame):
            tb = tb.tb_next  # start at the job's own code, not at the worker calling it
        text = "".join(_tb.format_exception(type(exc), exc, tb))
        return cls(
            type_name=_qualified(type(exc)),
            message=str(exc),
            traceback=text,
            type_names=names,
            verbose=_verbose_traceback(exc, redact_pattern(redact)) if with_locals else "",
        )

    def check(self, *types: type[BaseException] | str) -> bool:
        """True if the exception was an instance of one of `types` (classes or qualified names)."""
        names = set(self.type_names) | {self.type_name}
        for kind in types:
            wanted = kind if isinstance(kind, str) else _qualified(kind)
            if wanted in names:
                return True
        return False

    def brief_traceback(self) -> str:
        """A short form: the header line, one line per frame, and the exception line."""
        out: list[str] = []
        for line in self.traceback.splitlines():
            stripped = line.strip()
            if line.startswith("Traceback") or stripped.startswith("File "):
                out.append(stripped)
        out.append(f"{self.type_name}: {self.message}")
        return "\n".join(out)

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"

    def __repr__(self) -> str:
        return f"<Failure {self.type_name}: {self.message!r}>"


def describe(value: Any) -> str:
    """A short, safe repr for logs and monitoring."""
    try:
        text = repr(value)
    except Exception as error:
        text = f"<unrepresentable {type(value).__name__}: {error!r}>"
    return text if len(text) <= 1000 else text[:1000] + "..."


def failure_dict(failure: Failure) -> dict[str, Any]:
    """A Failure as the JSON-able dict stored in the jobs table."""
    return {
        "type_name": failure.type_name,
        "message": failure.message,
        "traceback": failure.traceback,
        "type_names": list(failure.type_names),
        "verbose": failure.verbose,
    }


def failure_from_dict(stored: dict[str, Any]) -> Failure:
    """The Failure a stored dict (of `failure_dict`) describes; missing keys read as empty."""
    return Failure(
        type_name=stored.get("type_name", "?"),
        message=stored.get("message", ""),
        traceback=stored.get("traceback", ""),
        type_names=tuple(stored.get("type_names", ())),
        verbose=stored.get("verbose", ""),
    )


@dataclass(frozen=True, slots=True)
class TracebackLocals:
    """Whether a job's failure records its frames' locals (off by default: locals are where
    passwords and tokens live), and which locals' names are redacted when it does."""

    enabled: bool = False
    redact: re.Pattern[str] = field(default_factory=lambda: redact_pattern(DEFAULT_REDACT))

    def capture(self, error: BaseException) -> Failure:
        return Failure.from_exception(error, with_locals=self.enabled, redact=self.redact)
