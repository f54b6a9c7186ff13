"""How long storing one pathological 5 MiB report holds the GIL of the process that serves requests.

    .venv/bin/python benchmarks/gil_hold.py [--bytes 5242880] [--concurrent 1] [--json]

A heartbeat thread sleeps 5 ms in a loop and records the longest gap between
its wake-ups while a batch of one report is redacted and hashed, first on a
thread of this process (as the server did before) and then by the redaction worker process
(:mod:`tools.reports.redaction_pool`). The longest gap is how long a ``/healthz``
or a Slack ack would have waited; ``--concurrent N`` stores N such batches at
once, as a burst of ``POST /reports`` does (threads then contend for the GIL).
Print ``uptime`` with it: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any

PATHOLOGICAL = ["a.", "a@", "1.", "::", "4111 ", "a.a@1.::4111-"]
BEAT_S = 0.005


def longest_gap(work: Callable[[], Any]) -> tuple[float, float]:
    """(seconds ``work`` took, longest heartbeat gap in seconds while it ran)."""
    done = threading.Event()
    gaps: list[float] = []

    def beat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(BEAT_S)
            now = time.perf_counter()
            gaps.append(now - last - BEAT_S)
            last = now

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    started = time.perf_counter()
    work()
    took = time.perf_counter() - started
    done.set()
    thread.join()
    return took, max(gaps, default=0.0)


def _at_once(count: int, prepare: Callable[..., Any], batch: list[Any]) -> None:
    with ThreadPoolExecutor(max_workers=count) as threads:
        list(threads.map(lambda _: prepare(batch, "bench", datetime.now(UTC)), range(count)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", type=int, default=5 * 1024 * 1024)
    parser.add_argument("--concurrent", type=int, default=1, help="batches stored at once, each on its own thread")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from tools.reports.intake import IncomingReport, prepared_rows
    from tools.reports.redaction_pool import RedactionPool

    pool = RedactionPool()
    pool.prepared_rows([IncomingReport(id="warm-up", text="warm up")], "bench", datetime.now(UTC))  # start the worker
    modes: dict[str, Any] = {"thread": prepared_rows, "process": pool.prepared_rows}
    rows = []
    for piece in PATHOLOGICAL:
        batch = [IncomingReport(id="bench", text=(piece * (args.bytes // len(piece) + 1))[: args.bytes])]
        for mode, prepare in modes.items():
            took, gap = longest_gap(partial(_at_once, args.concurrent, prepare, batch))
            rows.append({"text": f"{piece!r} repeated", "mode": mode, "seconds": took, "longest_gap_s": gap})
    pool.shutdown()
    print(json.dumps(rows, indent=2) if args.json else "\n".join(
        f"{r['text']:<24} {r['mode']:<8} took {r['seconds']:.2f} s, longest GIL gap {r['longest_gap_s']*1000:.0f} ms"
        for r in rows))


if __name__ == "__main__":
    main()
