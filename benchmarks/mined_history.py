"""Mined past investigations against the shared ones (``shared/data/rca``), on the same repositories.

First mine the public mirrors (``culprit history mine PATH --repo curl/curl --out DIR``
for curl, git and haproxy), then:

    PYTHONPATH=$PWD .venv/bin/python benchmarks/mined_history.py --mined DIR [--data ../shared/data/rca] [--json]

It prints:

1. recall: the share of the shared cases whose fix commit the miner turned into a
   case naming the same culprit;
2. a backtest of the shared later 30% of cases per repository, answered by a model
   trained on the shared earlier 70% and by one trained on every mined case that
   started before that repository's test period (full text and symptom-only);
3. how many mined cases of a repository its own model needs to beat the starter
   ranker that never saw it (trained, portable, on the other two repositories).

Everything without embeddings. The mirrors are not needed by the tests.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from graph.rca_graph import replay_incident
from knowledge.ingest.history_files import HistoryCase
from tools.rca.history.backtest import BacktestOptions, run_backtest, split_repositories
from tools.rca.history.cases import History, load_history
from tools.rca.history.training import train_model
from tools.rca.judges.local import LocalJudge, RankerModel

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rca"
SIZES = (25, 50, 100, 200)


def recall(data: Path, mined: Path) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for shared_file in sorted(data.glob("cases-*.jsonl.gz")):
        mined_file = mined / shared_file.name
        if not mined_file.exists():
            continue
        shared = [json.loads(line) for line in gzip.open(shared_file, "rt")]
        mined_cases = {row["provenance"]["fix_sha"]: row for row in map(json.loads, gzip.open(mined_file, "rt"))}
        hits = sum(
            1 for row in shared
            if set(row["truth"]["culprits"]) & set(mined_cases.get(row["provenance"]["fix_sha"], {}).get("truth", {}).get("culprits", []))
        )  # fmt: skip
        found[shared[0]["repo"]] = {"shared": len(shared), "mined": len(mined_cases), "found": hits,
                                    "recall": round(hits / len(shared), 4)}  # fmt: skip
    return found


def _scores(model: RankerModel, test: Sequence[HistoryCase], history: History) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for variant, symptom in (("full", False), ("symptom_only", True)):
        summary = run_backtest(History(list(test), history.commits), replay_incident, LocalJudge,
                               BacktestOptions(train_fraction=0.0, symptom=symptom), None, model)  # fmt: skip
        bm25 = summary["baselines"]["bm25"]  # type: ignore[index]
        out[variant] = {"top1": summary["top1"], "top5": summary["top5"], "mrr": summary["mrr"],
                        "bm25_top5": bm25["top5"], "gate_precision": summary["gate"]["precision"],  # type: ignore[index]
                        "gate_reach": summary["gate"]["reach"]}  # type: ignore[index]  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--mined", type=Path, required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--part", choices=("all", "compare", "curve"), default="all",
                        help="compare: 1 and 2 only; curve: 3 only (each takes minutes)")
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, object] = {"recall": recall(args.data, args.mined)}
    shared = load_history(sorted(args.data.glob("cases-*.jsonl.gz")), sorted(args.data.glob("commits-*.jsonl.gz")))
    mined = load_history(sorted(args.mined.glob("cases-*.jsonl.gz")), sorted(args.mined.glob("commits-*.jsonl.gz")))
    splits = split_repositories(shared, 0.7)
    cutoffs = {repo: float(later[0].incident.time) for repo, (_earlier, later) in splits.items()}
    shared_train = [case for earlier, _later in splits.values() for case in earlier]
    mined_train = [case for case in mined.cases if case.repo in cutoffs and case.incident.time < cutoffs[case.repo]]
    combined = History(shared.cases, {**mined.commits, **shared.commits})
    if args.part != "curve":
        results["mined_vs_shared"] = _compare(shared, splits, cutoffs, shared_train, mined_train, combined)
    if args.part != "compare":
        results["own_model_vs_starter"] = _curve(shared, splits, cutoffs, mined_train, combined)
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results, indent=2))


def _compare(shared: History, splits: dict, cutoffs: dict[str, float],  # type: ignore[type-arg]
             shared_train: list[HistoryCase], mined_train: list[HistoryCase], combined: History) -> dict[str, object]:
    shared_model = train_model(shared, shared_train, None, cutoffs=cutoffs)
    mined_model = train_model(combined, mined_train, None, cutoffs=cutoffs)
    comparison: dict[str, object] = {"shared_train_cases": len(shared_train), "mined_train_cases": len(mined_train)}
    for repo, (_earlier, later) in splits.items():
        comparison[repo] = {"cases": len(later), "shared": _scores(shared_model, later, shared),
                            "mined": _scores(mined_model, later, combined)}  # fmt: skip
    every = [case for _earlier, later in splits.values() for case in later]
    comparison["all"] = {"cases": len(every), "shared": _scores(shared_model, every, shared),
                         "mined": _scores(mined_model, every, combined)}  # fmt: skip
    return comparison


def _curve(shared: History, splits: dict, cutoffs: dict[str, float],  # type: ignore[type-arg]
           mined_train: list[HistoryCase], combined: History) -> dict[str, object]:
    """Per repository: the starter that never saw it, and its own model on its latest N mined cases."""
    curve: dict[str, object] = {}
    for repo, (_earlier, later) in splits.items():
        others = [case for case in shared.cases if case.repo != repo]
        starter = train_model(shared, others, None, portable=True)
        own_cases = [case for case in mined_train if case.repo == repo]
        points: dict[str, object] = {"starter": _scores(starter, later, shared)}
        for size in [n for n in SIZES if n < len(own_cases)] + [len(own_cases)]:
            own = train_model(combined, own_cases[-size:], None, cutoffs={repo: cutoffs[repo]})
            points[str(size)] = _scores(own, later, combined)
        curve[repo] = points
        print(json.dumps({repo: points}), file=sys.stderr)  # partial results, in case the run is cut short
    return curve


if __name__ == "__main__":
    main()
