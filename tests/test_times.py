"""One reader for times that people and other systems write (knowledge.times)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from knowledge.times import TimeOutOfRange, utc_moment


@pytest.mark.parametrize(
    "written",
    ["2024-05-01T09:40:00Z", "2024-05-01T09:40z", " 2024-05-01T11:40+02:00 ", "2024-05-01 09:40:00 UTC", "2024-05-01T09:40"],
)
def test_every_way_of_naming_a_zone_reads_the_same_moment(written: str) -> None:
    assert utc_moment(written) == datetime(2024, 5, 1, 9, 40, tzinfo=UTC)


def test_a_date_alone_is_its_midnight_in_utc() -> None:
    assert utc_moment("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(("written", "why"), [("9999-12-31T23:00:00-05:00", "is out of range"),
                                              ("0001-01-01T00:00:00+01:00", "is out of range"),  # before the first time UTC holds
                                              ("1969-12-31T23:59:59Z", "is before 1970")])  # fmt: skip
def test_times_utc_cannot_hold_or_before_1970_are_out_of_range(written: str, why: str) -> None:
    with pytest.raises(TimeOutOfRange, match=why):
        utc_moment(written)


@pytest.mark.parametrize(("written", "zone_required", "why"), [("last tuesday", False, "not an ISO 8601 time"),
                                                               ("", False, "not an ISO 8601 time"),
                                                               ("2024-05-01T09:40", True, "has no time zone")])  # fmt: skip
def test_unreadable_times_say_why_without_repeating_the_text(written: str, zone_required: bool, why: str) -> None:
    with pytest.raises(ValueError, match=why) as refused:
        utc_moment(written, zone_required=zone_required)
    assert not isinstance(refused.value, TimeOutOfRange)
    assert written.strip() == "" or written not in str(refused.value)
