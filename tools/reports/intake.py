"""Store user reports: redact, hash, insert once, classify, and count per category per day.

Every path in redacts and hashes the same way (:func:`prepared_rows`): nothing
unredacted is stored or classified, and a report seen before (same id or same
original text) is skipped. The hash is taken of the original text, never the
redacted one: two reports that differ only in a card number or an e-mail
address redact to the same words but are different reports. Only the hash of
the original is kept. Two ways to classify:

- inline (:func:`ingest_reports`: files, ``culprit reports ingest`` and the
  demo): the category is set and the daily count bumped in the transaction
  that inserts;
- later (:func:`store_reports`: what the bot receives, ``POST /reports`` and
  the Slack feedback channel): the batch is inserted unclassified
  (``category`` NULL) and answered after one short commit, and
  :func:`classify_pending` classifies and counts those rows afterwards
  (:mod:`tools.reports.worker`). A burst of batches then waits neither for the
  model nor on the one ``category_daily`` row every batch of the day would
  update.

Either way a report is counted exactly once: in the transaction that sets its
category.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from knowledge.db import session_scope, unstorable, utcnow
from knowledge.errors import InputError
from knowledge.lines import capped_lines, describe_limit, json_line
from knowledge.reports import BugReport, CategoryDaily
from knowledge.times import EARLIEST, TimeOutOfRange, utc_moment
from tools.reports.classifiers import OTHER, Classifier, with_other
from tools.reports.redaction import redact

BATCH = 500
CLASSIFY_BATCH = 256
DEADLOCK_RETRIES = 3
# What the classifier reads of a report: MiniLM sees its first 128 tokens anyway, and TF-IDF over a 5 MiB
# report took 13 to 19 s of CPU holding the GIL (0.03 to 0.1 s over this prefix).
CLASSIFY_CHARS = 8192
# A report's own time must be one the trends can place: none predate 1970, and a sender's clock may run a little fast.
CLOCK_SKEW = timedelta(days=1)
# A line of a report file (one JSONL report, one CSV line): the most ``POST /reports`` takes in one body.
MAX_LINE_BYTES = 5 << 20
# csv refuses a field over 131,072 characters by default, so a long report in a CSV file was refused though its
# line was within the cap. Its limit is one setting for the whole process (the C module's): raised once here to
# the line cap, which capped_lines enforces before csv sees a line, and only ever raised, so a higher limit that
# other code in the process set stands.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
# The id and category columns' size: a longer one would fail its whole batch on PostgreSQL.
MAX_KEY_CHARS = 200


@dataclass(frozen=True)
class IncomingReport:
    """One report as received: ``label`` is a human's category, if the source has one."""

    id: str | None
    text: str
    created_at: datetime | None = None
    label: str | None = None


