"""The whole answer: evidence a responder can check, the confidence gate, and storage."""

from __future__ import annotations

import json
from dataclasses import replace
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from graph.rca_graph import replay_incident, run_rca
from knowledge.db import session_scope
from knowledge.incidents import Incident, Suggestion
from knowledge.ingest.change_store import store_changes
from knowledge.ingest.progress import Silent
from knowledge.ownership import OwnershipRule
from knowledge.services import Service
from tests.changes import change_record
from tools.rca.answers import Evidence, IncidentQuery
from tools.rca.confidence import ConfidenceModel
from tools.rca.explain import explain
from tools.feedback.confirmations import OPERATOR, confirm_cause
from tools.rca.history.cases import History, case_candidates, case_query
from tools.rca.history.from_store import store_history
from tools.rca.history.training import train_model
from tools.rca.judges.local import RankerModel, save_model
from tools.rca.signals.ownership import OwnershipContext
from tools.rca.resources import RcaResources

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_explanation_names_owner_path_terms_and_timing() -> None:
    ownership = OwnershipContext(
        rules=[
            OwnershipRule(source="CODEOWNERS", position=0, pattern="*", owners=["@core"], section=""),
            OwnershipRule(source="CODEOWNERS", position=1, pattern="/lib/http*", owners=["@web-team"], section=""),
        ],
        services=[
            Service(name="http-client", owner="@web-team", path_globs=["lib/http*"], depends_on=[]),
            Service(name="checkout", owner="@shop", path_globs=["app/checkout/*"], depends_on=["http-client"]),
        ],
    )
    change = change_record(
        "abc123", "http: rework chunked upload buffering", NOW - timedelta(minutes=90), ["lib/http.c", "configure.ac"],
        body="Reuse buffers in http_send_chunk().", added=120, deleted=40,
    )
    query = IncidentQuery(text="Chunked uploads hang in http_send_chunk() since noon", title="uploads hang",
                          started_at=NOW, service="checkout")
    evidence = explain(query, change, ownership)
    assert evidence.owners == ["@web-team", "@core"]  # lib/http.c by the later rule, configure.ac by "*"
    assert evidence.services == ["http-client"]
    assert evidence.dependency_path == ["checkout", "http-client"]
    assert "http_send_chunk" in evidence.matched_terms and "chunked" in evidence.matched_terms
    assert evidence.minutes_before_incident == 90.0
    assert "build" in evidence.risk
    text = " ".join(evidence.sentences)
    assert "90 minutes before" in text and "checkout -> http-client" in text
    assert "@web-team" not in text  # owners of a service other than the impacted one are no reason


def _resources(model: RankerModel, min_confidence: float) -> RcaResources:
    return RcaResources(model=model, min_confidence=min_confidence)


def test_gate_withholds_below_the_threshold_and_says_why(history: History, trained: RankerModel) -> None:
    case = history.cases[-1]
    candidates = case_candidates(case, history.commits)
    unsure = replace(trained, confidence=ConfidenceModel(model=None, prior=0.3))
    withheld, _kept = replay_incident(case_query(case), candidates, _resources(unsure, 0.5))
    assert not withheld.confident and withheld.suggestions == []
    assert withheld.confidence == 0.3
    assert len(withheld.strongest_signals) == 3 and all('"' in signal for signal in withheld.strongest_signals)
    answered, _kept = replay_incident(case_query(case), candidates, _resources(unsure, 0.2))
    assert answered.confident and len(answered.suggestions) == 5
    assert [s.rank for s in answered.suggestions] == [1, 2, 3, 4, 5]
    assert all(s.evidence.sentences for s in answered.suggestions)


def _store_changes(url: str, history: History) -> datetime:
    """Load the synthetic commits as changes; returns the start time of the last incident."""
    store_changes(url, history.commits.values(), Silent())
    with session_scope(url) as session:
        session.add(Service(name="widget-api", owner="@web", path_globs=["lib/http*"], depends_on=[]))
        session.add(OwnershipRule(source="CODEOWNERS", position=0, pattern="/lib/", owners=["@web"]))
    return history.cases[-1].incident.started_at


def test_run_rca_answers_from_the_store_and_keeps_suggestions(
    database_url: str, history: History, trained: RankerModel, data_dir  # noqa: ANN001
) -> None:
    from knowledge.config import Settings
    from tools.rca.resources import load_resources

    settings = Settings(data_dir=data_dir, database_url=database_url, min_confidence=0)
    started = _store_changes(database_url, history)
    save_model(trained, data_dir / "models" / "ranker.model")
    case = history.cases[-1]
    query = replace(case_query(case), incident_id="inc-42", repo="acme/widget")
    result = run_rca(query, database_url=database_url, resources=load_resources(settings))
    assert result.n_candidates == len(case.candidates)
    assert not any("heuristic" in note for note in result.notes)
    assert result.confident and len(result.suggestions) == 5
    assert set(case.truth.culprits) & {s.change_id for s in result.suggestions}
    assert all(s.suggestion_id is not None for s in result.suggestions)
    with session_scope(database_url) as session:
        incident = session.get(Incident, "inc-42")
        assert incident is not None and incident.started_at == started
        rows = session.scalars(select(Suggestion).where(Suggestion.incident_id == "inc-42")).all()
        assert sorted(row.id for row in rows) == sorted(s.suggestion_id for s in result.suggestions)
        assert all(row.evidence["sentences"] for row in rows)


PERSONAL = "paged zorbulator.kranz@example.com, call +1 415 555 0199"
PERSONAL_PARTS = ("zorbulator", "kranz@", "555 0199", "5550199")


