"""How often the page that answers a question is among the first three, for hybrid and each half alone.

All three methods run in one pass over the same collection snapshot, so the
comparison says whether fusing BM25 and embeddings earns its keep.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowledge.errors import InputError
from knowledge.ingest.rules import read_text
from tools.wiki.search import METHODS, Method, WikiSearcher

CUTOFF = 3
RANK_DEPTH = 10


@dataclass(frozen=True)
class WikiQuestion:
    """A question as a responder asks it and the page (relative path) that answers it."""

    question: str
    page: str
    service: str | None = None


@dataclass(frozen=True)
class MethodScore:
    recall_at_3: float
    mrr: float
    misses: tuple[WikiQuestion, ...]

    def as_dict(self) -> dict[str, float]:
        return {"recall_at_3": round(self.recall_at_3, 4), "mrr": round(self.mrr, 4)}


def load_questions(path: Path) -> list[WikiQuestion]:
    """Read ``{"question", "page"[, "service"]}`` lines; a bad line stops with its number."""
    if not path.is_file():
        raise InputError(f"question file {path} does not exist; pass a JSONL file of question/page lines")
    questions: list[WikiQuestion] = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):  # size-capped, UTF-8 or refused
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            questions.append(WikiQuestion(str(record["question"]), str(record["page"]), record.get("service")))
        except (json.JSONDecodeError, KeyError, TypeError, RecursionError) as error:
            raise InputError(
                f"{path}:{number}: expected a JSON object with 'question' and 'page' ({error})"
            ) from error
    if not questions:
        raise InputError(f"{path} holds no questions")
    return questions


def score_method(
    searcher: WikiSearcher,
    questions: list[WikiQuestion],
    method: Method,
    on_question: Callable[[], None] | None = None,
) -> MethodScore:
    """Recall@3 and mean reciprocal rank (over the first ten pages) of one retrieval method."""
    hits_at_cutoff = 0
    reciprocal_ranks = 0.0
    misses: list[WikiQuestion] = []
    for question in questions:
        pages = [hit.page for hit in searcher.search(question.question, question.service, RANK_DEPTH, method)]
        rank = pages.index(question.page) + 1 if question.page in pages else None
        if rank is not None and rank <= CUTOFF:
            hits_at_cutoff += 1
        else:
            misses.append(question)
        reciprocal_ranks += 1.0 / rank if rank else 0.0
        if on_question:
            on_question()
    return MethodScore(hits_at_cutoff / len(questions), reciprocal_ranks / len(questions), tuple(misses))


def evaluate(
    searcher: WikiSearcher, questions: list[WikiQuestion], on_question: Callable[[], None] | None = None
) -> dict[str, Any]:
    """The ``culprit wiki evaluate --json`` payload: hybrid scores at the top, single methods as baselines."""
    scores = {method: score_method(searcher, questions, method, on_question) for method in METHODS}
    hybrid = scores["hybrid"]
    unknown = sorted({q.page for q in questions} - {str(m.get("page")) for m in searcher.metadatas})
    return {
        "questions": len(questions),
        "chunks": len(searcher),
        **hybrid.as_dict(),
        "baselines": {method: scores[method].as_dict() for method in METHODS if method != "hybrid"},
        "misses": [{"question": q.question, "page": q.page} for q in hybrid.misses],
        "pages_not_indexed": unknown,
    }
