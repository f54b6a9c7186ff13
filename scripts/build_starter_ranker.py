"""Rebuild the starter ranker shipped in the package (``tools/rca/judges/starter_ranker.model``).

    PYTHONPATH=$PWD .venv/bin/python scripts/build_starter_ranker.py [DATA_DIR] [--out PATH]

DATA_DIR holds the ``cases-*``/``commits-*`` files of ``shared/data/rca``
(default ``../shared/data/rca``). The model is portable (no repository maps or
indexes) and trained without embeddings, so it needs neither MiniLM nor the
team's history; see docs/rca.md for how it compares with BM25 and when a
team's own model overtakes it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.rca.history.cases import load_history  # noqa: E402
from tools.rca.history.training import train_model  # noqa: E402
from tools.rca.judges.local import STARTER, save_model  # noqa: E402
from tools.rca.judges.starter import STARTER_FILE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=Path("../shared/data/rca"))
    parser.add_argument("--out", type=Path, default=STARTER_FILE)
    args = parser.parse_args()
    cases = sorted(args.data_dir.glob("cases-*.jsonl.gz"))
    commits = sorted(args.data_dir.glob("commits-*.jsonl.gz"))
    if not cases or not commits:
        sys.exit(f"no cases-*/commits-*.jsonl.gz files in {args.data_dir}")
    started = time.perf_counter()
    history = load_history(cases, commits)
    model = replace(train_model(history, history.cases, None, portable=True), origin=STARTER)
    path = save_model(model, args.out)
    print(f"starter ranker: {model.n_cases} cases from {', '.join(model.repos)}, "
          f"calibration prior {model.confidence.prior:.3f}, {path.stat().st_size} bytes at {path} "
          f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
