"""Latency of one RCA with the local judge over up to 1,000 candidate changes.

Measures the whole graph per incident (embed the incident text, compute every
signal, retrieve, elect in batches of 20, gate, explain) the way ``run_rca``
runs it, minus the database read. Change embeddings are precomputed, as they
are in production (``culprit train`` and the first query fill the cache), so
only the incident text is embedded per query.

    .venv/bin/python benchmarks/rca_latency.py [--candidates 1000] [--queries 40]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from graph.rca_graph import replay_incident
from knowledge.embeddings import embed
from tools.rca.answers import IncidentQuery
from tools.rca.embeddings import DIMENSIONS, ChangeEmbeddings
from tools.rca.history.cases import History, case_query, load_history
from tools.rca.judges.local import RankerModel, load_model
from tools.rca.history.training import train_model
from tools.rca.resources import RcaResources

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rca"


def random_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=DATA / "cases-curl__curl.jsonl.gz")
    parser.add_argument("--commits", type=Path, default=DATA / "commits-curl__curl.jsonl.gz")
    parser.add_argument("--model", type=Path, help="a trained ranker (default: train one on 120 cases)")
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()

    history: History = load_history([args.cases], [args.commits])
    model: RankerModel = load_model(args.model) if args.model else train_model(history, history.cases[:120], None)
    model.uses_embeddings = True  # measure the semantic signal too, whatever the model was trained with
    commits = sorted(history.commits.values(), key=lambda commit: commit.landed_time, reverse=True)
    candidates = commits[: args.candidates]
    started = candidates[0].landed_time
    with tempfile.TemporaryDirectory() as folder:
        store = ChangeEmbeddings(Path(folder), embedder=lambda texts: random_vectors(len(texts)))
        store.add(candidates)
        resources = RcaResources(model=model, embeddings=store)
        embed(["warm up the embedding model"])
        queries = [
            IncidentQuery(text=query.text, title=query.title, started_at=started, repo=query.repo)
            for query in (case_query(case, symptom=index % 2 == 1) for index, case in enumerate(history.cases[-args.queries :]))
        ]
        replay_incident(queries[0], candidates, resources)  # first call builds caches
        latencies = []
        for query in queries:
            began = time.perf_counter()
            replay_incident(query, candidates, resources)
            latencies.append((time.perf_counter() - began) * 1000)
    print(
        f"{len(candidates)} candidates, {len(latencies)} incidents: "
        f"p50 {np.percentile(latencies, 50):.0f} ms, p95 {np.percentile(latencies, 95):.0f} ms, "
        f"max {max(latencies):.0f} ms"
    )


if __name__ == "__main__":
    main()
