"""Macro-F1 of the fine-tuned classifier against TF-IDF on one stratified 80/20 split, for several head C values.

    nice -n 10 .venv/bin/python benchmarks/finetune_quality.py [--file F] [--steps 200] [--minutes 15] [--lr 1e-4]

The same pipeline as `culprit reports evaluate FILE` (fine-tune MiniLM's top
layers on the training part, embed, fit the head on [embedding, TF-IDF]),
except that it embeds with the float encoder and tries head strengths 1, 10
and 100, also with the embedding alone, to show where the gain comes from.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sklearn.linear_model import LogisticRegression

from tools.reports.classifiers.embedded import _features, _word_vectorizer
from tools.reports.classifiers.finetune import FineTuning, adapted_encoder, fine_tune_encoder
from tools.reports.evaluation import Labeled, score, stratified_split, tfidf_baseline
from tools.reports.intake import read_report_file

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "../shared/data/reports/app_reviews.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE.resolve())
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    reports = [r for r in read_report_file(args.file)[0] if r.label]
    train, test = stratified_split(Labeled([r.text for r in reports], [r.label or "" for r in reports]), args.seed)
    started = time.perf_counter()
    tuned = fine_tune_encoder(
        train.texts, train.labels,
        FineTuning(max_steps=args.steps, max_seconds=args.minutes * 60, learning_rate=args.lr, epochs=1000),
    )
    tuning_s = time.perf_counter() - started
    encoder = adapted_encoder(tuned)
    encoder.max_seq_length = 128
    train_vectors = encoder.encode(train.texts, batch_size=64, normalize_embeddings=True)
    test_vectors = encoder.encode(test.texts, batch_size=64, normalize_embeddings=True)
    labels = sorted(set(train.labels))
    words = _word_vectorizer()
    train_words, test_words = words.fit_transform(train.texts), words.transform(test.texts)
    results = {}
    for c in (1.0, 10.0, 100.0):
        both = LogisticRegression(C=c, max_iter=5000).fit(_features(train_words, train_vectors), train.labels)
        alone = LogisticRegression(C=c, max_iter=5000).fit(train_vectors, train.labels)
        results[f"C={c:g}"] = {
            "embedding_and_tfidf": round(score(test.labels, list(both.predict(_features(test_words, test_vectors))), labels)[1], 4),
            "embedding_alone": round(score(test.labels, list(alone.predict(test_vectors)), labels)[1], 4),
        }
    print(json.dumps({
        "n_train": len(train.texts), "n_test": len(test.texts),
        "tuning_s": round(tuning_s, 1),
        "macro_f1": results,
        "tfidf_baseline_macro_f1": round(score(test.labels, tfidf_baseline(train.texts, train.labels, test.texts), labels)[1], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average_1m": os.getloadavg()[0],
    }, indent=2))


if __name__ == "__main__":
    main()
