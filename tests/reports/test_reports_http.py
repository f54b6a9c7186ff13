import httpx
from sqlalchemy import select

from knowledge.db import session_scope
from knowledge.reports import BugReport


def test_reports_are_committed_before_the_answer(reports_server: str, database_url: str) -> None:
    body = {"reports": [{"id": "h1", "text": "feed empty, write me at bo@example.com"}, {"id": "h2", "text": "crash on start", "created_at": "2025-06-01T10:00:00Z"}]}
    response = httpx.post(reports_server, json=body, headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200
    assert response.json()["stored"] == 2
    with session_scope(database_url) as session:
        texts = {r.id: (r.text, r.source) for r in session.scalars(select(BugReport))}
    assert texts["h1"] == ("feed empty, write me at [email]", "http")

    again = httpx.post(reports_server, json=body["reports"], headers={"Authorization": "Bearer s3cret"})
    assert again.json()["duplicates"] == 2


def test_bad_requests_get_clear_errors(reports_server: str) -> None:
    auth = {"Authorization": "Bearer s3cret"}
    assert httpx.post(reports_server, json=[{"text": "x"}]).status_code == 401
    wrong = httpx.post(reports_server, json=[{"text": "x"}], headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "bearer token" in wrong.json()["error"]
    bad = httpx.post(reports_server, content=b"{not json", headers=auth)
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
    missing = httpx.post(reports_server, json=[{"id": "1", "text": ""}], headers=auth)
    assert missing.status_code == 400 and missing.json()["error"] == "report 0: missing or empty 'text'"
    huge = httpx.post(reports_server, content=b"[" + b" " * (6 * 1024 * 1024) + b"]", headers=auth)
    assert huge.status_code == 413
