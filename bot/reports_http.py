"""``POST /reports``: bug reports from other systems, answered only once they are committed.

Accepts a JSON list of ``{id, text[, category][, created_at]}`` or
``{"reports": [...]}`` with ``Authorization: Bearer <CULPRIT_REPORTS_TOKEN>``.
The token is checked before the body is read, and the body is read only up
to its cap. The request redacts and inserts the batch unclassified in one short
transaction (in the thread pool, so the event loop keeps serving Slack) and
answers after the commit; classifying and counting happen afterwards, in the
background (:mod:`bot.report_intake`), so a burst is stored at the speed of
the database, not of the model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from anyio import CapacityLimiter, to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.http_checks import BodyTooLarge, bearer_matches, json_body, read_body, retry_later
from bot.report_intake import take_in
from knowledge.config import Settings
from knowledge.db import UNREACHABLE, database_failure
from tools.reports.intake import IncomingReport, report_from_mapping

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_REPORTS = 5000
# Batches written at once per server: plenty for two cores and one database, and within the engine's
# pool, so a burst does not open (and then close) an overflow connection per waiting request. The rest
# wait without a worker thread: holding one each, a burst on a slow database took every thread of the
# pool that Slack's requests are acked from.
CONCURRENT_WRITES = 8
# Bodies parsed at once per server: one per core. Parsing a 5 MiB batch holds the GIL for a while, so more
# threads would not parse faster; the rest wait without a thread, for the same reason as the writes.
PARSE_THREADS = 2


def reports_endpoint(settings: Settings) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The ``POST /reports`` handler for the bot configured by ``settings``."""
    writers, parsers = CapacityLimiter(CONCURRENT_WRITES), CapacityLimiter(PARSE_THREADS)

    async def post_reports(request: Request) -> JSONResponse:
        """Store a batch of reports; 200 (or 207) with counts after the commit, else 401/400/413/503 with the reason.

        The answer is ``{"received", "stored", "duplicates"}``: the good reports
        are committed, and classified moments later. A report that cannot be
        stored is refused on its own: the answer is then 207 and adds
        ``rejected``, each with its index, id and reason; only when every report
        is refused is the answer 400. A sender that retries on 5xx never
        retries a bad report.
        """
        expected = settings.reports_token.get_secret_value() if settings.reports_token else None
        if not expected:
            return _error(503, "report intake is off: set CULPRIT_REPORTS_TOKEN on the bot")
        if not bearer_matches(request, expected):
            return _error(401, "missing or wrong bearer token (Authorization: Bearer <CULPRIT_REPORTS_TOKEN>)")
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return _error(413, f"body over {MAX_BODY_BYTES} bytes: send smaller batches")
        try:
            batch = await to_thread.run_sync(_parse, body, limiter=parsers)
        except ValueError as error:
            return _error(400, str(error))
        if batch.received > MAX_REPORTS:
            return _error(413, f"{batch.received} reports in one request; send at most {MAX_REPORTS}")
        rejected = [asdict(item) for item in batch.rejected]
        if rejected and not batch.reports:
            reasons = "; ".join(f"report {item.index}: {item.reason}" for item in batch.rejected[:3])
            return JSONResponse({"error": reasons, "rejected": rejected}, status_code=400)
        try:
            result = await to_thread.run_sync(take_in, batch.reports, "http", settings, limiter=writers)
        except UNREACHABLE as error:
            log.warning("reports not stored: database unreachable", error=database_failure(error), reports=batch.received)
            return retry_later("the database is unreachable; send the same batch again (reports are stored once by id)")
        counts = {"received": batch.received, "stored": result.stored, "duplicates": result.duplicates}
        if rejected:
            return JSONResponse({**counts, "rejected": rejected}, status_code=207)
        return JSONResponse(counts)

    return post_reports


@dataclass(frozen=True)
class RejectedReport:
    """One report of a batch that was refused, and why; the rest of its batch is stored."""

    index: int
    id: str | None
    reason: str


@dataclass
class ParsedBatch:
    received: int
    reports: list[IncomingReport] = field(default_factory=list)
    rejected: list[RejectedReport] = field(default_factory=list)


def _parse(body: bytes) -> ParsedBatch:
    """The batch's reports, each valid one kept and each bad one listed; ValueError when the body is no batch."""
    payload: Any = json_body(body)
    if isinstance(payload, dict):
        payload = payload.get("reports")
    if not isinstance(payload, list):
        raise ValueError('expected a JSON list of reports or {"reports": [...]}')
    batch = ParsedBatch(received=len(payload))
    for index, item in enumerate(payload):
        if not isinstance(item, dict):
            batch.rejected.append(RejectedReport(index, None, "expected an object with 'id' and 'text'"))
            continue
        try:
            batch.reports.append(report_from_mapping(item))
        except ValueError as error:
            batch.rejected.append(RejectedReport(index, _echoed_id(item), str(error)))
    return batch


def _echoed_id(item: dict[str, Any]) -> str | None:
    """The id a sender gave, printable in the answer even when it holds what made the report bad."""
    identifier = item.get("id")
    if identifier in (None, ""):
        return None
    return str(identifier).encode("utf-8", "backslashreplace").decode("utf-8")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
