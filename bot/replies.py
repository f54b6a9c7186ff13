"""Posting answers back to Slack, whatever happened on the way.

Every path ends in a message: the answer, or a sentence saying what went
wrong and what to do. A responder in an incident must never wonder whether
the bot heard them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient
from sqlalchemy.exc import SQLAlchemyError

from bot.blocks import SlackMessage, notice, rca_message, reply_message
from bot.metrics import ALERTS_POSTED, ANSWER_SECONDS, UNSENT_REPLIES, observe_answer
from bot.runtime import AnswerTimedOut, BotRuntime, Investigate
from graph.agent import AgentReply
from knowledge.db import UNREACHABLE, database_failure, failure_fields
from knowledge.outbox import keep_unsent
from tools.feedback.votes import place_answer
from tools.rca.answers import IncidentQuery
from tools.rca.store import stored_words

log = structlog.get_logger(__name__)


def timed_out_message(runtime: BotRuntime) -> SlackMessage:
    return notice(
        f"⏱️ The investigation timed out: no answer after {runtime.answer_timeout_s:g} s, the change database "
        "or the model is slow right now. Try again in a minute, or narrow it down with `service:NAME`."
    )


def failure_message(error: Exception) -> SlackMessage:
    """What the responder is told for a failed investigation; "can't reach" only when the database could not be
    reached: any other database error (a bad row, a bug) sent responders to check a database that was fine."""
    if isinstance(error, UNREACHABLE):
        return notice("🛑 I can't reach the change database right now, so I can't investigate. Try again shortly.")
    return notice(f"💥 The investigation failed ({type(error).__name__}); the error is in culprit's logs.")


def prepare(runtime: BotRuntime, kind: str, work: Callable[[], SlackMessage]) -> SlackMessage:
    """Run ``work`` within the time limit; a time-out or failure becomes a message, never an exception."""
    started = time.perf_counter()
    try:
        message = runtime.within_time_limit(work)
        outcome = "answered"
    except AnswerTimedOut:
        log.warning("investigation timed out", timeout_s=runtime.answer_timeout_s)
        message, outcome = timed_out_message(runtime), "timeout"
    except Exception as error:  # any failure must still produce a reply in the channel
        log.error("investigation failed", **failure_fields(error))
        message, outcome = failure_message(error), "error"
    ANSWER_SECONDS.labels(kind=kind, outcome=outcome).observe(time.perf_counter() - started)
    return message


RESTARTING = "⏹️ culprit was restarting and did not get to this one. Ask again: the next answer comes from a running replica."


def tell_restarting(
    client: WebClient, *, channel: str, thread_ts: str | None = None, replace_ts: str | None = None,
    response_url: str | None = None,
) -> Callable[[], None]:
    """What a reply still waiting when its replica stops does instead (``ReplyQueue.start``'s ``turned_away``):
    tell the responder to ask again, through Slack alone, since the database may be what held the stop up."""

    def turned_away() -> None:
        post(client, notice(RESTARTING), channel=channel, thread_ts=thread_ts, replace_ts=replace_ts, response_url=response_url)
        log.info("reply not started before shutdown; asked the responder to ask again")

    return turned_away


def rca_reply(investigate: Investigate, query: IncidentQuery) -> Callable[[], SlackMessage]:
    """The RCA as work for the pool: run, record its health, render, all off the listener thread."""

    def work() -> SlackMessage:
        answer = investigate(query)
        observe_answer(answer)
        return rca_message(answer)

    return work


def agent_message(reply: AgentReply) -> SlackMessage:
    """A full RCA answer (with its buttons) when the agent ran one, otherwise its text."""
    if reply.rca is None:
        return reply_message(reply.text)
    observe_answer(reply.rca)
    message = rca_message(reply.rca)
    if reply.via == "llm":
        message.blocks = reply_message(reply.text).blocks + [{"type": "divider"}] + message.blocks
    return message


def post(
    client: WebClient,
    message: SlackMessage,
    *,
    channel: str,
    thread_ts: str | None = None,
    replace_ts: str | None = None,
    response_url: str | None = None,
) -> str | None:
    """Update the placeholder or post anew; where the bot is not a member, answer through ``response_url``.

    Returns the ts of the message that now shows the answer (None through ``response_url``, which tells none).
    """
    try:
        if replace_ts:
            client.chat_update(channel=channel, ts=replace_ts, text=message.text, blocks=message.blocks)
            return replace_ts
        posted = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=message.text, blocks=message.blocks)
        return str(posted["ts"])
    except SlackApiError as error:
        reason = error.response.get("error")
        if response_url and reason in {"not_in_channel", "channel_not_found"}:
            WebhookClient(response_url).send(
                text=message.text, blocks=message.blocks, response_type="in_channel"
            )
            return None
        log.error("could not post the answer", channel=channel, error=reason)
        raise


# Slack's error codes that say "not now" rather than "never" (besides any 429 or 5xx status).
TRANSIENT_ERRORS = frozenset({"ratelimited", "rate_limited", "service_unavailable", "internal_error", "fatal_error", "request_timeout"})


def error_code(error: Exception) -> str:
    """Slack's error code, or the exception's type: never the message, which may echo what was sent."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or "unknown")
    return type(error).__name__


def refused_for_now(error: Exception) -> str | None:
    """Why Slack refused a call that may pass when sent again later; None when it never will."""
    if isinstance(error, SlackApiError):
        reason = str(error.response.get("error") or "")
        status = error.response.status_code
        if status == 429 or status >= 500 or reason in TRANSIENT_ERRORS:
            return reason or f"http {status}"
        return None
    if isinstance(error, OSError):  # refused connections, time-outs, DNS: slack_sdk raises them as they come
        return type(error).__name__
    return None


def deliver_answer(
    client: WebClient,
    message: SlackMessage,
    database_url: str,
    *,
    channel: str,
    incident_id: str | None,
    thread_ts: str | None = None,
    replace_ts: str | None = None,
    response_url: str | None = None,
) -> None:
    """Post the answer (over ``replace_ts`` if given) and open it for votes.

    An answer Slack still refuses for now after the client's retries is kept
    in the outbox (``knowledge.outbox``) and sent by the scheduler
    (``bot.outbox``); votes count in ``thread_ts``, or the answer's own ts.
    """
    try:
        ts = post(client, message, channel=channel, thread_ts=thread_ts, replace_ts=replace_ts, response_url=response_url)
    except Exception as error:
        reason = refused_for_now(error)
        if reason is None:
            raise
        stored = kept_message(message)
        kept = keep_unsent(
            database_url, channel=channel, text=stored.text, blocks=stored.blocks,
            thread_ts=thread_ts, replace_ts=replace_ts, incident_id=incident_id, error=reason,
        )
        UNSENT_REPLIES.labels(outcome="kept").inc()
        log.warning("answer kept to be sent again", reply_id=kept, error=reason)
        return
    open_for_votes(database_url, message, incident_id, channel, thread_ts or ts)
    log.info("answer posted")


def kept_message(message: SlackMessage) -> SlackMessage:
    """The answer as the outbox stores it, every text redacted as a stored incident's words are.

    An answer quotes the incident as sent ("Incident as understood: ..."), which the incidents table
    only keeps redacted (:func:`~tools.rca.store.stored_words`), and an agent's reply echoes the
    question and wiki text. Shas, times, mentions, links and button values stay, so the answer sent
    later still names its culprits and takes votes; only the personal data reads ``[email]``, ``[phone]``.
    """
    return SlackMessage(text=stored_words(message.text), blocks=_redacted_texts(message.blocks))


def _redacted_texts(value: Any) -> Any:
    """Blocks with every ``text`` string redacted: Slack keeps what a reader sees under that key, at any depth."""
    if isinstance(value, dict):
        return {
            key: stored_words(item) if key == "text" and isinstance(item, str) else _redacted_texts(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redacted_texts(item) for item in value]
    return value


def open_for_votes(database_url: str, message: SlackMessage, incident_id: str | None, channel: str, thread_ts: str | None) -> None:
    """Record where an answer with 👍 / 👎 buttons was posted, so clicks there (and only there) count.

    A failure is logged, not raised: the answer is already in the channel, and a
    vote on it is then refused with a sentence rather than counted blindly.
    """
    if incident_id is None or not any(block.get("type") == "actions" for block in message.blocks):
        return
    try:
        place_answer(incident_id, channel, thread_ts, database_url=database_url)
    except SQLAlchemyError as error:
        log.warning("could not record where the answer was posted; votes on it will be refused", error=database_failure(error))


def channel_poster(
    client: WebClient, alerts_channel: str | None = None
) -> Callable[[str, str, list[dict[str, Any]], bytes | None], None]:
    """How scheduled jobs post (``bot.jobs``): a message, then its chart as a file in the same channel.

    Once the message is posted the job's work is done: a chart Slack refuses (no ``files:write`` scope, an
    upload that times out) is logged and left out, because raising would leave the digest's claim unfinished
    and the message would be posted again when its lease ran out, every catch-up after.
    """

    def post_to_channel(channel: str, text: str, blocks: list[dict[str, Any]], chart_png: bytes | None) -> None:
        client.chat_postMessage(channel=channel, text=text, blocks=blocks or None)
        if chart_png:
            try:
                client.files_upload_v2(channel=channel, file=chart_png, filename="chart.png", title=text.split("\n")[0][:200])
            except (SlackApiError, OSError) as error:
                log.warning("chart not posted; its message was", channel=channel, error=error_code(error))
        if alerts_channel and channel == alerts_channel:
            ALERTS_POSTED.labels(kind="report").inc()

    return post_to_channel
