"""How loaders report progress without knowing who is watching (a terminal bar, a job log)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """A sequence of steps, each with a known or unknown amount of work."""

    def start(self, description: str, total: int | None = None) -> None: ...

    def advance(self, amount: int = 1) -> None: ...


class Silent:
    """Progress nobody watches: library callers and tests."""

    def start(self, description: str, total: int | None = None) -> None:
        return None

    def advance(self, amount: int = 1) -> None:
        return None
