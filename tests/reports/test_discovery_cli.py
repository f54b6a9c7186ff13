import json
from pathlib import Path

import pytest

from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from knowledge.config import get_settings
from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.demo.reports import demo_reports
from knowledge.reports import Category
from tools.reports.discovery import discover_categories, save_discovered
from tools.reports.redaction import redact
from tools.reports.intake import IncomingReport, ingest_reports, parse_created_at


@pytest.mark.slow
def test_discovery_finds_the_demo_categories_and_draws_a_map(database_url: str, tmp_path: Path) -> None:
    demo = demo_reports(days=28, seed=5).reports[::3]
    ingest_reports([IncomingReport(r["id"], r["text"], parse_created_at(r["created_at"])) for r in demo], url=database_url, classifier=None, other_confidence=0.4)
    discovery = discover_categories(database_url, out_dir=tmp_path, seeds=(0, 1, 2))
    assert 3 <= len(discovery.clusters) <= 15
    assert all(c.stability > 0.5 and len(c.examples) == 3 for c in discovery.clusters)
    assert "feed" in " ".join(c.name for c in discovery.clusters)
    truth = {redact(r["text"]): r["category"] for r in demo}
    for cluster in discovery.clusters:
        labels = [truth[e] for e in cluster.examples]
        assert max(labels.count(label) for label in labels) >= 2, f"{cluster.name} mixes {labels}"
    assert (tmp_path / "report_map.png").read_bytes().startswith(b"\x89PNG")
    summary = (tmp_path / "summary.md").read_text()
    assert "reports, recurred in" in summary and "\u201c" in summary
    assert set(discovery.parents) == {c.parent for c in discovery.clusters}
    saved = save_discovered(discovery, database_url)
    with session_scope(database_url) as session:
        rows = session.scalars(select(Category).where(Category.origin == "discovered")).all()
    assert len(rows) == saved >= len(discovery.parents)


def test_cluster_keywords_are_words_not_fragments_of_contractions() -> None:
    """"don't" used to give the keyword "don" (and "don work"), which names no cluster."""
    from tools.reports.discovery import class_keywords

    texts = [
        "I don't get the login code, I can't sign in", "login code don't arrive, I've tried twice",
        "the app's login code won’t come, dont know why", "I'm stuck at the login code, it isn't sent",
        "my card doesn't go through at checkout, I didn't get charged", "checkout card declined, don't know why",
        "checkout fails with my card, couldn't pay, I've tried twice", "card payment at checkout doesnt work",
    ]

    keywords = class_keywords(texts, [[0, 1, 2, 3], [4, 5, 6, 7]])

    fragments = {"don", "doesn", "didn", "won", "isn", "couldn", "ve", "ll", "dont", "doesnt", "im", "app s"}
    assert all(not set(keyword.split()) & fragments for group in keywords for keyword in group), keywords
    assert {"know", "tried twice"} <= set(keywords[0]) & set(keywords[1]), "the words around a contraction are kept"


