"""Fine-tuning examples for an LLM judge, from past investigations.

Each example is one election batch as the LLM judge would send it: the incident
as known at its start (its own fields only; a case's truth and provenance never
reach the prompt) and 2-20 of the case's candidates with the true culprit at a
random position. The prompt comes from :mod:`tools.rca.judges.prompt`, the same
builder the LLM judge serves with.

Two record types:

- ``chat``: ``{"messages": [system, user, assistant]}``; the assistant answers
  with the culprit's letter, the token the served judge reads its scores from.
- ``ranked``: ``{"messages": [system, user], "ranking": [...], "relevance": [...]}``;
  every letter of the batch, culprit first with relevance 1, the others after
  it with relevance 0 (their order among themselves is unknown), for listwise
  or pairwise training (e.g. preference pairs culprit > other).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from knowledge.errors import InputError
from knowledge.ingest.history_files import HistoryCase
from tools.rca.history.cases import History, case_candidates, case_query, culprits
from tools.rca.history.sft_format import MAX_CANDIDATES, MIN_CANDIDATES, RecordFormat
from tools.rca.judges.prompt import candidate_labels, judge_messages


@dataclass
class ExportSummary:
    """What was written and why cases were left out."""

    cases: int = 0
    examples: int = 0
    skipped_culprit_unknown: int = 0
    skipped_culprit_after_start: int = 0
    skipped_too_few_candidates: int = 0
    candidates_per_example: Counter[int] = field(default_factory=Counter)
    culprit_positions: Counter[int] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        mean = (
            sum(size * count for size, count in self.candidates_per_example.items()) / self.examples
            if self.examples
            else 0.0
        )
        return {
            "cases": self.cases,
            "examples": self.examples,
            "skipped": {
                "culprit_not_in_commit_files": self.skipped_culprit_unknown,
                "culprit_landed_after_start": self.skipped_culprit_after_start,
                "too_few_candidates": self.skipped_too_few_candidates,
            },
            "mean_candidates": round(mean, 2),
            "culprit_positions": dict(sorted(self.culprit_positions.items())),
        }


def check_bounds(min_candidates: int, max_candidates: int) -> None:
    if not MIN_CANDIDATES <= min_candidates <= max_candidates <= MAX_CANDIDATES:
        raise InputError(
            f"--min and --max must satisfy {MIN_CANDIDATES} <= min <= max <= {MAX_CANDIDATES} "
            f"(got {min_candidates} and {max_candidates})"
        )


def _record(
    case: HistoryCase,
    history: History,
    size: int,
    rng: random.Random,
    form: RecordFormat,
    symptom: bool,
    summary: ExportSummary,
) -> dict[str, Any] | None:
    true_ids = culprits(case)
    candidates = case_candidates(case, history.commits)
    found = [change for change in candidates if change.id in true_ids]
    if not found:
        if true_ids & set(case.candidates) & history.commits.keys():
            summary.skipped_culprit_after_start += 1  # a candidate only by a file's say-so: not known at the start
        else:
            summary.skipped_culprit_unknown += 1
        return None
    others = [change for change in candidates if change.id not in true_ids]
    size = min(size, len(others) + 1)
    if size < MIN_CANDIDATES:
        summary.skipped_too_few_candidates += 1
        return None
    batch = rng.sample(others, size - 1)
    position = rng.randrange(size)
    batch.insert(position, rng.choice(found))
    labels = candidate_labels(size)
    messages = judge_messages(case_query(case, symptom=symptom), batch)
    summary.examples += 1
    summary.candidates_per_example[size] += 1
    summary.culprit_positions[position] += 1
    if form is RecordFormat.CHAT:
        return {"messages": [*messages, {"role": "assistant", "content": labels[position]}]}
    ranking = [labels[position], *(label for index, label in enumerate(labels) if index != position)]
    return {"messages": messages, "ranking": ranking, "relevance": [1] + [0] * (size - 1)}


def sft_records(
    history: History,
    cases: Iterable[HistoryCase],
    min_candidates: int = MIN_CANDIDATES,
    max_candidates: int = MAX_CANDIDATES,
    seed: int = 0,
    form: RecordFormat = RecordFormat.CHAT,
    symptom: bool = False,
    summary: ExportSummary | None = None,
) -> Iterator[dict[str, Any]]:
    """One record per usable case; the same seed gives the same file.

    ``symptom`` keeps only what a responder sees at first (the first sentence,
    no paths, code names or ``subsystem:`` prefix), as real incidents read.
    """
    check_bounds(min_candidates, max_candidates)
    summary = summary if summary is not None else ExportSummary()
    rng = random.Random(seed)
    for case in cases:
        summary.cases += 1
        size = rng.randint(min_candidates, max_candidates)
        record = _record(case, history, size, rng, form, symptom, summary)
        if record is not None:
            yield record


def write_jsonl(records: Iterable[dict[str, Any]], handle: TextIO) -> None:
    for record in records:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def export_sft(
    history: History,
    out: Path,
    min_candidates: int = MIN_CANDIDATES,
    max_candidates: int = MAX_CANDIDATES,
    seed: int = 0,
    form: RecordFormat = RecordFormat.CHAT,
    symptom: bool = False,
    cases: Iterable[HistoryCase] | None = None,
) -> ExportSummary:
    """Write ``out`` (JSON lines); ``cases`` lets a caller wrap them in a progress bar."""
    check_bounds(min_candidates, max_candidates)
    if out.is_dir():
        raise InputError(f"{out} is a directory: give a file name such as {out / 'sft.jsonl'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary()
    records = sft_records(
        history, history.cases if cases is None else cases, min_candidates, max_candidates, seed, form, symptom, summary
    )
    with out.open("w", encoding="utf-8") as handle:
        write_jsonl(records, handle)
    return summary
