"""A database that hangs: a TCP server on 127.0.0.1 that accepts connections and never answers.

A real PostgreSQL cannot be made to hang on cue; this one hangs every
connection from the first byte, as a database behind a dead network path or a
stuck failover does. psycopg waits on it for ever (no ``connect_timeout``), so
each connection it accepts is one thread of the bot held until the test ends,
which closes them all and lets those threads fail and return.
"""

from __future__ import annotations

import socket
import threading
import time


class SilentDatabase:
    """``with SilentDatabase() as database:`` serves ``database.url`` until the block ends."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so the accepting thread sees the end of the test
        self._closed = threading.Event()
        self._accepted: list[socket.socket] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._accept, name="silent-database", daemon=True)

    @property
    def url(self) -> str:
        port = self._listener.getsockname()[1]
        return f"postgresql+psycopg://culprit@127.0.0.1:{port}/culprit"

    @property
    def connections(self) -> int:
        """Connections accepted so far (each one a caller now waiting for an answer that never comes)."""
        with self._changed:
            return len(self._accepted)

    def wait_for_connections(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` connections were accepted; fail loudly otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._accepted) < count:
                if not self._changed.wait(timeout=deadline - time.monotonic()):
                    raise AssertionError(f"the database saw {len(self._accepted)} connections, expected {count}")

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._changed:
                self._accepted.append(connection)
                self._changed.notify_all()

    def __enter__(self) -> SilentDatabase:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._thread.join(timeout=10)
        self._listener.close()
        with self._changed:
            for connection in self._accepted:
                connection.close()
