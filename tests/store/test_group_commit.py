"""Group commit (SQLite): writes of many threads share a transaction, each in a savepoint."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from jobq.store import _group
from jobq.store._group import GroupCommit, in_savepoints
from jobq.store.driver import Executor
from jobq.store.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(str(tmp_path / "group.db"))
    store.migrate()
    return store


def queue_names(store: SqliteStore) -> set[str]:
    with store.driver.read() as ex:
        ex.raw("SELECT name FROM jobq_queues")
        return {row["name"] for row in ex.cursor.fetchall()}


def test_a_failing_write_is_undone_and_the_others_commit(store: SqliteStore) -> None:
    barrier = threading.Barrier(10)
    outcomes: dict[int, object] = {}

    def write(i: int) -> None:
        def work(ex: Executor) -> int:
            ex.run("ensure_queue", queue=f"q{i}", now=0)
            if i == 3:
                raise ValueError("this write fails after writing")
            return i

        barrier.wait()
        try:
            outcomes[i] = store.driver.group.run(work)
        except ValueError as error:
            outcomes[i] = error

    threads = [threading.Thread(target=write, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert isinstance(outcomes.pop(3), ValueError)
    assert outcomes == {i: i for i in range(10) if i != 3}
    assert queue_names(store) >= {f"q{i}" for i in range(10) if i != 3}
    assert "q3" not in queue_names(store)


def test_a_batch_runs_without_savepoints_unless_one_of_its_writes_fails(
    store: SqliteStore,
) -> None:
    """Savepoints cost two statements a write: a batch whose writes all succeed runs without
    them, in one transaction. One that fails undoes that transaction, and the batch runs again
    with each write in its savepoint: the others commit once, the failing one not at all."""
    flush = in_savepoints(store.driver.transaction)
    statements: list[str] = []
    store.driver.connection().set_trace_callback(statements.append)

    def ensure(name: str, fail: bool = False) -> Callable[[Executor], str]:
        def work(ex: Executor) -> str:
            ex.run("ensure_queue", queue=name, now=0)
            if fail:
                raise ValueError(f"{name} fails after writing")
            return name

        return work

    assert flush([ensure("a"), ensure("b")]) == ["a", "b"]
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    assert sum(sql.startswith("BEGIN") for sql in statements) == 1
    statements.clear()
    first, failed, last = flush([ensure("c"), ensure("d", fail=True), ensure("e")])
    assert (first, last) == ("c", "e") and isinstance(failed, ValueError)
    assert sum(sql.startswith("BEGIN") for sql in statements) == 2  # the second with savepoints
    assert sum(sql == "ROLLBACK" for sql in statements) == 1
    assert queue_names(store) >= {"a", "b", "c", "e"} and "d" not in queue_names(store)


def test_writes_queued_behind_a_commit_share_the_next_one(store: SqliteStore) -> None:
    """While one thread commits, the others queue; the next commit takes all of them."""
    flush = in_savepoints(store.driver.transaction)
    batches: list[int] = []

    def counting_flush(batch: list[Callable[[Executor], Any]]) -> list[Any]:
        batches.append(len(batch))
        return flush(batch)

    group: GroupCommit[Any, Any] = GroupCommit(counting_flush)
    entered, release = threading.Event(), threading.Event()

    def slow(ex: Executor) -> None:
        entered.set()
        release.wait(10)

    leader = threading.Thread(target=group.run, args=(slow,))
    leader.start()
    assert entered.wait(10)
    followers = [
        threading.Thread(
            target=group.run,
            args=(lambda ex, i=i: ex.run("ensure_queue", queue=f"f{i}", now=0),),
        )
        for i in range(5)
    ]
    for thread in followers:
        thread.start()
    while len(group._queued) < 5:
        threading.Event().wait(0.01)
    release.set()
    for thread in [leader, *followers]:
        thread.join(30)
    assert batches == [1, 5]
    assert queue_names(store) >= {f"f{i}" for i in range(5)}


def test_a_failed_flush_fails_every_write_of_its_batch() -> None:
    def flush(batch: list[int]) -> list[int]:
        if 13 in batch:
            raise RuntimeError("the commit failed")
        return [item * 2 for item in batch]

    group: GroupCommit[int, int] = GroupCommit(flush)
    assert group.run(4) == 8
    with pytest.raises(RuntimeError, match="the commit failed"):
        group.run(13)
    assert group.run(5) == 10  # the next batch is unaffected


def test_every_submitted_write_is_told_even_if_one_callback_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A write submitted without waiting is told how it ended; one callback raising does not
    keep the others of its batch from being told (each keeps a job held until told)."""
    gate = threading.Event()

    def flush(batch: list[int]) -> list[int]:
        gate.wait(10)  # the three writes queue up and share one flush
        return [item * 2 for item in batch]

    group: GroupCommit[int, int] = GroupCommit(flush)
    told: list[int] = []
    everyone_told = threading.Event()

    def tell(result: int | BaseException) -> None:
        assert isinstance(result, int)
        told.append(result)
        if result == 2:
            raise RuntimeError("a bookkeeping bug")
        if len(told) == 3:
            everyone_told.set()

    with caplog.at_level("CRITICAL", logger="jobq.events"):
        for item in (1, 2, 3):
            group.submit_then(item, tell)
        gate.set()
        assert everyone_told.wait(10)
        group.close()
    assert sorted(told) == [2, 4, 6]
    assert "a bookkeeping bug" in caplog.text


