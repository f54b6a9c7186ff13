"""``culprit ingest wiki``, ``culprit wiki search`` and ``culprit wiki evaluate`` from a terminal."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from knowledge.config import Settings
from knowledge.db import session_scope
from knowledge.errors import CulpritError, InputError
from knowledge.incidents import RootCause
from tests.wiki.conftest import write_small_wiki
from tools.wiki.evaluation import load_questions

runner = CliRunner()

POSTMORTEM = (
    "---\ntitle: Cards declined\ntype: postmortem\nservices: [payments]\nincident: INC-42\n"
    "started_at: 2024-02-01T10:00:00Z\n---\n## Summary\nDeclines spiked, see [/var/log/payments].\n\nRoot cause: 5eed5eed5eed\n"
)


def _json(args: list[str]) -> object:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ingest_search_and_evaluate(tmp_path: Path, data_dir: Path, minilm: object) -> None:
    wiki = write_small_wiki(tmp_path / "wiki")
    (wiki / "postmortems").mkdir()
    (wiki / "postmortems/inc-42.md").write_text(POSTMORTEM)
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"question": "card payments are timing out", "page": "services/payments/runbook.md"}) + "\n"
        + json.dumps({"question": "who do I ask about search?", "page": "services/search/overview.md"}) + "\n"
    )  # fmt: skip

    first = _json(["ingest", "wiki", str(wiki), "--json"])
    assert (first["pages"], first["added"]) == (4, 8)
    assert first["postmortems_linked"] == [{"incident": "INC-42", "changes": ["5eed5eed5eed"]}]
    second = _json(["ingest", "wiki", str(wiki), "--json"])
    assert (second["added"], second["unchanged"], second["removed"]) == (0, 8, 0)
    with session_scope(Settings(data_dir=data_dir).resolved_database_url) as session:
        assert session.get(RootCause, ("INC-42", "5eed5eed5eed")) is not None

    hits = _json(["wiki", "search", "checkout hangs on card payment", "--service", "payments", "-k", "2", "--json"])
    assert [hit["page"] for hit in hits] == ["services/payments/runbook.md", "postmortems/inc-42.md"]

    scores = _json(["wiki", "evaluate", str(questions), "--json"])
    assert scores["recall_at_3"] == 1.0 and set(scores["baselines"]) == {"bm25", "embedding"}
    assert set(scores["baselines"]["bm25"]) == {"recall_at_3", "mrr"}

    shown = runner.invoke(app, ["wiki", "search", "roll back a release"])
    assert shown.exit_code == 0 and "guides/rollback.txt" in shown.stdout
    # Page text is shown as written: "[/var/log/payments]" read as Rich markup crashed the command.
    quoting = runner.invoke(app, ["wiki", "search", "declines spiked", "-k", "1"])
    assert quoting.exit_code == 0, quoting.output
    assert "[/var/log/payments]" in quoting.stdout


def test_user_mistakes_are_one_line_errors(tmp_path: Path, data_dir: Path) -> None:
    empty = runner.invoke(app, ["wiki", "search", "anything"])
    assert isinstance(empty.exception, CulpritError) and "culprit ingest wiki" in str(empty.exception)

    missing = runner.invoke(app, ["ingest", "wiki", str(tmp_path / "nowhere")])
    assert isinstance(missing.exception, InputError) and "does not exist" in str(missing.exception)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x", "page": "y"}\nnot json\n')
    with pytest.raises(InputError, match="bad.jsonl:2"):
        load_questions(bad)


@pytest.mark.parametrize(
    ("content", "refusal"),
    [(b'{"question": "caf\xe9", "page": "x"}\n', "cannot read"), (b"[" * 100_000, "deep.jsonl:1: expected a JSON object")],
    ids=["latin-1", "nested-thousands-deep"],
)
def test_a_question_file_that_cannot_be_read_is_one_line(tmp_path: Path, content: bytes, refusal: str) -> None:
    questions = tmp_path / "deep.jsonl"
    questions.write_bytes(content)
    with pytest.raises(InputError, match=refusal):
        load_questions(questions)


def test_an_agent_question_file_nested_thousands_deep_is_one_line(tmp_path: Path) -> None:
    from graph.evaluation import load_questions as load_agent_questions

    questions = tmp_path / "questions.json"
    questions.write_text("[" * 100_000)
    with pytest.raises(InputError, match="questions.json: not a question file"):
        load_agent_questions(questions)


def test_a_refused_page_is_listed_and_the_rest_of_the_wiki_loads(tmp_path: Path, data_dir: Path, minilm: object) -> None:
    wiki = write_small_wiki(tmp_path / "wiki")
    (wiki / "postmortems").mkdir()
    (wiki / "postmortems/inc-42.md").write_text(POSTMORTEM)
    (wiki / "runbooks").mkdir()
    (wiki / "runbooks/typo.md").write_text("---\ntitle: [/oops\n---\n# Typo\n")  # "[/oops" would read as markup

    loaded = _json(["ingest", "wiki", str(wiki), "--json"])
    assert (loaded["pages"], loaded["added"]) == (4, 8)
    assert [refused["page"] for refused in loaded["refused"]] == ["runbooks/typo.md"]
    assert "not valid YAML" in loaded["refused"][0]["reason"]
    assert loaded["postmortems_linked"] == [{"incident": "INC-42", "changes": ["5eed5eed5eed"]}]

    shown = runner.invoke(app, ["ingest", "wiki", str(wiki)])
    assert shown.exit_code == 0, shown.output
    assert "1 page refused" in shown.stdout and "refused runbooks/typo.md: front matter is not valid YAML" in shown.stdout


def test_wiki_sync_reports_a_failing_source_and_syncs_the_others(
    tmp_path: Path, data_dir: Path, minilm: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "slack.zip"
    with zipfile.ZipFile(broken, "w") as export:
        export.writestr("channels.json", "[{not json")
    notion = tmp_path / "notion"
    notion.mkdir()
    (notion / "Cache warmup.md").write_text("# Cache warmup\n\n## Steps\nWarm the product cache before a launch.\n")
    monkeypatch.setenv("CULPRIT_WIKI_SOURCES", json.dumps([
        {"kind": "slack", "name": "incidents", "path": str(broken)}, {"kind": "notion", "name": "eng", "path": str(notion)},
    ]))  # fmt: skip

    synced = runner.invoke(app, ["wiki", "sync", "--json"])
    assert synced.exit_code == 1
    answer = json.loads(synced.stdout)
    assert answer["eng"]["added"] == 1 and answer["incidents"]["error"].startswith("JSONDecodeError")
    shown = runner.invoke(app, ["wiki", "sync"])
    assert shown.exit_code == 1
    assert "incidents: failed: JSONDecodeError" in shown.stdout and "eng: 1 pages, 0 added" in shown.stdout


def test_wiki_sync_lists_the_pages_a_source_refused(
    tmp_path: Path, data_dir: Path, minilm: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "notion"
    export.mkdir()
    (export / "Cache warmup.md").write_text("# Cache warmup\n\n## Steps\nWarm the product cache before a launch.\n")
    (export / "Legacy [old].md").write_bytes("# Ancien runbook\nCaf\xe9".encode("latin-1"))
    monkeypatch.setenv("CULPRIT_WIKI_SOURCES", json.dumps([{"kind": "notion", "name": "eng", "path": str(export)}]))

    synced = _json(["wiki", "sync", "--json"])
    assert synced["eng"]["added"] == 1
    assert [refused["page"] for refused in synced["eng"]["refused"]] == ["notion:eng/Legacy [old].md"]

    shown = runner.invoke(app, ["wiki", "sync"])
    assert shown.exit_code == 0, shown.output
    assert "1 page refused" in shown.stdout and "refused notion:eng/Legacy [old].md is not UTF-8 text" in shown.stdout
