"""The one interface every judge implements, so the election ranker never knows which it has."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tools.rca.answers import CandidateChange, IncidentQuery, JudgedChange


class Judge(Protocol):
    """Picks the ``keep`` changes of one batch most likely to have caused the incident."""

    name: str

    def rank(
        self, incident: IncidentQuery, batch: Sequence[CandidateChange], keep: int
    ) -> list[JudgedChange]:
        """Best first; at most ``keep`` entries, each a change id from ``batch``."""
        ...
