"""A database that is down for a while: its address refuses connections until the outage ends.

Then a plain TCP relay on that same address carries every new connection to
the real PostgreSQL server, as a database back from a restart does.
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

    def end(self) -> None:
        """The database answers again: relay each connection to the real server."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self._target)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
