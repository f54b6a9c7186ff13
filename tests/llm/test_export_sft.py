"""``culprit export-sft``: past investigations become fine-tuning batches with the culprit among them."""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from knowledge.errors import InputError
from tools.rca.judges.prompt import SYSTEM_PROMPT

REPO = "acme/payments"
BASE_TIME = 1_700_000_000
LINE = re.compile(r"^([A-Z]+)\. (.+) \(-?\d+ min before; ", re.MULTILINE)


def _commit(index: int) -> dict[str, Any]:
    landed = BASE_TIME + index * 3600
    return {
        "repo": REPO,
        "sha": f"{index:040x}",
        "author": "dev",
        "author_time": landed - 60,
        "landed_time": landed,
        "title": f"payments: change {index} to the card flow",
        "body": f"Body of change {index}.",
        "files": [[f"services/payments/module_{index}.py", 3, 1]],
    }


def _case(number: int, culprit: str, candidates: list[str], rng: random.Random) -> dict[str, Any]:
    return {
        "case_id": f"case-{number}",
        "repo": REPO,
        "incident": {
            "time": BASE_TIME + 60 * 3600,
            "title": f"checkout: card payments fail, report {number}",
            "text": "Checkout answers 502 for card payments since the morning. "
            "It is charge_card() in services/payments/module_3.py that raises.",
        },
        "window_days": 14,
        "candidates": candidates,
        "truth": {"culprits": [culprit], "link_kind": "revert", "culprit_recency_ranks": [rng.randrange(50)]},
        "provenance": {"fix_sha": "f" * 40, "fix_title": f"SECRET-FIX-TITLE-{number} reverts the card flow"},
    }


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, Path, dict[str, dict[str, Any]]]:
    """30 usable cases over 50 commits, one whose culprit has no commit line, one with a lone candidate."""
    rng = random.Random(3)
    commits = {commit["sha"]: commit for commit in map(_commit, range(50))}
    shas = list(commits)
    cases = []
    for number in range(30):
        candidates = rng.sample(shas, 30)
        cases.append(_case(number, rng.choice(candidates), candidates, rng))
    cases.append(_case(30, "e" * 40, ["e" * 40, *shas[:10]], rng))
    cases.append(_case(31, shas[0], [shas[0]], rng))
    commits_file, cases_file = tmp_path / "commits-acme.jsonl.gz", tmp_path / "cases-acme.jsonl"
    with gzip.open(commits_file, "wt") as handle:
        handle.writelines(json.dumps(commit) + "\n" for commit in commits.values())
    cases_file.write_text("".join(json.dumps(case) + "\n" for case in cases))
    return cases_file, commits_file, {case["case_id"]: case for case in cases}


