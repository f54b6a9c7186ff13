"""An incident with a batch of changes, and the local judge the LLM judge falls back to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.changes import change_record
from tools.rca.answers import CandidateChange, IncidentQuery
from tools.rca.judges.local import LocalJudge
from tools.rca.signals.features import FEATURE_NAMES

STARTED = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def incident() -> IncidentQuery:
    return IncidentQuery(
        title="Checkout returns 502 for card payments",
        text="Since 09:30 card payments fail with 502 from the payments gateway; PayPal still works.",
        service="payments",
        started_at=STARTED,
        incident_id="INC-42",
    )


def make_changes(count: int) -> list[CandidateChange]:
    """Changes landed every 20 minutes before the incident, with a retriever signal each."""
    return [
        CandidateChange(
            change_record(
                f"{index:040x}",
                f"payments: change number {index}",
                STARTED - timedelta(minutes=20 * (index + 1)),
                [f"services/payments/handler_{index}.py", "services/payments/config.yaml"],
            ),
            features=dict.fromkeys(FEATURE_NAMES, 0.0) | {"bm25_share": (count - index) / count},
        )
        for index in range(count)
    ]


@pytest.fixture
def local_judge() -> LocalJudge:
    """The untrained local judge: its heuristic ranking is what a fallback must return."""
    return LocalJudge()