@dataclass
class IntakeResult:
    """What happened to a batch: how many were new, seen before, and sent to ``other``."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    other: int = 0
    by_category: Counter[str] = field(default_factory=Counter)

    def add(self, other: IntakeResult) -> None:
        self.received += other.received
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.other += other.other
        self.by_category.update(other.by_category)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "other": self.other,
            "by_category": dict(self.by_category.most_common()),
        }


def content_hash(original_text: str) -> str:
    """Same words, same hash: case and whitespace differences are the same report.

    Give it the text as received: after redaction distinct reports collide.
    A lone surrogate (which no database stores) still hashes.
    """
    normalised = " ".join(original_text.lower().split())
    return hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()


def parse_created_at(value: Any) -> datetime | None:
    """ISO 8601 text or unix seconds; naive times are taken as UTC."""
    if isinstance(value, bool):  # JSON true/false: as Python's int 1/0 it dated the report 1970-01-01
        raise TypeError(f"{value!r} is no time")
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return utc_moment(str(value))


def report_from_mapping(row: dict[str, Any]) -> IncomingReport:
    """Validate one ``{id, text[, category][, created_at]}`` record; ValueError says what is wrong."""
    text = row.get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"'text' must be a string, not {type(text).__name__}")
    if not text or not text.strip():
        raise ValueError("missing or empty 'text'")
    identifier = row.get("id")
    label = row.get("category") or None
    _check_key(identifier, "id", allow_number=True)
    _check_key(label, "category", allow_number=False)
    for name in ("id", "text", "category"):  # refused alone, instead of failing its batch's insert
        value = row.get(name)
        if isinstance(value, str) and (why := unstorable(value)):
            raise ValueError(f"'{name}' {why}")
    out_of_range = f"'created_at' {row.get('created_at')!r} is out of range (from 1970 to now)"
    try:
        created_at = parse_created_at(row.get("created_at"))
    except TimeOutOfRange:
        raise ValueError(out_of_range) from None
    except (TypeError, ValueError, OverflowError, OSError) as error:
        raise ValueError(f"bad 'created_at' {row.get('created_at')!r} (use ISO 8601)") from error
    if created_at is not None and not EARLIEST <= created_at <= utcnow() + CLOCK_SKEW:
        raise ValueError(out_of_range)
    return IncomingReport(
        id=None if identifier in (None, "") else str(identifier),
        text=text,
        created_at=created_at,
        label=str(label) if label is not None else None,
    )


def _check_key(value: Any, name: str, allow_number: bool) -> None:
    """Refuse an id or category that is not text (a whole number for an id) or is longer than its column.

    ``str()`` of a list or object would be stored as an id nobody sent, and a
    key over ``MAX_KEY_CHARS`` fails the whole batch's insert on PostgreSQL.
    """
    if value in (None, ""):
        return
    if not isinstance(value, str) and not (allow_number and isinstance(value, int) and not isinstance(value, bool)):
        kinds = "text or a whole number" if allow_number else "text"
        raise ValueError(f"'{name}' must be {kinds}, not {type(value).__name__}")
    if len(str(value)) > MAX_KEY_CHARS:
        raise ValueError(f"'{name}' is longer than {MAX_KEY_CHARS} characters")


def read_report_file(path: Path, skip_bad: bool = False) -> tuple[list[IncomingReport], list[str]]:
    """Reports from a CSV or JSONL file, plus one message per skipped line when ``skip_bad``."""
    if not path.is_file():
        raise InputError(f"no such file: {path}; give a CSV or JSONL file of reports")
    reports: list[IncomingReport] = []
    problems: list[str] = []
    for line_number, row in _rows(path):
        try:
            if isinstance(row, str):
                raise ValueError(row)
            reports.append(report_from_mapping(row))
        except ValueError as error:
            message = f"{path}:{line_number}: {error}"
            if not skip_bad:
                raise InputError(f"{message}; fix the line or pass --skip-bad") from error
            problems.append(message)
    return reports, problems


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record or why the line is refused); every line is read capped at ``MAX_LINE_BYTES``."""
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        with path.open("rb") as handle:
            _skip_bom(handle)
            for line_number, line in capped_lines(handle, MAX_LINE_BYTES):
                if line is None:
                    yield line_number, f"line longer than {describe_limit(MAX_LINE_BYTES)}"
                    continue
                if not line.strip():
                    continue
                try:
                    record = json_line(line)
                except ValueError as error:
                    yield line_number, str(error)
                    continue
                yield line_number, record if isinstance(record, dict) else "not a JSON object"
        return
    with path.open("rb") as handle:
        _skip_bom(handle)
        refused: dict[int, str] = {}
        reader = csv.DictReader(_csv_text(handle, refused), strict=True)
        if not reader.fieldnames or "text" not in reader.fieldnames:
            raise InputError(f"{path}: the CSV header must name a 'text' column (id,text[,category][,created_at])")
        while True:
            row: dict[str, Any] | str | None
            try:
                row, line_number = next(reader, None), reader.line_num
            except csv.Error as error:  # DictReader's own line_num moves only with a good row
                row, line_number = f"not CSV ({error})", reader.reader.line_num
            yield from sorted(refused.items())  # lines read while finding this row or error, which came before it
            refused.clear()
            if row is None:
                return
            yield line_number, row if isinstance(row, str) else dict(row)


def _skip_bom(handle: BinaryIO) -> None:
    """Move past a leading UTF-8 byte order mark (Excel's "CSV UTF-8" writes one): left in, it made the
    first JSONL line invalid JSON and the CSV's first column ``\ufeffid``, so every id was silently dropped."""
    if handle.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
        handle.seek(0)