def _export(cases: Path, commits: Path, out: Path, *options: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["export-sft", "--cases", str(cases), "--commits", str(commits), str(out), "--json", *options]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_example_holds_the_culprit_among_2_to_20_lettered_changes(history, tmp_path: Path) -> None:
    cases_file, commits_file, cases = history
    out = tmp_path / "sft.jsonl"

    summary = _export(cases_file, commits_file, out, "--seed", "7")

    assert summary["cases"] == 32 and summary["examples"] == 30
    assert summary["skipped"] == {"culprit_not_in_commit_files": 1, "culprit_landed_after_start": 0, "too_few_candidates": 1}
    records = _records(out)
    assert len(records) == 30
    titles = {commit["title"]: commit["sha"] for commit in map(_commit, range(50))}
    culprit_letters = []
    for record in records:
        system, user, answer = record["messages"]
        assert (system, user["role"], answer["role"]) == ({"role": "system", "content": SYSTEM_PROMPT}, "user", "assistant")
        lines = LINE.findall(user["content"])
        case = next(case for case in cases.values() if f"Incident: {case['incident']['title']}\n" in user["content"])
        assert 2 <= len(lines) <= 20
        assert [letter for letter, _title in lines] == [chr(ord("A") + index) for index in range(len(lines))]
        assert {titles[title] for _letter, title in lines} <= set(case["candidates"])
        shown = dict(lines)
        assert titles[shown[answer["content"]]] == case["truth"]["culprits"][0]
        culprit_letters.append(answer["content"])
    assert len(set(culprit_letters)) > 5, "the culprit sits at random positions"
    assert sum(summary["culprit_positions"].values()) == 30


def test_prompts_carry_the_incident_only_never_its_answer_key(history, tmp_path: Path) -> None:
    cases_file, commits_file, _cases = history
    out = tmp_path / "sft.jsonl"
    _export(cases_file, commits_file, out)

    text = out.read_text()
    for record in _records(out):
        prompt = json.dumps(record["messages"][:2])
        assert "SECRET-FIX-TITLE" not in prompt and "f" * 40 not in prompt
        assert "revert" not in prompt.lower() and "culprit" not in prompt.lower()
        assert not re.search(r"[0-9a-f]{40}", prompt), "no commit id reaches the prompt"
    assert "SECRET-FIX-TITLE" not in text


def test_changes_a_case_lists_that_landed_after_its_start_never_reach_an_example(history, tmp_path: Path) -> None:
    """A file may name a later change as a candidate (an incident time set too early, a hostile file): the
    example would show it as landed minus minutes before, knowledge from after the start, often the answer."""
    cases_file, commits_file, cases = history
    early = [
        {**case, "incident": {**case["incident"], "time": BASE_TIME + 20 * 3600 - 60}}  # changes 20-49 land after it
        for case in cases.values() if case["case_id"] not in ("case-30", "case-31")
    ]
    cases_file.write_text("".join(json.dumps(case) + "\n" for case in early))
    out = tmp_path / "sft.jsonl"

    summary = _export(cases_file, commits_file, out, "--seed", "7")

    late = [case for case in early if int(case["truth"]["culprits"][0], 16) >= 20]
    assert late and summary["skipped"]["culprit_landed_after_start"] == len(late)
    assert summary["examples"] == len(early) - len(late) - summary["skipped"]["too_few_candidates"]
    titles = {commit["title"]: int(commit["sha"], 16) for commit in map(_commit, range(50))}
    for record in _records(out):
        assert all(titles[title] < 20 for _letter, title in LINE.findall(record["messages"][1]["content"]))
        assert " min before" in record["messages"][1]["content"] and "(-" not in record["messages"][1]["content"]


def test_the_same_seed_writes_the_same_file_and_bounds_fix_the_batch_size(history, tmp_path: Path) -> None:
    cases_file, commits_file, _cases = history
    first, second, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"

    _export(cases_file, commits_file, first, "--seed", "1", "--min", "5", "--max", "5")
    _export(cases_file, commits_file, second, "--seed", "1", "--min", "5", "--max", "5")
    _export(cases_file, commits_file, other, "--seed", "2", "--min", "5", "--max", "5")

    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    assert {len(LINE.findall(record["messages"][1]["content"])) for record in _records(first)} == {5}


def test_ranked_examples_list_every_letter_with_the_culprit_first(history, tmp_path: Path) -> None:
    cases_file, commits_file, cases = history
    out = tmp_path / "ranked.jsonl"

    summary = _export(cases_file, commits_file, out, "--format", "ranked", "--seed", "7")

    assert summary["format"] == "ranked" and summary["examples"] == 30
    chat = tmp_path / "chat.jsonl"
    _export(cases_file, commits_file, chat, "--seed", "7")
    for ranked, plain in zip(_records(out), _records(chat), strict=True):
        assert [message["role"] for message in ranked["messages"]] == ["system", "user"]
        assert ranked["messages"] == plain["messages"][:2], "both formats share the prompt"
        letters = [letter for letter, _title in LINE.findall(ranked["messages"][1]["content"])]
        assert sorted(ranked["ranking"]) == letters
        assert ranked["ranking"][0] == plain["messages"][2]["content"]
        assert ranked["relevance"] == [1] + [0] * (len(letters) - 1)


@pytest.mark.parametrize(("options", "message"), [(["--min", "1"], "--min and --max"), (["--max", "21"], "--min and --max")])
def test_bounds_outside_2_to_20_are_refused_with_the_fix(history, tmp_path: Path, options, message: str) -> None:
    cases_file, commits_file, _cases = history
    result = CliRunner().invoke(
        app, ["export-sft", "--cases", str(cases_file), "--commits", str(commits_file), str(tmp_path / "x.jsonl"), *options]
    )
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception)


def test_a_missing_history_file_is_an_input_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["export-sft", "--cases", str(tmp_path / "nope.jsonl"), "--commits", str(tmp_path / "no.jsonl"), "o.jsonl"]
    )
    assert isinstance(result.exception, InputError)
    assert "file not found" in str(result.exception)


def test_symptom_examples_keep_only_the_first_sentence_without_code_names(history, tmp_path: Path) -> None:
    cases_file, commits_file, _cases = history
    out = tmp_path / "symptom.jsonl"

    full = tmp_path / "full.jsonl"

    _export(cases_file, commits_file, out, "--symptom")
    _export(cases_file, commits_file, full)

    prompt = _records(out)[0]["messages"][1]["content"]
    assert "Incident: card payments fail, report 0\n" in prompt
    assert "Checkout answers 502 for card payments since the morning.\n" in prompt
    assert "charge_card" not in prompt and "module_3.py that raises" not in prompt
    assert "charge_card() in services/payments/module_3.py" in _records(full)[0]["messages"][1]["content"]
