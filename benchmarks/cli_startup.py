"""Wall time of ``culprit`` as a responder or a scheduler runs it, each a fresh process.

Run from the repository root:

    .venv/bin/python -m benchmarks.cli_startup [--runs 5] [--commits 20000] [--demo-data DIR]

It times ``culprit --help``, ``culprit rca --help``, ``culprit ingest git`` with
nothing new on a generated repository (written with ``git fast-import``; its
first ingest is timed once) and, given ``--demo-data``, ``culprit rca`` on the
demo's example incident. ``DIR`` is a data directory the demo ran in:

    CULPRIT_DATA_DIR=/tmp/culprit-demo .venv/bin/culprit demo

Each figure is the min and median of ``--runs`` runs; the load average is
printed with them, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.ingest.synthetic_repo import write_history

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}


def culprit_command() -> list[str]:
    """The installed console script, exactly what a user types."""
    script = Path(sys.executable).with_name("culprit")
    if not script.exists():
        sys.exit(f"no culprit script next to {sys.executable}: install the project (bash scripts/test.sh does)")
    return [str(script)]


def run_once(args: list[str], data_dir: Path) -> float:
    environment = {**os.environ, **OFFLINE, "CULPRIT_DATA_DIR": str(data_dir)}
    environment.pop("CULPRIT_DATABASE_URL", None)
    started = time.perf_counter()
    finished = subprocess.run([*culprit_command(), *args], env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        sys.exit(f"culprit {' '.join(args)} failed ({finished.returncode}):\n{finished.stderr}")
    return seconds


def measure(label: str, args: list[str], data_dir: Path, runs: int) -> None:
    seconds = [run_once(args, data_dir) for _ in range(runs)]
    print(f"  {label:<46} min {min(seconds):6.2f} s   median {statistics.median(seconds):6.2f} s   ({runs} runs)")


def demo_rca_args(demo_data: Path) -> list[str]:
    """``culprit rca`` on the example incident the demo wrote, as its closing line suggests."""
    example = demo_data / "demo" / "example-incident.json"
    if not example.exists():
        sys.exit(f"{example} not found: run `CULPRIT_DATA_DIR={demo_data} culprit demo` first")
    incident = json.loads(example.read_text())["incident"]
    return ["rca", incident["text"], "--title", incident["title"], "--service", incident["service"],
            "--at", incident["time_iso"]]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (min and median are printed)")
    parser.add_argument("--commits", type=int, default=20_000, help="size of the generated repository")
    parser.add_argument("--demo-data", type=Path, help="a data directory where `culprit demo` ran")
    arguments = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="culprit-startup-") as scratch:
        data_dir = Path(scratch) / "data"
        measure("culprit --help", ["--help"], data_dir, arguments.runs)
        measure("culprit rca --help", ["rca", "--help"], data_dir, arguments.runs)
        repo = Path(scratch) / "synthetic"
        started = time.perf_counter()
        write_history(repo, arguments.commits, merge_every=20, feature_len=4)
        print(f"  (generated {arguments.commits} commits with git fast-import in {time.perf_counter() - started:.1f} s)")
        ingest = ["ingest", "git", str(repo), "--repo", "bench/synthetic"]
        print(f"  {'culprit ingest git, first run':<46} {run_once(ingest, data_dir):10.2f} s")
        measure(f"culprit ingest git, nothing new ({arguments.commits} commits)", ingest, data_dir, arguments.runs)
    if arguments.demo_data is None:
        print("  culprit rca on the demo: skipped; run `CULPRIT_DATA_DIR=/tmp/culprit-demo culprit demo`, "
              "then pass --demo-data /tmp/culprit-demo")  # fmt: skip
    else:
        measure("culprit rca on the demo's example incident", demo_rca_args(arguments.demo_data),
                arguments.demo_data, arguments.runs)  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
