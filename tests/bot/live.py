"""The real bot server (Starlette under uvicorn) on 127.0.0.1, port 0, in a background thread.

Shared by the end-to-end tests and benchmarks/slack_ack.py.
"""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.applications import Starlette


class LiveServer:
    """``with LiveServer(app) as url:`` serves ``app`` until the block ends."""

    def __init__(self, app: Starlette, lifespan: str = "off") -> None:
        """``lifespan="on"`` runs the app's start-up and shut-down (Socket Mode connects in them)."""
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan)
        self._server = uvicorn.Server(config)
        self._crash: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="culprit-test-server", daemon=True)

    def _serve(self) -> None:
        try:
            self._server.run()
        except BaseException as error:  # kept for the test: a thread's exception is otherwise only printed
            self._crash = error

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the bot server did not start") from self._crash
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._crash is not None and exc_type is None:
            raise AssertionError(f"the bot server crashed: {self._crash!r}") from self._crash
