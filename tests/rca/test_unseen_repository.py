"""A repository the model never saw: every signal copes, and the answer says what it lacks.

The model learns from two made-up repositories; a third uses the same code
places with other words, so its changes pair known words with known places the
component map never saw together (what crashed every investigation before).
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bot.cli import app
from knowledge.changes import ChangeRecord
from knowledge.ingest.change_store import store_changes
from knowledge.ingest.progress import Silent
from tests.bot.conftest import StartBot
from tests.rca.synthetic import COMPONENTS, make_history, write_jsonl_gz
from tools.rca.answers import IncidentQuery
from tools.rca.history.cases import History, load_history
from tools.rca.history.training import train_model
from tools.rca.judges.local import RankerModel, save_model
from tools.rca.signals.component_map import ComponentMap
from tools.rca.signals.features import FEATURE_NAMES, SignalContext, compute_signals
from tools.rca.signals.ownership import OwnershipContext

runner = CliRunner()
UNSEEN = "acme/other"
# The same components, each described with another component's words.
SHUFFLED = dict(zip(sorted(COMPONENTS), [COMPONENTS[name] for name in sorted(COMPONENTS)[1:] + sorted(COMPONENTS)[:1]], strict=True))


@pytest.fixture(scope="module")
def repositories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("three-repositories")
    histories = {
        "acme/widget": make_history(seed=3, repo="acme/widget"),
        "acme/gadget": make_history(seed=5, repo="acme/gadget"),
        UNSEEN: make_history(seed=7, repo=UNSEEN, components=SHUFFLED),
    }
    return {
        repo: (
            write_jsonl_gz(folder / f"cases-{repo.replace('/', '__')}.jsonl.gz", cases),
            write_jsonl_gz(folder / f"commits-{repo.replace('/', '__')}.jsonl.gz", commits),
        )
        for repo, (commits, cases) in histories.items()
    }


@pytest.fixture(scope="module")
def two_repository_model(repositories: dict[str, tuple[Path, Path]]) -> RankerModel:
    seen = [files for repo, files in repositories.items() if repo != UNSEEN]
    history = load_history([cases for cases, _ in seen], [commits for _, commits in seen])
    return train_model(history, history.cases, embeddings=None)


@pytest.fixture(scope="module")
def unseen(repositories: dict[str, tuple[Path, Path]]) -> History:
    cases, commits = repositories[UNSEEN]
    return load_history([cases], [commits])


def test_a_known_word_at_a_known_place_never_seen_together_adds_nothing() -> None:
    # Before: log of a negative share, "math domain error", for every such pair.
    component_map = ComponentMap(
        word_counts={"passive": 10}, unit_counts={"http": 2, "ftp": 10}, pair_counts={"passive": {"ftp": 10}}, n_commits=100
    )
    assert component_map.lift("passive", "http", leave_out=True) == 0.0
    assert component_map.lift("passive", "ftp", leave_out=True) > 0.0


def test_every_signal_copes_with_random_inputs_it_never_saw(two_repository_model: RankerModel) -> None:
    rng = random.Random(11)
    alphabet = "abcdefghijklmnopqrstuvwxyz_/.-: 0123456789é日"
    ownership = OwnershipContext()

    def word() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))

    for trial in range(40):
        started = two_repository_model.trained_until + rng.uniform(-400, 10) * 86400
        query = IncidentQuery(
            text=" ".join(word() for _ in range(rng.randint(0, 30))),
            title=word(),
            started_at=_utc(started),
            service=rng.choice([None, "", word()]),
            repo=rng.choice([None, UNSEEN, word()]),
            incident_id=f"inc-random-{trial}",
        )
        candidates = [
            ChangeRecord(
                id=f"{trial:02d}{index:038x}",
                repo=rng.choice([UNSEEN, word(), "acme/widget"]),
                title=word() + ": " + " ".join(word() for _ in range(rng.randint(0, 6))),
                body=word(),
                author=word(),
                email="",
                author_time=_utc(started - rng.uniform(0, 14) * 86400),
                landed_time=_utc(started - rng.uniform(0, 14) * 86400),
                landed_via_merge=False,
                files=tuple((f"{word()}/{word()}.{word()}", rng.randint(0, 500), rng.randint(0, 500)) for _ in range(rng.randint(0, 5))),
            )
            for index in range(rng.randint(1, 25))
        ]
        repo = query.repo
        context = SignalContext(
            component_map=two_repository_model.component_map(repo),
            ownership=ownership,
            past_incidents=two_repository_model.past_incidents,
            similar_changes=(index.around(query.full_text, candidates) if (index := two_repository_model.similar_changes_in(repo)) else None),
        )
        signals = compute_signals(query, candidates, context)
        assert signals.unavailable == []
        assert len(signals.rows) == len(candidates)
        for row in signals.rows:
            assert set(row) == set(FEATURE_NAMES)
            assert all(math.isfinite(value) for value in row.values()), row


def test_a_signal_that_raises_is_left_out_and_named(two_repository_model: RankerModel, unseen: History) -> None:
    class BrokenNeighbourhood:
        """Stands in for a signal with a bug: no real input makes the shipped one raise any more."""

        def score(self, paths: object) -> tuple[float, float]:
            raise KeyError("lib/never-seen.c")

    case = unseen.cases[-1]
    candidates = [unseen.commits[change_id] for change_id in case.candidates]
    query = IncidentQuery(text=case.incident.text, title=case.incident.title, started_at=case.incident.started_at, incident_id="inc-broken")
    healthy = compute_signals(query, candidates, SignalContext(component_map=two_repository_model.component_map(UNSEEN)))
    broken = compute_signals(
        query,
        candidates,
        SignalContext(component_map=two_repository_model.component_map(UNSEEN), similar_changes=BrokenNeighbourhood()),  # type: ignore[arg-type]
    )
    assert [(missing.signal, missing.reason) for missing in broken.unavailable] == [("similar changes", "KeyError: 'lib/never-seen.c'")]
    assert all(row["similar_changes"] == 0.0 and row["similar_changes_votes"] == 0.0 for row in broken.rows)
    assert np.array_equal([row["component"] for row in broken.rows], [row["component"] for row in healthy.rows])


def test_backtest_on_the_third_repository_with_a_model_of_the_other_two(
    repositories: dict[str, tuple[Path, Path]], two_repository_model: RankerModel, tmp_path: Path, data_dir: Path
) -> None:
    model = save_model(two_repository_model, tmp_path / "two-repos.model")
    cases, commits = repositories[UNSEEN]
    result = runner.invoke(
        app, ["backtest", "--cases", str(cases), "--commits", str(commits), "--model", str(model), "--no-embeddings", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert list(summary["per_repository"]) == [UNSEEN]
    assert summary["signal_failures"] == {}
    assert summary["recall"] == 1.0 and summary["n_cases"] > 0


def test_rca_on_the_third_repository_says_the_model_never_learned_it(
    two_repository_model: RankerModel, unseen: History, database_url: str, data_dir: Path
) -> None:
    save_model(two_repository_model, data_dir / "models" / "ranker.model")
    store_changes(database_url, unseen.commits.values(), Silent())
    case = unseen.cases[-1]
    result = runner.invoke(
        app,
        ["rca", case.incident.text, "--title", case.incident.title, "--at", case.incident.started_at.isoformat(), "--repo", UNSEEN, "--json"],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["n_candidates"] == len(case.candidates)
    assert answer["unavailable_evidence"] == []
    [note] = [note for note in answer["notes"] if "never learned" in note]
    assert f"never learned {UNSEEN}" in note and "acme/gadget, acme/widget" in note and "culprit train" in note


def test_a_deploy_and_a_flag_flip_in_the_window_are_not_repositories_the_model_never_learned(
    two_repository_model: RankerModel, repositories: dict[str, tuple[Path, Path]], database_url: str, data_dir: Path,
    tmp_path: Path,
) -> None:
    """Every answer after `culprit ingest changes` said "the model never learned deploy ... run `culprit train`
    with deploy's history": change events are filed under their kind, which no history could teach."""
    save_model(two_repository_model, data_dir / "models" / "ranker.model")
    cases, commits = repositories["acme/widget"]
    learned = load_history([cases], [commits])
    store_changes(database_url, learned.commits.values(), Silent())
    case = learned.cases[-1]
    before = (case.incident.started_at - timedelta(hours=1)).isoformat()
    events = tmp_path / "changes.jsonl"
    events.write_text("".join(json.dumps({"id": f"{kind}-1", "kind": kind, "service": "payments", "title": f"a {kind}",
                                          "time": before}) + "\n" for kind in ("deploy", "flag")))  # fmt: skip
    assert runner.invoke(app, ["ingest", "changes", str(events)]).exit_code == 0

    result = runner.invoke(app, ["rca", case.incident.text, "--at", case.incident.started_at.isoformat(), "--json"])

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["n_candidates"] == len(case.candidates) + 2
    assert not [note for note in answer["notes"] if "never learned" in note]


