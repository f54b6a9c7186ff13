"""What remembering a thread costs a mention: per-turn latency with and without the checkpoint, and its size.

Asks 20 turns in one thread with the deterministic router (questions it answers with the menu, so no
tool's own work is timed) on a fresh SQLite file, and on PostgreSQL when a URL is given:

    .venv/bin/python benchmarks/thread_memory.py [postgresql+psycopg://postgres@127.0.0.1:5432/DB]

The PostgreSQL database must exist and be empty of culprit's tables or hold them migrated.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from graph.agent import answer_question
from graph.agent_tools import AgentContext
from graph.memory import open_saver, thread_id
from knowledge.config import Settings
from knowledge.db import migrate, utcnow

TURNS = 20


def _unused(*_: object) -> object:
    raise RuntimeError("no tool is asked for")


def measure(url: str, data_dir: Path) -> None:
    migrate(url)
    settings = Settings(data_dir=data_dir, database_url=url)
    thread = f"{time.time():.6f}"
    context = AgentContext(
        started_at=utcnow(), database_url=url, investigate=_unused, wiki=_unused,  # type: ignore[arg-type]
        channel="CBENCH", thread_ts=thread,
    )  # fmt: skip
    for remember in (False, True):
        times = []
        for turn in range(TURNS):
            start = time.perf_counter()
            answer_question(f"hmm {turn}", context, settings, remember=remember)
            times.append((time.perf_counter() - start) * 1000)
        label = "with the checkpoint" if remember else "without memory"
        print(f"{url.split(':')[0]:<22} {label:<20} p50 {statistics.median(times):6.1f} ms  max {max(times):6.1f} ms")
    with open_saver(url) as saver:
        latest = saver.get_tuple({"configurable": {"thread_id": thread_id("CBENCH", thread)}})
    messages = latest.checkpoint["channel_values"]["messages"] if latest else []
    print(f"{'':<22} stored after {TURNS} turns: {len(messages)} messages")


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        measure(f"sqlite:///{Path(directory) / 'culprit.db'}", Path(directory))
        if len(sys.argv) > 1:
            measure(sys.argv[1], Path(directory))


if __name__ == "__main__":
    main()
