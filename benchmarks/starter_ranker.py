"""Leave-one-repository-out for the starter ranker, against BM25 in the same run.

For each of curl, git and haproxy: a portable ranker (no repository maps or
indexes, no embeddings: what ``scripts/build_starter_ranker.py`` ships) learns
from the other two repositories' cases, then answers every case of the held-out
one, full text and symptom-only. Calibration: gate precision and reach at 0.5,
and mean confidence beside the top-5 hit rate.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/starter_ranker.py [--data ../shared/data/rca] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from graph.rca_graph import replay_incident
from tools.rca.history.backtest import BacktestOptions, run_backtest
from tools.rca.history.cases import History, load_history
from tools.rca.history.training import train_model
from tools.rca.judges.local import LocalJudge

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rca"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    history = load_history(sorted(args.data.glob("cases-*.jsonl.gz")), sorted(args.data.glob("commits-*.jsonl.gz")))
    results: dict[str, dict[str, object]] = {}
    for held_out in history.repos():
        started = time.perf_counter()
        train = [case for case in history.cases if case.repo != held_out]
        model = train_model(history, train, None, portable=True)
        test = History([case for case in history.cases if case.repo == held_out], history.commits)
        results[held_out] = {"train_cases": len(train), "train_seconds": round(time.perf_counter() - started, 1)}
        for variant, symptom in (("full", False), ("symptom_only", True)):
            options = BacktestOptions(train_fraction=0.0, symptom=symptom)
            summary = run_backtest(test, replay_incident, LocalJudge, options, None, model)
            results[held_out][variant] = summary
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("held-out repository, variant: cases | starter top-1/top-5/MRR | BM25 top-1/top-5/MRR | gate@0.5 P/R")
    for repo, parts in results.items():
        for variant in ("full", "symptom_only"):
            summary = parts[variant]
            bm25 = summary["baselines"]["bm25"]
            print(f"{repo:16} {variant:12} {summary['n_cases']:4} | {summary['top1']:.3f}/{summary['top5']:.3f}/"
                  f"{summary['mrr']:.3f} | {bm25['top1']:.3f}/{bm25['top5']:.3f}/{bm25['mrr']:.3f} | "
                  f"{summary['gate']['precision']:.2f}/{summary['gate']['reach']:.2f}")


if __name__ == "__main__":
    main()
