"""How fast the wiki indexes and answers: chunks per second and search latency at 10,000 chunks.

On a shared machine compare chunks per CPU second too: wall-clock throughput
falls with the load average, CPU cost per chunk does not.

Generates a synthetic wiki (runbook-like pages of several sections each) in a
temporary folder, ingests it into a fresh embedded Chroma store with the packaged
MiniLM, then times hybrid searches. Goals: at least 50 chunks/s, p95 under 100 ms.

    .venv/bin/python benchmarks/wiki_speed.py [--chunks 10000] [--queries 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.config import Settings  # noqa: E402
from knowledge.embeddings import get_embedder  # noqa: E402
from knowledge.wiki.indexing import index_wiki  # noqa: E402
from knowledge.wiki.store import open_wiki, wiki_client  # noqa: E402
from tools.wiki.search import search_wiki, searcher_for  # noqa: E402

SECTIONS_PER_PAGE = 10
SECTION_NAMES = ("Symptoms", "Dashboards", "Mitigation", "Escalation", "Known issues", "Dependencies",
                 "Deployment", "Alerts", "Capacity", "History")  # fmt: skip
SYMPTOMS = ("p99 latency above {n} ms", "error rate over {n}%", "queue depth above {n}k messages",
            "replica lag of {n} seconds", "{n} pod restarts in ten minutes", "cache hit ratio under {n}%",
            "{n}% of sign-ins failing", "disk usage at {n}%", "connection pool at {n} of 100",
            "{n} timeouts per minute to the payment provider")  # fmt: skip
ACTIONS = ("roll back the last release with deployctl rollback {svc}", "scale {svc} out to {n} replicas",
           "turn on the {svc}.degraded_mode flag", "restart the {svc} consumers one at a time",
           "route reads to the primary database", "page the {team} secondary on-call",
           "open the {svc} overview board in Grafana", "pause the {svc} backfill job",
           "raise the memory limit of {svc} by one step", "warm the {svc} cache with the top keys")  # fmt: skip
NOUNS = ("checkout", "payments", "auth", "search", "feed", "catalog", "media", "billing", "orders", "ledger",
         "inventory", "shipping", "pricing", "reviews", "gateway", "notifications", "profiles", "carts")  # fmt: skip


def _section(rng: random.Random, service: str, team: str) -> str:
    sentences = []
    for _ in range(rng.randint(3, 5)):
        if rng.random() < 0.5:
            sentences.append(f"When {service} shows {rng.choice(SYMPTOMS).format(n=rng.randint(2, 99))}, "
                             f"{rng.choice(ACTIONS).format(svc=service, n=rng.randint(3, 30), team=team)}.")  # fmt: skip
        else:
            sentences.append(f"{rng.choice(ACTIONS).format(svc=service, n=rng.randint(3, 30), team=team).capitalize()} "
                             f"if the {rng.choice(NOUNS)} dependency is degraded.")  # fmt: skip
    return " ".join(sentences)


def write_synthetic_wiki(root: Path, chunks: int, seed: int = 0) -> list[str]:
    """Pages of ten sections each, about ``chunks`` sections in all; returns questions to time."""
    rng = random.Random(seed)
    questions = []
    for number in range(max(1, chunks // SECTIONS_PER_PAGE)):
        service = f"{rng.choice(NOUNS)}-{number}"
        team = f"team-{number % 40}"
        lines = [f"---\ntitle: Runbook {service}\ntype: runbook\nservices: [{service}]\n---\n# Runbook {service}"]
        for name in SECTION_NAMES:
            lines.append(f"\n## {name}\n{_section(rng, service, team)}")
        (root / f"runbooks/{service}.md").parent.mkdir(parents=True, exist_ok=True)
        (root / f"runbooks/{service}.md").write_text("\n".join(lines) + "\n")
        questions.append(f"{service} has {rng.choice(SYMPTOMS).format(n=rng.randint(2, 99))}, what do I do?")
    return questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "wiki"
        questions = write_synthetic_wiki(root, args.chunks)
        get_embedder()  # model loading is a one-off per process, not indexing work
        client = wiki_client(Settings(data_dir=Path(scratch) / "data"))
        collection = open_wiki(client)

        load_before = os.getloadavg()[0]
        started, cpu_started = time.perf_counter(), time.process_time()
        report = index_wiki(root, collection)
        index_seconds = time.perf_counter() - started
        index_cpu_seconds = time.process_time() - cpu_started

        started = time.perf_counter()
        searcher_for(collection)  # builds and caches the BM25 half the searches below reuse
        bm25_build_seconds = time.perf_counter() - started

        rng = random.Random(1)
        latencies = []
        for _ in range(args.queries):
            question = rng.choice(questions)
            service = question.split(" ", 1)[0] if rng.random() < 0.3 else None
            started = time.perf_counter()
            search_wiki(question, service=service, k=5, collection=open_wiki(client))
            latencies.append((time.perf_counter() - started) * 1000)

    latencies.sort()
    result = {
        "cores": os.cpu_count(),
        "load_average_before": round(load_before, 1),
        "chunks": report.chunks,
        "index_seconds": round(index_seconds, 1),
        "chunks_per_second": round(report.chunks / index_seconds, 1),
        "index_cpu_seconds": round(index_cpu_seconds, 1),
        "chunks_per_cpu_second": round(report.chunks / index_cpu_seconds, 1),
        "bm25_build_seconds": round(bm25_build_seconds, 2),
        "queries": len(latencies),
        "search_p50_ms": round(statistics.median(latencies), 1),
        "search_p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"indexed {result['chunks']} chunks in {result['index_seconds']} s: "
          f"{result['chunks_per_second']} chunks/s (goal >= 50)")  # fmt: skip
    print(f"  {result['index_cpu_seconds']} CPU s, {result['chunks_per_cpu_second']} chunks per CPU second; "
          f"load average {result['load_average_before']} on {result['cores']} cores when it started")  # fmt: skip
    print(f"BM25 built from the collection in {result['bm25_build_seconds']} s")
    print(f"hybrid search over {result['queries']} queries: p50 {result['search_p50_ms']} ms, "
          f"p95 {result['search_p95_ms']} ms (goal < 100)")  # fmt: skip


if __name__ == "__main__":
    main()
