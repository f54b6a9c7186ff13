"""Root causes are confirmed by authority or by two agreeing votes, audited, undoable; only they train.

The poisoning test: one user's 👍 on a wrong change leaves the next model's
training labels as they were; a confirmer's confirmation changes them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DataError
from structlog.testing import capture_logs
from typer.testing import CliRunner

from bot.cli import app
from bot.listeners import confirm
from knowledge.changes import Change, ChangeFile
from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.incidents import Incident, RootCause, Suggestion
from tests.bot.conftest import INCIDENT_CHANNEL, QUIET_CHANNEL, Bot, StartBot, raising
from tests.bot.test_feedback import _answered, _first_suggestion_id
from tools.feedback.confirmations import CONFIRMER, audit_trail, confirm_suggestion, undo_event
from tools.feedback.votes import DOWN, UP, record_vote
from tools.rca.history.from_store import store_history, training_labels

STARTED = datetime(2026, 5, 4, 12, tzinfo=UTC)


def _incident_with_suggestions(database_url: str) -> tuple[list[int], list[str]]:
    """An incident in repo ``shop`` with three changes before it, all three suggested."""
    ids = [f"{n}" * 40 for n in range(1, 4)]
    with session_scope(database_url) as session:
        for hours, change_id in enumerate(ids, start=1):
            change = Change(id=change_id, repo="shop", title=f"change {hours}", author_time=STARTED - timedelta(hours=hours),
                            landed_time=STARTED - timedelta(hours=hours))
            change.files = [ChangeFile(position=0, path=f"svc/m{hours}.py", added=1, deleted=0)]
            session.add(change)
        incident = Incident(id="inc-7", title="checkout 502", text="card payments fail", repo="shop", started_at=STARTED)
        rows = [Suggestion(incident=incident, change_id=change_id, rank=rank, score=1.0, confidence=0.2)
                for rank, change_id in enumerate(ids, start=1)]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows], ids


def _causes(database_url: str) -> set[tuple[str, str]]:
    with session_scope(database_url) as session:
        return {(row.change_id, row.source) for row in session.scalars(select(RootCause))}


def test_one_vote_does_not_poison_the_next_models_labels_a_confirmer_does(database_url: str) -> None:
    suggestions, changes = _incident_with_suggestions(database_url)
    before = store_history(database_url)
    assert before.cases == []

    record_vote(suggestions[2], "UMALLORY", UP, database_url=database_url, in_incident_channel=True)  # one 👍 on the wrong change
    assert training_labels(database_url) == {}
    assert store_history(database_url).cases == []

    confirm_suggestion(suggestions[0], "UCONFIRMER", CONFIRMER, database_url=database_url)
    assert training_labels(database_url) == {"inc-7": {changes[0]}}
    history = store_history(database_url)
    [case] = history.cases
    assert case.truth.culprits == [changes[0]] and set(case.candidates) == set(changes)
    assert set(history.commits) == set(changes)


def test_two_distinct_thumbs_up_and_no_thumbs_down_confirm_and_a_thumbs_down_withdraws(database_url: str) -> None:
    suggestions, changes = _incident_with_suggestions(database_url)
    first = record_vote(suggestions[1], "UALICE", UP, database_url=database_url, in_incident_channel=True)
    again = record_vote(suggestions[1], "UALICE", UP, database_url=database_url, in_incident_channel=True)  # the same person twice is one vote
    assert not first.confirmed and not again.confirmed and _causes(database_url) == set()
    second = record_vote(suggestions[1], "UBOB", UP, database_url=database_url, in_incident_channel=True)
    assert second.confirmed and _causes(database_url) == {(changes[1], "votes")}
    # A 👎 withdraws what votes confirmed even where votes no longer confirm (the channel renamed since).
    third = record_vote(suggestions[1], "UCAROL", DOWN, database_url=database_url, in_incident_channel=False)
    assert not third.confirmed and _causes(database_url) == set()
    trail = audit_trail(database_url=database_url)
    assert [(e.action, e.authority, e.actor) for e in trail] == [
        ("retract", "votes_changed", "votes"),
        ("confirm", "two_votes", "UALICE,UBOB"),
    ]


def test_a_persons_confirmation_is_not_undone_by_votes_but_can_be_undone_and_redone(database_url: str) -> None:
    suggestions, changes = _incident_with_suggestions(database_url)
    confirmed = confirm_suggestion(suggestions[0], "UIC", "channel_creator", database_url=database_url)
    record_vote(suggestions[0], "UMALLORY", DOWN, database_url=database_url, in_incident_channel=True)
    assert _causes(database_url) == {(changes[0], "confirmed")}
    undone = undo_event(confirmed.event_id, "UIC", database_url=database_url)
    assert not undone.confirmed and _causes(database_url) == set()
    redone = undo_event(undone.event_id, "UCONFIRMER", database_url=database_url)
    assert redone.confirmed and _causes(database_url) == {(changes[0], "confirmed")}
    trail = audit_trail(database_url=database_url, incident_id="inc-7")
    assert [(e.action, e.actor, e.undoes) for e in trail] == [
        ("confirm", "UCONFIRMER", undone.event_id),
        ("retract", "UIC", confirmed.event_id),
        ("confirm", "UIC", None),
    ]
    undo_event(redone.event_id, "UIC", database_url=database_url)  # withdrawn by a person...
    record_vote(suggestions[0], "UALICE", UP, database_url=database_url, in_incident_channel=True)
    record_vote(suggestions[0], "UBOB", UP, database_url=database_url, in_incident_channel=True)
    record_vote(suggestions[0], "UMALLORY", UP, database_url=database_url, in_incident_channel=True)  # ...stays withdrawn whatever the votes say
    assert _causes(database_url) == set()
    with pytest.raises(InputError, match="no audit entry 999"):
        undo_event(999, "UIC", database_url=database_url)


def test_undoing_an_old_confirmation_leaves_a_later_one_standing(database_url: str) -> None:
    suggestions, changes = _incident_with_suggestions(database_url)
    first = confirm_suggestion(suggestions[0], "UIC", "channel_creator", database_url=database_url)
    withdrawn = undo_event(first.event_id, "UIC", database_url=database_url)
    again = confirm_suggestion(suggestions[0], "UCONFIRMER", CONFIRMER, database_url=database_url)
    assert again.event_id is not None and _causes(database_url) == {(changes[0], "confirmed")}
    for old in (first.event_id, withdrawn.event_id):  # neither may withdraw (or redo) what UCONFIRMER decided since
        refused = CliRunner().invoke(app, ["feedback", "undo", str(old), "--by", "UOPS"])
        assert refused.exit_code == 1 and isinstance(refused.exception, InputError), refused.output
        assert f"superseded by entry {again.event_id} (confirm by UCONFIRMER)" in str(refused.exception)
    assert _causes(database_url) == {(changes[0], "confirmed")}
    assert audit_trail(database_url=database_url)[0].id == again.event_id
    assert not undo_event(again.event_id, "UOPS", database_url=database_url).confirmed  # the latest still undoes
    assert _causes(database_url) == set()


def test_feedback_audit_and_undo_cli(database_url: str) -> None:
    suggestions, changes = _incident_with_suggestions(database_url)
    event = confirm_suggestion(suggestions[0], "UCONFIRMER", CONFIRMER, database_url=database_url).event_id
    listed = CliRunner().invoke(app, ["feedback", "audit", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(e["id"], e["action"], e["actor"]) for e in json.loads(listed.output)] == [(event, "confirm", "UCONFIRMER")]
    undone = CliRunner().invoke(app, ["feedback", "undo", str(event), "--by", "UOPS"])
    assert undone.exit_code == 0, undone.output
    assert "no longer confirmed" in undone.output and _causes(database_url) == set()
    confirmed = CliRunner().invoke(app, ["feedback", "confirm", "inc-7", changes[2], "--by", "UOPS"])
    assert confirmed.exit_code == 0, confirmed.output
    assert _causes(database_url) == {(changes[2], "confirmed")}
    assert audit_trail(database_url=database_url)[0].authority == "operator"
    unknown = CliRunner().invoke(app, ["feedback", "confirm", "inc-7", "nope", "--by", "UOPS"])
    assert unknown.exit_code == 1 and "no change 'nope'" in str(unknown.exception)
    for nobody in ("   ", "U" * 201, "UOPS\x00"):  # blank: an entry no one answers for; too long or NUL: PostgreSQL refuses
        for command in (["confirm", "inc-7", changes[2]], ["undo", str(event)]):
            refused = CliRunner().invoke(app, ["feedback", *command, "--by", nobody])
            assert refused.exit_code == 1 and isinstance(refused.exception, InputError), refused.exception
            assert "--by names who acts" in str(refused.exception)
    for person in ("alice@example.com", "+1 415 555 0199"):  # kept as given: personal data is refused, not stored
        refused = CliRunner().invoke(app, ["feedback", "confirm", "inc-7", changes[1], "--by", person])
        assert refused.exit_code == 1 and "not an e-mail address, a phone number" in str(refused.exception)
    assert [entry.actor for entry in audit_trail(database_url=database_url)][0] == "UOPS"
    assert _causes(database_url) == {(changes[2], "confirmed")}
    too_big = CliRunner().invoke(app, ["feedback", "undo", "99999999999999999999", "--by", "UOPS"])
    assert too_big.exit_code == 2 and "Invalid value for 'event'" in too_big.output, too_big.exception


def _confirm_click(bot: Bot, action_id: str, value: str, user: str, message: dict) -> None:
    assert bot.send.click(action_id, value, user=user, channel=INCIDENT_CHANNEL, message=message).status_code == 200


def test_confirm_button_needs_a_confirmer_or_the_channel_creator(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, env={"CULPRIT_CONFIRMERS": '["UCONF"]'})
    bot.slack.channel_creators[INCIDENT_CHANNEL] = "UCOMMANDER"
    bot.send.command("card payments fail at checkout service:payments")
    message = _answered(bot)
    value = _first_suggestion_id(message)
    button = next(b for b in message["blocks"] if b["type"] == "actions")["elements"][2]
    assert button["action_id"] == "confirm_cause" and button["confirm"]["confirm"]["text"] == "Confirm"
    with session_scope(bot.database_url) as session:
        change_id = session.get(Suggestion, int(value)).change_id

    _confirm_click(bot, "confirm_cause", value, "UALICE", message)
    refusal = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral")[0]
    assert "Only the incident channel's creator or a configured confirmer" in refusal.args["text"]
    assert _causes(bot.database_url) == set()

    _confirm_click(bot, "confirm_cause", value, "UCOMMANDER", message)
    update = bot.slack.wait_for(lambda c: c.method == "chat.update")[0]
    line = next(b for b in update.args["blocks"] if b.get("block_id") == f"confirmed-{value}")
    assert line["text"]["text"] == "✅ Confirmed as the root cause by <@UCOMMANDER>"
    assert line["accessory"]["action_id"] == "retract_cause"
    assert _causes(bot.database_url) == {(change_id, "confirmed")}

    message["blocks"] = update.args["blocks"]
    _confirm_click(bot, "retract_cause", value, "UCONF", message)
    update = bot.slack.wait_for(lambda c: c.method == "chat.update", count=2)[1]
    assert not any(b.get("block_id") == f"confirmed-{value}" for b in update.args["blocks"])
    assert _causes(bot.database_url) == set()
    trail = audit_trail(database_url=bot.database_url)
    assert [(e.action, e.actor, e.authority) for e in trail] == [
        ("retract", "UCONF", "confirmer"),
        ("confirm", "UCOMMANDER", "channel_creator"),
    ]


@pytest.mark.parametrize(
    "error", [DataError("UPDATE", {}, Exception("value too long")), RuntimeError("a bug while confirming")],
    ids=["refused-row", "bug"],
)
def test_a_confirmation_that_fails_is_not_called_a_database_outage(
    store: str, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """A row the database refused was told "the database is unreachable; try again in a minute" (retrying never
    helps), and any other error left a traceback and nothing for the confirmer who clicked."""
    monkeypatch.setattr(confirm, "decide_suggestion", raising(error))
    bot = start_bot(store, env={"CULPRIT_CONFIRMERS": '["UCONF"]'})
    message = {"ts": "1.000001", "text": "old answer", "blocks": [], "type": "message"}
    with capture_logs() as logs:
        _confirm_click(bot, "confirm_cause", "7", "UCONF", message)
        notice = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral")[0]
    kind = type(error).__name__
    assert notice.args["user"] == "UCONF" and f"couldn't change the root cause: the click failed ({kind})" in notice.args["text"]
    assert "unreachable" not in notice.args["text"]
    failures = [entry for entry in logs if entry["event"] == "confirmation not stored"]
    assert len(failures) == 1 and failures[0]["error_type"] == kind
    assert bot.slack.calls_to("chat.update") == [] and _causes(bot.database_url) == set()


def test_outside_incident_channels_the_confirm_button_confers_no_authority(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, env={"CULPRIT_CONFIRMERS": '["UCONF"]'})
    bot.slack.channel_creators[QUIET_CHANNEL] = "UALICE"  # anyone may create a channel and /rca in it
    bot.send.command("card payments fail at checkout service:payments", channel=QUIET_CHANNEL, channel_name="general")
    message = _answered(bot)
    value = _first_suggestion_id(message)

    for user in ("UALICE", "UCONF"):  # the channel's creator, then a configured confirmer
        assert bot.send.click("confirm_cause", value, user=user, channel=QUIET_CHANNEL, message=message).status_code == 200
    refusals = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral", count=2)
    assert sorted(refusal.args["user"] for refusal in refusals) == ["UALICE", "UCONF"]
    assert all("only in incident channels" in refusal.args["text"] for refusal in refusals)
    assert all("votes only" in refusal.args["text"] for refusal in refusals)
    assert all(refusal.args["channel"] == QUIET_CHANNEL for refusal in refusals)
    assert _causes(bot.database_url) == set() and audit_trail(database_url=bot.database_url) == []
    assert bot.posted("chat.update") == []


def test_outside_incident_channels_two_thumbs_up_stay_votes_and_confirm_nothing(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    # Anyone may create a channel, /rca in it and vote with a friend.
    bot.send.command("card payments fail at checkout service:payments", channel=QUIET_CHANNEL, channel_name="general")
    message = _answered(bot)
    value = _first_suggestion_id(message)

    for count, user in enumerate(("UALICE", "UBOB"), start=1):
        assert bot.send.click("feedback_up", value, user=user, channel=QUIET_CHANNEL, message=message).status_code == 200
        update = bot.slack.wait_for(lambda c: c.method == "chat.update", count=count)[count - 1]
        message["blocks"] = update.args["blocks"]
    votes_line = next(b for b in update.args["blocks"] if b.get("block_id") == f"votes-{value}")
    assert votes_line["elements"][0]["text"].startswith("👍 2 · 👎 0")  # both votes are stored and shown...
    assert not any(b.get("block_id") == f"confirmed-{value}" for b in update.args["blocks"])
    assert _causes(bot.database_url) == set() and audit_trail(database_url=bot.database_url) == []  # ...as votes only


def test_votes_on_a_rerun_of_the_same_change_count_with_the_first_answers(database_url: str) -> None:
    """A rerun answers the incident again and shows the change anew; a third responder's 👍 there
    must not withdraw what two 👍 on the first answer confirmed, and a 👎 there withdraws it."""
    suggestions, changes = _incident_with_suggestions(database_url)
    with session_scope(database_url) as session:
        rerun = Suggestion(incident_id="inc-7", change_id=changes[0], rank=1, score=1.0, confidence=0.3)
        session.add(rerun)
        session.flush()
        rerun_id = rerun.id
    record_vote(suggestions[0], "UALICE", UP, database_url=database_url, in_incident_channel=True)
    record_vote(suggestions[0], "UBOB", UP, database_url=database_url, in_incident_channel=True)
    assert _causes(database_url) == {(changes[0], "votes")}

    third = record_vote(rerun_id, "UCAROL", UP, database_url=database_url, in_incident_channel=True)

    assert third.confirmed and _causes(database_url) == {(changes[0], "votes")}
    assert not record_vote(rerun_id, "UDAVE", DOWN, database_url=database_url, in_incident_channel=True).confirmed
    assert _causes(database_url) == set()
