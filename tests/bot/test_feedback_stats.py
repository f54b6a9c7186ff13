"""Confirmed causes give the weekly precision and false-confidence figures; the CLI prints them."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from bot.cli import app, main
from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.incidents import Incident, RootCause, Suggestion
from tools.feedback.confirmations import CONFIRMER, confirm_suggestion
from tools.feedback.stats import quality_by_week
from tools.feedback.votes import DOWN, UP, record_vote

WEEK_1 = datetime(2024, 4, 29, 10, tzinfo=UTC)  # ISO week 2024-W18
WEEK_2 = datetime(2024, 5, 8, 10, tzinfo=UTC)  # ISO week 2024-W19


def _suggestions(database_url: str, incident_id: str, created_at: datetime, n: int = 3) -> list[int]:
    with session_scope(database_url) as session:
        incident = Incident(id=incident_id, text="checkout down", started_at=created_at)
        rows = [
            Suggestion(incident=incident, change_id=f"{incident_id}-c{rank}", rank=rank, score=1, confidence=0.5, created_at=created_at)
            for rank in range(1, n + 1)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def test_precision_and_false_confidence_by_week_come_from_confirmed_causes(database_url: str) -> None:
    first = _suggestions(database_url, "inc-1", WEEK_1)  # answer confidence 1.5 (>= 0.5): confident
    second = _suggestions(database_url, "inc-2", WEEK_1)
    _suggestions(database_url, "inc-3", WEEK_1)  # answered, never confirmed: no verdict
    fourth = _suggestions(database_url, "inc-4", WEEK_2, n=1)  # confidence 0.5: at the threshold
    confirm_suggestion(first[1], "UCONF", CONFIRMER, database_url=database_url)  # the five held it
    with session_scope(database_url) as session:  # inc-2's cause was a change culprit never suggested
        session.add(RootCause(incident_id="inc-2", change_id="elsewhere", source="confirmed", confirmed_by="UCONF"))
        session.add(RootCause(incident_id="inc-4", change_id="elsewhere", source="single_vote", confirmed_by="UX"))
    record_vote(second[0], "UALICE", UP, database_url=database_url)  # a vote is counted, never a verdict
    record_vote(fourth[0], "UALICE", DOWN, database_url=database_url)

    weeks = {week.week: week for week in quality_by_week(database_url=database_url, min_confidence=0.5)}
    assert set(weeks) == {"2024-W18", "2024-W19"}
    w18 = weeks["2024-W18"]
    assert (w18.answered, w18.with_confirmed_cause, w18.cause_in_five, w18.confident, w18.false_confident) == (3, 2, 1, 2, 1)
    assert w18.precision == pytest.approx(0.5) and w18.false_confidence_rate == pytest.approx(0.5)
    assert (w18.up_votes, w18.down_votes) == (1, 0)
    w19 = weeks["2024-W19"]  # a single vote's old root cause is no verdict
    assert (w19.answered, w19.with_confirmed_cause, w19.precision, w19.false_confidence_rate) == (1, 0, None, None)
    assert quality_by_week(database_url=database_url, min_confidence=1.6)[0].confident == 0  # 1.5 is below it


def test_a_vote_must_be_up_or_down_on_an_existing_suggestion(database_url: str) -> None:
    with pytest.raises(InputError, match="no suggestion 42"):
        record_vote(42, "UALICE", UP, database_url=database_url)
    with pytest.raises(InputError, match="\\+1 or -1"):
        record_vote(42, "UALICE", 0, database_url=database_url)


def test_feedback_stats_cli(database_url: str) -> None:
    ids = _suggestions(database_url, "inc-9", WEEK_2)
    confirm_suggestion(ids[0], "UCONF", CONFIRMER, database_url=database_url)
    record_vote(ids[1], "UALICE", DOWN, database_url=database_url)
    result = CliRunner().invoke(app, ["feedback", "stats", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"week": "2024-W19", "answered": 1, "with_confirmed_cause": 1, "cause_in_five": 1, "precision": 1.0,
         "confident": 1, "false_confident": 0, "false_confidence_rate": 0.0, "up_votes": 0, "down_votes": 1}
    ]
    table = CliRunner().invoke(app, ["feedback", "stats"])
    assert "2024-W19" in table.output and "100%" in table.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [([], "set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"), (["--socket-mode"], "set SLACK_BOT_TOKEN and SLACK_APP_TOKEN")],
)
def test_serve_without_slack_configuration_says_which_variables_to_set(
    data_dir, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    monkeypatch.setattr(sys, "argv", ["culprit", "serve", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    stderr = capsys.readouterr().err
    assert expected in stderr
    assert len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_on_a_port_no_socket_has_is_a_usage_error_before_anything_starts(data_dir, port: str) -> None:
    """--port 70000 used to pass: uvicorn said it ran on :70000 while the socket listened on 4464 (70000 mod 65536)."""
    result = CliRunner().invoke(app, ["serve", "--port", port])
    assert result.exit_code == 2 and "Invalid value for '--port'" in result.output, result.output
    assert not (data_dir / "culprit.db").exists()
