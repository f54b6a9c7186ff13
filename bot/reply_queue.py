"""Replies waiting for an investigation, so Bolt's listener threads only parse and ack.

A burst of ``/rca`` once held every listener thread waiting on investigations,
and Slack's later requests found none left to ack them (404 "unhandled
request"). A listener now reserves a place here, acks, and hands the rest over.
The queue is bounded: when it is full the responder is told at once that the
bot is busy, instead of being acked and forgotten. Other work that must not
pile up behind a slow database (new incident channels, delivery claims) takes
its own bounded queue of this kind.

A replica stopping (SIGTERM) finishes what it acked for a grace period only:
with a hung database each reply could hold the stop for minutes. Then a
reply not yet started is turned away (its ``turned_away`` tells the responder
to ask again) and the ones still running are given up with a log line.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TypeVar

import structlog

from knowledge.db import failure_fields

T = TypeVar("T")
log = structlog.get_logger(__name__)

DEFAULT_CAPACITY = 100  # replies in flight per replica: a large incident's burst, not a flood
DEFAULT_RUNNERS = 16  # threads that wait on investigations and post; the investigation pool does the CPU work


class ReplyQueue:
    """At most ``capacity`` replies in flight, run by ``runners`` threads in arrival order."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, runners: int = DEFAULT_RUNNERS, name: str = "reply") -> None:
        self.capacity = capacity
        self.runners = runners
        self.name = name  # of its threads (``culprit-<name>``) and in its log lines
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        # Started but not yet running, oldest first: each with what to do instead if the replica stops first.
        self._waiting: deque[tuple[Callable[[], None], Callable[[], None] | None]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=runners, thread_name_prefix=f"culprit-{name}")

    def reserve(self) -> int | None:
        """A place in the queue (1 = first, running at once while ``<= runners``), or None when full."""
        with self._lock:
            if self._in_flight >= self.capacity:
                return None
            self._in_flight += 1
            return self._in_flight

    def start(self, reply: Callable[[], None], turned_away: Callable[[], None] | None = None) -> None:
        """Run ``reply`` for a reserved place, in a copy of the caller's context (its log fields).

        ``turned_away`` runs instead if the replica stops before ``reply`` started (:meth:`drain`):
        it tells the responder, without the database, which may be why the stop ran out of time.
        """
        context = contextvars.copy_context()
        with self._lock:
            self._waiting.append((partial(context.run, reply), turned_away and partial(context.run, turned_away)))
        self._pool.submit(self._run_next)

    def submit(self, work: Callable[[], T]) -> Future[T] | None:
        """Reserve a place and run ``work`` there, for a caller that waits on its result; None when full.

        The future holds what ``work`` returned or raised: nothing is logged here.
        """
        if self.reserve() is None:
            return None
        return self._pool.submit(contextvars.copy_context().run, self._released_after, work)

    def drain(self, grace_s: float | None = None) -> None:
        """Finish the replies already acked, for at most ``grace_s``, then take no more (a replica stopping).

        Past ``grace_s`` each reply not started yet is turned away (or dropped, logged, when it has no
        ``turned_away``), work :meth:`submit` queued and not started is cancelled (its future says so),
        and the ones still running are left to die with the process, counted in the log.
        """
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=grace_s)
            left, self._waiting = list(self._waiting), deque()
            running = self._in_flight - len(left)
        self._pool.shutdown(wait=False, cancel_futures=True)  # work submitted and not started is dropped
        if left:
            log.warning("replies not started before the shutdown grace ran out: turned away", count=len(left), queue=self.name)
        for _, turned_away in left:
            self._run(turned_away or partial(log.warning, "a reply not started before shutdown was dropped"))
        if running:
            log.error("replies still running when the shutdown grace ran out: given up", count=running, grace_s=grace_s,
                      queue=self.name)

    def cancel(self) -> None:
        """Give back a reserved place that will not be started (the ack or placeholder failed)."""
        with self._lock:
            self._in_flight -= 1
            self._idle.notify_all()

    def _run_next(self) -> None:
        with self._lock:
            if not self._waiting:
                return  # turned away by drain
            reply, _ = self._waiting.popleft()
        self._run(reply)

    def _run(self, reply: Callable[[], None]) -> None:
        try:
            self._released_after(reply)
        except Exception as error:  # the reply paths turn failures into messages; anything left must not kill the runner
            log.error("a reply failed after its request was acked", **failure_fields(error))

    def _released_after(self, work: Callable[[], T]) -> T:
        try:
            return work()
        finally:
            self.cancel()

    def busy_text(self) -> str:
        return (
            f"🚦 I'm working on {self.capacity} investigations right now and can't take another. "
            "Try again in a minute."
        )

    def queued_text(self, position: int) -> str:
        """What the ack adds when the reply must wait for earlier ones ('' when it starts at once)."""
        return f" (busy: queued as #{position - self.runners})" if position > self.runners else ""
