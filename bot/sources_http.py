"""``POST /webhooks/github``, ``POST /webhooks/gitlab`` and ``POST /changes``: changes as they land.

Each request is checked before its body is trusted: the GitLab token
(``X-Gitlab-Token``) or the bearer token before the body is read at all; the
GitHub HMAC (``X-Hub-Signature-256``) once the body is read up to its cap. Only
then is the JSON parsed and each commit or event checked, in a worker thread
(at most ``PARSE_THREADS`` bodies at once, the rest waiting without one, as
deliveries wait for one of ``STORE_THREADS`` to store them): a
5 MiB body takes long enough that on the event loop it would hold up every
other request, Slack's and ``/healthz`` included. A webhook delivery is acted
on once across replicas: its delivery id is claimed in the database
(:mod:`knowledge.claims`); one that could not be stored is given back at once,
so its redelivery is acted on, and one whose holder died (or could not give it
back) is taken over after a short lease. Only a stored delivery is a duplicate:
a redelivery of one claimed but not stored is told to come back (503). The
pushed commits are stored at once (without line counts); the next poll
completes them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import structlog
from anyio import CapacityLimiter, to_thread
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.http_checks import BodyTooLarge, bearer_matches, json_body, read_body, retry_later, same_secret
from bot.metrics import CHANGES_INGESTED, WEBHOOK_DELIVERIES
from knowledge.claims import claim, finish, is_done, release
from knowledge.config import Settings
from knowledge.db import UNREACHABLE, database_failure
from knowledge.sources.mirrors import tracked_mirrors
from knowledge.sources.polling import WEBHOOK_DELIVERIES as DELIVERIES
from knowledge.sources.events import EventBatch, RejectedEvent, check_events, store_events
from knowledge.sources.webhooks import WebhookChanges, github_changes, gitlab_changes, store_webhook_changes

log = structlog.get_logger(__name__)

MAX_WEBHOOK_BYTES = 5 * 1024 * 1024
MAX_CHANGES_BYTES = 5 * 1024 * 1024
MAX_EVENTS = 5000
DELIVERY_LEASE = timedelta(minutes=2)
# Bodies parsed at once per server, across the three routes: one per core. Parsing holds the GIL, so more
# threads would not parse faster, only hold more multi-megabyte payloads in memory at once.
PARSE_THREADS = 2
# Deliveries stored at once per server, across the three routes. The rest wait without a worker thread:
# holding one each, a burst on a slow or hung database took every thread Slack's requests are acked from.
STORE_THREADS = 8
Handler = Callable[[Request], Awaitable[JSONResponse]]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def github_signed(body: bytes, header: str, secret: str) -> bool:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``, compared in constant time."""
    return same_secret("sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(), header)


@dataclass(frozen=True)
class WorkerThreads:
    """What the three routes share: ``PARSE_THREADS`` for bodies, ``STORE_THREADS`` for the database."""

    parse: CapacityLimiter
    store: CapacityLimiter


class StillStoring(Exception):
    """Another request holds the delivery's claim and has not stored it: that one may still fail (its claim then
    given back, or taken over once ``DELIVERY_LEASE`` runs out), so this redelivery is no duplicate yet."""


class TooManyEvents(ValueError):
    """More events in one ``POST /changes`` than ``MAX_EVENTS``: answer 413 without checking them."""


def _json_object(body: bytes) -> dict[str, Any]:
    payload = json_body(body)
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    return payload


def _take_delivery(source: str, delivery: str, parse: Callable[[], WebhookChanges], url: str) -> dict[str, Any]:
    """Act on one delivery unless another replica did: parse, store, then mark the delivery done."""
    key = f"{source}:{delivery[:150]}"
    if delivery and not claim(DELIVERIES, key, url, lease=DELIVERY_LEASE):
        if not is_done(DELIVERIES, key, url):
            WEBHOOK_DELIVERIES.labels(source=source, outcome="still_storing").inc()
            raise StillStoring(key)
        WEBHOOK_DELIVERIES.labels(source=source, outcome="duplicate").inc()
        return {"duplicate": True}
    try:
        changes = parse()
        new, present = store_webhook_changes(changes, url)
    except Exception:
        if delivery:  # give the delivery back, so its redelivery is acted on, not dropped as a duplicate
            release(DELIVERIES, key, url)
        raise
    if delivery:
        finish(DELIVERIES, key, url)
    CHANGES_INGESTED.labels(way="webhook").inc(new)
    WEBHOOK_DELIVERIES.labels(source=source, outcome="ignored" if changes.ignored else "stored").inc()
    if changes.ignored:
        return {"ignored": changes.ignored}
    log.info("webhook stored changes", source=source, repo=changes.repo.name if changes.repo else None, new=new,
             refused=len(changes.refused))  # fmt: skip
    answer: dict[str, Any] = {"repo": changes.repo.name if changes.repo else None, "stored": new, "already_present": present}
    return answer | ({"refused": list(changes.refused)} if changes.refused else {})


async def _deliver(source: str, delivery: str, body: bytes, parse: Callable[[dict[str, Any]], WebhookChanges],
                   settings: Settings, threads: WorkerThreads) -> JSONResponse:  # fmt: skip
    try:
        payload = await to_thread.run_sync(_json_object, body, limiter=threads.parse)
    except ValueError as error:
        return _error(400, str(error))
    try:
        answer = await to_thread.run_sync(
            _take_delivery, source, delivery, lambda: parse(payload), settings.resolved_database_url, limiter=threads.store
        )
    except UNREACHABLE as error:
        log.warning("webhook not stored: database unreachable", source=source, error=database_failure(error))
        return retry_later("the database is unreachable; redeliver (each delivery is acted on once)")
    except StillStoring:
        return retry_later("this delivery is being stored and may yet fail; redeliver it in a minute")
    return JSONResponse(answer)


async def _trusted_body(
    request: Request, secret: SecretStr | None, variable: str, limit: int, *,
    holds_token: Callable[[str], bool] | None = None, signs_body: Callable[[bytes, str], bool] | None = None,
) -> bytes | JSONResponse:  # fmt: skip
    """The body once the sender is trusted, or the error to answer: 503 while ``variable`` is unset,
    401 when ``holds_token(secret)`` fails (a token in the headers: checked before the body is read, so
    a guessed token costs no upload), 413 over the cap, 401 when ``signs_body(body, secret)`` fails."""
    expected = secret.get_secret_value() if secret else ""
    if not expected:
        return _error(503, f"{request.url.path} is off: set {variable} on the bot")
    refused = _error(401, f"missing or wrong credentials: {request.url.path} needs {variable}")
    if holds_token is not None and not holds_token(expected):
        return refused
    try:
        body = await read_body(request, limit)
    except BodyTooLarge:
        return _error(413, f"body over {limit} bytes: send smaller batches")
    if signs_body is not None and not signs_body(body, expected):
        return refused
    return body


def github_endpoint(settings: Settings, threads: WorkerThreads) -> Handler:
    """Pushes to a tracked branch and pull requests merged into it, signed with CULPRIT_GITHUB_WEBHOOK_SECRET."""

    async def github_webhook(request: Request) -> JSONResponse:
        signature = request.headers.get("x-hub-signature-256", "")
        body = await _trusted_body(
            request, settings.github_webhook_secret, "CULPRIT_GITHUB_WEBHOOK_SECRET (X-Hub-Signature-256)",
            MAX_WEBHOOK_BYTES, signs_body=lambda raw, secret: github_signed(raw, signature, secret),
        )  # fmt: skip
        if isinstance(body, JSONResponse):
            return body
        event = request.headers.get("x-github-event", "")
        return await _deliver(
            "github", request.headers.get("x-github-delivery", ""), body,
            lambda payload: github_changes(event, payload, settings.repos), settings, threads,
        )  # fmt: skip

    return github_webhook


def gitlab_endpoint(settings: Settings, threads: WorkerThreads) -> Handler:
    """Push and merge request hooks whose X-Gitlab-Token is CULPRIT_GITLAB_WEBHOOK_TOKEN."""

    async def gitlab_webhook(request: Request) -> JSONResponse:
        given = request.headers.get("x-gitlab-token", "")
        body = await _trusted_body(
            request, settings.gitlab_webhook_token, "CULPRIT_GITLAB_WEBHOOK_TOKEN (X-Gitlab-Token)",
            MAX_WEBHOOK_BYTES, holds_token=lambda token: same_secret(token, given),
        )  # fmt: skip
        if isinstance(body, JSONResponse):
            return body
        delivery = request.headers.get("x-gitlab-event-uuid") or request.headers.get("idempotency-key", "")
        return await _deliver(
            "gitlab", delivery, body, lambda payload: gitlab_changes(payload, settings.repos), settings, threads
        )

    return gitlab_webhook


def changes_endpoint(settings: Settings, threads: WorkerThreads) -> Handler:
    """Change events (deploys, flag flips, config and infrastructure changes) with a CULPRIT_CHANGES_TOKEN bearer."""

    async def post_changes(request: Request) -> JSONResponse:
        """200 with counts, 207 when some events were refused (each with its index, id and reason), 400 when all were;
        a deploy's listed commits culprit has not stored are named in ``unknown_commits``."""
        body = await _trusted_body(
            request, settings.changes_token, "CULPRIT_CHANGES_TOKEN (Authorization: Bearer <token>)",
            MAX_CHANGES_BYTES, holds_token=lambda token: bearer_matches(request, token),
        )  # fmt: skip
        if isinstance(body, JSONResponse):
            return body
        try:
            batch = await to_thread.run_sync(_checked_events, body, limiter=threads.parse)
        except TooManyEvents as error:
            return _error(413, str(error))
        except ValueError as error:
            return _error(400, str(error))
        if batch.rejected and not batch.events:
            return _all_refused(batch.rejected)
        try:
            mirrors = tracked_mirrors(settings.repos, settings.mirrors_dir)
            stored = await to_thread.run_sync(store_events, batch, settings.resolved_database_url, mirrors, limiter=threads.store)
        except UNREACHABLE:
            return retry_later("the database is unreachable; send the same batch again (events are stored once by id)")
        if stored.rejected and not stored.new and not stored.already_present:
            return _all_refused(stored.rejected)
        CHANGES_INGESTED.labels(way="events").inc(stored.new)
        rejected = [asdict(item) for item in stored.rejected]
        counts = {"received": batch.received, "stored": stored.new, "already_present": stored.already_present}
        unknown = [asdict(item) for item in stored.unknown_commits]
        answer = counts | ({"unknown_commits": unknown} if unknown else {}) | ({"rejected": rejected} if rejected else {})
        return JSONResponse(answer, status_code=207 if rejected else 200)

    return post_changes


def _all_refused(refused: list[RejectedEvent]) -> JSONResponse:
    """400 naming the first reason, with every refused event (index, id, reason)."""
    rejected = [asdict(item) for item in refused]
    return JSONResponse({"error": rejected[0]["reason"], "rejected": rejected}, status_code=400)


def _checked_events(body: bytes) -> EventBatch:
    """The body's events, each checked on its own; ValueError when the body is no batch of events,
    :class:`TooManyEvents` past ``MAX_EVENTS`` (counted before any is checked)."""
    items = events_in(json_body(body))
    if len(items) > MAX_EVENTS:
        raise TooManyEvents(f"{len(items)} events in one request; send at most {MAX_EVENTS}")
    return check_events(items)


def source_routes(settings: Settings) -> list[Route]:
    """The three routes ``bot.server`` adds, sharing ``PARSE_THREADS`` worker threads for their bodies and
    ``STORE_THREADS`` for the database."""
    threads = WorkerThreads(parse=CapacityLimiter(PARSE_THREADS), store=CapacityLimiter(STORE_THREADS))
    return [
        Route("/webhooks/github", github_endpoint(settings, threads), methods=["POST"]),
        Route("/webhooks/gitlab", gitlab_endpoint(settings, threads), methods=["POST"]),
        Route("/changes", changes_endpoint(settings, threads), methods=["POST"]),
    ]


def events_in(payload: Any) -> list[Any]:
    """The events of a body or file: a JSON list, or ``{"changes": [...]}``; ValueError otherwise."""
    if isinstance(payload, dict):
        payload = payload.get("changes")
    if not isinstance(payload, list):
        raise ValueError('expected a JSON list of change events or {"changes": [...]}')
    return payload
