"""`Bound`: the callable of a job made by `Job.bind`, which receives its own job first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Bound:
    """Wraps `func` so that a worker calls `func(job, *args, **kwargs)` with the job being run
    (the original's `Job.bind`): for a job that annotates, inspects or reschedules itself.
    Stored by reference to `func`, like any callable."""

    func: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{self.func!r} is bound to its job (Job.bind): a worker calls it with the job "
            f"first; call the function itself to run it by hand"
        )
