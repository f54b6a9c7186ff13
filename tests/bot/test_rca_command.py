"""/rca over real HTTP: ack fast, answer with Block Kit and feedback buttons, refuse bad input kindly."""

from __future__ import annotations

import time

from sqlalchemy import select

from knowledge.db import session_scope
from knowledge.incidents import Incident, Suggestion
from tests.bot.conftest import INCIDENT_CHANNEL, StartBot


def _answer(bot, channel: str = INCIDENT_CHANNEL):
    return bot.slack.wait_for(
        lambda call: call.method == "chat.postMessage" and call.args.get("channel") == channel and call.args.get("blocks")
    )[0]


def test_rca_acks_at_once_then_posts_suggestions_with_feedback_buttons(store: str, start_bot: StartBot) -> None:
    bot = start_bot(store)
    started = time.perf_counter()
    response = bot.send.command("card payments fail at checkout with 502 service:payments")
    ack_seconds = time.perf_counter() - started

    assert response.status_code == 200
    assert ack_seconds < 3
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
        up, down = block["elements"]
        assert (up["action_id"], down["action_id"]) == ("feedback_up", "feedback_down")
        assert up["value"] == down["value"] == block["block_id"].removeprefix("feedback-")
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
