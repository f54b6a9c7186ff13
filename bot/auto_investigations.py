"""Investigations nobody asked for: a new incident channel, a PagerDuty trigger, a signed ``POST /incidents``.

Each starts at most once (a claim per channel or incident, so Slack's and
PagerDuty's duplicate deliveries and every replica agree, marked finished once
the first post is made; an unfinished one is leased, so a claim whose holder
died or could not give it back does not turn every retry into a duplicate), posts its first
suspects with a "Re-run with the channel so far" button, and records where
the answer is. A re-run (the button or ``@culprit again``) adds the channel's
messages since to what the incident said at first, ranks again and edits the
same message instead of posting a new one. Each re-run is a whole
investigation, so both ways share one limit per responder and incident.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import partial
from typing import Any

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot.blocks import SlackMessage, escape
from bot.metrics import INVESTIGATIONS_TRIGGERED, REQUESTS_DROPPED
from bot.incident_request import catalog_services, strip_mentions
from bot.replies import open_for_votes, post, prepare, rca_reply, tell_restarting
from bot.runtime import RERUNS_PER_MINUTE, BotRuntime
from knowledge.claims import claim, finish, forget, is_done, release
from knowledge.db import UNREACHABLE, database_failure, session_scope, storable, utcnow
from knowledge.incidents import SO_FAR, Incident, first_description
from tools.rca.answers import IncidentQuery

log = structlog.get_logger(__name__)

AUTO_INVESTIGATIONS = "auto_investigation"  # claims keyed "channel:C…", "pagerduty:P…", "incident:<id>"
# One per trigger key told culprit was busy: PagerDuty retries a 503 for a while, and each retry that found the
# reply queue full posted the same busy notice in the incident channel again. Forgotten with the claims above.
BUSY_NOTICES = "auto_investigation_busy_notice"
# An unfinished claim older than this goes to the next delivery. A live holder finishes within about 40 s
# (a database connect times out after 10 s, a Slack call after 30 s), so it is never taken from one still
# posting; and a sender told to come back in 30 s (bot.http_checks.RETRY_AFTER_S) reaches it on its
# fourth retry or so, well inside PagerDuty's retries and the five minutes a generic sender's signature lasts.
# A holder whose process is gone (same host) loses its claim at once.
CLAIM_LEASE = timedelta(minutes=2)
# A claim stops a second start long after any retry (PagerDuty replays are refused after an hour, signed
# POST /incidents after five minutes) and through an incident channel's working life (culprit added to it
# again); then it is forgotten, or the claims table grows with every incident forever. One unfinished this
# long is past its lease, so forgetting it changes nothing.
INVESTIGATION_MEMORY = timedelta(days=90)
RERUN_ACTION = "rerun_channel"
AUTO_INCIDENT_ID = re.compile(r"auto-[0-9a-f]{12}")  # Trigger.incident_id: all a re-run button may carry
AGAIN = re.compile(r"^\s*(again|re-?run|try again)\W*$", re.IGNORECASE)
MAX_TEXT = 4000
MAX_MESSAGES = 50


class Rerun(Enum):
    """What asking for a re-run came to."""

    STARTED = "started"
    LIMITED = "limited"  # the responder's re-runs of this incident in the last minute are spent: told so, nothing started
    NOTHING = "nothing"  # culprit has no investigation in the channel to re-run


@dataclass(frozen=True)
class Trigger:
    """What started an investigation: a once-only key, where to answer, and what was known."""

    key: str
    channel: str
    title: str
    text: str
    started_at: datetime
    service: str | None = None
    source: str = "auto"

    @property
    def incident_id(self) -> str:
        return f"auto-{hashlib.sha256(self.key.encode()).hexdigest()[:12]}"


def service_named(text: str, services: Collection[str]) -> str | None:
    """The catalog service a channel name, topic or title names as a word (the longest name wins)."""
    lowered = text.lower()
    for name in sorted(services, key=len, reverse=True):
        if re.search(rf"(?<![a-z0-9]){re.escape(name.lower())}(?![a-z0-9])", lowered):
            return name
    return None


def channel_trigger(channel: str, info: dict[str, Any], started_at: datetime, database_url: str) -> Trigger:
    """The first description of an incident channel: its name's words, its topic and purpose."""
    # As a database stores them: a NUL in a topic would fail the investigation where it stores the incident.
    name = storable(str(info.get("name") or ""))
    words = " ".join(part for part in re.split(r"[-_]+", name) if part.lower() not in {"inc", "incident"})
    topic = storable(str((info.get("topic") or {}).get("value") or ""))
    purpose = storable(str((info.get("purpose") or {}).get("value") or ""))
    text = "\n".join(part for part in (words, topic, purpose) if part.strip())[:MAX_TEXT]
    services = catalog_services(database_url)
    # The name is the responder's first word on it; the topic and purpose only when the name names no service.
    service = next((found for part in (name, topic, purpose) if (found := service_named(part, services))), None)
    return Trigger(key=f"channel:{channel}", channel=channel, title=f"#{name}", text=text or name,
                   started_at=started_at, service=service, source="channel")


