""""Confirm as root cause" and its undo: the only clicks that write a training label.

Slack shows its confirmation dialog before the click arrives. Only an
incident channel (``bot.channels``: named like ``inc-*`` or configured) confers
the authority: there the clicker must be a configured confirmer
(``CULPRIT_CONFIRMERS``) or the channel's creator (its commander, per
``conversations.info``). Anywhere else anyone can create a channel and ``/rca``
in it, so no click there confirms (nor do votes, :mod:`bot.listeners.actions`).
Whoever is refused is told why privately, and nothing changes. Both steps
land in the audit trail.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.blocks import with_confirmation
from bot.listeners.click_failures import answer_click_failure
from bot.runtime import BotRuntime
from bot.listeners.actions import clicked_place
from tools.feedback.confirmations import CHANNEL_CREATOR, CONFIRMER, decide_suggestion
from tools.feedback.votes import suggestion_id_from

log = structlog.get_logger(__name__)


def authority_of(runtime: BotRuntime, user: str, channel: str) -> str | None:
    """On what authority ``user`` may confirm in ``channel``, or None (always, outside incident channels)."""
    if not runtime.channels.is_incident_channel(channel, runtime.settings):
        return None
    if user in runtime.settings.confirmers:
        return CONFIRMER
    if runtime.channels.creator(channel) == user:
        return CHANNEL_CREATOR
    return None


def refusal(runtime: BotRuntime, channel: str) -> str:
    """Why a click did not confirm: the channel is no incident channel, or the clicker has no authority in it."""
    if runtime.channels.is_incident_channel(channel, runtime.settings):
        return (
            "Only the incident channel's creator or a configured confirmer (`CULPRIT_CONFIRMERS`) can "
            "confirm or withdraw a root cause; use 👍 / 👎 to vote (two 👍 and no 👎 also confirm)."
        )
    return (
        f"Root causes are confirmed or withdrawn only in incident channels (named "
        f"`{runtime.settings.incident_channel_pattern}` or listed in `CULPRIT_INCIDENT_CHANNELS`); nothing changed. "
        "Here 👍 / 👎 are votes only: they confirm nothing either."
    )


def handle_confirmation(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    ack()
    runtime: BotRuntime = context["culprit"]
    user = body["user"]["id"]
    message = body.get("message") or {}
    clicked_in = clicked_place(body)
    confirming = action["action_id"] == "confirm_cause"
    authority = authority_of(runtime, user, clicked_in.channel)
    if authority is None:
        log.info("confirmation refused", user=user, channel=clicked_in.channel)
        client.chat_postEphemeral(channel=clicked_in.channel, user=user, text=refusal(runtime, clicked_in.channel))
        return
    try:
        suggestion_id = suggestion_id_from(action.get("value"))
        change = decide_suggestion(
            suggestion_id, user, authority, confirm=confirming, database_url=runtime.database_url, clicked_in=clicked_in
        )
    except Exception as error:  # noqa: BLE001 - whatever failed, the clicker is told and it is logged
        answer_click_failure(
            client, error, channel=clicked_in.channel, user=user, could_not="change the root cause", retry="click again",
            event="confirmation not stored", value=str(action.get("value"))[:40],
        )
        return
    log.info(
        "root cause confirmed" if change.confirmed else "root cause withdrawn",
        incident_id=change.incident_id, change=change.change_id, user=user, authority=authority, audit=change.event_id,
    )
    if message.get("ts"):
        blocks = with_confirmation(message.get("blocks") or [], suggestion_id, user, change.confirmed)
        client.chat_update(channel=clicked_in.channel, ts=message["ts"], text=message.get("text") or "culprit", blocks=blocks)


def register(app: App) -> None:
    app.action("confirm_cause")(handle_confirmation)
    app.action("retract_cause")(handle_confirmation)
