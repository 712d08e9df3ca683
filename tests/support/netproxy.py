"""A TCP proxy that can stop forwarding: a network partition between one worker and the
database server, while the server stays up for everyone else."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit


class PartitionProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` holds all traffic, `heal()` resumes;
    `hang_new()` holds only new connections, `sever()` closes the ones made."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        # A one-shot lost reply (`drop_after`) or lost request (`drop_before`): (marker, mode)
        self._armed: tuple[bytes, str] | None = None
        self._armed_lock = threading.Lock()
        self.dropped = threading.Event()
        self._new_open = threading.Event()  # clear: new connections hang (`hang_new`)
        self._new_open.set()
        self._sockets_lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @classmethod
    def to_server_of(cls, db_url: str) -> PartitionProxy:
        """A proxy to the server of the PostgreSQL URL `db_url`."""
        target = urlsplit(db_url)
        return cls(target.hostname or "127.0.0.1", target.port or 5432)

    def url(self, db_url: str) -> str:
        """`db_url` (a PostgreSQL URL), through this proxy."""
        parts = urlsplit(db_url)
        netloc = f"127.0.0.1:{self.port}"
        return parts._replace(
            netloc=f"{parts.username}@{netloc}" if parts.username else netloc
        ).geturl()

    def hang_new(self) -> None:
        """New connections are accepted but reach the server only after `stop_hanging()`:
        a link that hangs for whoever connects now (the connections made before go on)."""
        self._new_open.clear()

    def stop_hanging(self) -> None:
        self._new_open.set()

    def sever(self) -> None:
        """Close every connection made so far, on both sides (as a server restart or a
        firewall's reset would); new ones are made as usual (or hang, after `hang_new`)."""
        with self._sockets_lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def drop_after(self, marker: bytes) -> None:
        """The next client message containing `marker` (b"COMMIT") reaches the server, then
        the client's side of that connection is closed before any reply: the server acts on
        it and the client never hears back (a reply lost in flight)."""
        with self._armed_lock:
            self._armed = (marker, "after")
        self.dropped.clear()

    def drop_before(self, marker: bytes) -> None:
        """The next client message containing `marker` is not forwarded: both sides of that
        connection are closed (the request lost before the server saw it)."""
        with self._armed_lock:
            self._armed = (marker, "before")
        self.dropped.clear()

    def _take_armed(self, data: bytes) -> str | None:
        with self._armed_lock:
            if self._armed is None or self._armed[0] not in data:
                return None
            mode = self._armed[1]
            self._armed = None
            return mode

    def cut(self) -> None:
        self._open.clear()

    def heal(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self._open.set()
        self._new_open.set()
        with self._sockets_lock:
            sockets = [self._listener, *self._sockets]
        for sock in sockets:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._new_open.is_set():
                self._connect(client)
            else:
                threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self._new_open.wait()  # a hanging link: the client's bytes wait, unanswered
        if self._closed:
            client.close()
            return
        server = socket.create_connection(self.target)
        with self._sockets_lock:
            self._sockets += [client, server]
        muted = threading.Event()  # set: this connection's replies are thrown away
        for src, dst, up in ((client, server, True), (server, client, False)):
            threading.Thread(
                target=self._pump, args=(src, dst, up, client, muted), daemon=True
            ).start()

    def _pump(
        self,
        src: socket.socket,
        dst: socket.socket,
        upstream: bool = False,
        client: socket.socket | None = None,
        muted: threading.Event | None = None,
    ) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._open.wait()  # a cut holds the bytes: they arrive only after heal()
                if upstream and (mode := self._take_armed(data)) is not None:
                    assert client is not None and muted is not None
                    if mode == "before":
                        self.dropped.set()
                        break  # not forwarded; the finally closes both sides
                    muted.set()
                    dst.sendall(data)  # the server gets it, and its replies go nowhere
                    self.dropped.set()  # before the client can hear of the loss
                    client.shutdown(socket.SHUT_RDWR)
                    continue
                if not upstream and muted is not None and muted.is_set():
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