def _recording_group(
    linger: float, batch_limit: int = 64
) -> tuple[GroupCommit[int, int], list[list[int]]]:
    batches: list[list[int]] = []

    def flush(batch: list[int]) -> list[int]:
        batches.append(list(batch))
        return [item * 2 for item in batch]

    return GroupCommit(flush, linger=linger, batch_limit=batch_limit), batches


def test_submitted_writes_linger_to_share_one_commit_until_their_batch_is_full() -> None:
    """Outcomes handed over without waiting gather (up to `linger`) and commit together once
    `batch_limit` of them wait, rather than one commit each as they come."""
    group, batches = _recording_group(linger=60.0, batch_limit=3)
    told: list[int | BaseException] = []
    all_told = threading.Event()

    def tell(result: int | BaseException) -> None:
        told.append(result)
        if len(told) == 3:
            all_told.set()

    for item in (1, 2, 3):
        group.submit_then(item, tell)
    assert all_told.wait(10)
    assert batches == [[1, 2, 3]] and sorted(told) == [2, 4, 6]  # type: ignore[type-var]
    group.close()


def test_a_caller_that_waits_leads_without_the_lingering_writes() -> None:
    """A caller of `run` (a start, a put) commits at once, alone: it is never held behind
    the outcomes that linger (on SQLite, behind their file sync)."""
    group, batches = _recording_group(linger=60.0)
    told = threading.Event()
    group.submit_then(1, lambda result: told.set())
    assert group.run(5) == 10
    assert batches == [[5]] and not told.is_set()
    group.close()  # a stop flushes what lingers at once
    assert told.is_set() and batches == [[5], [1]]


def test_callers_leading_one_flush_after_another_take_writes_that_lingered_enough() -> None:
    """A thread that starts job after job leads flush after flush, and the flusher thread
    rarely gets its turn between them: once the submitted writes have lingered `linger`, the
    next leader takes them, so outcomes commit within about `linger` however busy the starts.
    (Before, they waited for a pause in the starts, and the jobs stayed active meanwhile.)"""
    batches: list[list[int]] = []

    def flush(batch: list[int]) -> list[int]:
        batches.append(list(batch))
        time.sleep(0.0005)  # a commit, letting other threads run
        return [item * 2 for item in batch]

    group: GroupCommit[int, int] = GroupCommit(flush, linger=0.01)
    told = threading.Event()
    group.submit_then(-1, lambda result: told.set())
    deadline = time.monotonic() + 5
    item = 0
    while not told.is_set() and time.monotonic() < deadline:
        group.run(item)
        item += 1
    assert told.is_set()
    carried = next(batch for batch in batches if -1 in batch)
    assert len(carried) > 1  # with a leader's own write
    assert item < 200  # 10 ms of half-millisecond flushes, and a margin for a slow machine
    group.close()


class _CountingCondition:
    """A group's flusher condition that counts how often its waits return (each a wake of
    the flusher thread: a context switch, and a turn on the GIL)."""

    def __init__(self, condition: threading.Condition) -> None:
        self._condition = condition
        self.wakes = 0

    def wait(self, timeout: float | None = None) -> bool:
        woken = self._condition.wait(timeout)
        self.wakes += 1
        return woken

    def notify(self, n: int = 1) -> None:
        self._condition.notify(n)

    def notify_all(self) -> None:
        self._condition.notify_all()


