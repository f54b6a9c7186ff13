"""Times written by people and other systems, read one way everywhere.

Each reader used to call ``fromisoformat`` on its own, and they differed on a
lower-case ``z``, on GitLab's `` UTC`` suffix, on times without a zone, and on
times near year 1 or 9999, which UTC cannot hold once their offset is applied
(an ``OverflowError`` that escaped some readers as a traceback).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""Nothing culprit investigates predates unix time; an earlier time is a typo."""

CLOCK_SKEW = timedelta(minutes=5)
"""How far a sender's clock may run ahead of culprit's. A later time has not happened yet (a typo, a wrong
zone or clock): an incident or change placed there would fall into every window until that time passed."""
IN_THE_FUTURE = f"is in the future (more than {CLOCK_SKEW.seconds // 60} minutes ahead of culprit's clock)"
"""Why a time :func:`in_the_future` is refused, after the field (and value) it names."""


class TimeOutOfRange(ValueError):
    """A readable time that is before 1970, or that UTC cannot hold."""


def utc_moment(text: str, *, zone_required: bool = False) -> datetime:
    """The ISO 8601 time ``text`` names, in UTC, from 1970 on.

    ``Z``, ``z``, an offset and GitLab's ``2019-10-23 06:37:28 UTC`` all name a
    zone; a time without one is read as UTC unless ``zone_required``. Raises
    ``ValueError`` for what cannot be read and :class:`TimeOutOfRange` for what
    is out of range; the messages do not repeat ``text``, so each caller
    decides how much of an untrusted value to quote.
    """
    written = text.strip()
    if written.endswith(" UTC"):
        written = written[:-4] + "+00:00"
    elif written.endswith("z"):
        written = written[:-1] + "Z"
    try:
        moment = datetime.fromisoformat(written)
    except ValueError:
        raise ValueError("is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        if zone_required:
            raise ValueError("has no time zone")
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last time Python holds in UTC
        raise TimeOutOfRange("is out of range") from None
    if moment < EARLIEST:
        raise TimeOutOfRange("is before 1970")
    return moment


def in_the_future(moment: datetime) -> bool:
    """Whether ``moment`` lies further ahead of culprit's clock than ``CLOCK_SKEW`` allows."""
    return moment > datetime.now(UTC) + CLOCK_SKEW
