"""A new user's first command: ``culprit demo`` in an empty data directory, then again."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

SMALL = ["--days", "60", "--changes", "500", "--incidents", "40"]


@pytest.mark.slow
def test_demo_loads_trains_answers_and_a_second_run_changes_nothing(data_dir: Path) -> None:
    runner = CliRunner()

    first = runner.invoke(app, ["demo", *SMALL])
    assert first.exit_code == 0, first.output
    assert re.search(r"changes from \S+: \d+ new, 0 already present", first.output)
    assert re.search(r"bug reports from \S+: \d{4} new", first.output)
    assert "trained the local judge on" in first.output
    assert "Example incident INC-" in first.output
    assert "culprit rca" in first.output

    demo_dir = data_dir / "demo"
    stamps = {path: path.stat().st_mtime_ns for path in demo_dir.rglob("*") if path.is_file()}
    model = data_dir / "models" / "ranker.model"
    model_stamp = model.stat().st_mtime_ns

    second = runner.invoke(app, ["demo", *SMALL, "--json"])
    assert second.exit_code == 0, second.output
    outcome = json.loads(second.stdout)
    assert outcome["directory"] == str(demo_dir)
    assert all(report["new"] == 0 and report["updated"] == 0 for report in outcome["loaded"])
    assert {report["kind"] for report in outcome["loaded"]} >= {"services", "changes", "incidents", "wiki chunks", "bug reports"}
    assert "already trained" in outcome["training"]
    assert outcome["example"]["true_culprits"]
    assert outcome["report_outages"]
    assert outcome["answer"]["n_candidates"] > 0
    assert outcome["answer"]["suggestions"] or outcome["answer"]["strongest_signals"]

    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps
    assert model.stat().st_mtime_ns == model_stamp


@pytest.mark.parametrize(
    ("option", "value"), [("--days", "100000000"), ("--changes", "1000000000"), ("--incidents", "1000000000")]
)
def test_a_demo_too_big_to_generate_is_a_usage_error(data_dir: Path, option: str, value: str) -> None:
    """--days 100000000 ended in an OverflowError traceback; a billion changes or incidents stalled for hours."""
    result = CliRunner().invoke(app, ["demo", option, value, "--json"])
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output, result.output
    assert not (data_dir / "demo").exists()
