"""Shared fixtures: an isolated data directory and real SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.vllm_server import vllm_server  # noqa: F401  (session fixture: a real CPU vLLM server)

for _name in list(os.environ):
    if _name.startswith(("SLACK_", "OPENAI_", "CULPRIT_")):
        del os.environ[_name]
os.environ.update(
    {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
)

POSTGRES_ADMIN_URL = os.environ.get(
    "CULPRIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _reset_caches() -> None:
    from knowledge.config import get_settings
    from knowledge.db import _session_factory, get_engine

    get_settings.cache_clear()
    _session_factory.cache_clear()
    get_engine.cache_clear()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh CULPRIT_DATA_DIR; settings and engines are re-read for each test."""
    directory = tmp_path / "culprit-data"
    monkeypatch.setenv("CULPRIT_DATA_DIR", str(directory))
    _reset_caches()
    yield directory
    _reset_caches()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database on the local server, dropped afterwards."""
    name = f"culprit_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # the server is part of the test environment: fail loudly
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable: {error}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    from knowledge.db import get_engine

    get_engine(url).dispose()
    get_engine.cache_clear()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A migrated, empty database: every data-layer test runs on SQLite and on PostgreSQL."""
    from knowledge.db import migrate

    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'culprit.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("CULPRIT_DATABASE_URL", url)
    _reset_caches()
    migrate(url)
    return url
