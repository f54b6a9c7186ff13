"""A synthetic repository shared by the git ingestion tests (written once per session)."""

from __future__ import annotations

import pytest

from tests.ingest.synthetic_repo import SyntheticHistory, write_history


@pytest.fixture(scope="session")
def synthetic_history(tmp_path_factory: pytest.TempPathFactory) -> SyntheticHistory:
    return write_history(tmp_path_factory.mktemp("repos") / "shop", n_commits=300)
