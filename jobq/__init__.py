"""jobq: durable Python jobs with callbacks, retry policies and fencing, on SQLite or PostgreSQL.

    import jobq
    db = jobq.connect()                     # ./jobq.db; or "postgresql://..."
    job = db.queue().put(jobq.Job(make_pdf, 42))
    job.wait(timeout=30)

Run workers with `jobq worker --db URL`, or in-process with `db.worker().start()`.
"""

from __future__ import annotations

from jobq import local
from jobq.database import Database, connect
from jobq.errors import (
    AbortedError,
    BadStatusError,
    CancelledError,
    ConfigError,
    ConflictError,
    EncodingError,
    JobExpired,
    JobFailed,
    JobNotFound,
    JobqError,
    JobTimeout,
    MissingExtra,
    OutcomeUnknown,
    PutOutcomeUnknown,
    QueueNotFound,
    ReassignedError,
    SchemaMismatch,
    SignatureError,
    StoreError,
    StoreFull,
    StoreUnavailable,
    TimeoutError,
    WaitTimeout,
)
from jobq.jobs.compose import parallel, serial
from jobq.jobs.schedules import Schedule, ScheduleNotFound
from jobq.model.compose import Composite
from jobq.model.failure import Failure
from jobq.model.job import Job, Status
from jobq.model.retry import (
    NeverRetry,
    RetryCommonForever,
    RetryCommonFourTimes,
    RetryPolicy,
    RetryWithBackoff,
)
from jobq.queue import Queue
from jobq.worker.agent import AgentSpec
from jobq.worker.dispatcher import Dispatcher

__all__ = [
    "AbortedError",
    "AgentSpec",
    "BadStatusError",
    "CancelledError",
    "Composite",
    "ConfigError",
    "ConflictError",
    "Database",
    "Dispatcher",
    "EncodingError",
    "Failure",
    "Job",
    "JobExpired",
    "JobFailed",
    "JobNotFound",
    "JobTimeout",
    "JobqError",
    "MissingExtra",
    "NeverRetry",
    "OutcomeUnknown",
    "PutOutcomeUnknown",
    "Queue",
    "QueueNotFound",
    "ReassignedError",
    "RetryCommonForever",
    "RetryCommonFourTimes",
    "RetryPolicy",
    "RetryWithBackoff",
    "Schedule",
    "ScheduleNotFound",
    "SchemaMismatch",
    "SignatureError",
    "Status",
    "StoreError",
    "StoreFull",
    "StoreUnavailable",
    "TimeoutError",
    "WaitTimeout",
    "connect",
    "local",
    "parallel",
    "serial",
]
