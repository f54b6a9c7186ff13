"""/rca over real HTTP: ack fast, answer with Block Kit and feedback buttons, refuse bad input kindly."""

from __future__ import annotations

import json
import threading
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.exc import DataError
from structlog.testing import capture_logs

from knowledge.db import session_scope
from knowledge.incidents import Incident, Suggestion
from tests.bot.conftest import INCIDENT_CHANNEL, StartBot
from tests.bot.fake_slack import FakeSlackServer
from tests.waiting import wait_until
from tools.rca.answers import IncidentQuery, RcaAnswer

FORM = "application/x-www-form-urlencoded"


def _answer(bot, channel: str = INCIDENT_CHANNEL):
    return bot.slack.wait_for(
        lambda call: call.method == "chat.postMessage" and call.args.get("channel") == channel and call.args.get("blocks")
    )[0]


def test_rca_acks_at_once_then_posts_suggestions_with_feedback_buttons(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    # How fast the ack comes is measured by benchmarks/slack_ack.py, not here.
    response = bot.send.command("card payments fail at checkout with 502 service:payments")

    assert response.status_code == 200
    assert response.json()["response_type"] == "in_channel"
    assert "Investigating" in response.json()["text"]

    posted = _answer(bot)
    blocks = posted.args["blocks"]
    assert posted.args["text"].startswith("Likely culprits for: card payments fail at checkout with 502")
    assert blocks[0]["type"] == "header"
    incident = next(block for block in blocks if block.get("block_id") == "incident")
    assert "card payments fail at checkout with 502" in incident["text"]["text"]
    assert "`payments`" in incident["text"]["text"]

    actions = [block for block in blocks if block["type"] == "actions"]
    assert len(actions) == 5
    for block in actions:
        up, down, confirm = block["elements"]
        assert (up["action_id"], down["action_id"], confirm["action_id"]) == ("feedback_up", "feedback_down", "confirm_cause")
        assert up["value"] == down["value"] == confirm["value"] == block["block_id"].removeprefix("feedback-")
    headlines = [block["text"]["text"] for block in blocks if str(block.get("block_id", "")).startswith("suggestion-")]
    assert len(headlines) == 5
    assert all("landed *" in line and "confidence *" in line and "by *" in line for line in headlines)

    ids = {int(block["elements"][0]["value"]) for block in actions}
    with session_scope(store) as session:
        stored = session.scalars(select(Suggestion).where(Suggestion.id.in_(ids))).all()
        assert len(stored) == 5
        incident_row = session.get(Incident, stored[0].incident_id)
        assert incident_row.service == "payments"
        assert incident_row.text == "card payments fail at checkout with 502"


def test_empty_or_oversized_text_gets_the_usage_only_the_caller_sees(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    empty = bot.send.command("   ")
    oversized = bot.send.command("checkout is down " * 200)
    future = bot.send.command("checkout is down at:2999-01-01T00:00Z")

    for response in (empty, oversized, future):
        assert response.status_code == 200
        assert response.json()["response_type"] == "ephemeral"
        assert "/rca <symptom>" in response.json()["text"]
    assert "characters" in oversized.json()["text"]
    assert "in the future" in future.json()["text"]
    # The usage reply is the listener's ack and its last act: no investigation started, nothing to post.
    assert bot.posted() == []


def test_service_and_start_time_are_read_from_the_text(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    bot.send.command("at:2020-01-02T03:04Z search results are empty service:search")
    posted = _answer(bot)
    incident = next(block for block in posted.args["blocks"] if block.get("block_id") == "incident")
    assert "search results are empty" in incident["text"]["text"]
    assert "`search`" in incident["text"]["text"]
    # Nothing in the store landed before 2020: the bot says it is not confident.
    assert posted.args["blocks"][0]["text"]["text"].startswith("🤔 Not confident")
    assert "no changes landed in the window" in str(posted.args["blocks"])


def test_a_repeated_command_delivery_is_answered_once(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    duplicates = bot.dropped("duplicate")
    first = bot.send.command("checkout totals are wrong", trigger_id="trigger-same")
    again = bot.send.command("checkout totals are wrong", trigger_id="trigger-same")
    assert first.json()["response_type"] == "in_channel"
    assert again.status_code == 200 and again.text == ""
    bot.wait_until_dropped("duplicate", duplicates + 1)
    _answer(bot)
    assert len(bot.posted(channel=INCIDENT_CHANNEL)) == 1


def test_outside_the_bots_channels_the_answer_goes_through_the_response_url(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    bot.slack.not_in_channels.add("CPRIVATE")
    bot.send.command("auth tokens rejected", channel="CPRIVATE", channel_name="private-room")
    reply = bot.slack.wait_for(lambda call: call.method == "response_url")[0]
    assert reply.args["response_type"] == "in_channel"
    assert reply.args["blocks"][0]["type"] == "header"


def test_an_answer_goes_to_no_response_url_but_slacks(store: str, start_bot: StartBot) -> None:
    """The answer was POSTed to whatever URL a signed command named: an internal service, a cloud's metadata."""
    bot = start_bot(store)
    bot.slack.not_in_channels.add("CPRIVATE")
    with FakeSlackServer() as elsewhere, capture_logs() as logs:
        command = bot.send.command_payload("auth tokens rejected", channel="CPRIVATE", channel_name="private-room")
        response = bot.send.post(urlencode({**command, "response_url": elsewhere.base_url + "response/rca"}), FORM)
        assert response.status_code == 200
        given_up = lambda: any(e["event"] == "could not post the answer" for e in logs)  # noqa: E731
        wait_until(lambda: elsewhere.calls or given_up(), "the answer was neither sent nor given up")
    assert elsewhere.calls == []
    assert [(e["log_level"], e["host"]) for e in logs if e["event"] == "response_url refused: not Slack's"] == [
        ("warning", "127.0.0.1")]


def test_a_slow_investigation_ends_with_a_clear_message(store: str, start_bot: StartBot) -> None:
    released = threading.Event()

    def stuck(query: IncidentQuery) -> RcaAnswer:
        released.wait(timeout=60)  # until the test has seen the time-out message
        return RcaAnswer(incident=query, confident=False, confidence=0.0, suggestions=[])

    bot = start_bot(store, investigate=stuck, answer_timeout_s=0.5)
    response = bot.send.command("everything is slow")
    assert response.status_code == 200
    posted = bot.slack.wait_for(lambda call: call.method == "chat.postMessage")[0]
    released.set()
    assert "timed out: no answer after 0.5 s" in posted.args["text"]


def test_a_timed_out_investigation_stops_at_its_next_stage_and_frees_its_worker(
    store: str, start_bot: StartBot, monkeypatch
) -> None:
    import graph.rca_graph

    told = threading.Event()
    elections: list[str] = []
    real_retrieve, real_elect = graph.rca_graph.retrieve, graph.rca_graph.elect

    def slow_retrieve(*args, **kwargs):
        told.wait(timeout=60)  # retrieval outlasts the wait: the responder is told before it ends
        return real_retrieve(*args, **kwargs)

    def counted_elect(query, *args, **kwargs):
        elections.append(query.text)
        return real_elect(query, *args, **kwargs)

    monkeypatch.setattr(graph.rca_graph, "retrieve", slow_retrieve)
    monkeypatch.setattr(graph.rca_graph, "elect", counted_elect)
    bot = start_bot(store, answer_timeout_s=0.5)  # the real RCA pipeline on the store
    stopped_before = bot.metric("culprit_investigations_stopped_total")

    assert bot.send.command("card payments fail at checkout service:payments").status_code == 200
    posted = bot.slack.wait_for(lambda call: call.method == "chat.postMessage")[0]
    assert "timed out" in posted.args["text"]
    told.set()

    # The worker reports where the investigation stopped once it is free again.
    bot.wait_for_metric("culprit_investigations_stopped_total", stopped_before + 1)
    assert elections == []
    with session_scope(store) as session:
        assert session.scalars(select(Incident)).all() == []
    assert len(bot.posted()) == 1


def test_an_investigation_that_reaches_its_deadline_first_is_told_as_timed_out(store: str, start_bot: StartBot) -> None:
    from tools.rca.deadline import current_deadline

    def past_its_deadline(query: IncidentQuery) -> RcaAnswer:
        deadline = current_deadline()
        assert deadline is not None
        deadline.expire()  # its clock ran out a moment before the waiting reply's did
        deadline.check("retrieve")
        raise AssertionError("a passed deadline lets no stage start")

    bot = start_bot(store, investigate=past_its_deadline)
    stopped_before = bot.metric("culprit_investigations_stopped_total", stage="retrieve")
    bot.send.command("everything is slow")
    posted = bot.slack.wait_for(lambda call: call.method == "chat.postMessage")[0]
    assert "timed out" in posted.args["text"] and "failed" not in posted.args["text"]
    bot.wait_for_metric("culprit_investigations_stopped_total", stopped_before + 1, stage="retrieve")


def test_an_unreachable_database_is_said_plainly(data_dir, start_bot: StartBot) -> None:
    bot = start_bot("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    response = bot.send.command("checkout is down")
    assert response.status_code == 200
    posted = bot.slack.wait_for(lambda call: call.method == "chat.postMessage")[0]
    assert "can't reach the change database" in posted.args["text"]


def test_a_database_error_that_is_not_an_outage_is_not_called_one(store: str, start_bot: StartBot) -> None:
    """Every SQLAlchemyError was answered "can't reach the change database", a bad row or a bug included."""

    def rejected_by_the_database(query: IncidentQuery) -> RcaAnswer:
        raise DataError("INSERT INTO incidents ...", {}, ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes"))

    bot = start_bot(store, investigate=rejected_by_the_database)
    bot.send.command("checkout is down")
    posted = bot.slack.wait_for(lambda call: call.method == "chat.postMessage")[0]
    assert "The investigation failed (DataError)" in posted.args["text"] and "can't reach" not in posted.args["text"]


def test_echoed_text_cannot_ping_the_channel_or_make_links(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    ack = bot.send.command("<!channel> card payments fail at checkout with 502 <http://evil|click> service:payments")
    assert "&lt;!channel&gt;" in ack.json()["text"]
    posted = _answer(bot)
    # The fallback text is what notifications show: it must not ping either.
    assert "for: &lt;!channel&gt; card payments fail at checkout with 502 &lt;http://evil|click&gt;" in posted.args["text"]
    everything = json.dumps([posted.args["text"], posted.args["blocks"]])
    assert "<!channel>" not in everything and "<http://evil" not in everything


def test_a_time_out_of_range_is_an_input_error_not_a_failure(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    ancient = bot.send.command("checkout is down at:0001-01-01")
    assert ancient.json()["response_type"] == "ephemeral"
    assert "is before 1970" in ancient.json()["text"]
    assert bot.posted() == []


def test_an_unknown_service_is_named_with_the_closest_catalog_names(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    bot.send.command("card payments fail at checkout service:paymnts")
    posted = bot.slack.wait_for(lambda call: call.method == "chat.postMessage")[0]
    assert "no service `paymnts` in the catalog" in posted.args["text"]
    assert "`payments`" in posted.args["text"]
    assert "investigation failed" not in posted.args["text"]


def test_a_rate_limited_answer_is_sent_again_after_slacks_retry_after(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    bot.slack.rate_limited["chat.postMessage"] = 2  # a busy workspace during an incident

    assert bot.send.command("card payments fail at checkout with 502 service:payments").status_code == 200

    posted = _answer(bot)
    assert posted.args["text"].startswith("Likely culprits for: card payments fail at checkout with 502")
    refused = bot.slack.calls_to("rate_limited:chat.postMessage")
    assert len(refused) == 2 and all(call.args["text"] == posted.args["text"] for call in refused)
    assert len([call for call in bot.slack.calls_to("chat.postMessage") if call.args.get("blocks")]) == 1


def test_a_burst_is_acked_at_once_queued_in_order_and_refused_kindly_when_full(store: str, start_bot: StartBot) -> None:
    from bot.reply_queue import ReplyQueue

    released = threading.Event()
    started: list[str] = []

    def stuck(query: IncidentQuery) -> RcaAnswer:
        started.append(query.text)
        released.wait(timeout=60)  # every investigation waits until the burst has been acked
        return RcaAnswer(incident=query, confident=False, confidence=0.0, suggestions=[])

    # Two replies run at once, two more wait, the fifth finds the queue full.
    bot = start_bot(store, investigate=stuck, replies=ReplyQueue(capacity=4, runners=2))
    acks = [bot.send.command(f"checkout is down, wave {wave}").json() for wave in range(5)]
    released.set()

    assert [ack["response_type"] for ack in acks] == ["in_channel"] * 4 + ["ephemeral"]
    assert "queued" not in acks[0]["text"] and "queued" not in acks[1]["text"]
    assert "queued as #1" in acks[2]["text"] and "queued as #2" in acks[3]["text"]
    assert "can't take another" in acks[4]["text"]
    answers = bot.slack.wait_for(lambda call: call.method == "chat.postMessage" and call.args.get("blocks"), count=4)
    assert all(any(f"wave {wave}" in call.args["text"] for call in answers) for wave in range(4))
    assert sorted(started) == [f"checkout is down, wave {wave}" for wave in range(4)]
