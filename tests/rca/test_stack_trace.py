"""A responder pastes a stack trace: the change that touched a function in it comes first."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from graph.rca_graph import replay_incident, run_rca
from knowledge.changes import changes_landed_between
from knowledge.db import session_scope
from knowledge.ingest.git_log import ingest_git
from knowledge.ingest.names_backfill import backfill_names
from tests.ingest.synthetic_repo import git_as_ana
from tests.ingest.test_names_backfill import as_before_the_upgrade
from tools.rca.answers import IncidentQuery
from tools.rca.resources import RcaResources

START = 1_714_000_000
FUNCTIONS = ("parse_header_line", "http_readwrite", "http_perhapsrewind", "chunk_flush", "conn_setup", "tls_handshake")
# (title, function it touches); the culprit's title says nothing the report says.
CHANGES = [
    ("http: tidy buffer handling", "parse_header_line"),
    ("tls: retry the handshake once", "tls_handshake"),
    ("http: parse header line folding", "http_readwrite"),
    ("http: rewind before resending", "http_perhapsrewind"),
    ("chunks: flush the tail", "chunk_flush"),
    ("http: crash on a bad header line", "conn_setup"),
]
TRACE = """Segfault in the proxy since this morning, crash on a header line.

#0  0x000055d4c3a1 in parse_header_line (p=0x0) at lib/http.c:412
#1  0x000055d4c3b7 in dispatch_request (conn=0x55d4e0) at src/main.c:88
#2  0x000055d4c3c0 in main () at src/main.c:12
"""


def _source(version: dict[str, int]) -> str:
    return "".join(
        f"static int {name}(struct conn *conn)\n{{\n  int step = {version.get(name, 0)};\n  return step;\n}}\n\n"
        for name in FUNCTIONS
    )


def _repository(tmp_path: Path) -> Path:
    repo = tmp_path / "proxy"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "lib").mkdir()
    version: dict[str, int] = {}
    (repo / "lib/http.c").write_text(_source(version))
    git_as_ana(repo, "add", "-A", when=START)
    git_as_ana(repo, "commit", "-q", "-m", "http: first version", when=START)
    for hour, (title, function) in enumerate(CHANGES, start=1):
        version[function] = hour
        (repo / "lib/http.c").write_text(_source(version))
        git_as_ana(repo, "commit", "-q", "-am", title, when=START + hour * 3600)
    return repo


def test_the_change_that_touched_a_function_in_the_pasted_trace_ranks_first(
    database_url: str, tmp_path: Path
) -> None:
    ingest_git(_repository(tmp_path), database_url, repo_name="acme/proxy")
    started = datetime.fromtimestamp(START + 8 * 3600, UTC)
    query = IncidentQuery(text=TRACE, title="proxy crashes", started_at=started, repo="acme/proxy")
    resources = RcaResources(min_confidence=0.0)

    answer = run_rca(query, database_url=database_url, resources=resources, persist=False)

    first = answer.suggestions[0]
    assert first.change.title == "http: tidy buffer handling"
    assert "parse_header_line()" in first.evidence.reasons[0].sentence
    # The same changes without what their patches said (new ids: signals cache a change's words by
    # id): the words of the report pick another.
    with session_scope(database_url) as session:
        window = [change.record() for change in changes_landed_between(session, datetime.fromtimestamp(START, UTC), started)]
    blind = [replace(change, id=f"{change.id}-blind", functions=(), identifiers=()) for change in window]
    without, _kept = replay_incident(query, blind, resources)
    assert without.suggestions[0].change.title != "http: tidy buffer handling"


def test_names_read_after_an_upgrade_reach_the_next_answer_of_a_running_process(
    database_url: str, tmp_path: Path
) -> None:
    """Changes stored before names were read (NULL, as migration 0010 left them) answer blind;
    once `ingest names` reads them, the same process's next answer sees them, though it cached
    those changes' records and words by id while answering blind."""
    repository = _repository(tmp_path)
    ingest_git(repository, database_url, repo_name="acme/proxy")
    as_before_the_upgrade(database_url)
    started = datetime.fromtimestamp(START + 8 * 3600, UTC)
    query = IncidentQuery(text=TRACE, title="proxy crashes", started_at=started, repo="acme/proxy")
    resources = RcaResources(min_confidence=0.0)
    blind = run_rca(query, database_url=database_url, resources=resources, persist=False)
    assert blind.suggestions[0].change.title != "http: tidy buffer handling"

    assert backfill_names(repository, database_url, "acme/proxy").filled == len(CHANGES) + 1
    answer = run_rca(query, database_url=database_url, resources=resources, persist=False)

    assert answer.suggestions[0].change.title == "http: tidy buffer handling"
    assert "parse_header_line()" in answer.suggestions[0].evidence.reasons[0].sentence


def test_a_trace_pasted_with_a_megabyte_token_still_gives_its_names_and_paths() -> None:
    # A base64 core dump in a history case's text (up to 100,000 characters) or a report: a path
    # pattern tried from inside the token read to its end and back at every position (hours for 1 MB).
    from tools.rca.signals.terms import identifiers, mentioned_paths

    text = TRACE + "core: " + "QUJD" * 250_000 + " then crash.c failed"
    assert {"parse_header_line", "lib/http.c", "src/main.c", "crash.c"} <= identifiers(text)
    assert mentioned_paths(text) == ["lib/http.c", "src/main.c", "src/main.c", "crash.c"]
