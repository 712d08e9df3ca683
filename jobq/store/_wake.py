"""Wake-ups for SQLite, which has no NOTIFY: a folder of datagram sockets, one per waiting
worker, to which a process that writes work for workers sends a byte.

Without them an idle worker must ask SQLite, every couple of milliseconds, whether another
connection committed (`PRAGMA data_version`): a few percent of a core per idle worker, for
nothing. With them it sleeps in `select` until a writer says "look", then watches
`data_version` for the commit that follows; a slow check (every `SLOW_CHECK` seconds) still
sees commits of writers that send nothing (a jobq without this, or SQL of the application's
own).

The folder lives beside the database file (`jobq.db-wake/`), so that every process using the
file finds it whatever its temporary folder, or, where that path is too long for a socket's
address (about 100 bytes), under the temporary folder by a hash of the database's path.
Sockets of processes that are gone are removed by the first writer that finds them refusing.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import select
import socket
import tempfile
import time
from collections.abc import Callable

SLOW_CHECK = 0.1  # seconds between data_version checks while no wake-up comes
SETTLE = 0.05  # seconds to watch for the commit a wake-up announces
_MAX_ADDRESS = 100  # bytes: AF_UNIX addresses are at most 107 on Linux, 103 on macOS
_LIST_EVERY = 1.0  # seconds a writer keeps its list of the folder's sockets
_names = itertools.count()


def wake_folder(db_path: str) -> str:
    """The folder of the wake-up sockets of the database file at `db_path`."""
    beside = os.path.abspath(db_path) + "-wake"
    if len(os.path.join(beside, "4194304-999999.sock")) <= _MAX_ADDRESS:
        return beside
    digest = hashlib.sha256(os.path.realpath(db_path).encode()).hexdigest()[:20]
    return os.path.join(tempfile.gettempdir(), f"jobq-wake-{digest}")


class WakeSender:
    """Sends a wake-up to every socket of the folder; cheap enough for every put (the folder is
    listed at most once a second, a send does not block)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._sock: socket.socket | None = None
        self._peers: list[str] = []
        self._listed_at = -_LIST_EVERY

    def send(self) -> None:
        now = time.monotonic()
        if now - self._listed_at >= _LIST_EVERY:
            self._listed_at = now
            try:
                self._peers = [os.path.join(self.folder, n) for n in os.listdir(self.folder)]
            except OSError:  # no folder: no worker of this database waits on a socket
                self._peers = []
        if not self._peers:
            return
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        for peer in list(self._peers):
            try:
                self._sock.sendto(b"w", peer)
            except BlockingIOError:
                pass  # its queue is full: it has wake-ups to read already
            except (ConnectionRefusedError, FileNotFoundError):
                self._forget(peer)  # its process is gone
                with contextlib.suppress(OSError):
                    os.unlink(peer)
            except OSError:
                self._forget(peer)  # not ours to write to: it keeps its slow check

    def _forget(self, peer: str) -> None:
        self._peers = [p for p in self._peers if p != peer]  # a new list: other threads iterate

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class SocketWaiter:
    """Waits for a commit of another connection: on a wake-up of its socket, or at the latest
    when the slow check sees `data_version` change. `read_version` reads it."""

    def __init__(self, folder: str, read_version: Callable[[], int], on_close: Callable[[], None]):
        os.makedirs(folder, exist_ok=True)
        self.address = os.path.join(folder, f"{os.getpid()}-{next(_names)}.sock")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address)  # left by an earlier process with this pid
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(self.address)
        except OSError:
            self._sock.close()
            raise
        self._sock.setblocking(False)
        self._read = read_version
        self._on_close = on_close
        self._version = read_version()
        self._checked_at = time.monotonic()

    def _changed(self) -> bool:
        self._checked_at = time.monotonic()
        version = self._read()
        if version == self._version:
            return False
        self._version = version
        return True

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                self._sock.recv(64)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            # The slow check, at most every SLOW_CHECK: `data_version` also changes with each
            # commit of this process's other connections, and a worker draining its queue
            # commits all the time; checking at every call would wake it for each of those.
            if time.monotonic() - self._checked_at >= SLOW_CHECK and self._changed():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            readable, _, _ = select.select([self._sock], [], [], min(SLOW_CHECK, remaining))
            if readable:
                self._drain()
                if self._settled(min(SETTLE, max(0.0, deadline - time.monotonic()))):
                    return True

    def _settled(self, within: float) -> bool:
        """Watch for the commit a wake-up announced (its writer sends before it commits)."""
        until = time.monotonic() + within
        while True:
            if self._changed():
                return True
            if time.monotonic() >= until:
                return False
            time.sleep(0.0002)

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.address)
        self._on_close()
