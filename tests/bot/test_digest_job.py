"""The weekly digest and the report alerts as `culprit serve` runs them: a real scheduler running the job,
posting through the real Slack client to the fake Slack, on a real database."""

from __future__ import annotations

import queue
from collections import Counter
from datetime import date, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from slack_sdk import WebClient

from bot.jobs import WEEKLY_DIGESTS, build_scheduler, digest_end, digest_key, last_digest_time, post_missed_digest, start_scheduler
from bot.replies import channel_poster
from knowledge.claims import is_done
from knowledge.config import Settings
from knowledge.db import session_scope, utcnow
from knowledge.reports import Alert
from tests.bot.fake_slack import FakeSlack, FakeSlackServer
from tools.reports.digest import iso_week
from tools.reports.intake import bump_daily_counts


def _week_due(settings: Settings) -> date:
    """The last day of the week whose digest the scheduler catches up on now."""
    trigger = build_scheduler(lambda *args: None, settings).get_job("weekly_digest").trigger
    due = last_digest_time(trigger, utcnow().astimezone(trigger.timezone))
    assert due is not None
    return digest_end(due)


def _catch_up(settings: Settings, client: WebClient, job_id: str = "missed_digest") -> JobExecutionEvent:
    """Start the bot's scheduler, run ``job_id`` now (the catch-up of missed digests runs at start anyway)
    and return how that run ended."""
    ended: queue.Queue[JobExecutionEvent] = queue.Queue()
    scheduler = start_scheduler(channel_poster(client), settings, client)
    scheduler.add_listener(lambda event: event.job_id == job_id and ended.put(event), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    if job_id != "missed_digest":
        scheduler.get_job(job_id).modify(next_run_time=utcnow())
    try:
        return ended.get(timeout=120)
    finally:
        scheduler.shutdown()


def test_a_digest_whose_chart_slack_refuses_is_posted_once_and_done(database_url: str) -> None:
    """The chart upload failed after the message was posted: the claim stayed unfinished, so each catch-up after
    its lease posted the whole digest again, every 15 minutes, for as long as the app lacked files:write."""
    settings = Settings(database_url=database_url, digest_channel="C-DIGEST")
    end = _week_due(settings)
    with session_scope(database_url) as session:
        bump_daily_counts(session, Counter({(end, "login"): 12, (end - timedelta(days=2), "crash"): 7}))
    with FakeSlackServer(FakeSlack(refused={"files.getUploadURLExternal": "missing_scope"})) as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url + "api/")
        ended = _catch_up(settings, client)
        assert ended.exception is None and ended.retval is True
        assert is_done(WEEKLY_DIGESTS, digest_key(iso_week(end), "C-DIGEST"), database_url)
        [message] = slack.calls_to("chat.postMessage")
        assert message.response["ok"] and "login: 12 reports" in message.args["text"]
        assert slack.calls_to("files.getUploadURLExternal"), "the chart was tried"
        # A restart (or the next catch-up) finds the week done and posts nothing more.
        assert post_missed_digest(channel_poster(client), build_scheduler(lambda *args: None, settings).get_job("weekly_digest").trigger, settings) is False
        assert len(slack.calls_to("chat.postMessage")) == 1


def test_a_week_of_many_spikes_with_long_category_names_still_posts_its_digest(database_url: str) -> None:
    """Every spike was a line of one section: past Slack's 3,000 characters Slack refused the whole message
    (invalid_blocks) and each catch-up failed the same way, so that week had no digest at all."""
    settings = Settings(database_url=database_url, digest_channel="C-DIGEST")
    end = _week_due(settings)
    names = [f"{number:02d} checkout\n\nfails\x07\x1b[31m <!channel> " + "x" * 150 for number in range(40)]
    with session_scope(database_url) as session:
        bump_daily_counts(session, Counter({(end, name): 30 for name in names}))
        session.add_all(
            Alert(kind="spike", key=name, started_on=end, last_seen_on=end, details={"count": 30, "baseline": 1.0})
            for name in names
        )
    with FakeSlackServer(FakeSlack()) as slack:
        ended = _catch_up(settings, WebClient(token="xoxb-test", base_url=slack.base_url + "api/"))
        assert ended.exception is None and ended.retval is True
        [message] = slack.calls_to("chat.postMessage")
        assert message.response["ok"], message.response
    [spikes] = [block["text"]["text"] for block in message.args["blocks"] if block["text"]["text"].startswith("*Spikes*")]
    assert spikes.startswith("*Spikes*\n• 00 checkout fails [31m &lt;!channel&gt; xxx") and spikes.endswith("more)")
    text = message.args["text"]
    assert "\x07" not in text and "\x1b" not in text and "checkout\n" not in text


def test_an_alert_quoting_a_huge_hostile_report_is_posted_as_short_quoted_lines(database_url: str) -> None:
    """Examples went to Slack as users wrote them: a 60,000-character report made Slack refuse the alert
    (msg_too_long) every hour, and the alerts after it were never posted; ``<!channel>`` in a report
    pinged the whole alerts channel, and a line break in one wrote outside the quote."""
    settings = Settings(database_url=database_url, alerts_channel="C-ALERTS")
    day = utcnow().date()
    hostile = "cart broken <!channel> <https://evil.example|reset your password>\n*Resolved*, ignore this " + "x" * 60_000
    with session_scope(database_url) as session:
        session.add_all([
            Alert(kind="spike", key="checkout", started_on=day, last_seen_on=day,
                  details={"count": 30, "baseline": 2.0, "examples": [hostile, "cannot pay"]}),
            Alert(kind="spike", key="login", started_on=day, last_seen_on=day,
                  details={"count": 20, "baseline": 1.0, "examples": ["cannot sign in"]}),
        ])  # fmt: skip
    with FakeSlackServer(FakeSlack()) as slack:
        ended = _catch_up(settings, WebClient(token="xoxb-test", base_url=slack.base_url + "api/"), "report_alerts")
        assert ended.exception is None and ended.retval == 2
        checkout, login = (call.args["text"] for call in slack.calls_to("chat.postMessage"))
    assert "Spike in *checkout*" in checkout and "Spike in *login*" in login and "> cannot sign in" in login
    header, quoted, short = checkout.split("\n")
    assert quoted.startswith("> cart broken &lt;!channel&gt; &lt;https://evil.example|reset your password&gt; *Resolved*, ignore")
    assert len(quoted) < 1000 and short == "> cannot pay"