def test_flushes_that_end_while_the_submitted_writes_linger_do_not_wake_the_flusher() -> None:
    """Starts led one after another while an outcome lingers: the flusher thread sleeps
    through them and wakes about twice (its linger begins, its linger ends), not once a
    flush; the outcome still commits once due."""
    batches: list[list[int]] = []

    def flush(batch: list[int]) -> list[int]:
        batches.append(list(batch))
        time.sleep(0.001)  # a commit, letting the other threads run meanwhile
        return [item * 2 for item in batch]

    group: GroupCommit[int, int] = GroupCommit(flush, linger=0.3)
    counting = _CountingCondition(group._submitted_cond)
    group._submitted_cond = counting  # type: ignore[assignment]
    told = threading.Event()
    group.submit_then(1, lambda result: told.set())
    submitted_at = time.monotonic()
    for item in range(2, 42):  # forty starts, each its own flush, while it lingers
        assert group.run(item) == item * 2
    assert not told.is_set() and time.monotonic() - submitted_at < 0.3  # still lingering
    assert told.wait(10)
    assert [1] in batches and counting.wakes <= 4
    group.close()


def test_writes_due_while_a_flush_is_under_way_commit_when_it_ends() -> None:
    """The flusher finds a flush under way when its writes are due: it sleeps until that
    flush ends (which wakes it), then commits them, with no further write to prompt it."""
    group, batches, gate, entered = _gated_group(linger=0.05)
    leader = _run_in_thread(group, 0, gather=False)
    assert entered.wait(10)  # the flush of [0] holds the group
    told = threading.Event()
    group.submit_then(1, lambda result: told.set())
    time.sleep(0.2)  # its linger ran out during the flush
    assert not told.is_set()
    gate.set()
    leader.join(10)
    assert told.wait(10)
    assert batches == [[0], [1]]
    group.close()


