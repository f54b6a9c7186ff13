from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from knowledge.db import session_scope
from knowledge.reports import BugReport, CategoryDaily
from tools.reports.classifiers.embedded import EmbeddedClassifier
from tools.reports.intake import (
    IncomingReport,
    content_hash,
    ingest_reports,
    purge_expired_reports,
    read_report_file,
    store_reports,
)

DAY = datetime(2025, 6, 2, 12, tzinfo=UTC)
OTHER_CONFIDENCE = 0.4


def _reports() -> list[IncomingReport]:
    return [
        IncomingReport("r1", "can't log in, it says wrong password, mail me at ann@example.com", DAY),
        IncomingReport("r2", "feed is not loading, just a spinner since this morning", DAY),
        IncomingReport("r3", "I was charged twice for my subscription, card 4111 1111 1111 1111", DAY + timedelta(days=1)),
    ]


def test_reports_are_redacted_classified_counted_and_stored_once(database_url: str, classifier: EmbeddedClassifier) -> None:
    first = ingest_reports(_reports(), classifier=classifier, other_confidence=OTHER_CONFIDENCE, url=database_url)
    assert (first.received, first.stored, first.duplicates) == (3, 3, 0)

    again = _reports() + [IncomingReport("r4", "  Feed is NOT loading, just a spinner since this morning ", DAY)]
    second = ingest_reports(again, classifier=classifier, other_confidence=OTHER_CONFIDENCE, url=database_url)
    assert (second.stored, second.duplicates) == (0, 4), "same id or same text is the same report"

    with session_scope(database_url) as session:
        stored = {r.id: r for r in session.scalars(select(BugReport))}
        daily = {(d.day, d.category): d.count for d in session.scalars(select(CategoryDaily))}
    assert "ann@example.com" not in stored["r1"].text and "[email]" in stored["r1"].text
    assert "[card]" in stored["r3"].text
    assert stored["r1"].category == "login" and stored["r2"].category == "feed not loading"
    assert all(0.0 < r.confidence <= 1.0 for r in stored.values())
    assert daily == {(date(2025, 6, 2), "login"): 1, (date(2025, 6, 2), "feed not loading"): 1, (date(2025, 6, 3), "payments"): 1}


def test_reports_that_differ_only_in_a_card_number_are_two_reports(database_url: str, classifier: EmbeddedClassifier) -> None:
    # Both redact to "charged twice on card [card]": deduplicating on the redacted text kept one of them.
    reports = [
        IncomingReport(None, "charged twice on card 4111 1111 1111 1111", DAY),
        IncomingReport(None, "charged twice on card 5555 5555 5555 4444", DAY),
    ]
    stored = store_reports(reports, "http", database_url)
    assert (stored.stored, stored.duplicates) == (2, 0)
    again = ingest_reports([*reports, IncomingReport(None, "Charged  twice on card 4111 1111 1111 1111", DAY)],
                           classifier=classifier, other_confidence=OTHER_CONFIDENCE, url=database_url)
    assert (again.stored, again.duplicates) == (0, 3), "the same original text (up to case and spaces) is the same report"

    with session_scope(database_url) as session:
        rows = list(session.scalars(select(BugReport)))
    assert [row.text for row in rows] == ["charged twice on card [card]"] * 2
    assert {row.content_hash for row in rows} == {content_hash(report.text) for report in reports}, "the original is kept only as its hash"


def test_unsure_predictions_go_to_other_and_are_counted(database_url: str, classifier: EmbeddedClassifier) -> None:
    result = ingest_reports(_reports(), classifier=classifier, other_confidence=1.0, url=database_url)
    assert result.other == 3 and result.by_category == {"other": 3}


def test_purge_drops_old_reports_but_keeps_daily_counts(database_url: str, classifier: EmbeddedClassifier) -> None:
    ingest_reports(_reports(), classifier=classifier, other_confidence=OTHER_CONFIDENCE, url=database_url)
    deleted = purge_expired_reports(retention_days=90, url=database_url, now=DAY + timedelta(days=90, hours=12))
    assert deleted == 2, "the two reports from 2025-06-02 are over 90 days old, the 06-03 one is not"
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(BugReport)) == 1
        assert session.scalar(select(func.sum(CategoryDaily.count))) == 3


def test_bad_lines_stop_the_file_unless_skipped(tmp_path: Path) -> None:
    path = tmp_path / "reports.jsonl"
    path.write_text('{"id": "a", "text": "feed empty"}\nnot json\n{"id": "b", "text": ""}\n{"id": "c", "text": "x", "created_at": "2025-06-01"}\n')
    from knowledge.errors import InputError

    with pytest.raises(InputError, match="reports.jsonl:2: invalid JSON"):
        read_report_file(path)
    reports, problems = read_report_file(path, skip_bad=True)
    assert [r.id for r in reports] == ["a", "c"] and len(problems) == 2
    assert reports[1].created_at == datetime(2025, 6, 1, tzinfo=UTC)


