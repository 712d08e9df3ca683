"""Where `jobq worker` imports job code from, and the start-up check of what it cannot import.

A console script (`.venv/bin/jobq`) puts its own folder first on `sys.path`, not the folder it
was started in, so `jobq worker` would not find the application's modules where `python -c`,
`celery -A`, `rq worker` and `uvicorn` do. `use_import_paths` puts the current directory first,
then each `--path DIR` (or `JOBQ_PATH`), ahead of the rest.

`unimportable_modules` reads the modules a stored call names from its pickle, without
unpickling it (nothing runs), and tries to import each one: a worker that cannot import a job's
module can only put that job back (and in the end fail it), so it says so at start, naming the
module and the jobs.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import pickletools
import sys
from collections.abc import Iterable, Sequence

from jobq.model.codec import payload_data
from jobq.store.base import JobQuery, MonitorStore

events_log = logging.getLogger("jobq.events")

_STRINGS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
# Rows written before jobq's composite callables moved name their old module, which the
# codec maps to the new one when it loads them: not a missing module.
_MOVED_MODULES = {"jobq.model.compose"}


def use_import_paths(paths: Sequence[str]) -> list[str]:
    """Put the current directory, then `paths`, first on `sys.path` (each once); returns
    the new `sys.path`."""
    wanted = [os.getcwd(), *(os.path.abspath(p) for p in paths)]
    wanted = list(dict.fromkeys(wanted))
    rest = [p for p in sys.path if p not in wanted and p != ""]
    sys.path[:] = [*wanted, *rest]
    return sys.path


def modules_named(payload: bytes) -> set[str]:
    """The modules a stored call's pickle imports from (its callable, and the classes of its
    arguments), read from the pickle's opcodes without unpickling it. An unreadable payload
    names none (the worker's own decoding reports it)."""
    data = payload_data(bytes(payload))
    if data is None:
        return set()
    modules: set[str] = set()
    memo: dict[int, object] = {}
    pushed: list[object] = []  # the values of the recent pushes (None: not a string)
    try:
        for opcode, arg, _ in pickletools.genops(data):
            name = opcode.name
            if name in _STRINGS:
                pushed.append(arg)
            elif name in _GETS:
                pushed.append(memo.get(int(arg)))  # type: ignore[arg-type]
            elif name == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
                continue
            elif name in _PUTS:
                memo[int(arg)] = pushed[-1] if pushed else None  # type: ignore[arg-type]
                continue
            elif name == "GLOBAL":
                modules.add(str(arg).split(" ", 1)[0])
                pushed.append(None)
            elif name == "STACK_GLOBAL":
                module = pushed[-2] if len(pushed) >= 2 else None
                if isinstance(module, str):
                    modules.add(module)
                pushed.append(None)
            elif name not in ("FRAME", "PROTO", "STOP"):
                pushed.append(None)
            del pushed[:-2]
    except Exception:  # a damaged payload: nothing to say here
        return modules
    return modules - _MOVED_MODULES


def cannot_import(module: str) -> str | None:
    """Why `module` cannot be imported here (`ExceptionType: message`), or None if it can."""
    try:
        importlib.import_module(module)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def unimportable_modules(calls: Iterable[tuple[int, bytes]]) -> dict[str, tuple[str, list[int]]]:
    """For (job id, stored call) pairs: {module: (why it cannot be imported, job ids)} of
    the modules they name that this process cannot import."""
    found: dict[str, tuple[str, list[int]]] = {}
    checked: dict[str, str | None] = {}
    for job_id, payload in calls:
        for module in sorted(modules_named(payload)):
            if module not in checked:
                checked[module] = cannot_import(module)
            why = checked[module]
            if why is not None:
                found.setdefault(module, (why, []))[1].append(job_id)
    return found


def warn_unimportable(
    store: MonitorStore, queues: Sequence[str], now: dt.datetime, *, sample: int = 100
) -> list[str]:
    """Log a WARNING per module that the first `sample` pending jobs of each of `queues` name
    and this process cannot import (with the job ids and `sys.path`); returns the messages."""
    calls: list[tuple[int, bytes]] = []
    for queue in queues:
        query = JobQuery(states=("pending",), queues=(queue,))
        calls += [(r.id, r.call) for r in store.list_jobs(query, now, limit=sample)]
    messages = []
    for module, (why, ids) in sorted(unimportable_modules(calls).items()):
        shown = ", ".join(map(str, ids[:20]))
        if len(ids) > 20:
            shown += f" and {len(ids) - 20} more"
        message = (
            f"pending job(s) {shown} name module {module!r}, which this worker cannot import "
            f"({why}): this worker puts them back for a worker that can (a few times, then "
            f"they fail). Start the worker in the application's folder, or "
            f"give --path DIR (or JOBQ_PATH). This worker's sys.path: {sys.path}"
        )
        events_log.warning("%s", message)
        messages.append(message)
    return messages
