"""The HTTP face of a bot replica: Slack events, bug-report intake, health and metrics.

In Socket Mode Slack's requests come over the WebSocket the replica opens, and
this server keeps only ``POST /reports``, ``/healthz`` and ``/metrics``: the
same process, the same report worker and the same shutdown.

Bolt's ``dispatch`` is synchronous (it verifies, runs middleware and waits for
the listener's ack), so each Slack request runs in Starlette's thread pool
instead of on the event loop: one slow ack must not hold up the others.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from sqlalchemy import text
from anyio import CapacityLimiter, to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.app import SHUTDOWN_GRACE_S, finish_acked_replies
from bot.http_checks import BodyTooLarge, bearer_matches, read_body, slack_refusal
from bot.incident_webhooks import incident_routes
from bot.metrics import REQUEST_SECONDS, SOURCE_LAG
from bot.report_intake import finish_intake
from bot.reports_http import reports_endpoint
from bot.sources_http import source_routes
from knowledge.config import Settings
from knowledge.db import database_failure, get_engine

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.base_handler import BaseSocketModeHandler

log = structlog.get_logger(__name__)

# Slack's own payloads stay far below this (a message is at most 40,000 characters and 50 blocks).
MAX_SLACK_BODY_BYTES = 1024 * 1024
UNKNOWN_PATH = "other"
# Bolt raises while it reads a body that is not JSON, nests past Python's recursion limit, or has a wrong
# type where Slack always sends an object or a string (e.g. an event's channel as a number).
UNREADABLE_SLACK_BODY = "not a Slack request: the body is not an event, command or interaction payload as Slack sends them"
# Slack's ssl_check (``ssl_check=1&token=...``) is a few dozen bytes; anything longer is no ssl_check.
MAX_SSL_CHECK_BYTES = 512
FORM = "application/x-www-form-urlencoded"
# Worker threads each of /healthz and /metrics may hold. Both wait on the database, and a hung one
# holds every thread they take: capped, they queue without a thread instead of starving the shared
# pool that /slack/events and the webhooks run in.
PROBE_THREADS = 4


class RequestTiming:
    """Observe every request's latency by route and status (pure ASGI, so streaming stays intact).

    The path label is the route's template, and ``other`` for any path no route
    serves: a scan of random URLs must not grow ``/metrics`` by one series each.
    """

    def __init__(self, app: ASGIApp, routes: list[Route]) -> None:
        self.app = app
        self.routes = routes

    def path_label(self, scope: Scope) -> str:
        return next((route.path for route in self.routes if route.matches(scope)[0] != Match.NONE), UNKNOWN_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def remember_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            REQUEST_SECONDS.labels(path=self.path_label(scope), status=str(status["code"])).observe(
                time.perf_counter() - started
            )


def create_server(
    bolt_app: App, settings: Settings, *, socket_mode: BaseSocketModeHandler | None = None
) -> Starlette:
    """``/slack/events``, ``POST /reports`` (bug-report intake), ``/healthz``, ``/metrics``, the change
    sources ``POST /webhooks/github``, ``POST /webhooks/gitlab`` and ``POST /changes`` (:mod:`bot.sources_http`),
    and the incident webhooks (:mod:`bot.incident_webhooks`).

    ``/slack/events`` reads at most ``MAX_SLACK_BODY_BYTES`` and checks Slack's
    signature before Bolt parses anything (but on Slack's unsigned ``ssl_check``, which Bolt answers 200),
    and answers 400 to a signed body Bolt cannot read; ``/metrics`` asks for
    ``CULPRIT_METRICS_TOKEN`` as a bearer token when it is set. ``/healthz``
    and ``/metrics`` read the database in at most ``PROBE_THREADS`` worker
    threads each, so a hung database stalls them and nothing else. With a
    ``socket_mode`` handler there is no ``/slack/events``: the handler connects
    when the server starts and disconnects first when it stops.
    """

    signing_secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    health_threads, metrics_threads = CapacityLimiter(PROBE_THREADS), CapacityLimiter(PROBE_THREADS)

    def dispatch(request: Request, body: bytes) -> Response:
        # BoltRequest parses the body as it is built: here, in the thread pool, and only once it is signed.
        try:
            bolt_request = to_bolt_request(request, body)
        except Exception as error:  # it only parses, so whatever it raises is the body's fault, not ours
            log.warning("signed slack request refused: not a payload Slack sends", error_type=type(error).__name__)
            return JSONResponse({"error": UNREADABLE_SLACK_BODY}, status_code=400)
        return to_starlette_response(bolt_app.dispatch(bolt_request))

    async def slack_events(request: Request) -> Response:
        try:
            body = await read_body(request, MAX_SLACK_BODY_BYTES)
        except BodyTooLarge:
            return JSONResponse({"error": f"body over {MAX_SLACK_BODY_BYTES} bytes"}, status_code=413)
        if _is_ssl_check(request, body):  # unsigned by Slack: Bolt's SslCheck answers it 200 and runs nothing else
            return await run_in_threadpool(dispatch, request, body)
        if refusal := slack_refusal(request, body, signing_secret):
            return JSONResponse({"error": refusal}, status_code=401)
        return await run_in_threadpool(dispatch, request, body)

    async def healthz(_: Request) -> Response:
        """``ok`` or ``failed`` per component, since anyone who can reach the load balancer's check can read
        the answer; the log names the error by its type alone (:func:`database_failure`)."""
        try:
            await to_thread.run_sync(_ping_database, settings.resolved_database_url, limiter=health_threads)
        except Exception as error:  # the load balancer only needs to know it is not ready
            log.warning("health check: the database did not answer", error=database_failure(error))
            return JSONResponse(
                {"status": "degraded", "database": "failed", "reason": "the database did not answer"}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    async def metrics(request: Request) -> Response:
        if metrics_token and not bearer_matches(request, metrics_token):
            return JSONResponse(
                {"error": "missing or wrong bearer token (Authorization: Bearer <CULPRIT_METRICS_TOKEN>)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        # Collecting reads the sources' lag from the database: off the event loop.
        return Response(await to_thread.run_sync(generate_latest, limiter=metrics_threads), media_type=CONTENT_TYPE_LATEST)

    routes = [
        *([] if socket_mode else [Route("/slack/events", slack_events, methods=["POST"])]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/reports", reports_endpoint(settings), methods=["POST"]),
        *source_routes(settings),  # /webhooks/github, /webhooks/gitlab, /changes
        *incident_routes(bolt_app, settings),  # /webhooks/pagerduty, /incidents
    ]
    SOURCE_LAG.database_url = settings.resolved_database_url
    @asynccontextmanager
    async def finish_acked_work(_: Starlette) -> AsyncIterator[None]:
        """On SIGTERM (a rolling restart), answer what was already acked before the process exits.

        uvicorn re-raises the signal once it has stopped, which ends the process
        without waiting for Bolt's listener threads or the replies they queued:
        wait for both here, and for the Slack reports handed over, for
        ``SHUTDOWN_GRACE_S`` in all. A Socket Mode connection is closed first,
        so Slack sends new requests to another connection while these finish.
        """
        if socket_mode is not None:
            await run_in_threadpool(socket_mode.connect)
        yield
        if socket_mode is not None:
            await run_in_threadpool(socket_mode.close)
        deadline = time.monotonic() + SHUTDOWN_GRACE_S  # for the replies and the Slack reports together
        await run_in_threadpool(finish_acked_replies, bolt_app, SHUTDOWN_GRACE_S)
        await run_in_threadpool(finish_intake, max(0.0, deadline - time.monotonic()))

    server = Starlette(routes=routes, lifespan=finish_acked_work)
    server.add_middleware(RequestTiming, routes=routes)
    return server


def _is_ssl_check(request: Request, body: bytes) -> bool:
    """Whether this is Slack's unsigned check of a slash command URL's certificate, read as Bolt reads it.

    Slack sends it without a signature, and Bolt's ``SslCheck`` middleware,
    which runs before Bolt's own signature check, answers it 200 and stops
    there. Only a short form body that Bolt parses as form fields with
    ``ssl_check=1`` counts, so nothing else skips the signature check here;
    and were Bolt to read one differently, its own signature check would refuse it.
    """
    if len(body) > MAX_SSL_CHECK_BYTES or request.headers.get("content-type", "").split(";")[0].strip() != FORM:
        return False
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return False
    return not text.startswith("{") and "payload" not in text and dict(parse_qsl(text)).get("ssl_check") == "1"


def _ping_database(url: str) -> None:
    with get_engine(url).connect() as connection:
        connection.execute(text("SELECT 1"))