def test_a_report_line_too_long_not_utf8_or_nested_too_deeply_is_refused_alone(tmp_path: Path) -> None:
    jsonl = tmp_path / "reports.jsonl"
    jsonl.write_bytes(b'{"id": "a", "text": "feed empty"}\n'
                      + b'{"id": "long", "text": "' + b"x" * (5 << 20) + b'"}\n'
                      + b'{"id": "latin", "text": "caf\xe9 crashes"}\n'
                      + b"[" * 50_000 + b"]" * 50_000 + b"\n"
                      + b'{"id": "b", "text": "login loops"}\n')  # fmt: skip
    csv_file = tmp_path / "reports.csv"
    csv_file.write_bytes(b"id,text\na,feed empty\n" + b"long," + b"x" * (5 << 20) + b"\nlatin,caf\xe9 crashes\nb,login loops\n")

    from_jsonl, jsonl_problems = read_report_file(jsonl, skip_bad=True)
    from_csv, csv_problems = read_report_file(csv_file, skip_bad=True)

    assert [r.id for r in from_jsonl] == [r.id for r in from_csv] == ["a", "b"]
    assert jsonl_problems == [f"{jsonl}:2: line longer than 5 MiB", f"{jsonl}:3: not UTF-8 text",
                              f"{jsonl}:4: JSON nested too deeply"]  # fmt: skip
    assert csv_problems == [f"{csv_file}:3: line longer than 5 MiB", f"{csv_file}:4: not UTF-8 text"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("id", "x" * 201, "'id' is longer than 200 characters"), ("id", ["a"], "'id' must be text or a whole number, not list"),
     ("category", "c" * 201, "'category' is longer than 200 characters"),
     ("category", {"name": "login"}, "'category' must be text, not dict")],
)
def test_an_id_or_category_that_is_no_key_is_refused(tmp_path: Path, field: str, value: object, reason: str) -> None:
    import json

    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps({"id": "r1", "text": "feed empty"} | {field: value}) + "\n"
                    + json.dumps({"id": 7, "text": "login loops", "category": "login"}) + "\n")  # fmt: skip
    reports, problems = read_report_file(path, skip_bad=True)
    assert [(r.id, r.label) for r in reports] == [("7", "login")] and problems == [f"{path}:1: {reason}"]


@pytest.mark.parametrize("value", [True, False])
def test_a_created_at_of_true_or_false_is_refused_not_dated_1970(tmp_path: Path, value: bool) -> None:
    import json

    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps({"id": "r1", "text": "feed empty", "created_at": value}) + "\n")
    reports, problems = read_report_file(path, skip_bad=True)
    assert reports == [] and problems == [f"{path}:1: bad 'created_at' {value!r} (use ISO 8601)"]


def test_a_csv_row_the_csv_reader_refuses_is_named_by_its_line_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "reports.csv"
    path.write_text('id,text\na,feed empty\nb,"quoted" then more\nc,login loops\nd,"never closed\n')
    reports, problems = read_report_file(path, skip_bad=True)
    assert [r.id for r in reports] == ["a", "c"]
    assert problems == [f"{path}:3: not CSV (',' expected after '\"')",
                        f"{path}:5: not CSV (unexpected end of data)"]  # fmt: skip


def test_a_csv_report_longer_than_csvs_own_field_limit_is_read_and_a_line_over_the_cap_still_refused(
    tmp_path: Path,
) -> None:
    long_report = "the app freezes when I open the feed " * 5_600  # 207,200 characters: csv's default limit is 131,072
    path = tmp_path / "reports.csv"
    path.write_bytes(b"id,text\n" + f"long,{long_report}\n".encode()
                     + b"huge," + b"x" * (5 << 20) + b"\n"
                     + b'spread,"' + b"y" * (3 << 20) + b"\n" + b"y" * (3 << 20) + b'"\n'
                     + b"b,login loops\n")  # fmt: skip

    reports, problems = read_report_file(path, skip_bad=True)

    assert [(r.id, len(r.text)) for r in reports] == [("long", len(long_report)), ("b", len("login loops"))]
    assert problems == [f"{path}:3: line longer than 5 MiB",
                        f"{path}:5: not CSV (field larger than field limit ({5 << 20}))"]  # fmt: skip


def test_the_first_bad_csv_line_is_the_one_named_when_a_csv_error_follows_it(tmp_path: Path) -> None:
    from knowledge.errors import InputError

    path = tmp_path / "reports.csv"
    path.write_bytes(b"id,text\nhuge," + b"x" * (5 << 20) + b'\nc,"quoted" then more\nd,login loops\n')

    with pytest.raises(InputError, match=r"reports\.csv:2: line longer than 5 MiB; fix the line"):
        read_report_file(path)
    reports, problems = read_report_file(path, skip_bad=True)
    assert [r.id for r in reports] == ["d"]
    assert problems == [f"{path}:2: line longer than 5 MiB", f"{path}:3: not CSV (',' expected after '\"')"]


def test_a_file_saved_with_a_byte_order_mark_keeps_its_ids_and_first_line(tmp_path: Path) -> None:
    csv_file = tmp_path / "reports.csv"
    csv_file.write_bytes(b"\xef\xbb\xbfid,text,category\r\nc1,login fails,bug report\r\nc2,add dark mode,feature\r\n")
    jsonl = tmp_path / "reports.jsonl"
    jsonl.write_bytes(b'\xef\xbb\xbf{"id": "j1", "text": "login fails"}\r\n{"id": "j2", "text": "add dark mode"}\r\n')

    from_csv, _ = read_report_file(csv_file)
    from_jsonl, _ = read_report_file(jsonl)

    assert [(r.id, r.text, r.label) for r in from_csv] == [("c1", "login fails", "bug report"), ("c2", "add dark mode", "feature")]
    assert [(r.id, r.text) for r in from_jsonl] == [("j1", "login fails"), ("j2", "add dark mode")]
