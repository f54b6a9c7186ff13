"""The HTTP face of a bot replica: Slack events, bug-report intake, health and metrics.

Bolt's ``dispatch`` is synchronous (it verifies, runs middleware and waits for
the listener's ack), so each Slack request runs in Starlette's thread pool
instead of on the event loop: one slow ack must not hold up the others.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.metrics import REQUEST_SECONDS
from bot.reports_http import reports_endpoint
from knowledge.config import Settings
from knowledge.db import get_engine


class RequestTiming:
    """Observe every request's latency by path and status (pure ASGI, so streaming stays intact)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            REQUEST_SECONDS.labels(path=scope["path"], status=str(status["code"])).observe(
                time.perf_counter() - started
            )


def create_server(bolt_app: App, settings: Settings) -> Starlette:
    """``/slack/events``, ``POST /reports`` (bug-report intake), ``/healthz`` and ``/metrics``."""

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        bolt_response = await run_in_threadpool(bolt_app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)

    async def healthz(_: Request) -> Response:
        try:
            await run_in_threadpool(_ping_database, settings.resolved_database_url)
        except Exception as error:  # the load balancer only needs to know it is not ready
            return JSONResponse({"status": "degraded", "database": str(error)[:200]}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/reports", reports_endpoint(settings), methods=["POST"]),
    ]
    @asynccontextmanager
    async def finish_acked_work(_: Starlette) -> AsyncIterator[None]:
        """On SIGTERM (a rolling restart), answer what was already acked before the process exits.

        uvicorn re-raises the signal once it has stopped, which ends the process
        without waiting for Bolt's listener threads: wait for them here.
        """
        yield
        await run_in_threadpool(bolt_app.listener_runner.listener_executor.shutdown, True)

    server = Starlette(routes=routes, lifespan=finish_acked_work)
    server.add_middleware(RequestTiming)
    return server


def _ping_database(url: str) -> None:
    with get_engine(url).connect() as connection:
        connection.execute(text("SELECT 1"))
