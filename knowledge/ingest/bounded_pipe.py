"""A child process's output pipe read as it comes, never waiting for ever: each wait for the next byte, and
for the process's exit once its output ended, lasts at most a silence bound, and all of them together at
most an optional total bound.

A git that streams a long history or fetches a large pack prints as it goes, so a bound on its silence
lets it run as long as it needs, while one stuck on a stalled remote, a hung mount or a pipe nobody
writes is given up on. The caller names what stalled (its errors say which command, which repository)
and kills the process.

The processes read so are started here (:func:`start_child`), each in a process group of its own, so that
:func:`stop_children` can end them all when ``culprit serve`` exits: the polls that run them live in daemon
threads, which die with the bot, while a git stuck on a remote or a hung mount would go on, orphaned.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from typing import IO, Any

_children: set[subprocess.Popen[bytes]] = set()  # the processes running now, which stop_children kills
_children_lock = threading.Lock()
_stopping = threading.Event()  # set by stop_children, for the rest of the process


class Stalled(Exception):
    """The process made no progress within its bounds."""


class FellSilent(Stalled):
    """It printed nothing for the silence bound."""


class DidNotExit(Stalled):
    """Its output ended, but it did not exit within the silence bound."""


class RanTooLong(Stalled):
    """It ran past the total bound."""


class Stopping(Exception):
    """:func:`stop_children` was called: no new child process starts."""


def start_child(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(command, **options)`` in a process group of its own, known to :func:`stop_children`;
    :class:`Stopping` once that was called. Each is handed to :func:`end_child` when done with."""
    with _children_lock:
        if _stopping.is_set():
            raise Stopping()
        process = subprocess.Popen(command, start_new_session=True, **options)
        _children.add(process)
    return process


def end_child(process: subprocess.Popen[bytes]) -> None:
    """Forget ``process``; if it still runs, kill its whole group and wait for it (killing git alone left its
    remote helper, ``git remote-https``, waiting on a stalled remote)."""
    with _children_lock:
        _children.discard(process)
    if process.poll() is None:
        _kill_group(process)
        process.wait()


def run_child(command: list[str], timeout_s: float, **options: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run(command, capture_output=True, timeout=timeout_s, **options)`` started by
    :func:`start_child` and ended by :func:`end_child`: a short git stuck on a hung mount is killed by
    :func:`stop_children` instead of outliving ``culprit serve`` for its whole timeout, and none starts after
    (:class:`Stopping`). Past ``timeout_s``, ``subprocess.TimeoutExpired`` once its group is killed."""
    process = start_child(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)
    try:
        output, errors = process.communicate(timeout=timeout_s)
    finally:
        end_child(process)
        for pipe in (process.stdout, process.stderr):
            pipe.close()  # type: ignore[union-attr]
    return subprocess.CompletedProcess(command, process.returncode, output, errors)


def stopping() -> bool:
    """Whether :func:`stop_children` was called: a child that failed since was most likely killed by it."""
    return _stopping.is_set()


def stop_children() -> None:
    """Kill every child process started here and refuse new ones, for the rest of the process. Returns once
    each has exited."""
    with _children_lock:
        _stopping.set()
        running = [process for process in _children if process.returncode is None]
        for process in running:
            _kill_group(process)
    for process in running:
        process.wait()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # the group ended on its own meanwhile
        pass


class BoundedPipe:
    """``pipe`` read with each wait at most ``silence_s``, and all of them within ``total_s`` (from now) when given."""

    def __init__(self, pipe: IO[bytes], silence_s: float, total_s: float | None = None) -> None:
        self._descriptor = pipe.fileno()
        self._readable = select.poll()  # not select.select: a server may hold descriptors past FD_SETSIZE
        self._readable.register(self._descriptor, select.POLLIN)
        self._silence_s = silence_s
        self._deadline = None if total_s is None else time.monotonic() + total_s

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes, fewer only at the end of the output (as a pipe's ``read`` gives them)."""
        pieces: list[bytes] = []
        wanted = size
        while wanted > 0 and (piece := self._next(wanted)):
            pieces.append(piece)
            wanted -= len(piece)
        return b"".join(pieces)

    def exit_status(self, process: subprocess.Popen[bytes]) -> int:
        """The status of ``process`` once its output ended: one stuck after closing it (writing on a hung
        mount) would otherwise hold the caller for ever."""
        try:
            return process.wait(timeout=self._wait_s())
        except subprocess.TimeoutExpired:
            raise self._overdue_or(DidNotExit()) from None

    def _next(self, size: int) -> bytes:
        if not self._readable.poll(int(self._wait_s() * 1000) + 1):
            raise self._overdue_or(FellSilent())
        return os.read(self._descriptor, size)

    def _wait_s(self) -> float:
        """How long the next wait may last: the silence bound, or less where the total bound ends first."""
        if self._deadline is None:
            return self._silence_s
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise RanTooLong()
        return min(self._silence_s, left)

    def _overdue_or(self, stalled: Stalled) -> Stalled:
        """``RanTooLong`` when the wait that just ended was cut by the total bound, else ``stalled``."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return RanTooLong()
        return stalled
