"""Dates and times typed on the command line (``--at``, ``--since``, ``--end``), read once for every command.

A typo such as ``0001-01-01`` or ``9999-12-31`` is a valid ISO date, but the
windows built around it (days before an incident, the day after a digest's
week) leave Python's date range and used to end in an ``OverflowError``
traceback. Nothing culprit investigates predates unix time or lies centuries
ahead, so a value outside :data:`EARLIEST`..:data:`LATEST` is refused as one
line that names the option.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from knowledge.errors import InputError
from knowledge.times import EARLIEST, TimeOutOfRange, utc_moment

# Far enough to never refuse a real time, near enough that ten years of window either side stays a date.
LATEST = datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)
RANGE = f"from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}"


def parse_time(value: str | None, option: str = "--at") -> datetime:
    """An ISO time or date (``Z`` or an offset; none means UTC) within the range, or now."""
    if not value:
        return datetime.now(UTC)
    try:
        moment: datetime | None = utc_moment(value)
    except TimeOutOfRange:
        moment = None
    except ValueError as error:
        raise InputError(f"{option} {value!r} is not an ISO time; write e.g. 2024-05-01T12:30:00Z") from error
    if moment is None or moment > LATEST:
        raise InputError(f"{option} {value!r} is out of range; give a time {RANGE}")
    return moment


def parse_day(value: str, option: str) -> date:
    """A ``YYYY-MM-DD`` date within the range."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError as error:
        raise InputError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from error
    if not EARLIEST.date() <= day <= LATEST.date():
        raise InputError(f"{option} {value!r} is out of range; give a date {RANGE}")
    return day
