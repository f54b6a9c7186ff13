"""How fast ``culprit ingest`` stores changes, on SQLite and (when reachable) PostgreSQL.

Run from the repository root (the synthetic repository comes from the tests):

    .venv/bin/python -m benchmarks.ingest_throughput [--commits 5000] [--data /work/shared/data/rca]

It times ``ingest git`` on a generated repository (first run and the idempotent
second run) and ``ingest history`` on every ``commits-*``/``cases-*`` file of the
data folder, then checks that both databases end up with the same counts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from knowledge.changes import Change, ChangeFile
from knowledge.db import get_engine, migrate, session_scope
from knowledge.incidents import Incident, RootCause
from knowledge.ingest.git_log import ingest_git
from knowledge.ingest.history import ingest_cases, ingest_commits
from knowledge.ingest.report import LoadReport
from tests.ingest.synthetic_repo import write_history
from tools.rca.store import stored_words

POSTGRES_ADMIN_URL = os.environ.get("CULPRIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A throwaway database, or None when no server answers."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"culprit_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # a benchmark without PostgreSQL still measures SQLite
        print(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(error).__name__}; SQLite only")
        yield None
        return
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def timed(label: str, load: Callable[[], list[LoadReport]]) -> None:
    started = time.perf_counter()
    reports = load()
    seconds = time.perf_counter() - started
    records = sum(report.new + report.already_present for report in reports)
    new = sum(report.new for report in reports)
    print(f"  {label:<34} {records:>7} records ({new:>6} new) in {seconds:6.2f} s = {records / seconds:8.0f} /s")


def counts(url: str) -> dict[str, int]:
    with session_scope(url) as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Change, ChangeFile, Incident, RootCause)
        }


def run(url: str, label: str, repo: Path, data: Path) -> dict[str, int]:
    print(f"{label}:")
    migrate(url)
    timed("ingest git (first run)", lambda: [ingest_git(repo, url, repo_name="bench/synthetic")])
    timed("ingest git (again, idempotent)", lambda: [ingest_git(repo, url, repo_name="bench/synthetic")])
    commit_files = sorted(data.glob("commits-*.jsonl*"))
    case_files = sorted(data.glob("cases-*.jsonl*"))
    timed("ingest history commits", lambda: [ingest_commits(path, url) for path in commit_files])
    timed("ingest history cases", lambda: [ingest_cases(path, url, stored_words) for path in case_files])
    timed("ingest history commits (again)", lambda: [ingest_commits(path, url) for path in commit_files])
    found = counts(url)
    print("  stored:", ", ".join(f"{table}={count}" for table, count in found.items()))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=5000, help="size of the generated repository")
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/rca"), help="history files folder")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="culprit-bench-") as scratch:
        started = time.perf_counter()
        repo = Path(scratch) / "synthetic"
        write_history(repo, arguments.commits, merge_every=20, feature_len=4)
        print(f"generated {arguments.commits} commits with git fast-import in {time.perf_counter() - started:.2f} s")
        results = {"SQLite": run(f"sqlite:///{scratch}/bench.db", "SQLite", repo, arguments.data)}
        with postgres_database() as postgres_url:
            if postgres_url is not None:
                results["PostgreSQL"] = run(postgres_url, "PostgreSQL", repo, arguments.data)
    if len(results) == 2:
        same = results["SQLite"] == results["PostgreSQL"]
        print("SQLite and PostgreSQL counts", "match" if same else f"DIFFER: {results}")


if __name__ == "__main__":
    main()
