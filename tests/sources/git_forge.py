"""A real git server for the tests: ``git http-backend`` (smart HTTP) behind a threaded HTTP server whose
network the test controls. The pack a fetch asks for is sent in pieces through ``pace``, which may slow
them down (a long first fetch) or hold them (a stalled remote)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PIECE_BYTES = 64 * 1024


class Forge:
    """Serves the bare repositories under ``root`` at ``url``/NAME.git; ``sending_s`` is how long the last
    pack took to send, by the forge's own clock."""

    def __init__(self, root: Path, pace: Callable[[int], None]) -> None:
        self.root = root
        self.pace = pace
        self.sending_s = 0.0
        self.url = ""


def _handler(forge: Forge) -> type[BaseHTTPRequestHandler]:
    class Backend(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            request = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {**os.environ, "GIT_PROJECT_ROOT": str(forge.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                   "QUERY_STRING": query, "REQUEST_METHOD": self.command, "CONTENT_LENGTH": str(len(request)),
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                   "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}  # fmt: skip
            answer = subprocess.run(["git", "http-backend"], input=request, env=env, capture_output=True, check=True)
            head, _, body = answer.stdout.partition(b"\r\n\r\n")
            self.send_response(200)
            for line in head.decode().split("\r\n"):
                name, _, value = line.partition(": ")
                if name.lower() != "status":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            pack = self.command == "POST" and path.endswith("/git-upload-pack")
            started = time.monotonic()
            for number, start in enumerate(range(0, len(body), PIECE_BYTES)):
                if pack:
                    forge.pace(number)
                self.wfile.write(body[start : start + PIECE_BYTES])
                self.wfile.flush()
            if pack:
                forge.sending_s = time.monotonic() - started

        do_GET = do_POST = _serve

        def log_message(self, *args: object) -> None:
            pass

    return Backend


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A fetch the test made git give up on leaves its piece unsent: no traceback for that on the test's output.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serving(root: Path, pace: Callable[[int], None] = lambda _number: None) -> Iterator[Forge]:
    forge = Forge(root, pace)
    server = _Server(("127.0.0.1", 0), _handler(forge))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    forge.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield forge
    finally:
        server.shutdown()
        server.server_close()


def bare_repository_of_random_files(root: Path, name: str, files: int, file_bytes: int) -> Path:
    """``root``/``name``.git holding one commit of ``files`` files of random bytes (so the pack is as large:
    nothing compresses), over git's ``fetch.unpackLimit`` of 100 objects so it arrives as one pack."""
    work = root.parent / f"{name}-work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    for number in range(files):
        (work / f"data{number}.bin").write_bytes(os.urandom(file_bytes))
    identity = ["-c", "user.name=Ana", "-c", "user.email=ana@example.org"]
    subprocess.run(["git", "-C", str(work), "add", "."], check=True)
    subprocess.run(["git", "-C", str(work), *identity, "commit", "-q", "-m", "Add the data"], check=True)
    bare = root / f"{name}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare
