"""Reports classified per second by the embedded classifier (redaction + MiniLM + head), on this CPU.

    .venv/bin/python benchmarks/classify_throughput.py [--file F] [--n 2000] [--threads 2]

Trains the head on the first part of a labeled file, then times classifying
``--n`` other reports in batches as the intake does. Prints wall-clock
throughput and CPU seconds: on a shared machine the wall figure falls with
other people's load, while ``n / cpu_seconds`` (reports per busy core-second)
estimates what a quiet core does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from tools.reports.classifiers.embedded import EmbeddedClassifier, report_embeddings
from tools.reports.redaction import redact
from tools.reports.intake import BATCH, read_report_file

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "../shared/data/reports/app_reviews.csv"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE.resolve())
    parser.add_argument("--n", type=int, default=2000, help="reports to classify")
    parser.add_argument("--train", type=int, default=1500, help="reports to train the head on")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    reports = [r for r in read_report_file(args.file)[0] if r.label]
    train, test = reports[: args.train], reports[args.train : args.train + args.n]
    model = EmbeddedClassifier.train([redact(r.text) for r in train], [r.label or "" for r in train])
    report_embeddings(["warm up"])

    wall, cpu = time.perf_counter(), _cpu_seconds()
    classified = 0
    for start in range(0, len(test), BATCH):
        batch = [redact(r.text) for r in test[start : start + BATCH]]
        classified += len(model.classify(batch))
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    print(json.dumps({
        "reports": classified,
        "threads": args.threads,
        "wall_s": round(wall, 2),
        "reports_per_s": round(classified / wall, 1),
        "cpu_s": round(cpu, 2),
        "reports_per_cpu_s": round(classified / cpu, 1),
        "load_average_1m": os.getloadavg()[0],
    }, indent=2))


if __name__ == "__main__":
    main()
