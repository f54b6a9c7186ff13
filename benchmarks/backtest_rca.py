"""Backtest the RCA engine on the shared history, full text and symptom-only, in one run.

Per repository: train on the earlier 70% of cases (one ranker for all
repositories, component maps per repository from commits before its test
period), answer the later 30%, and compare with BM25 and newest-first.

    .venv/bin/python benchmarks/backtest_rca.py [--data ../shared/data/rca] [--embeddings] [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from graph.rca_graph import replay_incident
from knowledge.config import get_settings
from tools.rca.history.backtest import BacktestOptions, run_backtest, split_repositories, train_on_earlier
from tools.rca.embeddings import ChangeEmbeddings
from tools.rca.history.cases import load_history
from tools.rca.resources import embeddings_dir, make_judge

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rca"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--train-fraction", type=float, default=0.7)
    parser.add_argument("--embeddings", action="store_true", help="use cached change embeddings (slow to fill)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    history = load_history(sorted(args.data.glob("cases-*.jsonl.gz")), sorted(args.data.glob("commits-*.jsonl.gz")))
    settings = get_settings()
    embeddings = ChangeEmbeddings(embeddings_dir(settings.data_dir)) if args.embeddings else None
    model = train_on_earlier(history, split_repositories(history, args.train_fraction), embeddings)  # once, for both
    results = {}
    for variant, symptom in (("full", False), ("symptom_only", True)):
        options = BacktestOptions(train_fraction=args.train_fraction, symptom=symptom)
        results[variant] = run_backtest(
            history, replay_incident, lambda trained: make_judge("local", trained, settings), options, embeddings, model
        )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for variant, summary in results.items():
        print(f"== {variant}")
        for repo, numbers in {**summary["per_repository"], "all": summary}.items():
            bm25 = numbers["baselines"]["bm25"]
            recency = numbers["baselines"]["recency"]
            print(
                f"{repo:18} n={numbers['n_cases']:4} top1 {numbers['top1']:.3f} top5 {numbers['top5']:.3f} "
                f"mrr {numbers['mrr']:.3f} recall {numbers['recall']:.3f} | bm25 top5 {bm25['top5']:.3f} "
                f"mrr {bm25['mrr']:.3f} | newest top5 {recency['top5']:.3f} | gate p/r "
                f"{numbers['gate']['precision']:.2f}/{numbers['gate']['reach']:.2f} | "
                f"p50/p95 {numbers['latency_ms']['p50']:.0f}/{numbers['latency_ms']['p95']:.0f} ms"
            )


if __name__ == "__main__":
    main()
