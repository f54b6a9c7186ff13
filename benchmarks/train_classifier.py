"""Time and peak memory of `culprit reports train` (fine-tuning included) on N labeled reports.

    nice -n 10 .venv/bin/python benchmarks/train_classifier.py [--file F] [--n 2000] [--steps 400] [--minutes 15]

Takes the first ``--n`` labeled reports of the file (cycled if the file is
shorter), trains as the command does and prints wall seconds per stage, CPU
seconds and the process's peak resident memory. On the shared 2-core machine
the wall figures grow with other people's load: the load average is printed
next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from itertools import cycle, islice
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tools.reports.classifiers.embedded import EmbeddedClassifier
from tools.reports.classifiers.finetune import FineTuning
from tools.reports.intake import read_report_file
from tools.reports.redaction import redact

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "../shared/data/reports/app_reviews.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE.resolve())
    parser.add_argument("--n", type=int, default=2000, help="labeled reports to train on")
    parser.add_argument("--steps", type=int, default=FineTuning.max_steps)
    parser.add_argument("--minutes", type=float, default=FineTuning.max_seconds / 60)
    parser.add_argument("--no-fine-tune", action="store_true")
    args = parser.parse_args()

    reports = list(islice(cycle([r for r in read_report_file(args.file)[0] if r.label]), args.n))
    stages: dict[str, float] = {}
    started = time.perf_counter()

    def on_progress(stage: str, done: int, total: int) -> None:
        stages.setdefault(stage, time.perf_counter())
        if done >= total:
            stages[f"{stage} done"] = time.perf_counter()

    tuning = None if args.no_fine_tune else FineTuning(max_steps=args.steps, max_seconds=args.minutes * 60)
    model = EmbeddedClassifier.train(
        [redact(r.text) for r in reports], [r.label or "" for r in reports], fine_tune=tuning, on_progress=on_progress
    )
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "reports": len(reports),
        "categories": len(model.categories),
        "fine_tuned": model.tuned is not None,
        "wall_s": round(wall, 1),
        "stage_starts_s": {name: round(at - started, 1) for name, at in stages.items()},
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "load_average_1m": os.getloadavg()[0],
    }, indent=2))


if __name__ == "__main__":
    main()
