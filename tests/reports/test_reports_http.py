"""POST /reports over real HTTP: committed before the answer, bad items refused one by one, bodies capped."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select

from knowledge.db import session_scope
from knowledge.reports import BugReport
from tests.bot.raw_http import send_chunked


def test_reports_are_committed_before_the_answer(reports_server: str, database_url: str) -> None:
    body = {"reports": [{"id": "h1", "text": "feed empty, write me at bo@example.com"}, {"id": "h2", "text": "crash on start", "created_at": "2025-06-01T10:00:00Z"}]}
    response = httpx.post(reports_server, json=body, headers={"Authorization": "Bearer s3cret-reports-token"})
    assert response.status_code == 200
    assert response.json()["stored"] == 2
    with session_scope(database_url) as session:
        texts = {r.id: (r.text, r.source) for r in session.scalars(select(BugReport))}
    assert texts["h1"] == ("feed empty, write me at [email]", "http")

    again = httpx.post(reports_server, json=body["reports"], headers={"Authorization": "Bearer s3cret-reports-token"})
    assert again.json()["duplicates"] == 2


def test_bad_requests_get_clear_errors(reports_server: str) -> None:
    auth = {"Authorization": "Bearer s3cret-reports-token"}
    assert httpx.post(reports_server, json=[{"text": "x"}]).status_code == 401
    wrong = httpx.post(reports_server, json=[{"text": "x"}], headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "bearer token" in wrong.json()["error"]
    bad = httpx.post(reports_server, content=b"{not json", headers=auth)
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
    missing = httpx.post(reports_server, json=[{"id": "1", "text": ""}], headers=auth)
    assert missing.status_code == 400 and missing.json()["error"] == "report 0: missing or empty 'text'"
    # A sender that put a number or a list where the text goes is told so, not that the text is missing.
    typed = httpx.post(reports_server, json=[{"id": "1", "text": 12345}], headers=auth)
    assert typed.status_code == 400 and typed.json()["error"] == "report 0: 'text' must be a string, not int"
    huge = httpx.post(reports_server, content=b"[" + b" " * (6 * 1024 * 1024) + b"]", headers=auth)
    assert huge.status_code == 413


def _post_raw(url: str, batch: list[dict]) -> httpx.Response:
    # json.dumps escapes NUL and lone surrogates as \u0000 and \ud800, as a sender's JSON library would.
    return httpx.post(url, content=json.dumps(batch).encode(), headers={"Authorization": "Bearer s3cret-reports-token", "Content-Type": "application/json"})


def test_one_bad_report_does_not_sink_its_batch(reports_server: str, database_url: str) -> None:
    batch = [
        {"id": "good-1", "text": "login button does nothing"},
        {"id": "nul", "text": "crash\x00 on start"},
        {"id": "surrogate", "text": "emoji \ud800 broke the feed"},
        {"id": "year-one", "text": "old report", "created_at": "0001-01-01T00:00:00Z"},
        {"id": "far-future", "text": "time traveller", "created_at": "9999-12-31T23:30:00-05:00"},
        {"id": "good-2", "text": "checkout slow", "created_at": "2025-06-01T10:00:00Z"},
    ]
    response = _post_raw(reports_server, batch)
    assert response.status_code == 207
    answer = response.json()
    assert (answer["received"], answer["stored"], answer["duplicates"]) == (6, 2, 0)
    rejected = {item["id"]: (item["index"], item["reason"]) for item in answer["rejected"]}
    assert rejected.keys() == {"nul", "surrogate", "year-one", "far-future"}
    assert rejected["nul"][0] == 1 and "NUL" in rejected["nul"][1]
    assert "surrogate" in rejected["surrogate"][1]
    assert rejected["year-one"][0] == 3 and "created_at" in rejected["year-one"][1]
    assert "created_at" in rejected["far-future"][1]
    with session_scope(database_url) as session:
        assert sorted(session.scalars(select(BugReport.id))) == ["good-1", "good-2"]

    # A sender that resends the same batch gets the same verdicts, and nothing is stored twice.
    again = _post_raw(reports_server, batch)
    assert again.status_code == 207 and again.json()["duplicates"] == 2


def test_a_batch_of_only_bad_reports_is_a_400_naming_each(reports_server: str, database_url: str) -> None:
    response = _post_raw(reports_server, [{"id": "a", "text": "bad\x00"}, {"text": "also \udfff bad"}])
    assert response.status_code == 400
    answer = response.json()
    assert [(item["index"], item["id"]) for item in answer["rejected"]] == [(0, "a"), (1, None)]
    assert answer["error"].startswith("report 0: ")
    with session_scope(database_url) as session:
        assert session.scalars(select(BugReport.id)).all() == []


def test_an_oversized_body_is_refused_while_it_streams(reports_server: str) -> None:
    # No Content-Length (chunked): the server must stop reading at the cap, not take the whole upload in.
    status, sent = send_chunked(reports_server, {"Authorization": "Bearer s3cret-reports-token"}, total_bytes=64 * 1024 * 1024)
    assert status == 413
    assert sent < 32 * 1024 * 1024


def test_an_id_or_category_that_is_no_key_is_refused_alone(reports_server: str, database_url: str) -> None:
    batch = [
        {"id": "k" * 201, "text": "feed is empty"},
        {"id": {"nested": "id"}, "text": "login loops"},
        {"id": "long-category", "text": "checkout slow", "category": "c" * 201},
        {"id": "listed-category", "text": "search broken", "category": ["search"]},
        {"id": "good", "text": "app crashes on start", "category": "crash"},
    ]
    response = _post_raw(reports_server, batch)
    assert response.status_code == 207
    reasons = [(item["index"], item["reason"]) for item in response.json()["rejected"]]
    assert reasons == [(0, "'id' is longer than 200 characters"), (1, "'id' must be text or a whole number, not dict"),
                       (2, "'category' is longer than 200 characters"), (3, "'category' must be text, not list")]  # fmt: skip
    with session_scope(database_url) as session:
        assert session.scalars(select(BugReport.id)).all() == ["good"]


def test_a_body_nested_too_deeply_is_a_400(reports_server: str) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = httpx.post(reports_server, content=body, headers={"Authorization": "Bearer s3cret-reports-token"})
    assert response.status_code == 400 and "JSON nested too deep" in response.json()["error"]
