"""The digest's least-sure reports carry their why and a "Relabel as…" menu; choosing in it over real
HTTP stores the responder's category, and a value the message never offered is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from bot.listeners import report_relabel
from knowledge.db import session_scope
from knowledge.reports import BugReport
from tests.bot.conftest import INCIDENT_CHANNEL, StartBot, raising
from tools.reports.classifiers import Prediction
from tools.reports.digest import RELABEL_ACTION, build_digest
from tools.reports.intake import IncomingReport, ingest_reports

END = date(2025, 6, 8)


class _Unsure:
    """Files refunds as payments and the rest as login; 'odd' reports with low confidence and a why to show."""

    categories = ["login", "payments"]

    def classify(self, texts: list[str]) -> list[Prediction]:
        why = {"words": [{"term": "odd", "weight": 0.5}], "neighbours": [{"text": "a labeled <login> report", "category": "login", "similarity": 0.61}]}
        return [Prediction("payments" if "refund" in t else "login", 0.3 if "odd" in t else 0.9, why) for t in texts]


def _label(database_url: str, report_id: str) -> tuple[str | None, str | None]:
    with session_scope(database_url) as session:
        report = session.get(BugReport, report_id)
        return report.label, report.category


def test_a_digest_menu_choice_relabels_the_report_it_was_offered_for(store: str, start_bot: StartBot) -> None:
    at = datetime.combine(END - timedelta(days=1), datetime.min.time(), UTC)
    reports = [IncomingReport("odd-1", "something odd with <b>sign in</b>", at), IncomingReport("ok-1", "charged twice", at)]
    ingest_reports(reports, classifier=_Unsure(), other_confidence=0.1, url=store)
    ingest_reports([IncomingReport("pay-0", "refund please", at - timedelta(days=20))], classifier=_Unsure(), other_confidence=0.1, url=store)
    digest = build_digest(END, store, with_chart=False)
    assert "Least sure this week" in digest.text and "[login 0.30]" in digest.text and "words that weighed most: odd" in digest.text
    menu_block = next(b for b in digest.blocks if b.get("accessory") and "odd-1" in b["text"]["text"])
    assert "&lt;b&gt;sign in&lt;/b&gt;" in menu_block["text"]["text"], "report text is escaped for mrkdwn"
    values = [option["value"] for option in menu_block["accessory"]["options"]]
    assert values and not any(v.endswith("\tlogin") for v in values), "the current category is not offered"
    bot = start_bot(store)
    message = {"ts": "1717400000.000100", "text": digest.text, "blocks": digest.blocks, "type": "message"}

    forged = bot.send.select(RELABEL_ACTION, "pay-0\tlogin", user="UALICE", channel=INCIDENT_CHANNEL, message=message)
    assert forged.status_code == 200
    refusal = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral")[0]
    assert "not one this message offers" in refusal.args["text"] and _label(store, "pay-0") == (None, "payments")

    chosen = next(v for v in values if v.startswith("odd-1\t"))
    assert bot.send.select(RELABEL_ACTION, chosen, user="UALICE", channel=INCIDENT_CHANNEL, message=message).status_code == 200
    done = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral", count=2)[1]
    category = chosen.split("\t")[1]
    assert f"odd-1: login → {category}" in done.args["text"]
    assert _label(store, "odd-1") == (category, category)


def test_a_menu_value_naming_no_known_category_is_refused_even_when_the_message_offers_it(
    store: str, start_bot: StartBot
) -> None:
    """The offered options come with the click's payload: a crafted one used to start any category."""
    at = datetime.combine(END - timedelta(days=1), datetime.min.time(), UTC)
    ingest_reports([IncomingReport("odd-1", "something odd with sign in", at)], classifier=_Unsure(), other_confidence=0.1, url=store)
    bot = start_bot(store)
    value = "odd-1\t<!channel> made up"
    menu = {"action_id": RELABEL_ACTION, "type": "static_select", "options": [{"value": value}]}
    message = {"ts": "1.000002", "text": "digest", "type": "message",
               "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "odd-1"}, "accessory": menu}]}  # fmt: skip

    assert bot.send.select(RELABEL_ACTION, value, user="UALICE", channel=INCIDENT_CHANNEL, message=message).status_code == 200

    refusal = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral")[0]
    assert "no report category" in refusal.args["text"] and "the categories are: login" in refusal.args["text"]
    assert "<!channel>" not in refusal.args["text"], "the crafted name is escaped"
    assert _label(store, "odd-1") == (None, "login")


def test_a_relabel_that_fails_unexpectedly_tells_the_clicker_and_logs_the_error_once(
    store: str, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in storing the choice used to end in a traceback and nothing for the responder who chose."""
    monkeypatch.setattr(report_relabel, "relabel_report", raising(KeyError("a bug while relabeling")))
    bot = start_bot(store)
    menu = {"action_id": RELABEL_ACTION, "type": "static_select", "options": [{"value": "odd-1\tpayments"}]}
    message = {"ts": "1.000001", "text": "digest", "type": "message",
               "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "odd-1"}, "accessory": menu}]}  # fmt: skip
    with capture_logs() as logs:
        chosen = bot.send.select(RELABEL_ACTION, "odd-1\tpayments", user="UALICE", channel=INCIDENT_CHANNEL, message=message)
        assert chosen.status_code == 200
        notice = bot.slack.wait_for(lambda c: c.method == "chat.postEphemeral")[0]
    assert notice.args["user"] == "UALICE" and notice.args["channel"] == INCIDENT_CHANNEL
    assert "couldn't relabel the report: the click failed (KeyError)" in notice.args["text"]
    failures = [entry for entry in logs if entry["event"] == "report not relabeled"]
    assert len(failures) == 1 and failures[0]["error_type"] == "KeyError" and failures[0]["log_level"] == "error"
