"""Changes know their services: catalog globs, directory conventions, owners, shared libraries, re-derivation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from knowledge.attribution import changes_by_service
from knowledge.changes import Change
from knowledge.db import migrate, session_scope
from knowledge.ingest.catalog import ingest_catalog
from knowledge.ingest.change_store import store_changes
from knowledge.ingest.codeowners import ingest_codeowners
from knowledge.ingest.progress import Silent
from tests.changes import change_record
from tools.rca.recent_changes import recent_changes, via_library
from tools.reports.digest import build_digest

CATALOG = """
kind: Component
metadata: {name: payments}
spec: {type: service, owner: payments-team, paths: [PAYMENTS], dependsOn: [component:shared-libs]}
---
kind: Component
metadata: {name: checkout}
spec: {type: service, owner: checkout-team, dependsOn: [component:payments, component:shared-libs]}
---
kind: Component
metadata: {name: ledger}
spec: {type: service, owner: finance-team, paths: [LEDGER]}
---
kind: Component
metadata: {name: shared-libs}
spec: {type: library, owner: platform-team, paths: ["libs/**"]}
---
kind: Component
metadata: {name: platform}
spec: {type: configuration, owner: sre-team, paths: ["deploy/**"]}
"""

CODEOWNERS = "/accounting/ @acme/finance-team\n"

NOW = datetime(2025, 3, 20, 10, tzinfo=UTC)

CHANGES = [
    ("c1", "payments: retry Stripe on 429", ["services/payments/stripe.py"]),  # catalog glob
    ("c2", "deploy payments", ["deploy/payments/values.yaml"]),  # the most specific glob wins over deploy/**
    ("c3", "checkout: new cart", ["checkout/cart.py"]),  # directory named like a service
    ("c4", "ledger: book fees", ["accounting/fees.py"]),  # CODEOWNERS owner owning one service
    ("c5", "http-client: pool sizes", ["libs/http/client.py"]),  # shared library
    ("c6", "docs", ["README.md"]),  # nothing places it
]


def _load(url: str, tmp_path: Path, payments: str = '"services/payments/**", "deploy/payments/**"', ledger: str = "") -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG.replace("PAYMENTS", payments).replace("LEDGER", ledger))
    (tmp_path / "CODEOWNERS").write_text(CODEOWNERS)
    ingest_catalog([tmp_path / "catalog.yaml"], url)
    ingest_codeowners(tmp_path / "CODEOWNERS", url)


def _stored(url: str) -> dict[str, tuple[list[str], list[str]]]:
    with session_scope(url) as session:
        return {c.id: (list(c.services), list(c.dependant_services)) for c in session.query(Change)}


def test_ingestion_attributes_changes_and_a_new_catalog_reattributes_them(database_url: str, tmp_path: Path) -> None:
    migrate(database_url)
    _load(database_url, tmp_path)
    records = [
        change_record(cid, title, NOW - timedelta(minutes=10 * n + 5), paths) for n, (cid, title, paths) in enumerate(CHANGES)
    ]
    assert store_changes(database_url, records, Silent()) == (len(CHANGES), 0)

    stored = _stored(database_url)
    assert stored["c1"] == (["payments"], [])
    assert stored["c2"] == (["payments"], [])
    assert stored["c3"] == (["checkout"], [])
    assert stored["c4"] == (["ledger"], [])
    assert stored["c5"] == (["shared-libs"], ["checkout", "payments"])
    assert stored["c6"] == ([], [])

    listed = recent_changes("payments", until=NOW, hours=6, database_url=database_url)
    assert [change.id for change in listed] == ["c1", "c2", "c5"]
    assert [via_library(change, "payments") for change in listed] == [False, False, True]
    counted = {c.service: (c.own, c.via_libraries) for c in changes_by_service(database_url, NOW - timedelta(hours=6), NOW)}
    assert counted == {"payments": (2, 1), "checkout": (1, 1), "ledger": (1, 0), "shared-libs": (1, 0)}
    assert "• payments: 2 (+1 through shared libraries)" in build_digest(NOW.date(), database_url, with_chart=False).text

    # The catalog moves payments' code: the stored changes follow without being loaded again.
    _load(database_url, tmp_path, payments='"deploy/payments/**"', ledger='"services/payments/stripe.py"')
    stored = _stored(database_url)
    assert stored["c1"] == (["ledger"], [])
    assert stored["c2"] == (["payments"], [])
