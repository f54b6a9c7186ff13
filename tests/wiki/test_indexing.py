"""Re-ingesting the wiki embeds only what changed and forgets pages that were deleted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from chromadb.api.models.Collection import Collection

import knowledge.wiki.indexing as indexing
from knowledge.wiki.store import wiki_revision
from tests.wiki.conftest import write_small_wiki


@pytest.fixture
def embedded_texts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the indexer sends to the real MiniLM."""
    seen: list[str] = []
    real_embed = indexing.embed_sections

    def recording_embed(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return real_embed(texts)

    monkeypatch.setattr(indexing, "embed_sections", recording_embed)
    return seen


def _stored(collection: Collection) -> dict[str, tuple[str, list[float]]]:
    result = collection.get(include=["metadatas", "embeddings"])  # type: ignore[list-item]
    return {
        chunk_id: (str(metadata["content_hash"]), list(embedding))
        for chunk_id, metadata, embedding in zip(
            result["ids"], result["metadatas"], result["embeddings"], strict=True
        )
    }


def test_first_ingest_adds_every_section_with_its_metadata(tmp_path: Path, wiki_store: Collection) -> None:
    report = indexing.index_wiki(write_small_wiki(tmp_path / "wiki"), wiki_store)

    assert report.counts() == {"pages": 3, "chunks": 7, "added": 7, "updated": 0, "unchanged": 0, "removed": 0}
    symptoms = wiki_store.get(ids=["services/payments/runbook.md#Runbook: payments > Symptoms#1"])
    metadata = symptoms["metadatas"][0]
    assert metadata["page"] == "services/payments/runbook.md"
    assert metadata["heading"] == "Runbook: payments > Symptoms"
    assert metadata["kind"] == "runbook" and metadata["services"] == ["payments"]
    assert len(str(metadata["content_hash"])) == 64
    assert wiki_revision(wiki_store)


def test_reingest_embeds_only_the_changed_section_and_drops_removed_pages(
    tmp_path: Path, wiki_store: Collection, embedded_texts: list[str]
) -> None:
    root = write_small_wiki(tmp_path / "wiki")
    indexing.index_wiki(root, wiki_store)
    before = _stored(wiki_store)
    revision = wiki_revision(wiki_store)
    embedded_texts.clear()

    unchanged = indexing.index_wiki(root, wiki_store)
    assert unchanged.counts()["unchanged"] == 7 and embedded_texts == []
    assert wiki_revision(wiki_store) == revision

    runbook = root / "services/payments/runbook.md"
    runbook.write_text(runbook.read_text().replace("secondary processor", "backup processor"))
    (root / "guides/rollback.txt").unlink()
    report = indexing.index_wiki(root, wiki_store)

    assert report.counts() == {"pages": 2, "chunks": 6, "added": 0, "updated": 1, "unchanged": 5, "removed": 1}
    assert len(embedded_texts) == 1 and "backup processor" in embedded_texts[0]
    after = _stored(wiki_store)
    changed_id = "services/payments/runbook.md#Runbook: payments > Mitigation#1"
    assert after[changed_id][0] != before[changed_id][0]
    assert not np.allclose(after[changed_id][1], before[changed_id][1])
    assert all(np.allclose(after[i][1], before[i][1]) for i in after if i != changed_id)
    assert not any(chunk_id.startswith("guides/rollback.txt") for chunk_id in after)
    assert wiki_revision(wiki_store) != revision


def test_a_new_section_is_added_without_touching_its_neighbours(
    tmp_path: Path, wiki_store: Collection, embedded_texts: list[str]
) -> None:
    root = write_small_wiki(tmp_path / "wiki")
    indexing.index_wiki(root, wiki_store)
    embedded_texts.clear()
    overview = root / "services/search/overview.md"
    overview.write_text(overview.read_text().replace("## Ownership", "## Dashboards\nGrafana: search.\n\n## Ownership"))

    report = indexing.index_wiki(root, wiki_store)

    assert (report.added, report.updated, report.removed) == (1, 0, 0)
    assert embedded_texts == ["Search service > Dashboards\nGrafana: search."]


def test_a_page_with_bad_front_matter_is_refused_and_keeps_its_sections(
    tmp_path: Path, wiki_store: Collection
) -> None:
    root = write_small_wiki(tmp_path / "wiki")
    indexing.index_wiki(root, wiki_store)
    runbook = root / "services/payments/runbook.md"
    runbook.write_text(runbook.read_text().replace("type: runbook", "type: [runbook"))  # an author's typo
    (root / "guides/latin1.txt").write_bytes("Caf\xe9 runbook".encode("latin-1"))
    overview = root / "services/search/overview.md"
    overview.write_text(overview.read_text() + "\n## Dashboards\nGrafana: search.\n")

    report = indexing.index_wiki(root, wiki_store)

    assert [refused.page for refused in report.refused] == ["guides/latin1.txt", "services/payments/runbook.md"]
    assert "not valid YAML" in report.refused[1].reason and "not UTF-8" in report.refused[0].reason
    assert (report.added, report.removed) == (1, 0)  # the other pages synced; the refused one lost nothing
    stored = set(wiki_store.get()["ids"])
    assert "services/payments/runbook.md#Runbook: payments > Mitigation#1" in stored
    assert "services/search/overview.md#Search service > Dashboards#1" in stored

    runbook.unlink()  # a page that is really gone is still removed
    assert indexing.index_wiki(root, wiki_store).removed == 4
