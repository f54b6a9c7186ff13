"""A responder's question finds the page that answers it, on the demo wiki of the sample shop."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from chromadb.api.models.Collection import Collection

from knowledge.wiki.indexing import index_wiki
from tools.rca.answers import IncidentQuery
from tools.wiki.evaluation import evaluate, load_questions
from tools.wiki.search import search_wiki, searcher_for, wiki_for_incident
from tests.wiki.conftest import write_small_wiki


@pytest.mark.parametrize(
    ("question", "page"),
    [
        ("customers say their cards keep getting rejected on payments", "services/payments/runbook.md"),
        ("seeing ERR_POOL_EXHAUSTED from billing-db in the logs", "services/billing-db/runbook.md"),
        ("how do I put the previous version back on production?", "deploys/rollback.md"),
        ("what caused INC-2110?", "postmortems/2024-05-19-inc-2110.md"),
    ],
)
def test_a_question_finds_the_page_that_answers_it(
    demo_collection: Collection, question: str, page: str
) -> None:
    hits = search_wiki(question, k=3, collection=demo_collection)
    assert page in [hit.page for hit in hits]
    assert hits[0].heading.startswith(hits[0].title)
    assert hits[0].snippet and hits[0].score > hits[-1].score
    assert len({hit.page for hit in hits}) == len(hits)


def test_service_filter_keeps_only_that_services_pages(demo_collection: Collection) -> None:
    unfiltered = search_wiki("messages pile up and arrive hours late", k=5, collection=demo_collection)
    filtered = search_wiki("messages pile up and arrive hours late", service="checkout", k=5, collection=demo_collection)

    assert unfiltered[0].page in ("services/notifications/runbook.md", "postmortems/2024-07-23-inc-2189.md")
    checkout_pages = ("services/checkout/", "postmortems/2024-03-12-inc-2041.md")
    assert filtered and all(hit.page.startswith(checkout_pages) for hit in filtered)
    assert search_wiki("anything", service="no-such-service", collection=demo_collection) == []


def test_incident_pages_put_the_impacted_service_first(demo_collection: Collection) -> None:
    incident = IncidentQuery(
        text="Order confirmation emails are hours late", started_at=datetime.now(UTC), service="notifications"
    )
    pages = [hit.page for hit in wiki_for_incident(incident, demo_collection, k=3)]
    assert pages[0] in ("services/notifications/runbook.md", "postmortems/2024-07-23-inc-2189.md")
    assert "postmortems/2024-07-23-inc-2189.md" in pages and len(set(pages)) == 3


def test_bm25_is_rebuilt_after_an_ingest_changes_the_wiki(tmp_path: Path, wiki_store: Collection) -> None:
    root = write_small_wiki(tmp_path / "wiki")
    index_wiki(root, wiki_store)
    assert search_wiki("ZX_SPECTRUM_FAULT", method="bm25", collection=wiki_store) == []

    (root / "guides/rollback.txt").write_text("Rolling back\n\nIf you see ZX_SPECTRUM_FAULT, roll back.\n")
    index_wiki(root, wiki_store)

    assert [hit.page for hit in search_wiki("ZX_SPECTRUM_FAULT", method="bm25", collection=wiki_store)] == [
        "guides/rollback.txt"
    ]
    assert len(searcher_for(wiki_store)) == 7


@pytest.mark.slow
def test_hybrid_beats_each_method_alone_on_the_demo_questions(
    demo_collection: Collection, demo_wiki: tuple[Path, Path]
) -> None:
    questions = load_questions(demo_wiki[1])
    result = evaluate(searcher_for(demo_collection), questions)

    assert len(questions) >= 40 and result["pages_not_indexed"] == []
    assert result["recall_at_3"] >= 0.9
    for baseline in result["baselines"].values():
        assert result["recall_at_3"] > baseline["recall_at_3"]
        assert result["mrr"] > baseline["mrr"]
