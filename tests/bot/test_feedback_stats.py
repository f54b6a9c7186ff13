"""Votes become root causes and a weekly precision figure; the CLI prints it."""

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
from tools.feedback.votes import DOWN, UP, precision_by_week, record_vote

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


def test_precision_by_week_counts_confirmed_among_voted(database_url: str) -> None:
    first = _suggestions(database_url, "inc-1", WEEK_1)
    second = _suggestions(database_url, "inc-2", WEEK_1)
    third = _suggestions(database_url, "inc-3", WEEK_2)
    record_vote(first[0], "UALICE", UP, database_url=database_url)
    record_vote(first[0], "UBOB", DOWN, database_url=database_url)  # a tie: voted, neither confirmed nor rejected
    record_vote(second[1], "UALICE", UP, database_url=database_url)
    record_vote(second[2], "UALICE", DOWN, database_url=database_url)
    record_vote(third[0], "UCAROL", DOWN, database_url=database_url)

    weeks = {week.week: week for week in precision_by_week(database_url=database_url)}
    assert set(weeks) == {"2024-W18", "2024-W19"}
    w18 = weeks["2024-W18"]
    assert (w18.voted, w18.confirmed, w18.rejected, w18.incidents, w18.incidents_solved) == (3, 1, 1, 2, 1)
    assert w18.precision == pytest.approx(1 / 3)
    assert weeks["2024-W19"].precision == 0.0

    with session_scope(database_url) as session:
        confirmed = {(row.incident_id, row.change_id, row.source) for row in session.query(RootCause)}
    assert confirmed == {("inc-1", "inc-1-c1", "feedback"), ("inc-2", "inc-2-c2", "feedback")}


def test_a_vote_must_be_up_or_down_on_an_existing_suggestion(database_url: str) -> None:
    with pytest.raises(InputError, match="no suggestion 42"):
        record_vote(42, "UALICE", UP, database_url=database_url)
    with pytest.raises(InputError, match="\\+1 or -1"):
        record_vote(42, "UALICE", 0, database_url=database_url)


def test_feedback_stats_cli(database_url: str) -> None:
    ids = _suggestions(database_url, "inc-9", WEEK_2)
    record_vote(ids[0], "UALICE", UP, database_url=database_url)
    record_vote(ids[1], "UALICE", DOWN, database_url=database_url)
    result = CliRunner().invoke(app, ["feedback", "stats", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"week": "2024-W19", "voted": 2, "confirmed": 1, "rejected": 1, "precision": 0.5, "incidents": 1, "incidents_solved": 1}
    ]
    table = CliRunner().invoke(app, ["feedback", "stats"])
    assert "2024-W19" in table.output and "50%" in table.output


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
