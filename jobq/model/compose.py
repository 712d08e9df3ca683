"""The composite job of `jobq.parallel` / `jobq.serial`: its handle and its state.

A composite is one job made of parts, whose result is a postprocess's result.

    job = queue.put(jobq.parallel(Job(sample, 10**6), Job(sample, 10**6), postprocess=combine))
    job.wait()          # combine(part_job_1, part_job_2): it reads each part's .result

How it runs (the constructors, the operations on stored jobs and the callables workers run
are `jobq.jobs.compose`; this module is the pure part):

- When the composite job runs, it stores each part as a "new" row (out of any queue) and the
  postprocess as another, records their ids in its own annotation `"jobq.composite"` (in its
  attempt's transaction), puts the parts that are due (`parallel`: all; `serial`: the first),
  and returns the postprocess job: the composite waits on it (`waiting_on`) and adopts its
  result. A composite interrupted before that returns, re-run, finds its state and resumes:
  nothing is created twice.
- Each part put gets a callback `part_done`, which, under the composite's row lock, puts what
  became due: `serial`'s next part, or the postprocess once every part has a result. Puts are
  conditional on the job still being "new", so a re-run composite and concurrent callbacks
  never put anything twice; `serial` never puts the postprocess before its last part has a
  result.
- A part counts as done when it has a result (value or `Failure`) and so have its
  callbacks: those it had when it was put, and those added to it before the postprocess was
  put (recorded in `watch`), so a callback added to a part may still add parts (the
  catalogue's "second's callback adds third").
- The postprocess gets the part jobs (`postprocess(*its_args, *part_jobs)`), in order, each
  with its `.result` (a `Failure` for a failed part); the default returns the tuple of results.

Parts can be added while the composite runs, with `add_part` on the composite (inside a part
or one of its callbacks: `jobq.local.composite().add_part(...)`), until its postprocess has
been put.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobq.model.job import Job

STATE_KEY = "jobq.composite"
"""The composite's annotation holding its state (see `CompositeState`)."""
PART_OF_KEY = "jobq.part_of"
"""Each part's annotation: the id of its composite."""

_DONE = ("callbacks", "completed")


class Composite(Job):
    """A job made by `jobq.parallel` or `jobq.serial`: put it like any job."""

    @property
    def kind(self) -> str:
        """ "parallel" or "serial"."""
        return "serial" if getattr(self.callable, "__name__", "") == "run_serial" else "parallel"

    def add_part(self, item: Job | Callable[..., Any]) -> Job:
        """Add a part at the end (`serial`: it runs after the others).

        Before the composite is put, this appends to its arguments. Once stored, the part is
        stored too (and, for a running `parallel`, put at once); returns the stored part.
        It is its own short transaction; inside a running job, part of the job's attempt
        transaction (it happens only if the job succeeds, and before the composite can see
        that job done; the returned part's id is None until then). After the postprocess
        has been put it is too late: `BadStatusError`.
        """
        part = as_part(item)
        if not self.stored:
            self.args = (*self.args, part)
            return part
        return self._require_backend().composition.add_part(self, part)

    @property
    def parts(self) -> list[Job]:
        """The parts: the jobs given (not stored yet), or, once the composite has run, the
        stored part jobs (refreshed), in order."""
        state = CompositeState.from_annotations(self.annotations) if self.stored else None
        if state is None or state.postprocess is None:
            return [p for p in self.args if isinstance(p, Job)]
        backend = self._require_backend()
        return [backend.get_job(i) for i in state.parts]


def as_part(item: Job | Callable[..., Any]) -> Job:
    """A part or a postprocess as a new Job (a stored job cannot be one)."""
    job = item if isinstance(item, Job) else Job(item)
    if job.stored:
        raise ValueError(f"{job!r} is already stored; a part must be a new Job")
    return job


# -- the composite's state ---------------------------------------------------------------------
@dataclass
class CompositeState:
    """What a composite has created, kept as JSON in its annotation `STATE_KEY`.

    `parts` and `postprocess` are job ids (`postprocess` is None until the composite first
    runs; parts added before that are kept here and go after the given ones). `watch[part]`
    lists the part's callbacks it waits for: those the part had when it was put, and those
    added to it since. `closed`: the postprocess was put."""

    kind: str
    parts: list[int] = field(default_factory=list)
    postprocess: int | None = None
    watch: dict[int, list[int]] = field(default_factory=dict)
    closed: bool = False

    @classmethod
    def from_annotations(cls, annotations: dict[str, Any]) -> CompositeState | None:
        raw = annotations.get(STATE_KEY)
        if not isinstance(raw, dict):
            return None
        return cls(
            kind=raw["kind"],
            parts=[int(i) for i in raw.get("parts", [])],
            postprocess=raw.get("postprocess"),
            watch={int(k): [int(i) for i in v] for k, v in raw.get("watch", {}).items()},
            closed=bool(raw.get("closed", False)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "parts": list(self.parts),
            "postprocess": self.postprocess,
            "watch": {str(k): list(v) for k, v in self.watch.items()},
            "closed": self.closed,
        }

    def watched(self) -> list[int]:
        """Every job whose status the next decision reads."""
        ids = [*self.parts, *(w for ws in self.watch.values() for w in ws)]
        return ids if self.postprocess is None else [*ids, self.postprocess]

    def part_done(self, part: int, statuses: dict[int, str]) -> bool:
        return all(statuses.get(j) in _DONE for j in (part, *self.watch.get(part, ())))

    def due(self, statuses: dict[int, str]) -> tuple[list[int], bool]:
        """(parts to put now, whether to put the postprocess now), given the statuses."""
        if self.closed or self.postprocess is None:
            return [], False
        if self.kind == "serial":
            first = next((p for p in self.parts if not self.part_done(p, statuses)), None)
            put = [first] if first is not None and statuses.get(first) == "new" else []
        else:
            put = [p for p in self.parts if statuses.get(p) == "new"]
        finished = not put and all(self.part_done(p, statuses) for p in self.parts)
        return put, finished and statuses.get(self.postprocess) == "new"


def results(*jobs: Job) -> tuple[Any, ...]:
    """The default postprocess: the tuple of the parts' results (Failures included)."""
    return tuple(job.result for job in jobs)