def _utc(timestamp: float):  # noqa: ANN202
    from datetime import UTC, datetime

    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=timestamp)


def test_the_bot_answers_the_third_repository_and_says_what_the_model_lacks(
    two_repository_model: RankerModel, unseen: History, data_dir: Path, start_bot: StartBot
) -> None:
    from knowledge.db import migrate

    url = f"sqlite:///{data_dir / 'culprit.db'}"
    migrate(url)
    store_changes(url, unseen.commits.values(), Silent())
    save_model(two_repository_model, data_dir / "models" / "ranker.model")
    case = unseen.cases[-1]
    bot = start_bot(url)

    response = bot.send.command(f"{case.incident.title} {case.incident.text} at:{case.incident.started_at.isoformat()}")
    assert response.status_code == 200

    [posted] = bot.slack.wait_for(lambda call: call.method == "chat.postMessage" and call.args.get("blocks"))
    text = json.dumps(posted.args["blocks"])
    assert posted.args["text"].startswith("Likely culprits for:") or "Not confident" in text
    assert f"never learned {UNSEEN}" in text and "culprit train" in text
    assert "evidence unavailable" not in text and "failed" not in text


def test_a_signal_failing_on_the_database_is_logged_without_the_values_it_sent(postgres_url: str) -> None:
    """The failure was logged with repr(error): PostgreSQL's refusal repeats the row, SQLAlchemy's the
    parameters, so a signal reading or writing the database put a person's name in the log."""
    from structlog.processors import format_exc_info
    from structlog.testing import capture_logs

    from tests.changes import change_record
    from tests.refused_writes import REFUSED, naming_the_person, refusing_table, write_the_person

    class WritingNeighbourhood:
        """Stands in for a signal that uses the database: its write is refused."""

        def score(self, change: object) -> tuple[float, float, float]:
            write_the_person(postgres_url)
            return 0.0, 0.0, 0.0

    refusing_table(postgres_url)
    started = datetime(2024, 5, 1, 12, tzinfo=UTC)
    candidates = [change_record("abc123", "checkout: retry card payments", started - timedelta(hours=1), ["app/checkout/pay.py"])]
    query = IncidentQuery(text="card payments fail at checkout", started_at=started, incident_id="inc-refused")
    with capture_logs(processors=[format_exc_info]) as logs:  # tracebacks rendered, as in production
        signals = compute_signals(query, candidates, SignalContext(similar_changes=WritingNeighbourhood()))  # type: ignore[arg-type]
    assert [(missing.signal, missing.reason) for missing in signals.unavailable] == [("similar changes", REFUSED)]
    assert naming_the_person(logs) == []  # nor in the answer's note, which Slack posts to the channel
    [failed] = [entry for entry in logs if entry["event"] == "signal failed"]
    assert failed["error"] == REFUSED and failed["incident_id"] == "inc-refused"
