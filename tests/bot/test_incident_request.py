"""What a responder types after /rca, read into an incident query."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.incident_request import (
    incident_id_for,
    parse_incident_request,
    strip_mentions,
    unknown_service,
)
from knowledge.errors import InputError

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_service_and_time_may_sit_anywhere() -> None:
    query = parse_incident_request("at:2024-05-01T09:40Z checkout 502s service:payments since deploy", NOW, "inc-9")
    assert query.text == "checkout 502s since deploy"
    assert query.service == "payments"
    assert query.started_at == datetime(2024, 5, 1, 9, 40, tzinfo=UTC)
    assert query.incident_id == "inc-9"


def test_without_a_time_the_incident_starts_now_and_mentions_are_dropped() -> None:
    query = parse_incident_request("<@UCULPRIT> search is empty", NOW)
    assert (query.text, query.service, query.started_at) == ("search is empty", None, NOW)


def test_a_labelled_mention_is_dropped_after_a_megabyte_of_unclosed_ones() -> None:
    # Each unclosed "<@U|" once read to the end of the text before failing: quadratic, minutes for a megabyte.
    flood = "<@U|" * 250_000
    assert strip_mentions("<@UCULPRIT|culprit> " + flood + " search is empty") == flood + " search is empty"
    assert strip_mentions("<@UCULPRIT|culprit> search is empty <@U2|ann>") == "search is empty"


def test_offsets_are_converted_to_utc() -> None:
    query = parse_incident_request("login fails at:2024-05-01T11:00+02:00", NOW)
    assert query.started_at == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("service:payments", "describe the symptom"),
        ("down at:yesterday", "not an ISO time"),
        ("down at:2024-05-02T00:00Z", "in the future"),
        ("x" * 2001, "under 2000"),
        ("down at:0001-01-01", "is before 1970"),
        ("down at:1969-12-31T23:59Z", "is before 1970"),
        ("down at:9999-12-31T23:00-05:00", "is out of range"),
    ],
)
def test_bad_requests_say_the_fix(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_incident_request(text, NOW)


def test_an_unknown_service_is_named_with_the_closest_catalog_names() -> None:
    catalog = ["payments", "checkout", "search", "auth"]
    assert unknown_service("payments", catalog) is None
    assert unknown_service("anything", []) is None  # no catalog ingested: nothing to check against
    message = unknown_service("paymnts", catalog)
    assert message is not None and "no service `paymnts`" in message and "`payments`" in message
    far = unknown_service("zzz", catalog)
    assert far is not None and "`auth`, `checkout`, `payments`, `search`" in far


def test_incident_ids_are_stable_for_the_same_request() -> None:
    assert incident_id_for("C1", "1.2") == incident_id_for("C1", "1.2") != incident_id_for("C1", "1.3")