def test_discover_prints_the_reports_it_quotes_as_written(data_dir: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from tools.reports import discovery as module
    from tools.reports.discovery import DiscoveredCluster, Discovery

    quoted = "export to [/tmp/out] fails with [bold]"  # "[/...]" read as Rich markup crashed the command
    found = Discovery(3, [DiscoveredCluster("export", ["export"], 3, 1.0, [quoted])], {"files": ["export"]}, None, None)
    monkeypatch.setattr(module, "discover_categories", lambda *args, **kwargs: found)

    result = CliRunner().invoke(app, ["reports", "discover", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert quoted in result.stdout


def test_cli_loads_categories_ingests_evaluates_and_prints_the_digest(data_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    categories = tmp_path / "categories.yaml"
    categories.write_text("- name: login\n  description: cannot sign in\n  examples: [\"can't log in\"]\n- name: crash\n")
    result = runner.invoke(app, ["reports", "categories", str(categories)])
    assert result.exit_code == 0 and "loaded 2 categories" in result.output

    reports = demo_reports(days=21, seed=9).reports[::3]
    labeled = tmp_path / "labeled.jsonl"
    labeled.write_text("".join(json.dumps(r) + "\n" for r in reports) + "not json\n")
    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join(json.dumps(r) + "\n" for r in reports))
    trained = runner.invoke(app, ["reports", "train", str(clean), "--no-fine-tune"])
    assert trained.exit_code == 0 and (data_dir / "models" / "report_classifier.model").exists()

    bad = runner.invoke(app, ["reports", "ingest", str(labeled)])
    assert bad.exit_code == 1 and "labeled.jsonl" in str(bad.exception)

    ingested = runner.invoke(app, ["reports", "ingest", str(labeled), "--skip-bad", "--json"])
    counts = json.loads(ingested.stdout)
    assert counts["stored"] + counts["duplicates"] == len(reports) and counts["skipped_lines"] == 1

    evaluated = runner.invoke(app, ["reports", "evaluate", str(clean), "--no-fine-tune", "--json"])
    scores = json.loads(evaluated.stdout)
    assert {"accuracy", "macro_f1", "baseline", "n"} <= set(scores) and scores["macro_f1"] > 0.8

    trends = runner.invoke(app, ["reports", "trends", "--days", "3650", "--json"])
    assert sum(point["count"] for point in json.loads(trends.stdout)["login"]) > 0
    last_day = reports[-1]["created_at"][:10]
    week = json.loads(runner.invoke(app, ["reports", "trends", "--days", "7", "--end", last_day, "--json"]).stdout)
    assert [str(point["day"]) for point in week["login"]][-1] == last_day and len(week["login"]) == 7

    digest = runner.invoke(app, ["digest", "--dry-run", "--end", reports[-1]["created_at"][:10]])
    assert digest.exit_code == 0 and "Weekly user-report digest" in digest.output and "Top categories" in digest.output


def test_loading_categories_says_what_it_added_updated_and_kept(data_dir: Path, tmp_path: Path) -> None:
    """One category read "loaded 1 categories", and nothing said the file was merged into the stored ones."""
    runner = CliRunner()
    (tmp_path / "two.yaml").write_text("- name: login\n- name: crash\n")
    (tmp_path / "one.yaml").write_text("- name: login\n  description: cannot sign in\n")

    first = runner.invoke(app, ["reports", "categories", str(tmp_path / "two.yaml")])
    assert " ".join(first.output.split()) == (
        "loaded 2 categories: 2 new (login, crash), 0 updated (none); 0 stored categories not in two.yaml kept"
    )
    second = runner.invoke(app, ["reports", "categories", str(tmp_path / "one.yaml")])
    assert " ".join(second.output.split()) == (
        "loaded 1 category: 0 new (none), 1 updated (login); 1 stored category not in one.yaml kept"
    )
    again = json.loads(runner.invoke(app, ["reports", "categories", str(tmp_path / "one.yaml"), "--json"]).stdout)
    assert again == {"loaded": ["login"], "added": [], "updated": ["login"], "kept": 1}
    with session_scope(get_settings().resolved_database_url) as session:
        stored = {c.name: c.description for c in session.scalars(select(Category))}
    assert stored == {"login": "cannot sign in", "crash": ""}


def test_trends_of_an_unknown_category_names_the_known_ones(data_dir: Path, tmp_path: Path) -> None:
    """``--category nope`` used to print "no reports in the 14 days", as a quiet category does."""
    runner = CliRunner()
    categories = tmp_path / "categories.yaml"
    categories.write_text("- name: login\n- name: crash\n")
    assert runner.invoke(app, ["reports", "categories", str(categories)]).exit_code == 0

    unknown = runner.invoke(app, ["reports", "trends", "--category", "nope", "--json"])
    assert unknown.exit_code == 1 and isinstance(unknown.exception, InputError), unknown.output
    assert str(unknown.exception) == "no report category 'nope'; the categories are: crash, login"
    typo = runner.invoke(app, ["reports", "trends", "--category", "logn"])
    assert typo.exit_code == 1 and "(did you mean 'login'?)" in str(typo.exception)
    quiet = runner.invoke(app, ["reports", "trends", "--category", "login"])
    assert quiet.exit_code == 0 and "no reports in the 14 days" in quiet.output


@pytest.mark.parametrize(
    ("name", "content", "refusal"),
    [
        ("categories.yaml", b"- name: l\xf6gin\n", "cannot read {path}: 'utf-8' codec can't decode byte 0xf6"),
        ("categories.json", b"[" * 100_000, "{path} is nested too deeply; give a flat list of {{name, description, examples}}"),
        ("categories.yaml", b"- " * 100_000, "{path} is not valid YAML/JSON (nested over 100 levels deep; flatten it"),
        ("categories", None, "expected a file but {path} is a directory"),
    ],
    ids=["latin-1", "deep-json", "deep-yaml", "folder"],
)
def test_a_categories_file_that_cannot_be_read_is_one_line(
    data_dir: Path, tmp_path: Path, name: str, content: bytes | None, refusal: str
) -> None:
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    result = CliRunner().invoke(app, ["reports", "categories", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, InputError), result.exception
    assert str(result.exception).startswith(refusal.format(path=path))


def test_a_categories_file_with_yaml_aliases_is_refused(data_dir: Path, tmp_path: Path) -> None:
    categories = tmp_path / "categories.yaml"
    categories.write_text("- name: login\n  examples: &lol [lol, lol, lol]\n- name: crash\n  examples: [*lol, *lol, *lol]\n")
    result = CliRunner().invoke(app, ["reports", "categories", str(categories)])
    assert result.exit_code == 1 and "aliases (*lol) are not allowed" in str(result.exception)


@pytest.mark.parametrize(
    ("arguments", "option", "value"),
    [
        (["reports", "trends", "--end", "0001-01-01"], "--end", "0001-01-01"),
        (["digest", "--dry-run", "--end", "9999-12-31"], "--end", "9999-12-31"),
        (["reports", "discover", "--since", "1900-01-01"], "--since", "1900-01-01"),
    ],
    ids=["trends-year-1", "digest-year-9999", "discover-1900"],
)
def test_a_day_out_of_range_is_one_line_not_an_overflow(
    database_url: str, arguments: list[str], option: str, value: str
) -> None:
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 1 and isinstance(result.exception, InputError), result.exception
    assert str(result.exception) == f"{option} {value!r} is out of range; give a date from 1970-01-01 to 2999-12-31"


@pytest.mark.parametrize("days", ["0", "-5", "99999999999"])
def test_trends_over_no_days_or_past_ten_years_is_a_usage_error(database_url: str, days: str) -> None:
    """0 or -5 days printed "no reports in the 0 days"; 99999999999 an OverflowError traceback."""
    result = CliRunner().invoke(app, ["reports", "trends", "--days", days, "--json"])
    assert result.exit_code == 2 and "Invalid value for '--days'" in result.output, result.exception


@pytest.mark.parametrize(
    "answer",
    [{"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []},
     {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
      "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": 5}}]}],
    ids=["no-choices", "content-not-text"],
)
def test_a_cluster_keeps_its_keyword_name_when_the_llm_answers_nonsense(answer: dict) -> None:
    import numpy as np

    from tests.llm.servers import MisbehavingLLM, json_reply
    from tools.llm.client import LLMEndpoint
    from tools.reports.discovery import stable_clusters

    rng = np.random.default_rng(0)
    topics = ["checkout payment declined card", "login password reset email"]
    texts = [f"{topic} report {n}" for topic in topics for n in range(40)]
    centres = np.eye(8)[: len(topics)]
    vectors = np.repeat(centres, 40, axis=0) + rng.normal(0, 0.01, (len(texts), 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    server = MisbehavingLLM(json_reply(answer))
    try:
        clusters = stable_clusters(texts, vectors, seeds=(0, 1, 2), llm=LLMEndpoint(server.base_url, "m", timeout_s=5))
    finally:
        server.close()

    assert clusters and len(server.requests) == len(clusters)  # each cluster asked once, each keeps its keywords
    assert all(cluster.name == " / ".join(cluster.keywords[:3]) for cluster in clusters)
