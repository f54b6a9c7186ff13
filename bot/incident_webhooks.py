"""``POST /webhooks/pagerduty`` and ``POST /incidents``: other tools start an investigation.

PagerDuty v3 webhooks sign the raw body with HMAC-SHA256 under the
subscription's secret (``X-PagerDuty-Signature: v1=<hex>``, several during a
secret rotation); only ``incident.triggered`` starts anything. Other tools sign
``v1:<timestamp>:<body>`` the way Slack does (``X-Culprit-Request-Timestamp``,
``X-Culprit-Signature: v1=<hex>``) under ``CULPRIT_INCIDENTS_WEBHOOK_SECRET``.
The signature is checked on the capped raw body before anything parses it. A
replayed delivery starts nothing: PagerDuty's must be recent and name an
incident not yet investigated; a generic one must be signed within five minutes
and name an incident id not yet investigated (a claim, shared by replicas).

A database that fails while the service catalog is read or the incident is
claimed is the sender's cue to retry, not a bug: the answer is 503 with
``Retry-After`` and a reason that leaves out the driver's message (it names the
database's host, user and name; the log keeps it), and no claim is left behind,
so the retry starts the investigation. A delivery whose incident another
delivery has claimed but not yet posted about is answered the same way (503,
``Retry-After``): that one may still fail, and only a posted investigation is
a duplicate (200).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from anyio import CapacityLimiter, to_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from slack_bolt import App
from slack_sdk.errors import SlackClientError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.app import runtime_of
from bot.auto_investigations import RepliesFull, StillStarting, Trigger, service_named, start_investigation
from bot.http_checks import (
    RETRY_AFTER_S, BodyTooLarge, NestedTooDeep, json_body, read_body, refuse_deep_json, retry_later, same_secret,
    unix_seconds,
)
from bot.incident_request import catalog_services
from bot.replies import error_code
from knowledge.config import Settings
from knowledge.db import UNREACHABLE, database_failure, unstorable, utcnow
from knowledge.errors import InputError
from knowledge.times import IN_THE_FUTURE, in_the_future, utc_moment

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 256 * 1024
SIGNATURE_AGE_S = 5 * 60
PAGERDUTY_MAX_AGE = timedelta(hours=1)  # PagerDuty retries a failed delivery for a while, not for days
# Deliveries reading or writing the database at once per server, across both routes. The rest wait without
# a worker thread: holding one each, a burst on a slow or hung database took every thread Slack's requests
# are acked from.
DATABASE_THREADS = 8
Handler = Callable[[Request], Awaitable[JSONResponse]]


class IncomingIncident(BaseModel):
    """The body of ``POST /incidents``."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9._:\-]+$")
    title: str = Field(min_length=1, max_length=300)
    text: str = Field("", max_length=4000)
    service: str | None = Field(None, max_length=200)
    started_at: str | None = Field(None, max_length=40)
    channel: str | None = Field(None, max_length=100, pattern=r"^[A-Z0-9]+$")

    @field_validator("title", "text", "service")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        """A NUL would fail the investigation on PostgreSQL after the delivery was answered 202."""
        if value is not None and (why := unstorable(value)):
            raise ValueError(why)
        return value


