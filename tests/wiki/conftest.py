"""Wiki fixtures: the MiniLM loaded once, the demo wiki indexed once, fresh stores per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chromadb.api.models.Collection import Collection
from chromadb.api.shared_system_client import SharedSystemClient

from knowledge.config import Settings
from knowledge.demo.wiki import write_demo_wiki
from knowledge.embeddings import get_embedder
from knowledge.wiki.indexing import index_wiki
from knowledge.wiki.store import open_wiki, wiki_client
from tests.wiki.sample_org import POSTMORTEMS, SERVICES

PAYMENTS_RUNBOOK = """---
title: "Runbook: payments"
type: runbook
---
# Runbook: payments

Paged team: payments-team.

## Symptoms
Card authorisations fail with ERR_GATEWAY_TIMEOUT and checkout hangs.

## Mitigation
Switch to the secondary processor with the `payments.processor=secondary` flag.

### Refund backlog
Pause the refund worker before replaying refunds.
"""

SEARCH_OVERVIEW = """# Search service

Product search over the catalog.

## Ownership
Owned by the discovery team; questions go to #team-discovery.
"""

ROLLBACK_GUIDE = """Rolling back a deploy

Run deployctl rollback SERVICE to put the previous release back on production.
"""


def write_small_wiki(root: Path) -> Path:
    """Three pages: a runbook with front matter, a service page tagged by its path, a plain-text guide."""
    pages = {
        "services/payments/runbook.md": PAYMENTS_RUNBOOK,
        "services/search/overview.md": SEARCH_OVERVIEW,
        "guides/rollback.txt": ROLLBACK_GUIDE,
    }
    for relative, text in pages.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


@pytest.fixture(scope="session")
def minilm() -> object:
    """Loading MiniLM takes seconds: once per test session (``get_embedder`` caches it)."""
    return get_embedder()


@pytest.fixture(scope="session", autouse=True)
def _release_chroma() -> Iterator[None]:
    yield
    SharedSystemClient.clear_system_cache()


@pytest.fixture
def wiki_store(tmp_path: Path, minilm: object) -> Collection:
    """An empty embedded wiki collection of its own."""
    return open_wiki(wiki_client(Settings(data_dir=tmp_path / "store")))


@pytest.fixture(scope="session")
def demo_wiki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo wiki for the sample shop and its question set."""
    directory = tmp_path_factory.mktemp("demo-wiki")
    return directory, write_demo_wiki(directory, SERVICES, POSTMORTEMS, seed=0)


@pytest.fixture(scope="session")
def demo_data_dir(
    tmp_path_factory: pytest.TempPathFactory, demo_wiki: tuple[Path, Path], minilm: object
) -> Path:
    """A data directory whose embedded Chroma already holds the indexed demo wiki."""
    data_dir = tmp_path_factory.mktemp("demo-data")
    index_wiki(demo_wiki[0], open_wiki(wiki_client(Settings(data_dir=data_dir))))
    return data_dir


@pytest.fixture
def demo_collection(demo_data_dir: Path) -> Collection:
    return open_wiki(wiki_client(Settings(data_dir=demo_data_dir)))
