"""A burst of ``POST /reports`` batches against intake replicas on loopback, and the classification after it.

    .venv/bin/python benchmarks/reports_burst.py [--batches 200] [--batch-size 50] [--replicas 2]
        [--no-classifier] [--json]

Starts ``--replicas`` uvicorn processes serving the report endpoint
(``bot.reports_http``, each with its background classification thread) on a
fresh PostgreSQL database of the local server, with an embedded classifier
trained on demo reports. After one warm-up batch per replica it sends every
batch at once, round-robin, and prints p50/p95/p99 latency and reports/s
(issue 7's goal: 200 x 50, p99 < 1 s, every report stored once). Then it waits
until the replicas have classified every report and checks that each one was
stored once, classified once and counted once in ``category_daily``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})

import aiohttp  # noqa: E402
import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Route  # noqa: E402

from benchmarks.slack_ack import percentile  # noqa: E402
from benchmarks.stack_processes import admin_sql, database_url, wait_until  # noqa: E402
from tests.vllm_server import free_port  # noqa: E402

TOKEN = "burst-reports-token"
DRAIN_TIMEOUT_S = 900


def intake_app() -> Starlette:
    """What each replica serves (uvicorn ``--factory``): the report endpoint alone."""
    from bot.reports_http import reports_endpoint
    from knowledge.config import get_settings

    return Starlette(routes=[Route("/reports", reports_endpoint(get_settings()), methods=["POST"])])


def train_classifier(path: Path) -> None:
    from knowledge.demo.reports import demo_reports
    from tools.reports.classifiers.embedded import EmbeddedClassifier
    from tools.reports.redaction import redact

    reports = demo_reports(days=21, seed=3).reports[::4][:240]
    EmbeddedClassifier.train([redact(r["text"]) for r in reports], [r["category"] for r in reports]).save(path)


def start_replica(
    port: int, environment: dict[str, str], log: Path, factory: str = "benchmarks.reports_burst:intake_app"
) -> subprocess.Popen[bytes]:
    """A uvicorn process serving ``factory``'s app on 127.0.0.1:``port``, logging to ``log``."""
    command = [
        sys.executable, "-m", "uvicorn", "--factory", factory,
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]
    with log.open("w") as handle:
        return subprocess.Popen(
            command, env=environment, stdout=handle, stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1], start_new_session=True,
        )


def batch_body(run: str, number: int, size: int) -> bytes:
    return json.dumps([
        {"id": f"{run}-{number}-{index}", "text": f"Checkout button does nothing after coupon (run {run}, batch {number}, report {index})"}
        for index in range(size)
    ]).encode()


