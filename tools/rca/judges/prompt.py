"""The words an LLM judge reads: one prompt for serving and for fine-tuning.

The LLM judge and ``culprit export-sft`` both build their messages here, so a
model fine-tuned on the exported examples sees at serve time exactly what it
was trained on. Candidates are labelled with capital letters: a single letter
is one token in every common tokenizer, so the first generated token's
logprobs are a distribution over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import product
from string import ascii_uppercase

from knowledge.changes import ChangeRecord
from tools.rca.answers import IncidentQuery

SYSTEM_PROMPT = (
    "You help incident responders find the code change that caused an incident. "
    "You get the incident as known when it started and a lettered list of changes "
    "that landed before it. Answer with the letters of the changes most likely to "
    "have caused it, most likely first, separated by spaces."
)

MAX_INCIDENT_CHARS = 2000
MAX_TITLE_CHARS = 160
MAX_PATHS = 4


def candidate_labels(count: int) -> list[str]:
    """``A``..``Z`` for batches up to 26; two letters beyond, so no label prefixes another."""
    if count <= len(ascii_uppercase):
        return list(ascii_uppercase[:count])
    pairs = ["".join(pair) for pair in product(ascii_uppercase, repeat=2)]
    if count > len(pairs):
        raise ValueError(f"a batch of {count} changes is too large to label; use at most {len(pairs)}")
    return pairs[:count]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def minutes_before(incident: IncidentQuery, change: ChangeRecord) -> int:
    return round((_utc(incident.started_at) - _utc(change.landed_time)).total_seconds() / 60)


def _shorten(value: str, limit: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _paths(change: ChangeRecord) -> str:
    if not change.paths:
        return "no files listed"
    shown = ", ".join(change.paths[:MAX_PATHS])
    hidden = len(change.paths) - MAX_PATHS
    return f"{shown} (+{hidden} more)" if hidden > 0 else shown


def incident_section(incident: IncidentQuery) -> str:
    """Only what a responder knows at the start: title, text, service, start time."""
    started = _utc(incident.started_at).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Incident: {_shorten(incident.title, MAX_TITLE_CHARS) or '(no title)'}",
        f"Service: {incident.service or 'unknown'}",
        f"Started: {started}",
        _shorten(incident.text, MAX_INCIDENT_CHARS),
    ]
    return "\n".join(lines)


def batch_section(incident: IncidentQuery, batch: Sequence[ChangeRecord], labels: Sequence[str]) -> str:
    lines = ["Changes that landed before the incident:"]
    for label, change in zip(labels, batch, strict=True):
        lines.append(
            f"{label}. {_shorten(change.title, MAX_TITLE_CHARS)} "
            f"({minutes_before(incident, change)} min before; {_paths(change)})"
        )
    return "\n".join(lines)


def judge_messages(incident: IncidentQuery, batch: Sequence[ChangeRecord]) -> list[dict[str, str]]:
    """System and user messages for one batch; the assistant answers with letters."""
    labels = candidate_labels(len(batch))
    user = "\n\n".join(
        [
            incident_section(incident),
            batch_section(incident, batch, labels),
            "Which changes most likely caused the incident? Answer with letters, most likely first.",
        ]
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
