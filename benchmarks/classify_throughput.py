"""Reports classified per second by the embedded classifier (redaction + MiniLM + head), on this CPU.

    .venv/bin/python benchmarks/classify_throughput.py [--file F] [--n 2000] [--threads 2] [--without-onnxruntime]

Trains the head on the first part of a labeled file, then times classifying
``--n`` other reports in batches as the intake does. Prints wall-clock
throughput and CPU seconds: on a shared machine the wall figure falls with
other people's load, while ``n / cpu_seconds`` (reports per busy core-second)
estimates what a quiet core does. Also prints the CPU, whether it multiplies
bfloat16 natively and so which path MiniLM took (``inference_path``);
``--without-onnxruntime`` measures torch float32 on a CPU that would use ONNX
Runtime, as if onnxruntime were not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from tools.reports.classifiers.embedded import EmbeddedClassifier, native_bfloat16, report_embeddings
from tools.reports.redaction import redact
from tools.reports.intake import BATCH, read_report_file

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "../shared/data/reports/app_reviews.csv"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_model() -> str:
    """The CPU's model name as Linux reports it (the figures depend on it), else what platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE.resolve())
    parser.add_argument("--n", type=int, default=2000, help="reports to classify")
    parser.add_argument("--train", type=int, default=1500, help="reports to train the head on")
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="MiniLM's intra-op threads (torch or ONNX Runtime)"
    )
    parser.add_argument("--without-onnxruntime", action="store_true", help="torch float32 instead of ONNX Runtime")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.without_onnxruntime:
        sys.modules["onnxruntime"] = None  # importing it now fails as if it were not installed

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
        "cpu": _cpu_model(),
        "native_bfloat16": native_bfloat16(),
        "inference_path": model.inference_path,
        "threads": args.threads,
        "wall_s": round(wall, 2),
        "reports_per_s": round(classified / wall, 1),
        "cpu_s": round(cpu, 2),
        "reports_per_cpu_s": round(classified / cpu, 1),
        "load_average_1m": os.getloadavg()[0],
    }, indent=2))


if __name__ == "__main__":
    main()