def rerun_block(incident_id: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": f"rerun-{incident_id}",
        "elements": [{
            "type": "button",
            "action_id": RERUN_ACTION,
            "text": {"type": "plain_text", "text": "🔁 Re-run with the channel so far", "emoji": True},
            "value": incident_id,
        }],
    }


class RepliesFull(Exception):
    """Every place in the reply queue was taken: the investigation did not start (the channel was told)."""


class StillStarting(Exception):
    """Another delivery holds the trigger's claim and has not made its first post yet: nothing started here.

    Not a duplicate: that delivery may still fail (its claim then given back, or
    taken over once :data:`CLAIM_LEASE` runs out), so a sender should try again.
    """


def start_investigation(runtime: BotRuntime, client: WebClient, trigger: Trigger) -> bool:
    """Claim the trigger and, if this is its first delivery, answer it in its channel; False for a duplicate.

    Only an investigation whose first post was made is a duplicate: its claim
    is marked finished then, before its answer is queued. A claim another
    delivery holds unfinished raises :class:`StillStarting`. When this one
    cannot start (:class:`RepliesFull`, or Slack refused the first post) the
    claim is given back before the error is raised, so the sender's retry
    starts it; if the database fails to give it back, the error is raised all
    the same and the claim's :data:`CLAIM_LEASE` hands it to a retry later.
    """
    url = runtime.database_url
    if not claim(AUTO_INVESTIGATIONS, trigger.key, url, lease=CLAIM_LEASE):
        if not is_done(AUTO_INVESTIGATIONS, trigger.key, url):
            INVESTIGATIONS_TRIGGERED.labels(outcome="still_starting").inc()
            raise StillStarting(trigger.key)
        INVESTIGATIONS_TRIGGERED.labels(outcome="duplicate").inc()
        log.info("investigation already started", key=trigger.key)
        return False
    query = IncidentQuery(text=trigger.text, title=trigger.title, started_at=trigger.started_at,
                          service=trigger.service, incident_id=trigger.incident_id)

    def posted() -> None:
        try:
            finish(AUTO_INVESTIGATIONS, trigger.key, url)
        except UNREACHABLE as error:  # it starts all the same; only a delivery after the lease could start it again
            log.error("investigation claim not marked finished: the database failed", key=trigger.key,
                      error=database_failure(error))

    try:
        if not _answer(runtime, client, trigger.channel, query, replace_ts=None, posted=posted,
                       placeholder=f"🔎 New incident: investigating _{escape(trigger.title[:200])}_ …",
                       tell_busy=partial(claim, BUSY_NOTICES, trigger.key, url)):
            raise RepliesFull(runtime.replies.busy_text())
    except Exception:
        INVESTIGATIONS_TRIGGERED.labels(outcome="not_started").inc()
        try:
            release(AUTO_INVESTIGATIONS, trigger.key, url)
        except UNREACHABLE as error:
            log.error("investigation claim not given back: the database failed; a retry takes it over when its lease ends",
                      key=trigger.key, lease_s=CLAIM_LEASE.total_seconds(), error=database_failure(error))
        raise
    INVESTIGATIONS_TRIGGERED.labels(outcome="started").inc()
    return True


def forget_old_investigations(url: str, now: datetime | None = None) -> int:
    """Drop auto-investigation claims made over :data:`INVESTIGATION_MEMORY` ago; returns how many."""
    return forget([AUTO_INVESTIGATIONS, BUSY_NOTICES], (now or utcnow()) - INVESTIGATION_MEMORY, url)


