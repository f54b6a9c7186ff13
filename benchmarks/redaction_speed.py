"""Redaction speed per MB on pathological and normal reports at several sizes, and its recall and false positives.

    .venv/bin/python benchmarks/redaction_speed.py [--sizes 49152,524288,5242880] [--json]

Linear redaction shows as a flat seconds-per-MB column down the sizes of one
input; a quadratic pattern doubles it with every doubling of the size (the old
e-mail pattern, timed here on small sizes only, for comparison). The quality
figures come from the labelled set in ``tests/reports/redaction_labelled.jsonl``
(``tools/reports/redaction_quality.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from knowledge.demo.reports import demo_reports
from tools.reports.redaction import redact
from tools.reports.redaction_quality import read_labelled, score

LABELLED = Path(__file__).resolve().parents[1] / "tests/reports/redaction_labelled.jsonl"
OLD_EMAIL = re.compile(r"\b[\w.+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
MB = 1024 * 1024


def _normal_text() -> str:
    """Demo reports joined by newlines: mostly words, with the e-mails, phones and tokens real reports carry."""
    return "\n".join(report["text"] for report in demo_reports(days=14, seed=7).reports)


INPUTS: dict[str, Callable[[], str]] = {
    "normal reports": _normal_text,
    "a. repeated (issue 15)": lambda: "a.",
    "a@ repeated": lambda: "a@",
    "1. repeated": lambda: "1.",
    ":: repeated": lambda: "::",
    "digits and spaces": lambda: "4111 ",
    "dense secrets": lambda: "jane@example.com 4111 1111 1111 1111 10.0.0.1 +44 20 7946 0958 sk_live_abcdefghij0123 ",
}


def _timed(function: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    function(text)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=f"{48 * 1024},{512 * 1024},{5 * MB}", help="report sizes in bytes, comma-separated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    rows = []
    for name, unit in INPUTS.items():
        piece = unit()
        for size in sizes:
            text = (piece * (size // len(piece) + 1))[:size]
            seconds = _timed(redact, text)
            rows.append({"input": name, "bytes": size, "seconds": round(seconds, 3), "s_per_mb": round(seconds / (size / MB), 3)})
    for size in (8 * 1024, 16 * 1024, 32 * 1024):
        seconds = _timed(lambda text: OLD_EMAIL.sub("[email]", text), "a." * (size // 2))
        rows.append({"input": "old e-mail pattern, a. repeated", "bytes": size, "seconds": round(seconds, 3), "s_per_mb": round(seconds / (size / MB), 3)})

    quality = score(read_labelled(LABELLED))
    summary = {
        "load_average": os.getloadavg()[0],
        "speed": rows,
        "recall": round(quality.recall, 4),
        "secrets": quality.labelled.total(),
        "false_positives": len(quality.over_redacted),
        "kept_values": quality.kept_values,
        "false_positive_rate": round(quality.false_positive_rate, 4),
        "by_kind": quality.by_kind(),
        "missed": quality.missed,
    }
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    print(f"load average {summary['load_average']:.1f}")
    print(f"{'input':<34} {'bytes':>9} {'seconds':>8} {'s/MB':>7}")
    for row in rows:
        print(f"{row['input']:<34} {row['bytes']:>9} {row['seconds']:>8.3f} {row['s_per_mb']:>7.3f}")
    print(f"\nlabelled set: recall {quality.recall:.1%} ({quality.caught.total()}/{quality.labelled.total()} secrets), "
          f"false positives {len(quality.over_redacted)}/{quality.kept_values} kept values ({quality.false_positive_rate:.1%})")
    for kind, (caught, labelled) in quality.by_kind().items():
        print(f"  {kind:<12} {caught}/{labelled}")
    for kind, redacted in quality.missed:
        print(f"  missed {kind}: {redacted}")


if __name__ == "__main__":
    main()
