"""The LLM judge: a vLLM server ranks one batch, scored from the logprobs of its first answer token.

One chat request per batch. vLLM's structured outputs constrain the answer to
the batch's letters (``structured_outputs: {"choice": [...]}``), and the top
logprobs of the first generated token give a probability for every letter at
once, so the keep-best list comes from one distribution instead of repeated
sampling. Anything other than a well-formed answer (timeout, dead server, HTTP
error, empty or malformed reply, a letter outside the batch) hands the batch to
the fallback judge, so a sick LLM never fails an RCA; the answer names the
fallback and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import openai
import structlog

from knowledge.config import Settings
from tools.llm.client import LLMAnswerTooLarge, LLMEndpoint, openai_client
from tools.rca.answers import CandidateChange, IncidentQuery, JudgedChange
from tools.rca.judges.prompt import candidate_labels, judge_messages
from tools.rca.judges.protocol import Judge

log = structlog.get_logger(__name__)

MAX_TOP_LOGPROBS = 20  # vLLM's default --max-logprobs
LOGPROB_ROUNDING = 1e-6
"""How far above 0 a logprob may come from float rounding alone (a certain token); any higher is a
probability over 1, which no model gives, so the answer is refused rather than normalised into a ranking."""


class MalformedAnswer(ValueError):
    """The server answered, but not with something the judge can score."""


def letter_distribution(top_logprobs: Sequence[tuple[str, float]], labels: Sequence[str]) -> dict[str, float]:
    """Probability per label from the first token's top logprobs.

    A token counts for every label it begins (split evenly), whitespace aside;
    mass the top-k list does not show is spread over the labels it does not
    mention (vLLM lists masked letters with -9999, so those keep none), and
    the result is normalised to sum to one. A logprob above 0 (beyond rounding) makes the whole answer
    malformed, whatever its token: it would count as more than certain, or overflow ``math.exp``.
    """
    mass = dict.fromkeys(labels, 0.0)
    listed: set[str] = set()
    for token, logprob in top_logprobs:
        if logprob > LOGPROB_ROUNDING:  # NaN compares false, and is skipped below
            raise MalformedAnswer(f"logprob {logprob:g} of token {token[:20]!r} is above 0, a probability over 1")
        text = token.strip()
        if not text or not math.isfinite(logprob):
            continue
        matches = [label for label in labels if label.startswith(text)]
        listed.update(matches)
        for label in matches:
            mass[label] += math.exp(logprob) / len(matches)
    seen = sum(mass.values())
    if seen <= 0.0:
        raise MalformedAnswer("no candidate letter among the answer's logprobs")
    unlisted = [label for label in labels if label not in listed]
    if unlisted and seen < 1.0:
        for label in unlisted:
            mass[label] = (1.0 - seen) / len(unlisted)
    total = sum(mass.values())
    return {label: value / total for label, value in mass.items()}


def _first_token_logprobs(response: Any) -> tuple[str, list[tuple[str, float]]]:
    """The answer text and its first token's top logprobs, or MalformedAnswer."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise MalformedAnswer("no choices in the answer")
    choice = choices[0]
    content = (choice.message.content or "").strip() if choice.message else ""
    tokens = choice.logprobs.content if choice.logprobs and choice.logprobs.content else None
    if not tokens:
        raise MalformedAnswer("no logprobs in the answer")
    top = [(entry.token, float(entry.logprob)) for entry in tokens[0].top_logprobs or []]
    if not top:
        raise MalformedAnswer("no top logprobs for the first token")
    return content, top


class LLMJudge:
    """Ranks a batch with a vLLM server; thread-safe, so batches can be judged concurrently."""

    def __init__(self, endpoint: LLMEndpoint, fallback: Judge) -> None:
        self.endpoint = endpoint
        self.model = endpoint.model
        self.name = f"llm:{endpoint.model}"
        self.fallback = fallback
        self.client = openai_client(endpoint)  # never retried: a late answer goes to the fallback at once

    @classmethod
    def from_settings(cls, settings: Settings, fallback: Judge) -> LLMJudge:
        return cls(LLMEndpoint.from_settings(settings), fallback)

    def rank(self, incident: IncidentQuery, batch: Sequence[CandidateChange], keep: int) -> list[JudgedChange]:
        if not batch:
            return []
        try:
            probabilities = self.letter_probabilities(incident, batch)
        except Exception as error:  # whatever the server did, the RCA goes on with the fallback
            return self._fall_back(incident, batch, keep, error)
        ids = {label: change.change_id for label, change in zip(candidate_labels(len(batch)), batch, strict=True)}
        ranked = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)[:keep]
        return [JudgedChange(change_id=ids[label], score=score, judge=self.name) for label, score in ranked]

    def letter_probabilities(self, incident: IncidentQuery, batch: Sequence[CandidateChange]) -> dict[str, float]:
        """One constrained request; the distribution over the batch's letters."""
        labels = candidate_labels(len(batch))
        response = self.client.chat.completions.create(
            model=self.model,
            messages=judge_messages(incident, [candidate.change for candidate in batch]),  # type: ignore[arg-type]
            max_tokens=4,
            temperature=0.0,
            logprobs=True,
            top_logprobs=min(len(labels), MAX_TOP_LOGPROBS),
            extra_body={"structured_outputs": {"choice": labels}},
        )
        answer, top = _first_token_logprobs(response)
        if answer not in labels:
            raise MalformedAnswer(f"answer {answer[:40]!r} is not a letter of this batch")
        return letter_distribution(top, labels)

    def _fall_back(
        self, incident: IncidentQuery, batch: Sequence[CandidateChange], keep: int, error: Exception
    ) -> list[JudgedChange]:
        reason = fallback_reason(error)
        log.warning(
            "llm_judge_fallback",
            reason=reason,  # never the error's message: it may quote the incident the server was sent
            error_type=type(error).__name__,
            model=self.model,
            batch_size=len(batch),
            incident=incident.incident_id,
        )
        label = f"{self.fallback.name} (LLM fallback: {reason})"
        return [replace(judged, judge=label) for judged in self.fallback.rank(incident, batch, keep)]


def fallback_reason(error: Exception) -> str:
    """A few words a responder can act on."""
    if isinstance(error, openai.APITimeoutError):
        return "timeout"
    if isinstance(error, LLMAnswerTooLarge):
        return f"answer too large: {error.message}"
    if isinstance(error, openai.APIConnectionError):
        return "server unreachable"
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}"
    if isinstance(error, MalformedAnswer):
        return f"malformed answer: {error}"
    return f"malformed answer: {type(error).__name__}"
