"""The feedback channel feeds bug reports; jobs post through the bot (with a chart upload); /reports is mounted."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
import yaml
from structlog.testing import capture_logs
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy import text as sql
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.jobs import post_new_alerts
from bot.replies import channel_poster
from knowledge.config import Settings, get_settings
from knowledge.db import get_engine, migrate, session_scope, utcnow
from knowledge.reports import Alert, BugReport
from tests.bot.conftest import StartBot
from tests.bot.fake_slack import FakeSlack, FakeSlackServer
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _reports(database_url: str) -> list[BugReport]:
    with session_scope(database_url) as session:
        return list(session.scalars(select(BugReport)))


def _wait_for_reports(database_url: str, count: int, timeout: float = 30, classified: bool = False) -> list[BugReport]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [report for report in _reports(database_url) if report.category is not None or not classified]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {count} bug reports, found {len(_reports(database_url))}")


def test_a_report_the_database_refuses_is_logged_by_sqlstate_without_its_text(
    postgres_url: str, data_dir: Path, start_bot: StartBot
) -> None:
    """The error was logged as the driver raised it, and PostgreSQL's message for a refused row carries the row
    ("Failing row contains (...)"): the report's text, and the customer's name in it, went to the log."""
    migrate(postgres_url)
    with get_engine(postgres_url).begin() as connection:  # PostgreSQL's refusal names the whole row it refused
        connection.execute(sql("ALTER TABLE bug_reports ADD CONSTRAINT refuses_reports CHECK (length(text) < 5)"))
    bot = start_bot(postgres_url, env={"CULPRIT_REPORTS_CHANNEL": "user-feedback"})
    event = {"type": "message", "channel": "CREPORTS", "user": "UCUSTOMER", "ts": "1714556400.000100",
             "text": "Rosalind Featherstonehaugh here: the app crashes when I open my cart"}
    with capture_logs() as logs:
        assert bot.send.event(event, event_id="EvREFUSED1").status_code == 200
        [failed] = wait_until(lambda: [entry for entry in logs if entry["event"] == "report from slack not stored"],
                              "the refused report was never logged")
    assert failed["error"] == "IntegrityError (psycopg.errors.CheckViolation, SQLSTATE 23514)"
    assert not [entry for entry in logs if "Featherstonehaugh" in str(entry) or "crashes when I open" in str(entry)]
    assert _reports(postgres_url) == []


def test_messages_in_the_feedback_channel_become_redacted_reports_once(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, env={"CULPRIT_REPORTS_CHANNEL": "user-feedback"})
    before = {reason: bot.dropped(reason) for reason in ("duplicate", "not_a_report", "bot")}
    event = {
        "type": "message",
        "channel": "CREPORTS",
        "user": "UCUSTOMER",
        "text": "The app crashes when I open my cart, write to bob@example.com",
        "ts": "1714556400.000100",
    }
    assert bot.send.event(event, event_id="EvREPORT1").status_code == 200
    assert bot.send.event(event, event_id="EvREPORT1", retry_num=1).status_code == 200
    # Chatter elsewhere, edits and other bots' posts are not reports.
    bot.send.event({**event, "channel": "CINC1", "ts": "1714556400.000200"})
    bot.send.event({**event, "subtype": "message_changed", "ts": "1714556400.000300"})
    bot.send.event({**event, "bot_id": "BOTHER", "ts": "1714556400.000400"})

    [report] = _wait_for_reports(store, 1)
    # The server says it dropped the retry, the chatter, the edit and the bot's post: only then count reports.
    for reason, dropped in {"duplicate": 1, "not_a_report": 2, "bot": 1}.items():
        bot.wait_until_dropped(reason, before[reason] + dropped)
    assert len(_reports(store)) == 1
    assert report.source == "slack"
    assert report.id == "slack:CREPORTS:1714556400.000100"
    assert "crashes when I open my cart" in report.text
    assert "bob@example.com" not in report.text
    [classified] = _wait_for_reports(store, 1, classified=True)  # by the worker, as after POST /reports
    assert classified.category == "other", "no classifier is trained in this data dir"


def test_a_feedback_message_with_a_screenshot_attached_is_a_report(store: str, start_bot: StartBot) -> None:
    """Slack marks a message with a file attached ``subtype: file_share``: it was dropped with edits and joins."""
    bot = start_bot(store, env={"CULPRIT_REPORTS_CHANNEL": "user-feedback"})
    dropped = bot.dropped("not_a_report")
    bot.send.event({"type": "message", "subtype": "file_share", "channel": "CREPORTS", "user": "UCUSTOMER",
                    "text": "Checkout button does nothing, screenshot attached", "ts": "1714556400.000500",
                    "files": [{"id": "F0001", "name": "checkout.png"}]})
    wait_until(lambda: _reports(store) or bot.dropped("not_a_report") > dropped,
               "the message was neither stored nor dropped")
    [report] = _wait_for_reports(store, 1)
    assert report.id == "slack:CREPORTS:1714556400.000500" and "Checkout button does nothing" in report.text


def test_replies_in_a_reports_thread_are_not_reports(store: str, start_bot: StartBot) -> None:
    """A triager answering in a report's thread ("thanks, looking") was stored as one more bug report."""
    bot = start_bot(store, env={"CULPRIT_REPORTS_CHANNEL": "user-feedback"})
    dropped = bot.dropped("not_a_report")
    report = {"type": "message", "channel": "CREPORTS", "user": "UCUSTOMER", "text": "Search shows last week's prices",
              "ts": "1714556400.000600"}
    reply = {**report, "user": "UTRIAGER", "text": "thanks, looking", "ts": "1714556500.000100",
             "thread_ts": report["ts"]}
    bot.send.event(report)
    bot.send.event(reply)
    bot.send.event({**reply, "subtype": "thread_broadcast", "text": "fixed, see thread", "ts": "1714556600.000100"})
    bot.wait_until_dropped("not_a_report", dropped + 2)
    [stored] = _wait_for_reports(store, 1)
    assert stored.id == "slack:CREPORTS:1714556400.000600"
    assert len(_reports(store)) == 1