def _hmac_hex(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def pagerduty_signed(body: bytes, header: str, secret: str) -> bool:
    """Any ``v1=`` signature in the header matches the body (PagerDuty sends several while rotating secrets)."""
    expected = _hmac_hex(secret, body)
    given = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    return any(same_secret(expected, signature) for signature in given)


def culprit_signed(body: bytes, timestamp: str, header: str, secret: str, now: float | None = None) -> bool:
    """``v1=HMAC(secret, "v1:<timestamp>:<body>")`` made less than five minutes ago."""
    seconds = unix_seconds(timestamp)
    if seconds is None or abs((now or time.time()) - seconds) > SIGNATURE_AGE_S:
        return False
    expected = "v1=" + _hmac_hex(secret, b"v1:" + timestamp.encode() + b":" + body)
    return same_secret(expected, header)


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def _database_failed(error: Exception, source: str, step: str) -> JSONResponse:
    """503 with ``Retry-After`` for a delivery the database failed on; the error itself goes to the log only."""
    log.warning("incident delivery not taken: the database failed", source=source, step=step, error=database_failure(error))
    return retry_later(f"culprit could not reach its database; send it again in {RETRY_AFTER_S} seconds")


async def _start(bolt_app: App, trigger: Trigger, database_threads: CapacityLimiter) -> JSONResponse:
    """202 when the investigation starts, 200 for a duplicate; 503 (queue full, the database failed, or
    another delivery is starting it) or 502 (Slack refused the first post) when it cannot, its claim given
    back (or, if the database failed to, leased) so the sender's retry starts it."""
    try:
        started = await to_thread.run_sync(
            start_investigation, runtime_of(bolt_app), bolt_app.client, trigger, limiter=database_threads
        )
    except UNREACHABLE as error:
        return _database_failed(error, trigger.source, "claim")
    except StillStarting:
        return retry_later(f"this incident's investigation is being started; send it again in {RETRY_AFTER_S} seconds")
    except RepliesFull:
        return retry_later(f"culprit is busy with other investigations; send it again in {RETRY_AFTER_S} seconds")
    except (SlackClientError, OSError) as error:
        log.warning("investigation not started: Slack refused its first post", key=trigger.key, error=error_code(error))
        return _error(502, "Slack refused the investigation's first post; send it again")
    body = {"started": started, "incident": trigger.incident_id, **({} if started else {"duplicate": True})}
    return JSONResponse(body, status_code=202 if started else 200)


def pagerduty_endpoint(bolt_app: App, settings: Settings, database_threads: CapacityLimiter) -> Handler:
    async def pagerduty(request: Request) -> JSONResponse:
        """202 when an investigation starts, 200 for a duplicate or an event that starts none, 401 unsigned,
        503 with ``Retry-After`` when the database failed."""
        secret = settings.pagerduty_webhook_secret.get_secret_value() if settings.pagerduty_webhook_secret else ""
        if not secret or not settings.incident_post_channel:
            return _error(503, "PagerDuty intake is off: set CULPRIT_PAGERDUTY_WEBHOOK_SECRET and CULPRIT_INCIDENT_POST_CHANNEL")
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return _error(413, f"body over {MAX_BODY_BYTES} bytes")
        if not pagerduty_signed(body, request.headers.get("x-pagerduty-signature", ""), secret):
            log.warning("unsigned pagerduty delivery refused")
            return _error(401, "invalid signature")
        try:
            # The trigger names a catalog service, read from the database: in a worker thread.
            trigger = await to_thread.run_sync(_pagerduty_trigger, json_body(body), settings, limiter=database_threads)
        except UNREACHABLE as error:
            return _database_failed(error, "pagerduty", "service catalog")
        except (ValueError, InputError, KeyError, TypeError, AttributeError) as error:
            return _error(400, f"not a PagerDuty v3 incident event ({str(error)[:200]})")
        if trigger is None:
            return JSONResponse({"started": False, "ignored": "not incident.triggered"})
        return await _start(bolt_app, trigger, database_threads)

    return pagerduty


def _pagerduty_trigger(payload: dict[str, Any], settings: Settings) -> Trigger | None:
    event = payload["event"]
    if event.get("event_type") != "incident.triggered":
        return None
    occurred = _iso_time(str(event["occurred_at"]), "occurred_at")
    if occurred < utcnow() - PAGERDUTY_MAX_AGE:
        raise InputError(f"occurred_at {occurred.isoformat()} is not recent: a replayed delivery starts nothing")
    data = event["data"]
    incident_id = _pagerduty_text(data.get("id"), "data.id")[:100]
    if not incident_id:
        raise InputError("data.id is missing")
    title = _pagerduty_text(data.get("title"), "data.title")[:300]
    service = _pagerduty_text((data.get("service") or {}).get("summary"), "data.service.summary")[:200]
    return Trigger(
        key=f"pagerduty:{incident_id}",
        channel=str(settings.incident_post_channel),
        title=title or f"PagerDuty incident {incident_id}",
        text=f"{title}\nservice: {service}" if service else title,
        started_at=occurred,
        service=service_named(service, catalog_services(settings.resolved_database_url)) if service else None,
        source="pagerduty",
    )


def _pagerduty_text(value: object, field: str) -> str:
    """A text field of a PagerDuty event ("" when absent); InputError naming it when it is not text, or is
    text no database stores: the claim or the investigation would fail on it after the delivery was taken."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{field} must be a string, not {type(value).__name__}")
    if why := unstorable(value):
        raise InputError(f"{field} {why}")
    return value


def incidents_endpoint(bolt_app: App, settings: Settings, database_threads: CapacityLimiter) -> Handler:
    async def incidents(request: Request) -> JSONResponse:
        """Start an investigation of ``{id, title[, text][, service][, started_at][, channel]}``."""
        secret = settings.incidents_webhook_secret.get_secret_value() if settings.incidents_webhook_secret else ""
        if not secret:
            return _error(503, "incident intake is off: set CULPRIT_INCIDENTS_WEBHOOK_SECRET")
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return _error(413, f"body over {MAX_BODY_BYTES} bytes")
        timestamp = request.headers.get("x-culprit-request-timestamp", "")
        if not culprit_signed(body, timestamp, request.headers.get("x-culprit-signature", ""), secret):
            log.warning("unsigned or stale incident delivery refused")
            return _error(401, "invalid or expired signature (sign v1:<timestamp>:<body>, within five minutes)")
        try:
            refuse_deep_json(body)
            incoming = IncomingIncident.model_validate_json(body)
            started_at = _started_at(incoming.started_at)
        except ValidationError as error:
            return _error(400, _refusal(error))
        except (NestedTooDeep, InputError) as error:
            return _error(400, str(error)[:500])
        channel = incoming.channel or settings.incident_post_channel
        if not channel:
            return _error(400, "name a channel, or set CULPRIT_INCIDENT_POST_CHANNEL on the bot")
        try:
            services = await to_thread.run_sync(catalog_services, settings.resolved_database_url, limiter=database_threads)
        except UNREACHABLE as error:
            return _database_failed(error, "webhook", "service catalog")
        trigger = Trigger(
            key=f"incident:{incoming.id}", channel=channel, title=incoming.title, text=incoming.text or incoming.title,
            started_at=started_at,
            service=_service(incoming, services), source="webhook",
        )
        return await _start(bolt_app, trigger, database_threads)

    return incidents


def _service(incoming: IncomingIncident, services: list[str]) -> str | None:
    """The service named, as ``/rca`` keeps it: when the catalog has it or there is no catalog to check it
    against; else (or when none is named) the catalog service the title names, if any."""
    if incoming.service and (incoming.service in services or not services):
        return incoming.service
    return service_named(incoming.title, services)


def _refusal(error: ValidationError) -> str:
    """Each wrong field and what is wrong with it, never the value sent: pydantic's own message quotes
    the sender's input (which may hold personal data or a secret) back into the answer and any log of it."""
    details = error.errors(include_input=False, include_url=False, include_context=False)
    return "; ".join(f"{'.'.join(map(str, detail['loc'])) or 'body'}: {detail['msg'].removeprefix('Value error, ')} ({detail['type']})"
                     for detail in details)[:500]  # fmt: skip


def _started_at(value: str | None) -> datetime:
    """When the incident started: now when not given, else ``value`` read as :func:`_iso_time` reads it."""
    return _iso_time(value, "started_at") if value else utcnow()


def _iso_time(value: str, field: str) -> datetime:
    """``value`` in UTC, never later than now; InputError naming ``field`` for a time culprit cannot investigate:
    not ISO 8601, without a zone (as ``POST /changes`` refuses one: read as UTC, a local time is hours off), before
    1970 (its change window would overflow), past what UTC holds, or further ahead than ``CLOCK_SKEW`` (moved to
    now, a wrong zone or clock would go unnoticed and the wrong window be searched)."""
    try:
        moment = utc_moment(value, zone_required=True)
    except ValueError as error:
        raise InputError(f"{field} {value[:40]!r} {error}: give an ISO 8601 time since 1970 with a time zone, "
                         "e.g. 2024-05-01T09:40:00Z") from None  # fmt: skip
    if in_the_future(moment):
        raise InputError(f"{field} {value[:40]!r} {IN_THE_FUTURE}: give the time the incident started, with its time zone")
    return min(moment, utcnow())


def incident_routes(bolt_app: App, settings: Settings) -> list[Route]:
    """The two routes ``bot.server`` adds, sharing ``DATABASE_THREADS`` worker threads for the database."""
    database_threads = CapacityLimiter(DATABASE_THREADS)
    return [
        Route("/webhooks/pagerduty", pagerduty_endpoint(bolt_app, settings, database_threads), methods=["POST"]),
        Route("/incidents", incidents_endpoint(bolt_app, settings, database_threads), methods=["POST"]),
    ]
