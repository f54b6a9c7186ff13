"""Loading the demo goes through the real ingestion, and loading it again changes nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from knowledge.changes import Change, ChangeFile
from knowledge.db import session_scope
from knowledge.demo import generate_organisation, write_demo_files
from knowledge.demo.loader import load_records
from knowledge.incidents import Incident, RootCause
from knowledge.ingest.progress import Silent
from knowledge.ownership import OwnershipRule
from knowledge.services import Service
from tools.rca.store import stored_words


def _table_counts(url: str) -> dict[str, int]:
    with session_scope(url) as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Service, OwnershipRule, Change, ChangeFile, Incident, RootCause)
        }


def test_loading_twice_stores_everything_once(database_url: str, tmp_path: Path) -> None:
    org = generate_organisation(seed=5, n_changes=400, n_incidents=30, days=45)
    files = write_demo_files(org, tmp_path / "demo")

    first = load_records(files, database_url, stored_words, Silent())
    counts = _table_counts(database_url)
    second = load_records(files, database_url, stored_words, Silent())

    assert {report.kind: report.new for report in first} == {
        "services": len(org.services),
        "ownership rules": len(org.ownership),
        "changes": len(org.changes),
        "incidents": len(org.incidents),
    }
    assert all(report.new == 0 and report.updated == 0 for report in second)
    assert _table_counts(database_url) == counts
    assert counts["change_files"] == sum(len(change.files) for change in org.changes)

    incident = org.incidents[0]
    with session_scope(database_url) as session:
        stored = session.get(Incident, incident.id)
        assert stored is not None and stored.started_at == incident.started_at
        causes = session.scalars(select(RootCause.change_id).where(RootCause.incident_id == incident.id))
        assert list(causes) == incident.culprits
        payments = session.get(Service, "payments")
        assert payments is not None and "billing-db" in payments.depends_on
        assert "services/payments/**" in payments.path_globs