def _csv_text(handle: BinaryIO, refused: dict[int, str]) -> Iterator[str]:
    """The CSV's lines as text for :mod:`csv`; a line over ``MAX_LINE_BYTES`` or not UTF-8 goes into
    ``refused`` by its number and reaches the reader as an empty line, which it skips."""
    for line_number, line in capped_lines(handle, MAX_LINE_BYTES):
        try:
            if line is None:
                raise ValueError(f"line longer than {describe_limit(MAX_LINE_BYTES)}")
            yield line.decode("utf-8")
        except (UnicodeDecodeError, ValueError) as error:
            refused[line_number] = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else str(error)
            yield "\n"


def ingest_reports(
    reports: Iterable[IncomingReport],
    *,
    url: str,
    classifier: Classifier | None,
    other_confidence: float,
    source: str = "file",
    now: datetime | None = None,
) -> IntakeResult:
    """Store reports once each, classified, and bump the daily counts; returns only after the commit.

    Predictions below ``other_confidence`` go to ``other``; without a
    classifier every report does.
    """
    result = IntakeResult()
    batch: list[IncomingReport] = []
    for report in reports:
        batch.append(report)
        if len(batch) >= BATCH:
            result.add(_ingest_batch(batch, source, classifier, other_confidence, url, now))
            batch = []
    if batch:
        result.add(_ingest_batch(batch, source, classifier, other_confidence, url, now))
    return result


def prepared_rows(batch: Iterable[IncomingReport], source: str, arrived: datetime) -> list[dict[str, Any]]:
    """Redacted rows hashed on their original text, one per id and per text, in content-hash order.

    The fixed order matters on PostgreSQL: two batches inserting the same
    reports take their unique-index locks in the same order instead of
    deadlocking.
    """
    rows: dict[str, dict[str, Any]] = {}
    ids: set[str] = set()
    for report in batch:
        digest = content_hash(report.text)
        identifier = report.id or digest[:32]
        if digest in rows or identifier in ids:
            continue
        ids.add(identifier)
        rows[digest] = {
            "id": identifier,
            "content_hash": digest,
            "text": redact(report.text.strip()),
            "source": source,
            "created_at": report.created_at or arrived,
            "ingested_at": arrived,
            "label": report.label,
            "label_origin": "report" if report.label else None,
            "category": None,
            "confidence": None,
            "why": None,
        }
    return [rows[digest] for digest in sorted(rows)]


PrepareRows = Callable[[list[IncomingReport], str, datetime], list[dict[str, Any]]]
"""Redacts and hashes a batch as :func:`prepared_rows` does (the bot does it in another process)."""


def store_reports(
    reports: list[IncomingReport],
    source: str,
    url: str,
    now: datetime | None = None,
    prepare: PrepareRows = prepared_rows,
) -> IntakeResult:
    """Insert a batch unclassified in one transaction; returns after the commit.

    :func:`classify_pending` gives the stored reports their category and
    counts them. A deadlock with a batch holding the same reports is retried.
    """
    rows = prepare(reports, source, now or utcnow())
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        try:
            with session_scope(url) as session:
                stored = len(_insert_new(session, rows))
            break
        except OperationalError as error:
            if attempt == DEADLOCK_RETRIES or getattr(error.orig, "sqlstate", None) != "40P01":
                raise
    return IntakeResult(received=len(reports), stored=stored, duplicates=len(reports) - stored)


