"""Replicas that start together on a fresh PostgreSQL database all come up, and migrate once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from knowledge.db import alembic_config

# Each process pays its imports first, then waits for the same instant to call migrate().
REPLICA = """
import sys, time
from pathlib import Path
from knowledge.db import migrate
go = Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
migrate(sys.argv[1])
print("migrated")
"""


@pytest.mark.postgres
def test_replicas_starting_together_all_migrate_a_fresh_database(postgres_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, postgres_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        for _ in range(3)
    ]
    for replica in replicas:  # every replica has finished importing
        assert replica.stdout is not None and replica.stdout.readline().strip() == "ready"
    go.touch()
    outcomes = [replica.communicate(timeout=120) for replica in replicas]
    for replica, (out, err) in zip(replicas, outcomes, strict=True):
        assert replica.returncode == 0, err[-2000:]
        assert out.strip() == "migrated"

    head = ScriptDirectory.from_config(alembic_config(postgres_url)).get_current_head()
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert versions == [head]
    assert {"changes", "incidents", "suggestions", "feedback", "bug_reports", "claims"} <= tables