async def burst(urls: list[str], bodies: list[bytes]) -> tuple[list[float], list[int], float]:
    """Every batch at once; aiohttp, whose per-request CPU is a fraction of httpx's, so the
    load generator takes less of the two cores it shares with the replicas."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as client:

        async def one(number: int, body: bytes) -> tuple[float, int]:
            started = time.perf_counter()
            async with client.post(urls[number % len(urls)], data=body, headers=headers) as response:
                await response.read()
                return time.perf_counter() - started, response.status

        started = time.perf_counter()
        outcomes = await asyncio.gather(*(one(number, body) for number, body in enumerate(bodies)))
        wall = time.perf_counter() - started
    return [seconds for seconds, _ in outcomes], [status for _, status in outcomes], wall


def count(engine: Any, statement: str, **params: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(statement), params).scalar() or 0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"arguments": vars(args), "load_average_at_start": os.getloadavg()}
    database = f"culprit_burst_{uuid.uuid4().hex[:10]}"
    url = database_url(database)
    workdir = Path(tempfile.mkdtemp(prefix="culprit-burst-"))
    admin_sql(f'CREATE DATABASE "{database}"')
    processes: list[subprocess.Popen[bytes]] = []
    engine = create_engine(url)
    try:
        from knowledge.db import migrate

        migrate(url)
        if not args.no_classifier:
            train_classifier(workdir / "data" / "models" / "report_classifier.model")
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CULPRIT_")},
            "CULPRIT_DATABASE_URL": url, "CULPRIT_DATA_DIR": str(workdir / "data"),
            "CULPRIT_REPORTS_TOKEN": TOKEN, "OMP_NUM_THREADS": "1",
        }
        ports = [free_port() for _ in range(args.replicas)]
        for number, port in enumerate(ports):
            processes.append(start_replica(port, environment, workdir / f"replica-{number}.log"))
        urls = [f"http://127.0.0.1:{port}/reports" for port in ports]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for number, (replica_url, process) in enumerate(zip(urls, processes, strict=True)):
            wait_until(lambda u=replica_url: _answers(u), f"replica {number}", 120, process)
            httpx.post(replica_url, content=batch_body("warm", number, 5), headers=headers, timeout=60).raise_for_status()
        wait_until(lambda: count(engine, "SELECT count(*) FROM bug_reports WHERE category IS NULL") == 0, "warm-up classified", 300)

        run_id = uuid.uuid4().hex[:6]
        bodies = [batch_body(run_id, number, args.batch_size) for number in range(args.batches)]
        sent = args.batches * args.batch_size
        cpu_before = cpu_seconds(processes)
        seconds, statuses, wall = asyncio.run(burst(urls, bodies))
        report["load_average_after_burst"] = os.getloadavg()
        report["burst_cpu_s"] = {name: round(after - cpu_before[name], 2) for name, after in cpu_seconds(processes).items()}
        prefix = f"{run_id}-%"
        stored = count(engine, "SELECT count(*) FROM bug_reports WHERE id LIKE :p", p=prefix)
        distinct = count(engine, "SELECT count(DISTINCT id) FROM bug_reports WHERE id LIKE :p", p=prefix)
        report["burst"] = {
            "requests": len(seconds), "not_200": sum(status != 200 for status in statuses),
            "p50_s": round(percentile(seconds, 50), 3), "p95_s": round(percentile(seconds, 95), 3),
            "p99_s": round(percentile(seconds, 99), 3), "max_s": round(max(seconds), 3),
            "wall_s": round(wall, 3), "reports_per_s": round(sent / wall, 1),
            "sent": sent, "stored": stored, "lost": sent - distinct, "duplicated": stored - distinct,
            "unclassified_at_answer": count(engine, "SELECT count(*) FROM bug_reports WHERE id LIKE :p AND category IS NULL", p=prefix),
        }
        started = time.monotonic()
        wait_until(lambda: count(engine, "SELECT count(*) FROM bug_reports WHERE category IS NULL") == 0, "classification", DRAIN_TIMEOUT_S)
        drained = time.monotonic() - started
        total = count(engine, "SELECT count(*) FROM bug_reports")
        report["classification"] = {
            "drained_after_burst_s": round(drained, 1),
            "reports_per_s": round(sent / drained, 1) if drained else None,
            "rows": total,
            "counted_in_category_daily": count(engine, "SELECT coalesce(sum(count), 0) FROM category_daily"),
        }
        report["load_average_at_end"] = os.getloadavg()
        report["goals"] = {
            "stored_exactly_once": stored == distinct == sent,
            "p99_under_1s": report["burst"]["p99_s"] < 1.0,
            "counted_exactly_once": report["classification"]["counted_in_category_daily"] == total,
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        engine.dispose()
        admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def cpu_seconds(replicas: list[subprocess.Popen[bytes]]) -> dict[str, float]:
    """CPU seconds used so far by the replicas, this load generator, and every PostgreSQL process."""
    def used(pid: int | str) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def is_postgres(pid: str) -> bool:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
        except OSError:
            return False

    return {
        "replicas": sum(used(process.pid) for process in replicas),
        "load_generator": used(os.getpid()),
        "postgres": sum(used(pid) for pid in os.listdir("/proc") if pid.isdigit() and is_postgres(pid)),
    }


def _answers(url: str) -> bool:
    try:
        return httpx.post(url, content=b"[]", timeout=2).status_code == 401
    except httpx.TransportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=200, help="batches sent at once")
    parser.add_argument("--batch-size", type=int, default=50, help="reports per batch")
    parser.add_argument("--replicas", type=int, default=2, help="intake processes, round-robin")
    parser.add_argument("--no-classifier", action="store_true", help="every report goes to 'other' (no MiniLM)")
    parser.add_argument("--json", action="store_true", help="the report as JSON only")
    args = parser.parse_args()
    report = run(args)
    print(json.dumps(report, indent=2))
    if not args.json:
        missed = [name for name, ok in report["goals"].items() if not ok]
        print("goals met" if not missed else f"goals missed: {', '.join(missed)}", file=sys.stderr)


if __name__ == "__main__":
    main()
