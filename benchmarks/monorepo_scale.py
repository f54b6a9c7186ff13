"""A monorepo's 14-day window on PostgreSQL: 50,000 candidate changes per incident.

Creates a throwaway database on 127.0.0.1:5432 (dropped at the end), stores
50,000 real commits of the shared history (curl, git, haproxy) re-timed into
one repository over 14 days, trains the local judge on 60 curl cases, then
answers incidents with ``run_rca`` (database read included, nothing stored)
and prints per-stage and whole p50/p95, how many changes reached the full
signals and the ranker, and the peak RSS. The first incident is reported
apart: it reads every change whole and tokenises it once (later ones read
ids and reuse both).

    .venv/bin/python benchmarks/monorepo_scale.py [--changes 50000] [--queries 20]

Without change embeddings (none are cached here): the semantic signal would
add one matrix lookup per kept change.
"""

from __future__ import annotations

import argparse
import resource
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text

from graph.rca_graph import run_rca
from knowledge.db import get_engine, migrate
from knowledge.ingest.change_store import store_changes
from knowledge.ingest.progress import Silent
from tools.rca.history.cases import case_query, load_history
from tools.rca.history.training import train_model
from tools.rca.resources import RcaResources

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rca"
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REPO = "acme/monorepo"
END = datetime(2025, 6, 1, 12, tzinfo=UTC)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--database", help="an existing database this script filled before (kept, not refilled)")
    args = parser.parse_args()

    repos = ("curl__curl", "git__git", "haproxy__haproxy")
    history = load_history([DATA / f"cases-{r}.jsonl.gz" for r in repos], [DATA / f"commits-{r}.jsonl.gz" for r in repos])
    curl_cases = [case for case in history.cases if case.repo == "curl/curl"]
    started = time.perf_counter()
    model = train_model(history, curl_cases[:60], None)
    print(f"trained on 60 curl cases in {time.perf_counter() - started:.0f} s")

    commits = sorted(history.commits.values(), key=lambda commit: commit.landed_time)[-args.changes :]
    spacing = timedelta(days=14) / len(commits)
    window = [
        replace(commit, id=f"{index:06d}{commit.id[:34]}", repo=REPO,
                landed_time=END - timedelta(days=14) + spacing * index, author_time=END - timedelta(days=14) + spacing * index)
        for index, commit in enumerate(commits)
    ]

    name = args.database or f"culprit_scale_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    if not args.database:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        if not args.database:
            migrate(url)
            started = time.perf_counter()
            store_changes(url, window, Silent())
            print(f"stored {len(window)} changes in {time.perf_counter() - started:.0f} s (database {name})")
        resources = RcaResources(model=model, embeddings=None, min_confidence=0.0)
        asked = curl_cases[-args.queries :]
        queries = [
            replace(case_query(case, symptom=index % 2 == 1), started_at=END, repo=REPO, incident_id=None)
            for index, case in enumerate(asked)
        ]
        first = run_rca(queries[0], database_url=url, resources=resources, persist=False)
        print(f"first incident (reads and tokenises every change once): {first.timings_ms['total']:.0f} ms "
              f"({first.n_candidates} candidates, {first.n_retrieved} ranked)")
        totals, stages, retrieved = [], {}, []
        for query in queries:
            answer = run_rca(query, database_url=url, resources=resources, persist=False)
            totals.append(answer.timings_ms["total"])
            retrieved.append(answer.n_retrieved)
            for stage, value in answer.timings_ms.items():
                stages.setdefault(stage, []).append(value)
        print(f"{len(queries)} incidents over {first.n_candidates} candidates: whole RCA p50 "
              f"{np.percentile(totals, 50):.0f} ms, p95 {np.percentile(totals, 95):.0f} ms, max {max(totals):.0f} ms")
        for stage, values in stages.items():
            print(f"  {stage:>9}: p50 {np.percentile(values, 50):7.0f} ms  p95 {np.percentile(values, 95):7.0f} ms")
        print(f"changes ranked per incident: {min(retrieved)} to {max(retrieved)}")
        print(f"peak RSS {_peak_rss_mb():.0f} MB")
    finally:
        get_engine(url).dispose()
        if not args.database:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
