"""Election ranking: judges see small batches, winners advance until five remain.

A judge (a learned model or an LLM) is only asked to compare at most
``batch_size`` changes at once, which keeps LLM prompts short and lets batches
of one round be judged concurrently.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tools.rca.answers import CandidateChange, IncidentQuery, JudgedChange
from tools.rca.deadline import Deadline, check_deadline
from tools.rca.judges.protocol import Judge

FINALISTS = 5


@dataclass
class ElectionResult:
    """The finalists best first (scores from the last round), and how the election went."""

    winners: list[JudgedChange]
    rounds: int
    judge_calls: int
    judges_used: list[str] = field(default_factory=list)


def _batches(candidates: Sequence[CandidateChange], batch_size: int) -> list[list[CandidateChange]]:
    """Even batches no larger than ``batch_size``, so none is left with a lone straggler."""
    n_batches = -(-len(candidates) // batch_size)
    size = -(-len(candidates) // n_batches)
    return [list(candidates[start : start + size]) for start in range(0, len(candidates), size)]


def _valid(judged: list[JudgedChange], batch: Sequence[CandidateChange], keep: int) -> list[JudgedChange]:
    """Drop ids the judge invented or repeated, and scores that are not finite numbers (a NaN sorts
    anywhere and turns every confidence of the answer into NaN); never trust a judge to follow the contract."""
    allowed = {change.change_id for change in batch}
    seen: set[str] = set()
    kept: list[JudgedChange] = []
    for choice in judged:
        if choice.change_id in allowed and choice.change_id not in seen and math.isfinite(choice.score):
            seen.add(choice.change_id)
            kept.append(choice)
    return kept[:keep]


def elect(
    incident: IncidentQuery,
    candidates: Sequence[CandidateChange],
    judge: Judge,
    batch_size: int = 20,
    finalists: int = FINALISTS,
    max_workers: int = 4,
    deadline: Deadline | None = None,
) -> ElectionResult:
    """Run rounds until at most ``finalists`` remain; one batch of them is the final round.

    Each round after the first checks ``deadline``: an LLM judge's rounds are the slow part."""
    if batch_size <= finalists:
        raise ValueError(f"batch_size must exceed {finalists} so that each round shrinks the field")
    by_id = {change.change_id: change for change in candidates}
    field_: list[CandidateChange] = list(candidates)
    rounds = calls = 0
    judges: dict[str, None] = {}
    last: list[JudgedChange] = []
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        while field_:
            if rounds:
                check_deadline(deadline, f"election round {rounds + 1}")
            batches = _batches(field_, batch_size)
            keep = finalists
            # Each batch runs in a copy of the caller's context: log lines keep the incident id.
            contexts = [contextvars.copy_context() for _ in batches]
            results = list(
                pool.map(
                    lambda context, batch: context.run(lambda: _valid(judge.rank(incident, batch, keep), batch, keep)),
                    contexts,
                    batches,
                )
            )
            rounds += 1
            calls += len(batches)
            last = [choice for result in results for choice in result]
            for choice in last:
                judges[choice.judge] = None
            if len(batches) == 1:
                break
            field_ = [by_id[choice.change_id] for choice in last]
    last.sort(key=lambda choice: choice.score, reverse=True)
    return ElectionResult(winners=last[:finalists], rounds=rounds, judge_calls=calls, judges_used=list(judges))
