"""An RCA answer cites the wiki pages of the impacted service, and survives a wiki that cannot be read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chromadb.api.shared_system_client import SharedSystemClient
from structlog.testing import capture_logs

from graph.rca_graph import run_rca
from knowledge.changes import Change, ChangeFile
from knowledge.config import Settings
from knowledge.db import migrate, session_scope
from knowledge.services import Service
from knowledge.wiki.indexing import index_wiki
from knowledge.wiki.store import configured_wiki
from tests.wiki.conftest import write_small_wiki
from tests.wiki.stalling_chroma import StallingChroma
from tools.rca.answers import IncidentQuery
from tools.rca.resources import load_resources

STARTED = datetime(2026, 5, 4, 14, tzinfo=UTC)


@pytest.fixture
def payments(data_dir: Path) -> Iterator[Settings]:
    """A store with the payments service and six changes to it, answered without a confidence floor."""
    url = f"sqlite:///{data_dir / 'culprit.db'}"
    migrate(url)
    with session_scope(url) as session:
        session.add(Service(name="payments", owner="payments-team", path_globs=["services/payments/**"]))
        for hour in range(6):
            change = Change(
                id=f"{hour:040x}", repo="acme/shop", title=f"payments: tune gateway timeout #{hour}",
                author="Ada", author_time=STARTED - timedelta(hours=hour + 1),
                landed_time=STARTED - timedelta(hours=hour + 1), added=10, deleted=2, n_files=1,
            )
            change.files = [ChangeFile(position=0, path="services/payments/gateway.py", added=10, deleted=2)]
            session.add(change)
    yield Settings(data_dir=data_dir, database_url=url, min_confidence=0)
    SharedSystemClient.clear_system_cache()


def _query() -> IncidentQuery:
    return IncidentQuery(
        text="Card authorisations time out at the gateway and checkout hangs",
        title="Checkout failing", service="payments", started_at=STARTED,
    )


def test_answer_cites_the_impacted_services_runbook(payments: Settings, tmp_path: Path) -> None:
    index_wiki(write_small_wiki(tmp_path / "wiki"), configured_wiki(payments))

    answer = run_rca(
        _query(), database_url=payments.resolved_database_url, resources=load_resources(payments), persist=False
    )

    assert answer.wiki[0].page == "services/payments/runbook.md"
    assert answer.suggestions
    assert all("services/payments/runbook.md" in s.evidence.wiki_pages for s in answer.suggestions)


def test_an_unreadable_wiki_is_noted_and_the_answer_stands(
    payments: Settings, data_dir: Path
) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "chroma").write_text("not a directory")  # Chroma cannot open its store here

    answer = run_rca(
        _query(), database_url=payments.resolved_database_url, resources=load_resources(payments), persist=False
    )

    assert len(answer.suggestions) == 5
    assert answer.wiki == []
    assert any("wiki could not be searched" in note for note in answer.notes)


def test_a_wiki_server_that_quotes_its_request_in_its_error_is_logged_without_it_or_its_credentials(
    payments: Settings,
) -> None:
    """Chroma behind a URL with credentials answers the search with a 500 quoting the request it refused
    (a server's error may quote the documents or query it was sent): the log names the error's type, and
    holds neither the server's message nor the password."""
    chroma = StallingChroma(echoes=lambda method, path: path.endswith(("/get", "/query")))
    with chroma as url:
        settings = payments.model_copy(update={"chroma_url": url.replace("http://", "http://wiki:chroma-s3cret@")})
        with capture_logs() as logs:
            answer = run_rca(
                _query(), database_url=settings.resolved_database_url, resources=load_resources(settings), persist=False
            )

    assert answer.suggestions and answer.wiki == []
    assert any("wiki could not be searched" in note for note in answer.notes)
    [logged] = [entry for entry in logs if entry["event"] == "wiki_unavailable"]
    assert "cannot answer" not in repr(logged) and "chroma-s3cret" not in repr(logged)
    assert logged["error_type"] == "InternalError"  # chromadb's type for the server's 500
