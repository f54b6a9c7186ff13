"""How much of a labeled file's test part has a near copy in its training part, and where the errors are.

    .venv/bin/python benchmarks/near_duplicates.py [--file F] [--seed 42] [--threshold 0.7]
    .venv/bin/python benchmarks/near_duplicates.py --file TEST --train TRAIN

Same stratified 80/20 split as `culprit reports evaluate FILE`; with
``--train``, the given split of `culprit reports evaluate TEST --train TRAIN`
(FILE is then the test part). For each test
report, the most similar training report by character 2-5-gram TF-IDF cosine;
prints how many test reports have one at or above ``--threshold``, how often
that neighbour carries the same label, and the TF-IDF baseline's accuracy on
those reports and on the rest. A set whose test part is mostly copies of its
training part (the app reviews: augmented variants such as "is" -> "cost")
scores the copies almost perfectly, so the macro-F1 any classifier can gain is
decided by the rest.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from tools.reports.evaluation import Labeled, stratified_split, tfidf_baseline
from tools.reports.intake import read_report_file

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "../shared/data/reports/app_reviews.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE.resolve())
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--train", type=Path, help="train on exactly this labeled file; --file is the test part")
    args = parser.parse_args()

    if args.train is None:
        train, test = stratified_split(labeled(args.file), args.seed)
    else:
        train, test = labeled(args.train), labeled(args.file)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True).fit(train.texts)
    similarity = (chars.transform(test.texts) @ chars.transform(train.texts).T).toarray()
    nearest, best = similarity.argmax(axis=1), similarity.max(axis=1)
    copied = best >= args.threshold
    truth = np.asarray(test.labels)
    neighbour_labels = np.asarray(train.labels)[nearest]
    baseline_right = np.asarray(tfidf_baseline(train.texts, train.labels, test.texts)) == truth
    print(json.dumps({
        "n_train": len(train.texts), "n_test": len(test.texts), "threshold": args.threshold,
        "test_with_near_copy": int(copied.sum()),
        "near_copy_same_label": round(float((neighbour_labels[copied] == truth[copied]).mean()), 3),
        "baseline_accuracy_on_near_copies": round(float(baseline_right[copied].mean()), 3),
        "baseline_accuracy_on_the_rest": round(float(baseline_right[~copied].mean()), 3),
    }, indent=2))


def labeled(path: Path) -> Labeled:
    """The labeled reports of a CSV or JSONL file, as `culprit reports evaluate` reads them."""
    reports = [r for r in read_report_file(path)[0] if r.label]
    return Labeled([r.text for r in reports], [r.label or "" for r in reports])


if __name__ == "__main__":
    main()
