"""``culprit feedback stats | audit | undo``: how culprit's answers held up, and who confirmed what."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from bot.cli.console import LARGEST_ID, console, print_json
from knowledge.errors import InputError

# The audit trail's actor column holds 200 characters.
MAX_ACTOR_CHARS = 200


def _actor(by: str) -> str:
    """Who acts, as the audit trail will name them: a blank name would make an entry nobody answers for,
    and one past the column (or with a NUL) is refused by PostgreSQL as if the store were broken.

    The audit trail keeps the name as given, so personal data in it (an e-mail address, a phone number:
    what report redaction removes) is refused rather than stored: "[email]" would name nobody either."""
    from tools.reports.redaction import redact

    name = by.strip()
    if not name or len(name) > MAX_ACTOR_CHARS or any(ord(character) < 32 for character in name):
        raise InputError(
            f"--by names who acts, for the audit trail: 1 to {MAX_ACTOR_CHARS} characters without control "
            "characters (a Slack user id or a name)"
        )
    if redact(name) != name:
        raise InputError(
            "--by names who acts, for the audit trail, which keeps it as given: a Slack user id or a name, "
            "not an e-mail address, a phone number or other personal data"
        )
    return name


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def register(app: typer.Typer) -> None:
    feedback = typer.Typer(help="What responders said about culprit's suggestions.", no_args_is_help=True)

    @feedback.command("stats")
    def stats(json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
        """Precision by week from confirmed causes, and the false-confidence rate."""
        from knowledge.config import get_settings
        from knowledge.db import migrate
        from tools.feedback.stats import quality_by_week
        from tools.rca.resources import answer_threshold

        settings = get_settings()
        database_url = settings.resolved_database_url
        migrate(database_url)
        threshold = answer_threshold(settings)
        weeks = quality_by_week(database_url=database_url, min_confidence=threshold)
        if json_output:
            print_json([week.to_dict() for week in weeks])
            return
        if not weeks:
            console.print("no answers yet: figures appear once culprit has answered incidents and causes are confirmed")
            return
        table = Table(title=f"Answers by week vs confirmed causes (sure: confidence ≥ {threshold:.0%})")
        columns = ("week", "answered", "confirmed", "in 5", "precision", "sure", "false sure", "👍", "👎")
        for column in columns:
            table.add_column(column, justify="left" if column == "week" else "right")
        for week in weeks:
            table.add_row(
                week.week,
                str(week.answered),
                str(week.with_confirmed_cause),
                str(week.cause_in_five),
                _percent(week.precision),
                str(week.confident),
                _percent(week.false_confidence_rate),
                str(week.up_votes),
                str(week.down_votes),
            )
        console.print(table)

    @feedback.command("audit")
    def audit(
        incident: str | None = typer.Option(None, "--incident", help="Only this incident."),
        json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """Every confirmation and retraction of a root cause, newest first."""
        from knowledge.config import get_settings
        from knowledge.db import migrate
        from tools.feedback.confirmations import audit_trail

        database_url = get_settings().resolved_database_url
        migrate(database_url)
        entries = audit_trail(database_url=database_url, incident_id=incident)
        if json_output:
            print_json([entry.to_dict() for entry in entries])
            return
        table = Table(title="Root-cause confirmations")
        for column in ("id", "at", "incident", "change", "action", "by", "authority", "undoes"):
            table.add_column(column)
        for e in entries:
            table.add_row(str(e.id), e.at.isoformat(timespec="seconds"), escape(e.incident_id), escape(e.change_id[:12]), e.action,
                          escape(e.actor), e.authority, str(e.undoes or ""))  # ids and names typed in Slack
        console.print(table)

    @feedback.command("confirm")
    def confirm(
        incident: str = typer.Argument(..., help="The incident id."),
        change: str = typer.Argument(..., help="The change (commit sha or change id) that caused it."),
        by: str = typer.Option(..., "--by", help="Who confirms it, for the audit trail."),
    ) -> None:
        """Confirm a root cause from outside Slack (e.g. a postmortem's finding); audited like a click."""
        from knowledge.config import get_settings
        from knowledge.db import migrate
        from tools.feedback.confirmations import OPERATOR, confirm_cause

        database_url = get_settings().resolved_database_url
        migrate(database_url)
        done = confirm_cause(incident, change, _actor(by), OPERATOR, database_url=database_url)
        entry = f"audit entry {done.event_id}" if done.event_id else "already confirmed"
        console.print(f"{done.change_id[:12]} is confirmed as the cause of {done.incident_id} ({entry})", markup=False)

    @feedback.command("undo")
    def undo(
        event: int = typer.Argument(..., min=1, max=LARGEST_ID, help="The audit entry to reverse (see `culprit feedback audit`)."),
        by: str = typer.Option(..., "--by", help="Who undoes it, for the audit trail."),
    ) -> None:
        """Reverse one confirmation (retract it) or retraction (confirm again); both are audited."""
        from knowledge.config import get_settings
        from knowledge.db import migrate
        from tools.feedback.confirmations import undo_event

        database_url = get_settings().resolved_database_url
        migrate(database_url)
        change = undo_event(event, _actor(by), database_url=database_url)
        state = "confirmed" if change.confirmed else "no longer confirmed"
        done = f"audit entry {change.event_id}" if change.event_id else "nothing to change"
        console.print(f"{change.change_id[:12]} is {state} as the cause of {change.incident_id} ({done})", markup=False)

    app.add_typer(feedback, name="feedback")
