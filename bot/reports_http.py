"""``POST /reports``: bug reports from other systems, answered only once they are committed.

Accepts a JSON list of ``{id, text[, category][, created_at]}`` or
``{"reports": [...]}`` with ``Authorization: Bearer <CULPRIT_REPORTS_TOKEN>``.
The request redacts and inserts the batch unclassified in one short
transaction (in the thread pool, so the event loop keeps serving Slack) and
answers after the commit; classifying and counting happen afterwards, in the
background (:mod:`bot.report_intake`), so a burst is stored at the speed of
the database, not of the model.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.report_intake import take_in
from knowledge.config import Settings
from knowledge.db import DatabaseUnavailable
from tools.reports.intake import IncomingReport, IntakeResult, report_from_mapping

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_REPORTS = 5000
# Batches written at once per process: plenty for two cores and one database, and within the engine's
# pool, so a burst does not open (and then close) an overflow connection per waiting request.
CONCURRENT_WRITES = 8
_writers = threading.BoundedSemaphore(CONCURRENT_WRITES)


def reports_endpoint(settings: Settings) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The ``POST /reports`` handler for the bot configured by ``settings``."""

    async def post_reports(request: Request) -> JSONResponse:
        """Store a batch of reports; 200 with counts after the commit, else 401/400/413/503 with the reason.

        The answer is ``{"received", "stored", "duplicates"}``: the reports are
        committed, and classified moments later.
        """
        expected = settings.reports_token
        given = request.headers.get("authorization", "")
        if not expected:
            return _error(503, "report intake is off: set CULPRIT_REPORTS_TOKEN on the bot")
        if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), expected.encode()):
            return _error(401, "missing or wrong bearer token (Authorization: Bearer <CULPRIT_REPORTS_TOKEN>)")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, f"body over {MAX_BODY_BYTES} bytes: send smaller batches")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"body over {MAX_BODY_BYTES} bytes: send smaller batches")
        try:
            reports = _parse(body)
        except ValueError as error:
            return _error(400, str(error))
        if len(reports) > MAX_REPORTS:
            return _error(413, f"{len(reports)} reports in one request; send at most {MAX_REPORTS}")
        try:
            result = await run_in_threadpool(_store, reports, settings)
        except (DatabaseUnavailable, OperationalError, InterfaceError) as error:
            log.warning("reports not stored: database unreachable", error=str(error)[:200], reports=len(reports))
            return _error(503, "the database is unreachable; send the same batch again (reports are stored once by id)")
        return JSONResponse({"received": result.received, "stored": result.stored, "duplicates": result.duplicates})

    return post_reports


def _store(reports: list[IncomingReport], settings: Settings) -> IntakeResult:
    with _writers:
        return take_in(reports, "http", settings)


def _parse(body: bytes) -> list[IncomingReport]:
    try:
        payload: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"body is not JSON ({error})") from error
    if isinstance(payload, dict):
        payload = payload.get("reports")
    if not isinstance(payload, list):
        raise ValueError('expected a JSON list of reports or {"reports": [...]}')
    reports = []
    for index, item in enumerate(payload):
        if not isinstance(item, dict):
            raise ValueError(f"report {index}: expected an object with 'id' and 'text'")
        try:
            reports.append(report_from_mapping(item))
        except ValueError as error:
            raise ValueError(f"report {index}: {error}") from error
    return reports


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
