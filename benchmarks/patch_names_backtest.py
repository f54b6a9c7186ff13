"""The backtest with and without the names a change's patch holds (functions touched, identifiers
added or removed), on history files mined from real repositories.

Mine the public mirrors first (``culprit history mine PATH --repo curl/curl --out DIR``, likewise
git and haproxy: the commit files then carry ``functions`` and ``identifiers``), then run each arm
as its own process (signals cache a change's words by id, so the arms must not share one):

    PYTHONPATH=$PWD .venv/bin/python benchmarks/patch_names_backtest.py --data DIR [--since 2019-01-01]
    PYTHONPATH=$PWD .venv/bin/python benchmarks/patch_names_backtest.py --data DIR [--since ...] --without-names

Per arm, one ranker learns from every repository's earlier 70% of cases (as ``culprit backtest``
does, no embeddings) and answers the later 30%, as written and symptom-only. ``--without-names``
drops both fields from every commit before anything is learned, which is what a history file
written before they existed gives. ``--since`` keeps only cases whose incident started on or
after that date (the commits stay whole, so every signal sees the same past).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from graph.rca_graph import replay_incident
from tools.rca.history.backtest import BacktestOptions, run_backtest, split_repositories, train_on_earlier
from tools.rca.history.cases import History, load_history
from tools.rca.judges.local import LocalJudge


def _history(data: Path, since: datetime | None, without_names: bool) -> History:
    history = load_history(sorted(data.glob("cases-*.jsonl.gz")), sorted(data.glob("commits-*.jsonl.gz")))
    if since is not None:
        history.cases = [case for case in history.cases if case.incident.started_at >= since]
    if without_names:
        history.commits = {
            sha: replace(commit, functions=(), identifiers=()) for sha, commit in history.commits.items()
        }
    return history


def _figures(summary: dict) -> dict[str, object]:  # type: ignore[type-arg]
    def scores(part: dict) -> dict[str, object]:  # type: ignore[type-arg]
        return {key: part[key] for key in ("n_cases", "top1", "top5", "mrr")} | {
            "bm25_top5": part["baselines"]["bm25"]["top5"],
            "gate": part["gate"],
        }

    return {"all": scores(summary), **{repo: scores(part) for repo, part in summary["per_repository"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with cases-*/commits-*.jsonl.gz")
    parser.add_argument("--since", type=lambda day: datetime.fromisoformat(day).replace(tzinfo=UTC))
    parser.add_argument("--without-names", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    history = _history(args.data, args.since, args.without_names)
    with_names = sum(1 for commit in history.commits.values() if commit.functions or commit.identifiers)
    model = train_on_earlier(history, split_repositories(history, 0.7), None)
    trained = time.perf_counter() - started
    results: dict[str, object] = {
        "arm": "without names" if args.without_names else "with names",
        "since": args.since.date().isoformat() if args.since else None,
        "cases": len(history.cases),
        "commits": len(history.commits),
        "commits_with_names": with_names,
        "train_seconds": round(trained, 1),
    }
    for variant, symptom in (("full", False), ("symptom_only", True)):
        options = BacktestOptions(symptom=symptom)
        summary = run_backtest(history, replay_incident, LocalJudge, options, None, model)
        results[variant] = _figures(summary)
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