def test_a_feedback_message_holding_a_nul_or_a_lone_surrogate_is_still_stored(database_url: str, start_bot: StartBot) -> None:
    """PostgreSQL refuses NUL in text: the report's insert failed and the message was lost (logged as an error)."""
    migrate(database_url)
    bot = start_bot(database_url, env={"CULPRIT_REPORTS_CHANNEL": "user-feedback"})
    for number, text in enumerate(["cart \x00crashes on open", "cart \ud800 crashes on open"]):
        bot.send.event({"type": "message", "channel": "CREPORTS", "user": "UCUSTOMER", "text": text, "ts": f"1714556400.00010{number}"})
    stored = sorted(report.text for report in _wait_for_reports(database_url, 2))
    assert stored == ["cart crashes on open", "cart \ufffd crashes on open"]


def test_jobs_post_a_message_then_upload_its_chart() -> None:
    with FakeSlackServer(FakeSlack()) as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url + "api/")
        post = channel_poster(client, alerts_channel="CALERTS")
        alerts_before = REGISTRY.get_sample_value("culprit_alerts_posted_total", {"kind": "report"}) or 0
        post("CDIGEST", "Weekly digest: 2024-W18\nTop: login", [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}], b"\x89PNG fake chart")
        steps = [call.method for call in slack.calls]
        assert steps == ["chat.postMessage", "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
        assert slack.calls[0].args["channel"] == "CDIGEST"
        assert b"\x89PNG fake chart" in slack.calls[2].body
        assert slack.calls[3].args["channel_id"] == "CDIGEST"
        post("CALERTS", "Spike in login", [], None)
        assert [call.method for call in slack.calls][-1] == "chat.postMessage"
        assert "blocks" not in slack.calls[-1].args
        assert REGISTRY.get_sample_value("culprit_alerts_posted_total", {"kind": "report"}) == alerts_before + 1


def test_reports_endpoint_is_served_beside_slack(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store, env={"CULPRIT_REPORTS_TOKEN": "s3cret-reports-token"})
    refused = httpx.post(f"{bot.url}/reports", json=[{"id": "r1", "text": "feed not loading"}])
    assert refused.status_code == 401
    accepted = httpx.post(
        f"{bot.url}/reports",
        json=[{"id": "r1", "text": "feed not loading"}],
        headers={"Authorization": "Bearer s3cret-reports-token"},
        timeout=60,
    )
    assert accepted.status_code == 200, accepted.text
    assert [(report.text, report.source) for report in _reports(store)] == [("feed not loading", "http")]


def test_the_manifest_matches_what_the_server_listens_to() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/rca"
    settings = manifest["settings"]
    urls = {command["url"], settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"]}
    assert urls == {"https://YOUR-HOST/slack/events"}
    # message.groups: a private feedback channel's messages arrive as the same "message" event.
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_mention", "message.channels", "message.groups", "channel_created", "member_joined_channel"
    }
    assert settings["interactivity"]["is_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "app_mentions:read", "channels:history", "channels:read", "channels:join", "files:write"} <= scopes


def test_a_spike_alert_slack_refused_is_posted_by_the_next_run(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CULPRIT_ALERTS_CHANNEL", "CALERTS")
    get_settings.cache_clear()
    today = utcnow().date()
    with session_scope(database_url) as session:
        session.add(Alert(kind="spike", key="login", started_on=today, last_seen_on=today,
                          details={"count": 30, "baseline": 8.0, "examples": ["cannot sign in"]}))
    with FakeSlackServer(FakeSlack(not_in_channels={"CALERTS"})) as slack:
        post = channel_poster(WebClient(token="xoxb-test", base_url=slack.base_url + "api/"), alerts_channel="CALERTS")
        with pytest.raises(SlackApiError):
            post_new_alerts(post, get_settings())  # Slack refuses: culprit is not in the alerts channel yet
        slack.not_in_channels.discard("CALERTS")
        assert post_new_alerts(post, get_settings()) == 1
        assert "Spike in *login*" in slack.calls_to("chat.postMessage")[-1].args["text"]
        assert post_new_alerts(post, get_settings()) == 0  # posted once


def test_an_alert_check_that_fails_does_not_hold_back_the_alerts_already_recorded(database_url: str) -> None:
    """The checks ran before the posting, so a spike check that raised (here the daily counts it reads are
    gone) kept every recorded alert unposted for as long as it kept failing."""
    today = utcnow().date()
    with session_scope(database_url) as session:
        session.add(Alert(kind="spike", key="checkout", started_on=today, last_seen_on=today,
                          details={"count": 40, "baseline": 6.0, "examples": ["payment page spins"]}))
    with get_engine(database_url).begin() as connection:
        connection.execute(sql("DROP TABLE category_daily"))
    posts: list[tuple[str, str]] = []
    settings = Settings(database_url=database_url, alerts_channel="CALERTS")
    with capture_logs() as logs, pytest.raises(ExceptionGroup) as failed:
        post_new_alerts(lambda channel, text, blocks, png: posts.append((channel, text)), settings)
    [(channel, text)] = posts
    assert channel == "CALERTS" and "Spike in *checkout*" in text
    assert len(failed.value.exceptions) == 3 and all(isinstance(error, DBAPIError) for error in failed.value.exceptions)
    assert [entry["check"] for entry in logs if entry["event"] == "alert check failed"] == [
        f"spikes on {today - timedelta(days=1)}", f"spikes on {today}", "data quality"
    ]
    with pytest.raises(ExceptionGroup):  # still failing, and the alert is not posted again
        post_new_alerts(lambda channel, text, blocks, png: posts.append((channel, text)), settings)
    assert len(posts) == 1