def rerun(runtime: BotRuntime, client: WebClient, channel: str, user: str, incident_id: str | None = None) -> Rerun:
    """Rank again with the channel's messages so far and edit the earlier answer, for ``user``.

    ``incident_id`` is the button's; ``@culprit again`` names none and gets the
    channel's latest investigation. Either way the re-run counts against
    ``user``'s :data:`RERUNS_PER_MINUTE` for that incident (per replica): a
    mention must not be a way round the button's limit. Past it, ``user`` is
    told so privately and the request is counted as dropped for rate.
    """
    with session_scope(runtime.database_url) as session:
        query = select(Incident).where(Incident.channel == channel, Incident.id.like("auto-%"))
        if incident_id is not None:
            query = query.where(Incident.id == incident_id)
        incident = session.scalars(query.order_by(Incident.created_at.desc())).first()
        if incident is None or not incident.thread_ts:
            return Rerun.NOTHING
        first = first_description(incident.text)
        base = IncidentQuery(text=first, title=incident.title, started_at=incident.started_at,
                             service=incident.service, incident_id=incident.id)
        answer_ts = incident.thread_ts
    if not runtime.reruns.allow(f"{channel}/{base.incident_id}/{user}"):
        REQUESTS_DROPPED.labels(reason="rate").inc()
        log.info("re-run refused: rate limited", channel=channel, incident_id=base.incident_id, user=user)
        client.chat_postEphemeral(
            channel=channel, user=user,
            text=f"You've re-run this investigation {RERUNS_PER_MINUTE} times in the last minute; "
            "give it a moment to rank again, then re-run it if the channel has news.",
        )
        return Rerun.LIMITED
    said = channel_messages(client, channel)
    text = (first + SO_FAR + "\n".join(said))[:MAX_TEXT] if said else first
    query = IncidentQuery(text=text, title=base.title, started_at=base.started_at, service=base.service,
                          incident_id=base.incident_id)
    _answer(runtime, client, channel, query, replace_ts=answer_ts, placeholder=None)
    return Rerun.STARTED


def channel_messages(client: WebClient, channel: str) -> list[str]:
    """People's messages in the channel, oldest first (bots, joins and edits left out)."""
    try:
        history = client.conversations_history(channel=channel, limit=MAX_MESSAGES)
    except SlackApiError as error:
        log.warning("could not read the channel", channel=channel, error=error.response.get("error"))
        return []
    messages = [m for m in history.get("messages") or [] if m.get("text") and not m.get("bot_id") and not m.get("subtype")]
    return [strip_mentions(str(m["text"]))[:500] for m in reversed(messages)]


def _answer(
    runtime: BotRuntime, client: WebClient, channel: str, query: IncidentQuery, *, replace_ts: str | None,
    placeholder: str | None, posted: Callable[[], None] | None = None, tell_busy: Callable[[], bool] = lambda: True,
) -> bool:
    """Queue the investigation's answer (after posting ``placeholder``, if any, then calling ``posted``);
    False when the queue is full, the channel then told so if ``tell_busy()`` says it was not told yet."""
    position = runtime.replies.reserve()
    if position is None:
        if tell_busy():
            client.chat_postMessage(channel=channel, text=runtime.replies.busy_text())
        return False
    try:
        if placeholder is not None:
            replace_ts = str(client.chat_postMessage(channel=channel, text=placeholder + runtime.replies.queued_text(position))["ts"])
    except Exception:
        runtime.replies.cancel()
        raise
    if posted is not None:
        posted()

    def deliver() -> None:
        with structlog.contextvars.bound_contextvars(incident_id=query.incident_id, channel=channel, kind="auto"):
            message = prepare(runtime, "auto", rca_reply(runtime.investigate, query))
            message = SlackMessage(text=message.text, blocks=[*message.blocks[:49], rerun_block(str(query.incident_id))])
            post(client, message, channel=channel, replace_ts=replace_ts)
            open_for_votes(runtime.database_url, message, query.incident_id, channel, replace_ts)
            log.info("investigation posted", rerun=placeholder is None)

    runtime.replies.start(deliver, tell_restarting(client, channel=channel, replace_ts=replace_ts))
    return True