def test_writes_that_come_due_while_the_flusher_decides_still_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The linger of a lone outcome runs out between the flusher's readings of the clock
    (here every reading moves it on by 0.6 of the linger): the flusher still commits it,
    with no other write to prompt it. (It once read the clock twice, found the write not
    due and then due, and slept until woken: on PostgreSQL, where only the flusher commits
    outcomes, a worker's last outcomes stayed uncommitted and their jobs active.)"""
    readings = iter(range(1_000_000))
    monkeypatch.setattr(_group, "time", SimpleNamespace(monotonic=lambda: next(readings) * 0.6))
    group, batches = _recording_group(linger=1.0)  # 1.0 s of the moving clock
    told = threading.Event()
    group.submit_then(1, lambda result: told.set())
    assert told.wait(10)
    assert batches == [[1]]
    group.close()


def _gated_group(
    linger: float = 0.0,
) -> tuple[GroupCommit[int, int], list[list[int]], threading.Event, threading.Event]:
    """A group (without linger unless given; gathering for up to a minute) whose flush of [0]
    holds until `gate` is set, once it has set `entered`: callers arriving meanwhile queue
    behind it."""
    gate, entered = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def flush(batch: list[int]) -> list[int]:
        batches.append(list(batch))
        if batch == [0]:
            entered.set()
            gate.wait(10)
        return [item * 2 for item in batch]

    return GroupCommit(flush, linger=linger, gather_wait=60.0), batches, gate, entered


def _run_in_thread(
    group: GroupCommit[int, int], item: int, gather: bool = True
) -> threading.Thread:
    # A daemon: a caller a broken group never releases must not keep the tests from ending.
    thread = threading.Thread(
        target=group.run, args=(item,), kwargs={"gather": gather}, daemon=True
    )
    thread.start()
    return thread


def test_without_linger_a_leader_takes_the_submitted_writes_too() -> None:
    group, batches, gate, entered = _gated_group()
    leader = _run_in_thread(group, 0, gather=False)
    assert entered.wait(10)  # a flush holds the group: what comes now queues
    told = threading.Event()
    group.submit_then(1, lambda result: told.set())
    follower = _run_in_thread(group, 2, gather=False)
    while len(group._queued) < 1:
        threading.Event().wait(0.01)
    gate.set()
    leader.join(10)
    follower.join(10)
    assert told.wait(10)
    assert len(batches) == 2 and batches[0] == [0] and sorted(batches[1]) == [1, 2]
    group.close()


def test_a_batch_of_claims_and_starts_alone_commits_without_the_sync() -> None:
    """The flush asks for a durable transaction unless every write of its batch says it
    need not be one."""
    asked: list[bool] = []

    class Savepoints:
        def raw(self, sql: str) -> None:
            pass

    @contextlib.contextmanager
    def transaction(durable: bool = True) -> Iterator[Any]:
        asked.append(durable)
        yield Savepoints()

    class Lazy:
        durable = False

        def __call__(self, ex: Any) -> str:
            return "lazy"

    flush = in_savepoints(transaction)
    assert flush([Lazy()]) == ["lazy"]
    assert flush([Lazy(), Lazy()]) == ["lazy", "lazy"]
    assert flush([Lazy(), lambda ex: "durable"]) == ["lazy", "durable"]
    assert asked == [False, False, True]


@pytest.mark.parametrize(("mode", "inside"), [("full", 1), ("extra", 1), ("off", 0)])
def test_an_unsynced_sqlite_transaction_runs_at_normal_and_the_others_as_configured(
    tmp_path: Path, mode: str, inside: int
) -> None:
    """It runs on a connection of its own, at NORMAL (or the weaker mode configured), and
    the thread's own connection keeps the configured mode."""
    store = SqliteStore(str(tmp_path / "sync.db"), synchronous=mode)
    store.migrate()
    configured = {"off": 0, "normal": 1, "full": 2, "extra": 3}[mode]
    with store.driver.transaction(durable=False) as ex:
        ex.raw("PRAGMA synchronous")
        assert ex.cursor.fetchone()[0] == inside  # a weaker mode chosen stays as it is
        ex.run("ensure_queue", queue="lazy", now=0)
    conn = store.driver.connection()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == configured
    with store.driver.transaction() as ex:
        ex.raw("PRAGMA synchronous")
        assert ex.cursor.fetchone()[0] == configured
    with store.driver.transaction(durable=False) as ex:  # again on the same connection
        ex.raw("PRAGMA synchronous")
        assert ex.cursor.fetchone()[0] == inside
    assert "lazy" in queue_names(store)


def _timed_group(gather_wait: float) -> tuple[GroupCommit[int, int], list[list[int]]]:
    """A group whose flush takes half a millisecond, as a commit does, letting threads run."""
    batches: list[list[int]] = []

    def flush(batch: list[int]) -> list[int]:
        batches.append(list(batch))
        time.sleep(0.0005)
        return [item * 2 for item in batch]

    return GroupCommit(flush, gather_wait=gather_wait), batches


def _puts_in_a_loop(group: GroupCommit[int, int], threads: int, rounds: int, gather: bool) -> None:
    """Threads calling `run` in a loop, each doing a little of its own work between calls."""
    barrier = threading.Barrier(threads)

    def loop(thread: int) -> None:
        barrier.wait()
        for i in range(rounds):
            assert group.run(thread * 1000 + i, gather=gather) == 2 * (thread * 1000 + i)
            time.sleep(0.0002)  # the caller's own work, between its puts

    workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not any(worker.is_alive() for worker in workers)


def test_gathering_callers_a_commit_released_share_the_next_one() -> None:
    """Threads putting in a loop: once a commit releases them, the first back waits for the
    others, so each commit holds nearly every thread's put (without it, the first back
    commits alone while the others are on their way, and commits alternate one put and the
    rest: 80 flushes here instead of 41)."""
    threads, rounds = 4, 40
    group, batches = _timed_group(gather_wait=1.0)
    _puts_in_a_loop(group, threads, rounds, gather=True)
    assert sorted(item for batch in batches for item in batch) == sorted(
        t * 1000 + i for t in range(threads) for i in range(rounds)
    )
    assert len(batches) <= rounds + 5, [len(batch) for batch in batches]  # without: 80


def _after_a_commit_of_two_gathering_callers() -> tuple[GroupCommit[int, int], list[list[int]]]:
    """A gated group whose last commit released two gathering callers, [1, 2] (queued behind
    a commit of [0] by a caller that does not gather): its next gathering leader waits."""
    group, batches, gate, entered = _gated_group()
    first = _run_in_thread(group, 0, gather=False)
    assert entered.wait(10)
    pair = [_run_in_thread(group, item) for item in (1, 2)]
    while len(group._queued) < 2:
        time.sleep(0.01)
    gate.set()
    for thread in [first, *pair]:
        thread.join(10)
    assert batches == [[0], [1, 2]]
    return group, batches


def test_a_gathering_caller_waits_only_for_as_many_as_the_last_commit_released() -> None:
    """After a commit of two gathering callers, a third waits (up to `gather_wait`) for a
    second to share its commit; after a commit of one, or for a caller that does not gather,
    nobody waits. (Those queued behind a commit count too: see the next test.)"""
    group, batches = _after_a_commit_of_two_gathering_callers()

    def in_thread(item: int, gather: bool = True) -> threading.Thread:
        return _run_in_thread(group, item, gather)

    waiting = in_thread(3)  # the first back waits for the second
    time.sleep(0.3)
    assert waiting.is_alive() and group._gatherer_waits and batches == [[0], [1, 2]]
    joining = in_thread(4)
    for thread in (waiting, joining):
        thread.join(10)
    assert not waiting.is_alive() and sorted(batches[-1]) == [3, 4]

    plain = in_thread(5, gather=False)  # a caller that does not gather leads at once
    plain.join(10)
    assert not plain.is_alive() and batches[-1] == [5]

    assert group.run(6, gather=True) == 12  # the plain commit released no gathering caller
    single = in_thread(7)  # and a commit of one gathering caller makes nobody wait
    single.join(10)
    assert not single.is_alive() and batches[-1] == [7]
    group.close()


def test_gathering_callers_queued_behind_a_commit_count_as_fellows() -> None:
    """Two halves of the threads do not settle into alternate commits (each half queuing
    while the other's commit runs): a leader also waits for the callers queued behind the
    last commit, here the one whose commit ran while the other two queued."""
    group, batches, gate, entered = _gated_group()
    first = _run_in_thread(group, 0)
    assert entered.wait(10)
    queued = [_run_in_thread(group, item) for item in (1, 2)]
    while len(group._queued) < 2:
        time.sleep(0.01)
    gate.set()
    first.join(10)
    time.sleep(0.3)  # the next leader waits for the first caller, back for its next put
    assert batches == [[0]] and all(thread.is_alive() for thread in queued)
    assert group.run(3, gather=True) == 6
    for thread in queued:
        thread.join(10)
    assert batches == [[0], [1, 2, 3]]
    group.close()


def test_callers_that_come_back_later_than_gather_wait_are_not_waited_for_again() -> None:
    """Threads whose own work between puts outlasts `gather_wait` (a request doing its
    queries) are never back in time: after a wait that ran out, a leader expects only as many
    as had come, instead of adding `gather_wait` to every commit."""
    batches: list[list[int]] = []

    def flush(batch: list[int]) -> list[int]:
        batches.append(list(batch))
        time.sleep(0.002)
        return [item * 2 for item in batch]

    group: GroupCommit[int, int] = GroupCommit(flush, gather_wait=0.001)
    ran_out = 0
    wait_for = group._gathering.wait_for

    def counted(predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        nonlocal ran_out
        met = wait_for(predicate, timeout)
        ran_out += not met
        return met

    group._gathering.wait_for = counted  # type: ignore[method-assign]
    barrier = threading.Barrier(4)

    def loop(thread: int) -> None:
        barrier.wait()
        for i in range(20):
            group.run(thread * 100 + i, gather=True)
            time.sleep(0.005)  # longer than gather_wait

    workers = [threading.Thread(target=loop, args=(t,)) for t in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sum(len(batch) for batch in batches) == 80
    assert ran_out <= 5, (ran_out, len(batches))


@contextlib.contextmanager
def _interrupted_after(seconds: float) -> Iterator[None]:
    """The block must raise the KeyboardInterrupt that a SIGALRM handler raises in it after
    `seconds` (as Ctrl-C does in a program's main thread)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_an_interrupt_while_gathering_still_commits_and_frees_the_group() -> None:
    """A KeyboardInterrupt (here a signal handler's exception) in a leader waiting for its
    fellows: its write still commits, the exception reaches it, and the next callers are not
    left waiting for a flush that never comes."""
    group, batches = _after_a_commit_of_two_gathering_callers()
    with _interrupted_after(0.2):
        group.run(3, gather=True)  # waits (up to a minute) for a second caller
    assert batches[-1] == [3]  # committed all the same
    later = _run_in_thread(group, 4, gather=False)
    later.join(10)
    assert not later.is_alive() and batches[-1] == [4]
    group.close()


def test_a_caller_that_does_not_gather_ends_a_leader_s_wait() -> None:
    """On SQLite claims and starts share the puts' group: one that queues while a put leads
    and waits for its fellows ends the wait, and both commit together."""
    group, batches = _after_a_commit_of_two_gathering_callers()
    waiting = _run_in_thread(group, 3)  # waits up to a minute for a second put
    time.sleep(0.3)
    assert waiting.is_alive() and group._gatherer_waits
    assert group.run(4) == 8  # a claim, say: it need not wait for the puts
    waiting.join(10)
    assert not waiting.is_alive() and sorted(batches[-1]) == [3, 4]
    group.close()


def test_an_interrupt_while_queued_behind_a_flush_withdraws_the_write_and_frees_the_group() -> None:
    """A KeyboardInterrupt in a caller of `run` queued behind another's flush: its write
    leaves the queue, the exception reaches it, and the flush's end does not hand the next
    flush to a caller that is gone (the group waited for that lead for ever: every later
    `run` blocked, and no submitted write was committed again)."""
    group, batches, gate, entered = _gated_group()
    leader = _run_in_thread(group, 0, gather=False)
    assert entered.wait(10)
    with _interrupted_after(0.2):
        group.run(1)  # queued behind the flush of [0]
    gate.set()
    leader.join(10)
    later = _run_in_thread(group, 2, gather=False)
    later.join(10)
    told = threading.Event()
    group.submit_then(3, lambda result: told.set())
    assert not later.is_alive() and told.wait(10)
    assert batches == [[0], [2], [3]]  # the interrupted write never committed
    group.close()


def test_a_close_that_times_out_during_a_flush_leaves_the_flusher_working() -> None:
    """`close` gives up waiting while a caller's flush holds the group: afterwards the
    flusher still commits the writes submitted (it was left waiting for a close that had
    ended, and woke only to flush beside the flush under way), one flush at a time."""
    gate, entered = threading.Event(), threading.Event()
    batches: list[list[int]] = []
    flushing, most_at_once = [0], [0]
    count = threading.Lock()

    def flush(batch: list[int]) -> list[int]:
        with count:
            flushing[0] += 1
            most_at_once[0] = max(most_at_once[0], flushing[0])
            batches.append(list(batch))
        if batch == [0]:
            entered.set()
            gate.wait(10)
        with count:
            flushing[0] -= 1
        return [item * 2 for item in batch]

    group: GroupCommit[int, int] = GroupCommit(flush, linger=0.3)
    leader = _run_in_thread(group, 0, gather=False)
    assert entered.wait(10)
    lingering = threading.Event()
    group.submit_then(1, lambda result: lingering.set())
    group.close(timeout=0.05)  # the flush of [0] outlasts it
    gate.set()
    leader.join(10)  # ends while [1] still lingers
    assert lingering.wait(10)
    assert batches == [[0], [1]] and most_at_once == [1]
    group.close()


def test_a_write_submitted_as_the_flusher_ends_its_close_is_committed() -> None:
    """A write submitted after the flusher ended its close, while its thread is still
    ending, starts a flusher of its own (it was left with none until the next write)."""
    ended, finish = threading.Event(), threading.Event()

    class SlowToEnd(GroupCommit[int, int]):
        def _flush_submitted(self) -> None:
            super()._flush_submitted()
            ended.set()
            finish.wait(10)  # the thread, done with the group, still alive

    group = SlowToEnd(lambda batch: [item * 2 for item in batch], linger=0.005)
    first = threading.Event()
    group.submit_then(1, lambda result: first.set())
    assert first.wait(10)
    closing = threading.Thread(target=group.close)
    closing.start()
    assert ended.wait(10)
    told = threading.Event()
    group.submit_then(2, lambda result: told.set())
    finish.set()
    closing.join(10)
    assert told.wait(10)
    group.close()


def test_a_flush_that_gives_the_wrong_number_of_results_fails_every_write() -> None:
    """A flush returning fewer results than writes (a bug) fails them all, rather than
    telling the writes past its results that they committed with None."""
    group: GroupCommit[int, int] = GroupCommit(lambda batch: batch[:1], linger=60.0, batch_limit=2)
    told: list[object] = []
    both = threading.Event()

    def tell(result: object) -> None:
        told.append(result)
        if len(told) == 2:
            both.set()

    group.submit_then(1, tell)
    group.submit_then(2, tell)
    assert both.wait(10)
    assert all(isinstance(result, RuntimeError) for result in told), told
    group.close()
