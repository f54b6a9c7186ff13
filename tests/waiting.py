"""Waiting for a positive signal (a row, a counter, a process gone) instead of sleeping and hoping."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_until(read: Callable[[], T], failure: str, timeout: float = 30.0) -> T:
    """``read()`` again every 50 ms until it returns something truthy, and return that; after
    ``timeout`` seconds raise ``AssertionError(failure)`` so the test fails loudly."""
    deadline = time.monotonic() + timeout
    while not (found := read()):
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        time.sleep(0.05)
    return found


def running_processes_naming(text: str) -> list[str]:
    """The command lines of the processes that have not exited (zombies have) and whose command line holds ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):  # not a process, or one that ended meanwhile
            continue
        if text in command and state != "Z":
            found.append(f"{entry.name}: {command}")
    return found


def release_fifo(fifo: Path) -> None:
    """End the wait of a process still opening ``fifo`` for reading (one the test failed to stop), so it does
    not outlive the test."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # nobody is waiting on it
        pass
