"""How long an investigation may still run, checked between the stages of the RCA.

When the responder has been told an investigation timed out, nobody will read
its answer: it must give its worker back instead of ranking for minutes more.
Python cannot stop a thread, so the pipeline checks its ``Deadline`` between
stages (load, retrieve, signals, election rounds, gate, ...) and stops at the
first check past it. The deadline travels in a context variable, because the
bot's investigate callables take only the incident query.
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar


class DeadlinePassed(Exception):
    """The investigation stopped at ``stage`` because its deadline had passed."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"the deadline passed before the {stage} stage")
        self.stage = stage


class Deadline:
    """A time limit that its owner may also end early (``expire``), and the stages begun under it."""

    def __init__(self, seconds: float | None = None) -> None:
        self._ends = None if seconds is None else time.monotonic() + seconds
        self._expired = threading.Event()
        self.stages: list[str] = []

    def expire(self) -> None:
        """End it now: whoever waited for the answer has stopped waiting."""
        self._expired.set()

    @property
    def passed(self) -> bool:
        return self._expired.is_set() or (self._ends is not None and time.monotonic() >= self._ends)

    def check(self, stage: str) -> None:
        """Raise ``DeadlinePassed`` instead of starting ``stage`` once the deadline has passed."""
        if self.passed:
            raise DeadlinePassed(stage)
        self.stages.append(stage)


_CURRENT: ContextVar[Deadline | None] = ContextVar("culprit_rca_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline of the investigation running in this context, if its caller set one."""
    return _CURRENT.get()


def set_deadline(deadline: Deadline) -> None:
    """Make ``deadline`` the current one; call it inside the context the investigation will run in."""
    _CURRENT.set(deadline)


def check_deadline(deadline: Deadline | None, stage: str) -> None:
    """``deadline.check(stage)``, for code where there may be no deadline."""
    if deadline is not None:
        deadline.check(stage)