def classify_pending(
    classifier: Classifier | None, url: str, other_confidence: float, limit: int = CLASSIFY_BATCH
) -> tuple[int, Counter[str]]:
    """Classify up to ``limit`` unclassified reports and count them; returns (taken, counted per category).

    The category is set and the daily count bumped in one transaction, and only
    on rows still unclassified, so each report is counted exactly once. On
    PostgreSQL the rows are taken ``FOR UPDATE SKIP LOCKED``: replicas draining
    at the same time take different rows. A worker that dies mid-batch leaves
    its rows unclassified for the next one.
    """
    counted: Counter[str] = Counter()
    with session_scope(url) as session:
        query = (
            select(BugReport.id, BugReport.text, BugReport.created_at)
            .where(BugReport.category.is_(None))
            .order_by(BugReport.ingested_at)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = [dict(row._mapping) for row in session.execute(query)]
        _classify(rows, classifier, other_confidence)
        per_day: Counter[tuple[date, str]] = Counter()
        for row in rows:
            claimed = session.execute(
                update(BugReport)
                .where(BugReport.id == row["id"], BugReport.category.is_(None))
                .values(category=row["category"], confidence=row["confidence"], why=row["why"])
            ).rowcount
            if claimed:
                per_day[(row["created_at"].astimezone(UTC).date(), row["category"])] += 1
                counted[row["category"]] += 1
        bump_daily_counts(session, per_day)
    return len(rows), counted


def _ingest_batch(
    batch: list[IncomingReport],
    source: str,
    classifier: Classifier | None,
    threshold: float,
    url: str,
    now: datetime | None,
) -> IntakeResult:
    result = IntakeResult(received=len(batch))
    rows = prepared_rows(batch, source, now or utcnow())
    with session_scope(url) as session:
        known = _already_stored(session, rows)
        new_rows = [row for row in rows if row["content_hash"] not in known and row["id"] not in known]
        _classify(new_rows, classifier, threshold)
        inserted = _insert_new(session, new_rows)
        counts: Counter[tuple[date, str]] = Counter()
        for row in inserted:
            counts[(row["created_at"].astimezone(UTC).date(), row["category"])] += 1
            result.by_category[row["category"]] += 1
            result.other += row["category"] == OTHER
        bump_daily_counts(session, counts)
    result.stored = len(inserted)
    result.duplicates = result.received - result.stored
    return result


def _already_stored(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    hashes = [r["content_hash"] for r in rows]
    ids = [r["id"] for r in rows]
    found = session.execute(
        select(BugReport.id, BugReport.content_hash).where(
            BugReport.content_hash.in_(hashes) | BugReport.id.in_(ids)
        )
    ).all()
    return {value for row in found for value in row}


def _classify(rows: list[dict[str, Any]], classifier: Classifier | None, threshold: float) -> None:
    if classifier is None or not rows:
        predictions = []
    else:
        predictions = with_other(classifier.classify([r["text"][:CLASSIFY_CHARS] for r in rows]), threshold)
    for index, row in enumerate(rows):
        if predictions:
            prediction = predictions[index]
            row["category"], row["confidence"] = prediction.category, prediction.confidence
            row["why"] = json.dumps(prediction.why, ensure_ascii=False) if prediction.why else None
        else:
            row["category"], row["confidence"], row["why"] = OTHER, None, None  # no classifier saw it: no confidence


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert, ignoring rows another writer stored a moment ago; returns the rows really inserted."""
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        columns = {name: [row[name] for row in rows] for name in _COLUMNS}
        inserted_ids = set(session.connection().scalars(_INSERT_UNNEST, columns).all())
    else:
        statement = sqlite.insert(BugReport).on_conflict_do_nothing().returning(BugReport.id)
        inserted_ids = set(session.scalars(statement, rows).all())
    return [row for row in rows if row["id"] in inserted_ids]


_COLUMNS = [
    "id", "content_hash", "text", "source", "created_at", "ingested_at", "label", "label_origin", "category", "confidence", "why",
]
_ARRAYS = func.unnest(
    *(bindparam(name, type_=postgresql.ARRAY(BugReport.__table__.c[name].type)) for name in _COLUMNS)
).table_valued(*_COLUMNS).render_derived(name="incoming")
# One array per column instead of a VALUES row per report: the statement text is the same for every
# batch, so psycopg and the server prepare it once (a 50-row VALUES insert spent more CPU on parsing
# its 450 placeholders than on anything else in the request).
_INSERT_UNNEST = (
    postgresql.insert(BugReport)
    .from_select(_COLUMNS, select(*(_ARRAYS.c[name] for name in _COLUMNS)))
    .on_conflict_do_nothing()
    .returning(BugReport.id)
)


def bump_daily_counts(session: Session, counts: Counter[tuple[date, str]]) -> None:
    """Add to the per-day, per-category totals atomically (concurrent intakes do not lose counts)."""
    if not counts:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for (day, category), count in sorted(counts.items()):
        statement = dialect.insert(CategoryDaily).values(day=day, category=category, count=count)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["day", "category"],
                set_={"count": CategoryDaily.count + statement.excluded.count},
            )
        )


def purge_expired_reports(retention_days: int, url: str, now: datetime | None = None) -> int:
    """Delete classified reports older than ``retention_days``; the daily counts stay. Returns how many went."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    with session_scope(url) as session:  # an unclassified report is not counted yet: it stays until it is
        deleted = session.execute(
            delete(BugReport).where(BugReport.created_at < cutoff, BugReport.category.is_not(None))
        )
        return int(deleted.rowcount or 0)
