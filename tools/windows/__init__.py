"""How far back a question may look: 366 days, a year with its leap day, and at least one day or hour.

A responder may type "the last 100000 days", and a model may pass any number.
Unbounded, such a window scans every stored row, builds a day list as long as
itself, or overflows datetime arithmetic (a crash the responder sees as a
fallback RCA of a question that was not about an incident). A model may also
pass zero, a negative number or NaN, which would be answered for "the last -5
days" or overflow the same way. The router and every tool of the agent bound
their window here, and the answer says so.
"""

from __future__ import annotations

from typing import TypeVar

Window = TypeVar("Window", int, float)

MAX_WINDOW_DAYS = 366
MAX_WINDOW_HOURS = MAX_WINDOW_DAYS * 24
CAPPED_WINDOW = f"_I look back at most {MAX_WINDOW_DAYS} days, so this covers the last {MAX_WINDOW_DAYS} days._"
SHORTEST_WINDOW = "_A window must be longer than zero, so this covers the shortest I answer for._"


def capped(window: Window, most: int) -> tuple[Window, str]:
    """``window`` cut to ``most`` (days or hours, as ``window``), and :data:`CAPPED_WINDOW` when it was cut;
    a window that is not positive (zero, negative, NaN) becomes one day or hour, with :data:`SHORTEST_WINDOW`."""
    if not window > 0:
        return type(window)(1), SHORTEST_WINDOW
    return (window, "") if window <= most else (most, CAPPED_WINDOW)


def with_note(note: str, answer: str) -> str:
    """The answer, after the sentence saying its window was cut (if it was)."""
    return f"{note}\n{answer}" if note else answer
