"""The LLM classifier on vLLM: category definitions and few-shot examples in, one category name out.

vLLM's structured outputs (``{"choice": [...]}`` in ``extra_body``) make the
model answer with exactly one category name, so there is nothing to parse; the
answer's token log-probabilities give the confidence.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from knowledge.config import shown_url
from knowledge.db import session_scope
from knowledge.errors import CulpritError, InputError
from knowledge.reports import Category
from tools.llm.client import LLMEndpoint, openai_client
from tools.reports.classifiers import OTHER, Prediction

SYSTEM_PROMPT = (
    "You sort user bug reports for an on-call team. Read the report and answer with the "
    "name of the one category that fits best, exactly as written below, and nothing else.\n\n"
    "Categories:\n{definitions}"
)


@dataclass(frozen=True)
class CategoryDefinition:
    """What the model is told about a category: its name, meaning and example reports."""

    name: str
    description: str = ""
    examples: list[str] = field(default_factory=list)


def categories_from_database(url: str) -> list[CategoryDefinition]:
    """The configured categories (`culprit reports categories FILE` loads them)."""
    with session_scope(url) as session:
        rows = session.scalars(select(Category).order_by(Category.name)).all()
        definitions = [CategoryDefinition(r.name, r.description, list(r.examples or [])) for r in rows]
    if not definitions:
        raise InputError("no report categories are configured; run `culprit reports categories FILE`")
    return definitions


def build_messages(
    categories: list[CategoryDefinition], report: str, examples_per_category: int = 2
) -> list[dict[str, str]]:
    """System prompt with definitions, then few-shot turns (one example per category in turn)."""
    definitions = "\n".join(
        f"- {c.name}: {c.description}".rstrip(": ") for c in categories
    )
    messages = [{"role": "system", "content": SYSTEM_PROMPT.format(definitions=definitions)}]
    for round_index in range(examples_per_category):
        for category in categories:
            if round_index < len(category.examples):
                messages.append({"role": "user", "content": category.examples[round_index]})
                messages.append({"role": "assistant", "content": category.name})
    messages.append({"role": "user", "content": report})
    return messages


def answer_choice(categories: list[CategoryDefinition]) -> dict[str, Any]:
    """The vLLM request fields that restrict the answer to one category name."""
    return {"structured_outputs": {"choice": [c.name for c in categories]}}


def confidence_from_logprobs(logprobs: Any) -> float:
    """Probability of the whole answer: exp of the summed token log-probabilities.

    A server's numbers are not trusted: a missing, non-numeric or NaN log-probability
    gives no confidence (NaN once passed every threshold as 1.0), a positive one is a
    probability of one (``exp`` of a huge one overflowed)."""
    tokens = getattr(logprobs, "content", None) if logprobs is not None else None
    if not tokens:
        return 0.0
    try:
        total = sum(float(t.logprob if hasattr(t, "logprob") else t["logprob"]) for t in tokens)
    except (TypeError, ValueError, KeyError):
        return 0.0
    return math.exp(min(total, 0.0)) if not math.isnan(total) else 0.0


class LLMClassifier:
    """Classifies each report with one constrained chat completion; requests run concurrently."""

    def __init__(self, endpoint: LLMEndpoint, categories: list[CategoryDefinition], concurrency: int = 8) -> None:
        self.model = endpoint.model
        self.definitions = categories
        self.concurrency = concurrency
        self.client = openai_client(endpoint)

    @property
    def categories(self) -> list[str]:
        return [c.name for c in self.definitions]

    def classify(self, texts: list[str]) -> list[Prediction]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._classify_one, texts))

    def _classify_one(self, text: str) -> Prediction:
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=build_messages(self.definitions, text),  # type: ignore[arg-type]
                temperature=0.0,
                max_tokens=32,
                logprobs=True,
                extra_body=answer_choice(self.definitions),
            )
        except Exception as error:  # the SDK raises many kinds; all mean the server failed us
            raise CulpritError(
                f"the LLM classifier at {shown_url(str(self.client.base_url))} failed ({error}); "
                "check CULPRIT_LLM_BASE_URL or train the embedded classifier"
            ) from error
        try:
            choice = response.choices[0]
            answer = (choice.message.content or "").strip()
        except (AttributeError, IndexError, KeyError, TypeError):
            # The server answered, but not with a completion: like an answer outside the choices,
            # it is never trusted, and raising would keep the whole batch pending on every pass.
            return Prediction(OTHER, 0.0)
        if answer not in self.categories:
            return Prediction(OTHER, 0.0)
        return Prediction(answer, confidence_from_logprobs(choice.logprobs))
