"""Waiting for a positive signal (a row, a counter) instead of sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
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
