"""A database that is down for a while: its address refuses connections until the outage ends.

Then a plain TCP relay on that same address carries every new connection to
the real PostgreSQL server, as a database back from a restart does; a later
:meth:`DatabaseOutage.begin` takes it down again, open connections included.
"""

from __future__ import annotations

import socket
import threading

from sqlalchemy.engine import make_url


class DatabaseOutage:
    """``url`` is ``database_url`` on a loopback port where nothing listens until :meth:`end`."""

    def __init__(self, database_url: str) -> None:
        real = make_url(database_url)
        self._target = (real.host or "127.0.0.1", real.port or 5432)
        with socket.socket() as probe:  # a free port, closed again: connecting to it is refused
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = real.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)
        self._listener: socket.socket | None = None
        self._relayed: list[socket.socket] = []

    def end(self) -> None:
        """The database answers again: relay each connection to the real server."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def begin(self) -> None:
        """The database goes down again: new connections are refused and open ones cut, as in a crash."""
        self.close()
        for end in self._relayed:
            _cut(end)
        self._relayed.clear()

    def close(self) -> None:
        if self._listener is not None:
            _cut(self._listener)  # wakes the thread blocked in accept(), which close() alone would not
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self._target)
            self._relayed += (client, server)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _cut(source)
        _cut(sink)


def _cut(end: socket.socket) -> None:
    try:
        end.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
