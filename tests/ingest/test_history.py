"""Past investigations load once, whether the files are gzipped or plain."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from knowledge.changes import Change, ChangeFile
from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.incidents import Incident, RootCause
from knowledge.ingest.history import ingest_cases, ingest_commits
from knowledge.lines import capped_lines
from tools.rca.store import stored_words

BASE = 1_600_000_000


def _commit(number: int) -> dict[str, object]:
    return {
        "repo": "acme/shop", "sha": f"{number:040x}", "author": "Ana", "email": "ana@example.org",
        "author_time": BASE + number, "commit_time": BASE + number, "landed_time": BASE + 100 + number,
        "landed_via_merge": number % 2 == 0, "landed_seq": number, "title": f"Change {number}",
        "body": "Because.", "body_truncated": False, "n_files": 2, "added": 5, "deleted": 1,
        "files": [["src/cart.py", 5, 1], ["assets/logo.png", None, None]], "files_truncated": False,
        "dirs": ["assets", "src"],
    }  # fmt: skip


def _case(number: int) -> dict[str, object]:
    return {
        "case_id": f"acme/shop@{number:012x}", "repo": "acme/shop",
        "incident": {"time": BASE + 1000 + number, "time_iso": "", "title": f"Checkout fails {number}",
                     "text": "Checkout returns 500 after a recent change."},
        "window_days": 14, "window_start": BASE, "n_candidates": 3,
        "candidates": [f"{n:040x}" for n in range(3)],
        "truth": {"culprits": [f"{number:040x}", f"{number:040x}"], "link_kind": "revert"},
    }  # fmt: skip


def _write(path: Path, records: list[dict[str, object]], bad_line: str | None = None) -> Path:
    lines = [json.dumps(record) for record in records]
    if bad_line is not None:
        lines.insert(1, bad_line)
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def _count(url: str, model: type) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize("name", ["commits-acme__shop.jsonl.gz", "commits-acme__shop.jsonl"])
def test_commits_become_changes_with_their_files_once(database_url: str, tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / name, [_commit(n) for n in range(3)])

    first = ingest_commits(path, database_url)
    second = ingest_commits(path, database_url)

    assert (first.new, first.already_present, second.new, second.already_present) == (3, 0, 0, 3)
    assert (_count(database_url, Change), _count(database_url, ChangeFile)) == (3, 6)
    with session_scope(database_url) as session:
        change = session.get(Change, f"{2:040x}")
        assert change is not None
        assert (change.title, change.landed_via_merge, change.directories) == ("Change 2", True, ["assets", "src"])
        assert change.landed_time.timestamp() == BASE + 102
        assert [(f.path, f.added, f.deleted) for f in change.files] == [
            ("src/cart.py", 5, 1),
            ("assets/logo.png", None, None),
        ]


def test_cases_become_incidents_with_their_root_causes(database_url: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "cases-acme__shop.jsonl.gz", [_case(n) for n in range(4)])

    first = ingest_cases(path, database_url, stored_words)
    second = ingest_cases(path, database_url, stored_words)

    assert (first.new, second.new, second.already_present) == (4, 0, 4)
    assert (_count(database_url, Incident), _count(database_url, RootCause)) == (4, 4)
    with session_scope(database_url) as session:
        incident = session.get(Incident, f"acme/shop@{1:012x}")
        assert incident is not None
        assert (incident.source, incident.repo, incident.title) == ("history", "acme/shop", "Checkout fails 1")
        assert incident.started_at.timestamp() == BASE + 1001
        assert [(cause.change_id, cause.source) for cause in incident.root_causes] == [(f"{1:040x}", "history")]


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [("{not json", "invalid JSON"), ('{"repo": "acme/shop", "sha": "abc"}', "author_time")],
)
def test_a_bad_line_stops_the_load_unless_skipped(
    database_url: str, tmp_path: Path, bad_line: str, reason: str
) -> None:
    path = _write(tmp_path / "commits-acme__shop.jsonl.gz", [_commit(n) for n in range(3)], bad_line)

    with pytest.raises(InputError, match=rf"commits-acme__shop.jsonl.gz:2: .*{reason}.*--skip-bad"):
        ingest_commits(path, database_url)
    assert _count(database_url, Change) == 0

    report = ingest_commits(path, database_url, skip_bad=True)
    assert report.new == 3
    assert len(report.bad_lines) == 1 and ":2: " in report.bad_lines[0] and reason in report.bad_lines[0]


def test_a_missing_history_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found: .*cases-nowhere"):
        ingest_cases(tmp_path / "cases-nowhere.jsonl.gz", f"sqlite:///{tmp_path / 'unused.db'}", stored_words)


def test_an_id_given_twice_in_one_file_is_stored_once_and_reported(database_url: str, tmp_path: Path) -> None:
    again = _commit(1) | {"title": "Change 1 written again"}
    commits = _write(tmp_path / "commits-acme__shop.jsonl.gz", [_commit(0), _commit(1), again])
    cases = _write(tmp_path / "cases-acme__shop.jsonl", [_case(0), _case(1), _case(1)])

    changes_report = ingest_commits(commits, database_url)
    cases_report = ingest_cases(cases, database_url, stored_words)

    assert (changes_report.new, cases_report.new) == (2, 2)
    assert changes_report.bad_lines == [f"{commits}:3: duplicate id '{1:040x}' (first on line 2)"]
    assert cases_report.bad_lines == [f"{cases}:3: duplicate id 'acme/shop@{1:012x}' (first on line 2)"]
    assert (_count(database_url, Change), _count(database_url, Incident)) == (2, 2)
    with session_scope(database_url) as session:
        assert session.get(Change, f"{1:040x}").title == "Change 1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (json.dumps(_commit(7) | {"title": "x" * 10_001}), "title: String should have at most 10000 characters"),
        (json.dumps(_commit(7) | {"added": 2**31}), "added: Input should be less than or equal to 2147483647"),
        (json.dumps(_commit(7) | {"landed_time": 10**12}), "landed_time: Input should be less than or equal to"),
        (json.dumps(_commit(7) | {"landed_time": 4_070_908_800}),  # stored, it was a suspect in every window to 2099
         "landed_time: Value error, 2099-01-01T00:00:00Z is in the future (more than 5 minutes ahead"),
        (json.dumps(_commit(7) | {"files": [["a.py", 1, 0]] * 10_001}), "files: List should have at most 10000 items"),
        ('{"title": "caf\xe9"}', "not UTF-8 text"),
        ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
        ('{"title": "' + "x" * (4 << 20) + '"}', "line longer than 4 MiB"),
        (json.dumps(_commit(7) | {"author": "ana\x00"}), "holds a NUL (\\u0000)"),  # PostgreSQL refused the batch
        (json.dumps(_commit(7) | {"files": [["lib/a\x00.c", 1, 0]]}), "holds a NUL (\\u0000)"),
    ],
)
def test_a_line_beyond_the_format_s_bounds_is_refused_with_its_number(
    database_url: str, tmp_path: Path, bad_line: str, reason: str
) -> None:
    path = tmp_path / "commits-acme__shop.jsonl"
    lines = [json.dumps(_commit(0)).encode(), bad_line.encode("latin-1" if "\xe9" in bad_line else "utf-8"),
             json.dumps(_commit(1)).encode()]  # fmt: skip
    path.write_bytes(b"\n".join(lines) + b"\n")

    report = ingest_commits(path, database_url, skip_bad=True)

    assert report.new == 2 and len(report.bad_lines) == 1
    assert report.bad_lines[0].startswith(f"{path}:2: ") and reason in report.bad_lines[0]


def test_a_damaged_gzip_file_is_named_instead_of_a_traceback(tmp_path: Path) -> None:
    packed = gzip.compress("".join(json.dumps(_commit(n)) + "\n" for n in range(200)).encode())
    path = tmp_path / "commits-acme__shop.jsonl.gz"
    path.write_bytes(packed[:40] + bytes([packed[40] ^ 0xFF]) + packed[41:])
    with pytest.raises(InputError, match=rf"cannot read {path}: the file is damaged"):
        ingest_commits(path, f"sqlite:///{tmp_path / 'unused.db'}")


class _Recording(io.BytesIO):
    """A file that remembers the most bytes one read handed back."""

    largest = 0

    def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        line = super().readline(size)
        self.largest = max(self.largest, len(line))
        return line


def test_an_over_long_line_is_skipped_a_chunk_at_a_time() -> None:
    stream = _Recording(b"first\n" + b"x" * (8 << 20) + b"\nlast\n")
    assert list(capped_lines(stream, limit=1024)) == [(1, b"first\n"), (2, None), (3, b"last\n")]
    assert stream.largest <= 1 << 20
