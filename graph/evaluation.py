"""Scoring the mention agent on a set of responder questions (``culprit agent evaluate FILE``).

Each question names the tool and arguments it should get and a fact its
answer must contain. Tool accuracy counts questions routed to the right
tool; argument accuracy also needs the expected arguments (free text such as
a symptom is not compared); answer accuracy runs the whole agent and looks
for the fact. Before the questions, one RCA is stored as the answer of an
evaluation thread, so "why #2?" has something to explain; its incident id
starts with ``eval-``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from graph.agent import answer_question, load_vocabulary, route
from graph.agent_tools import AgentContext
from knowledge.config import Settings
from knowledge.errors import InputError
from tools.feedback.votes import place_answer
from tools.rca.answers import IncidentQuery, RcaAnswer
from tools.rca.thread import suggestion_in_thread

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_QUESTIONS = 2000
EVAL_CHANNEL = "CEVAL"
EVAL_THREAD = "eval-thread"
FREE_TEXT_ARGS = frozenset({"symptom", "query"})


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    tool: str
    args: dict[str, Any]
    fact: str
    split: str = "tune"


@dataclass
class QuestionSet:
    started_at: datetime
    thread_question: str
    questions: list[Question]


@dataclass
class Outcome:
    id: str
    split: str
    question: str
    expected_tool: str
    tool: str
    args: dict[str, Any]
    tool_ok: bool
    args_ok: bool
    answer_ok: bool | None = None
    answer: str = ""


@dataclass
class Scores:
    """Accuracies over one split (or all), as fractions of its questions."""

    n: int
    tool: float
    args: float
    answer: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"questions": self.n, "tool_accuracy": self.tool, "argument_accuracy": self.args, "answer_accuracy": self.answer}


@dataclass
class Evaluation:
    path: str
    via: str
    outcomes: list[Outcome] = field(default_factory=list)

    def scores(self, split: str | None = None) -> Scores:
        chosen = [o for o in self.outcomes if split is None or o.split == split]
        n = max(len(chosen), 1)
        answered = [o for o in chosen if o.answer_ok is not None]
        return Scores(
            n=len(chosen),
            tool=sum(o.tool_ok for o in chosen) / n,
            args=sum(o.args_ok for o in chosen) / n,
            answer=sum(bool(o.answer_ok) for o in answered) / len(answered) if answered else None,
        )

    def as_dict(self) -> dict[str, Any]:
        splits = sorted({o.split for o in self.outcomes})
        return {
            "file": self.path,
            "via": self.via,
            "all": self.scores().as_dict(),
            **{split: self.scores(split).as_dict() for split in splits},
            "misses": [
                {"id": o.id, "question": o.question, "expected": o.expected_tool, "tool": o.tool, "args": o.args,
                 "answer_ok": o.answer_ok, "answer": o.answer[:300]}
                for o in self.outcomes if not (o.tool_ok and o.args_ok and o.answer_ok is not False)
            ],
        }  # fmt: skip


def load_questions(path: Path) -> QuestionSet:
    """The question file, size-capped and checked item by item (a bad item names its position)."""
    if not path.is_file():
        raise InputError(f"no question file at {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"{path} is over {MAX_FILE_BYTES // 1024} KiB; split it")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        started_at = datetime.fromisoformat(str(document["started_at"]).replace("Z", "+00:00"))
        items = document["questions"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as error:
        raise InputError(f"{path}: not a question file ({error}); see benchmarks/data/agent_questions.json") from None
    if not isinstance(items, list) or not 0 < len(items) <= MAX_QUESTIONS:
        raise InputError(f"{path}: 'questions' must be a list of 1 to {MAX_QUESTIONS} items")
    questions = []
    for number, item in enumerate(items, start=1):
        try:
            questions.append(Question(
                id=str(item.get("id") or number), question=str(item["question"])[:2000], tool=str(item["tool"]),
                args=dict(item.get("args") or {}), fact=str(item["fact"]), split=str(item.get("split") or "tune"),
            ))  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InputError(f"{path}: question {number} lacks question, tool or fact ({error})") from None
    if started_at.tzinfo is None:
        raise InputError(f"{path}: started_at needs a time zone, e.g. 2025-03-20T10:00:00Z")
    return QuestionSet(started_at, str(document.get("thread_question") or ""), questions)


def _args_match(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    for key, value in expected.items():
        if key in FREE_TEXT_ARGS:
            continue
        got = actual.get(key)
        if isinstance(value, int | float) and isinstance(got, int | float):
            if not math.isclose(float(value), float(got)):
                return False
        elif str(got).lower() != str(value).lower():
            return False
    return True


def _fact_holds(fact: str, answer: str, rank_ids: dict[int, str], expected_args: dict[str, Any]) -> bool:
    if fact == "@rank":
        change_id = rank_ids.get(int(expected_args.get("rank", 0)))
        return change_id is not None and change_id[:10] in answer
    lowered = answer.lower()
    return any(option.strip().lower() in lowered for option in fact.split("|"))


def prepare_thread(question_set: QuestionSet, context: AgentContext) -> dict[int, str]:
    """Store one RCA as the evaluation thread's answer; its suggestions' change ids by rank."""
    if not question_set.thread_question:
        return {}
    incident_id = f"eval-{question_set.started_at:%Y%m%dT%H%M}"
    service = None
    text = question_set.thread_question
    if " service:" in f" {text}":
        text, _, service = text.partition("service:")
        text, service = text.strip(), service.strip() or None
    answer: RcaAnswer = context.investigate(
        IncidentQuery(text=text, started_at=question_set.started_at, service=service, incident_id=incident_id)
    )
    place_answer(incident_id, EVAL_CHANNEL, EVAL_THREAD, database_url=context.database_url)
    ranks: dict[int, str] = {}
    for rank in range(1, len(answer.suggestions) + 1):
        detail = suggestion_in_thread(EVAL_CHANNEL, EVAL_THREAD, rank, database_url=context.database_url)
        if detail is not None and detail.change_id:
            ranks[rank] = detail.change_id
    return ranks


def evaluate(
    path: Path,
    context: AgentContext,
    settings: Settings,
    *,
    with_answers: bool = True,
    split: str | None = None,
    progress: Callable[[], None] | None = None,
) -> Evaluation:
    """Route (and, with ``with_answers``, answer) every question (of ``split``) at the set's incident time."""
    question_set = load_questions(path)
    if split is not None:
        question_set.questions = [q for q in question_set.questions if q.split == split]
        if not question_set.questions:
            raise InputError(f"{path}: no question in split {split!r}")
    context = replace(context, started_at=question_set.started_at, channel=EVAL_CHANNEL, thread_ts=EVAL_THREAD)
    vocabulary = load_vocabulary(context.database_url)
    rank_ids = prepare_thread(question_set, context) if with_answers else {}
    evaluation = Evaluation(path=str(path), via="llm" if settings.llm_configured else "router")
    for question in question_set.questions:
        if settings.llm_configured and with_answers:
            reply = answer_question(question.question, context, settings, remember=False)  # each stands alone
            tool, args = (reply.tool_calls[0] if reply.tool_calls else ("menu", {}))
            text = reply.text
        else:
            tool, args = route(question.question, vocabulary, context.service)
            text = answer_question(question.question, context, settings, remember=False).text if with_answers else ""
        outcome = Outcome(
            id=question.id, split=question.split, question=question.question, expected_tool=question.tool,
            tool=tool, args=args, tool_ok=tool == question.tool,
            args_ok=tool == question.tool and _args_match(question.args, args),
            answer_ok=_fact_holds(question.fact, text, rank_ids, question.args) if with_answers else None,
            answer=text,
        )  # fmt: skip
        evaluation.outcomes.append(outcome)
        if progress:
            progress()
    return evaluation
