"""``@culprit <question>`` in incident channels: the agent answers in the thread."""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.auto_investigations import AGAIN, Rerun, rerun
from bot.blocks import USAGE, SlackMessage, escape, notice
from bot.incident_request import (
    catalog_services,
    incident_id_for,
    names_time,
    parse_incident_request,
    strip_mentions,
    unknown_service,
)
from bot.replies import agent_message, deliver_answer, prepare, tell_restarting
from bot.runtime import BotRuntime
from graph.agent_tools import AgentContext
from knowledge.db import utcnow
from knowledge.errors import InputError

log = structlog.get_logger(__name__)

LOOKING = "🔎 Looking into it…"


def handle_mention(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    runtime: BotRuntime = context["culprit"]
    channel, user = event["channel"], event.get("user")
    if not runtime.channels.is_incident_channel(channel, runtime.settings):
        client.chat_postEphemeral(
            channel=channel,
            user=user,
            text=f"I answer mentions in incident channels (named `{runtime.settings.incident_channel_pattern}`); "
            "use `/rca` anywhere else.",
        )
        return
    thread_ts = event.get("thread_ts") or event["ts"]
    if AGAIN.match(strip_mentions(event.get("text", ""))) and rerun(runtime, client, channel, user or "") is not Rerun.NOTHING:
        return  # `@culprit again`: the channel's investigation ranks again and edits its answer, within the re-run limit
    try:
        query = parse_incident_request(event.get("text", ""), utcnow(), incident_id_for(channel, event["ts"]))
    except InputError as error:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=f"{escape(str(error))}\n{USAGE}")
        return
    position = runtime.replies.reserve()
    if position is None:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=runtime.replies.busy_text())
        return
    try:
        placeholder = client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=LOOKING + runtime.replies.queued_text(position)
        )
    except Exception:
        runtime.replies.cancel()
        raise
    agent_context = AgentContext(
        started_at=query.started_at,
        database_url=runtime.database_url,
        investigate=runtime.investigate,
        wiki=runtime.wiki,
        incident_id=query.incident_id,
        service=query.service,
        channel=channel,
        thread_ts=thread_ts,
        time_given=names_time(event.get("text", "")),
    )

    def work() -> SlackMessage:
        unknown = unknown_service(query.service, catalog_services(runtime.database_url))
        return notice(escape(unknown)) if unknown else agent_message(runtime.ask(query.text, agent_context))

    def deliver() -> None:
        with structlog.contextvars.bound_contextvars(
            incident_id=query.incident_id, channel=channel, thread=f"{channel}:{thread_ts}", user=user, kind="mention"
        ):
            log.info("answering a mention")
            message = prepare(runtime, "mention", work)
            deliver_answer(
                client, message, runtime.database_url,
                channel=channel, incident_id=query.incident_id, thread_ts=thread_ts, replace_ts=placeholder["ts"],
            )

    runtime.replies.start(deliver, tell_restarting(client, channel=channel, thread_ts=thread_ts, replace_ts=placeholder["ts"]))


def register(app: App) -> None:
    app.event("app_mention")(handle_mention)
