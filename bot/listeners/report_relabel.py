"""The digest's "Relabel as…" menu on a least-sure report: store a responder's category for it.

The chosen value is checked, not trusted: it must be one of the options the
clicked message itself offers (``report id<TAB>category``), so a crafted
payload cannot relabel an arbitrary report.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.blocks import escape
from bot.listeners.click_failures import answer_click_failure
from bot.runtime import BotRuntime
from knowledge.errors import InputError
from tools.reports.digest import RELABEL_ACTION, RELABEL_SEPARATOR
from tools.reports.labels import relabel_report

log = structlog.get_logger(__name__)


def offered_values(message: dict[str, Any]) -> set[str]:
    """Every relabel option value in the message's blocks."""
    values = set()
    for block in message.get("blocks") or []:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == RELABEL_ACTION:
            values |= {str(option.get("value")) for option in accessory.get("options") or []}
    return values


def handle_relabel(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    runtime: BotRuntime = context["culprit"]
    user = body["user"]["id"]
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id", "")
    value = str((action.get("selected_option") or {}).get("value") or "")
    try:
        if RELABEL_SEPARATOR not in value or value not in offered_values(body.get("message") or {}):
            raise InputError("that choice is not one this message offers")
        report_id, category = value.split(RELABEL_SEPARATOR, 1)
        done = relabel_report(report_id, category, runtime.database_url)
    except Exception as error:  # noqa: BLE001 - whatever failed, the clicker is told and it is logged
        answer_click_failure(
            client, error, channel=channel, user=user, could_not="relabel the report", retry="try again",
            event="report not relabeled",
        )
        return
    log.info("report relabeled", report=done.report_id, previous=done.previous, category=done.category, user=user)
    client.chat_postEphemeral(
        channel=channel,
        user=user,
        text=(
            f"Relabeled {escape(done.report_id)}: {escape(done.previous or 'unclassified')} → {escape(done.category)}. "
            "The next `culprit reports train` learns from it."
        ),
    )


def register(app: App) -> None:
    app.action(RELABEL_ACTION)(handle_relabel)