def stored_text(database_url: str) -> str:
    """Every row of every table in the database (culprit's and the thread memory's), binary columns decoded."""
    with session_scope(database_url) as session:
        names = inspect(session.connection()).get_table_names()
        rows = [row for name in names for row in session.execute(text(f'SELECT * FROM "{name}"'))]
    return " ".join(
        bytes(value).decode("utf-8", "replace") if isinstance(value, bytes | memoryview) else str(value)
        for row in rows for value in row
    )


def test_an_answered_incident_is_stored_and_learned_from_without_the_e_mail_and_phone_it_names(
    database_url: str, history: History, trained: RankerModel, data_dir  # noqa: ANN001
) -> None:
    from knowledge.config import Settings
    from tools.rca.resources import load_resources

    settings = Settings(data_dir=data_dir, database_url=database_url, min_confidence=0)
    _store_changes(database_url, history)
    save_model(trained, data_dir / "models" / "ranker.model")
    case = history.cases[-1]
    query = replace(case_query(case), incident_id="inc-pii", repo="acme/widget",
                    title=f"checkout down, {PERSONAL}", text=f"{case.incident.text}\n{PERSONAL}")
    result = run_rca(query, database_url=database_url, resources=load_resources(settings))
    assert result.confident and set(case.truth.culprits) & {s.change_id for s in result.suggestions}
    assert PERSONAL in result.incident.text  # the live answer was made from the request's own words

    with session_scope(database_url) as session:
        incident = session.get(Incident, "inc-pii")
        assert incident is not None and incident.text.endswith("paged [email], call [phone]")
    stored = stored_text(database_url)
    assert "inc-pii" in stored and not [part for part in PERSONAL_PARTS if part in stored]

    confirm_cause("inc-pii", case.truth.culprits[0], "UOPS", OPERATOR, database_url=database_url)
    learned = store_history(database_url)
    assert [learned_case.case_id for learned_case in learned.cases] == ["inc-pii"]
    model_path = save_model(train_model(learned, learned.cases, embeddings=None), data_dir / "learned.model")
    with zipfile.ZipFile(model_path) as archive:
        model_text = " ".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
        past = json.loads(archive.read("past_incidents.json"))
    assert len(past) == 1 and {"checkout", "paged", "email", "phone"} <= set(past[0]["terms"])  # the redacted words
    assert not [part for part in PERSONAL_PARTS if part in model_text]


def test_run_rca_without_a_model_says_so_and_still_ranks(database_url: str, history: History) -> None:
    _store_changes(database_url, history)
    query = replace(case_query(history.cases[-1]), repo="acme/widget")
    result = run_rca(query, database_url=database_url, persist=False,
                     resources=RcaResources(model=None, min_confidence=0.5))
    assert result.confident and len(result.suggestions) == 5
    assert all(s.suggestion_id is None for s in result.suggestions)
    assert result.timings_ms["total"] > 0
    empty = run_rca(replace(query, started_at=datetime(2000, 1, 1, tzinfo=UTC)), database_url=database_url,
                    persist=False, resources=RcaResources())
    assert not empty.confident and empty.strongest_signals == ["no changes landed in the window before the incident start"]


def test_gate_rescores_another_judges_five_with_the_local_ranker(history: History, trained: RankerModel) -> None:
    from tools.rca.judges.local import LocalJudge

    class ProbabilityJudge:
        """Picks what the local judge picks but scores on another scale, as an LLM judge does."""

        name = "llm:fake"

        def rank(self, incident, batch, keep):  # noqa: ANN001, ANN201
            picked = LocalJudge(trained).rank(incident, batch, keep)
            return [replace(choice, score=1.0 / (rank + 2), judge=self.name) for rank, choice in enumerate(picked)]

    case = history.cases[-2]
    candidates = case_candidates(case, history.commits)
    resources = _resources(trained, 0.0)
    local, _kept = replay_incident(case_query(case), candidates, resources)
    other, _kept = replay_incident(case_query(case), candidates, resources, ProbabilityJudge())
    assert [s.change_id for s in other.suggestions] == [s.change_id for s in local.suggestions]
    assert {s.judge for s in other.suggestions} == {"llm:fake"}
    assert other.confidence == local.confidence


def test_explaining_that_fails_on_the_database_is_logged_without_the_values_it_sent(
    postgres_url: str, history: History, trained: RankerModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure was logged with repr(error): PostgreSQL's refusal repeats the row, SQLAlchemy's the
    parameters, so a part of the explanation reading or writing the database put a person's name in the log."""
    import graph.rca_graph
    from structlog.processors import format_exc_info
    from structlog.testing import capture_logs

    from tests.refused_writes import REFUSED, naming_the_person, refusing_table, write_the_person

    def explaining(query: IncidentQuery, change: object, *learned: object, past: object = None, **known: Any) -> Evidence:
        if learned:  # the learned parts stand for one that uses the database: its write is refused
            write_the_person(postgres_url)
        return explain(query, change, **known)  # type: ignore[arg-type]

    refusing_table(postgres_url)
    monkeypatch.setattr(graph.rca_graph, "explain", explaining)
    case = history.cases[-1]
    query = replace(case_query(case), incident_id="inc-refused")
    with capture_logs(processors=[format_exc_info]) as logs:  # tracebacks rendered, as in production
        answer, _kept = replay_incident(query, case_candidates(case, history.commits), _resources(trained, 0.0))
    assert answer.confident and all(s.evidence.sentences for s in answer.suggestions), "each kept its plain reasons"
    assert naming_the_person(logs) == []
    failed = [entry for entry in logs if entry["event"] == "explaining failed"]
    assert failed and {entry["error"] for entry in failed} == {REFUSED}
