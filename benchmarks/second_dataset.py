"""Write a TweetEval task's given train and test parts as `id,text,category` CSVs for `culprit reports evaluate`.

    .venv/bin/python benchmarks/second_dataset.py TASK_DIR OUT_DIR

TASK_DIR is one task folder of the public TweetEval benchmark (for example
`datasets/emotion` of the cardiffnlp/tweeteval repository): `mapping.txt`
(label number, tab, name) and `{train,val,test}_{text,labels}.txt`, one tweet
or label number a line. Writes OUT_DIR/train.csv and OUT_DIR/test.csv with
the label names as categories; the validation part is not used, so

    culprit reports evaluate OUT_DIR/test.csv --train OUT_DIR/train.csv --json

trains on exactly the given training part and scores on exactly the given
test part. Reads local files only; docs/reports.md (Evaluation) has the figures.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def read_lines(path: Path) -> list[str]:
    """The file's lines without their line ends (the tweets carry no newlines of their own)."""
    return path.read_text(encoding="utf-8").splitlines()


def read_mapping(path: Path) -> dict[str, str]:
    """Label number -> label name, from `mapping.txt` lines of the form NUMBER<TAB>NAME."""
    pairs = (line.split("\t", 1) for line in read_lines(path) if line.strip())
    return {number.strip(): name.strip() for number, name in pairs}


def convert(task_dir: Path, out_dir: Path, part: str, names: dict[str, str]) -> int:
    """Write one part as CSV; returns the number of rows, refusing a part whose text and label counts differ."""
    texts = read_lines(task_dir / f"{part}_text.txt")
    labels = read_lines(task_dir / f"{part}_labels.txt")
    if len(texts) != len(labels):
        raise SystemExit(f"{part}: {len(texts)} texts but {len(labels)} labels")
    with (out_dir / f"{part}.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "category"])
        for number, (text, label) in enumerate(zip(texts, labels, strict=True), start=1):
            writer.writerow([f"{part}-{number}", text.strip(), names[label.strip()]])
    return len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    names = read_mapping(args.task_dir / "mapping.txt")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for part in ("train", "test"):
        print(f"{part}: {convert(args.task_dir, args.out_dir, part, names)} rows -> {args.out_dir / (part + '.csv')}")


if __name__ == "__main__":
    main()
