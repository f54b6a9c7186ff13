"""What a change did, read from its patch: the functions its hunks were in and the names it added or removed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from knowledge.changes import Change
from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.ingest.git_log import ingest_git
from knowledge.ingest.history_files import read_commits
from knowledge.ingest.patch_names import MAX_NAME_CHARS, MAX_NAMES, MAX_PATCH_BYTES
from tests.ingest.synthetic_repo import git_as_ana

HTTP_C = """#include "http.h"

static int http_send_chunk(struct conn *conn, const char *buf, size_t len)
{
  int sent = 0;
  sent = conn_write(conn, buf, len);
  return sent;
}

int http_done(struct conn *conn)
{
  conn_close(conn);
  return 0;
}
"""


def _commit(repo: Path, title: str, files: dict[str, str], when: int) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git_as_ana(repo, "add", "-A", when=when)
    git_as_ana(repo, "commit", "-q", "-m", title, when=when)


def _stored(url: str) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Title -> (functions, identifiers) as the store gives them back."""
    with session_scope(url) as session:
        records = [change.record() for change in session.scalars(select(Change))]
    return {record.title: (record.functions, record.identifiers) for record in records}


def _http_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "shop"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    _commit(repo, "http: first version", {"lib/http.c": HTTP_C}, when=1_710_000_000)
    _commit(repo, "http: write whole buffers",
            {"lib/http.c": HTTP_C.replace("conn_write(conn", "conn_write_all(conn")}, when=1_710_000_600)  # fmt: skip
    changed = HTTP_C.replace("conn_write(conn", "conn_write_all(conn")
    _commit(repo, "http: clear the timer when done",
            {"lib/http.c": changed.replace("  conn_close(conn);\n", "  conn_close(conn);\n  expire_clear(conn);\n")},
            when=1_710_001_200)  # fmt: skip
    return repo


def test_each_change_keeps_the_functions_it_touched_and_the_names_it_added_or_removed(
    database_url: str, tmp_path: Path
) -> None:
    ingest_git(_http_repo(tmp_path), database_url, repo_name="acme/shop")
    stored = _stored(database_url)

    assert stored["http: write whole buffers"] == (("http_send_chunk",), ("conn_write_all", "conn_write"))
    assert stored["http: clear the timer when done"] == (("http_done",), ("expire_clear",))
    # A new file's only hunk starts at line 1: no function context; every name on its lines is new.
    functions, names = stored["http: first version"]
    assert functions == ()
    assert names == ("http_send_chunk", "size_t", "conn_write", "http_done", "conn_close")


def test_a_huge_diff_is_read_only_up_to_the_bounds_and_the_next_change_still_parses(
    database_url: str, tmp_path: Path
) -> None:
    """3,000 functions rewritten at once keep 32; a generated file whose names only start after
    the first 64 KiB of the patch adds none; the small change after both reads as usual."""
    repo = _http_repo(tmp_path)
    generated = "".join(f"int gen_fn_{n:04d}(void)\n{{\n  return 1;\n}}\n\n" for n in range(3000))
    _commit(repo, "gen: add generated table", {"lib/gen.c": generated}, when=1_710_002_000)
    rewritten = "".join(f"int gen_fn_{n:04d}(void)\n{{\n  return gen_value_{n:04d};\n}}\n\n" for n in range(3000))
    _commit(repo, "gen: return the table's values", {"lib/gen.c": rewritten}, when=1_710_003_000)
    words = "".join(f"plain words only here {n}\n" for n in range(2 * MAX_PATCH_BYTES // 20))
    late = "".join(f"late_name_{n} = {n};\n" for n in range(100))
    _commit(repo, "data: add a long list", {"data/list.txt": words + late}, when=1_710_004_000)
    _commit(repo, "http: close before clearing",
            {"lib/http.c": (repo / "lib/http.c").read_text().replace("conn_close(conn);\n", "conn_shutdown(conn);\n")},
            when=1_710_005_000)  # fmt: skip

    ingest_git(repo, database_url, repo_name="acme/shop")
    stored = _stored(database_url)

    functions, names = stored["gen: return the table's values"]
    assert functions == tuple(f"gen_fn_{n:04d}" for n in range(MAX_NAMES))
    assert names == tuple(f"gen_value_{n:04d}" for n in range(MAX_NAMES))
    assert stored["data: add a long list"] == ((), ())
    assert stored["http: close before clearing"] == (("http_done",), ("conn_shutdown", "conn_close"))


def test_history_files_load_with_and_without_the_new_fields(tmp_path: Path) -> None:
    """Files written before the fields existed (``shared/data/rca``) load as changes without names."""
    commits = tmp_path / "commits-acme__shop.jsonl"
    common = '"repo": "acme/shop", "author_time": 1710000000, "landed_time": 1710000000, "files": [["lib/http.c", 1, 1]]'
    commits.write_text(
        f'{{"sha": "old1", "title": "http: before the fields", {common}}}\n'
        f'{{"sha": "new1", "title": "http: with them", {common}, '
        '"functions": ["http_done"], "identifiers": ["expire_clear", "conn_close"]}\n'
    )
    records = {record.id: record for record in read_commits(commits).records}
    assert (records["old1"].functions, records["old1"].identifiers) == ((), ())
    assert (records["new1"].functions, records["new1"].identifiers) == (("http_done",), ("expire_clear", "conn_close"))


def test_a_history_line_beyond_the_patch_readers_bounds_is_refused_with_its_reason(tmp_path: Path) -> None:
    """A file cannot hand a change more names, or longer ones, than ``git log`` would have kept."""
    commits = tmp_path / "commits-acme__shop.jsonl"
    common = '"repo": "acme/shop", "author_time": 1710000000, "landed_time": 1710000000'
    too_many = json.dumps([f"fn_{n}" for n in range(MAX_NAMES + 1)])
    commits.write_text(
        f'{{"sha": "ok1", "title": "fine", {common}, "functions": ["http_done"]}}\n'
        f'{{"sha": "many", "title": "flood", {common}, "functions": {too_many}}}\n'
        f'{{"sha": "long", "title": "long", {common}, "identifiers": ["{"x_" * MAX_NAME_CHARS}"]}}\n'
        f'{{"sha": "odd", "title": "not names", {common}, "identifiers": [42]}}\n'
    )
    with pytest.raises(InputError, match=r":2: functions: List should have at most 32 items"):
        read_commits(commits)
    read = read_commits(commits, skip_bad=True)
    assert [record.id for record in read.records] == ["ok1"]
    assert [(bad.line_no, bad.reason.split(":")[0]) for bad in read.bad_lines] == [
        (2, "functions"), (3, "identifiers.0"), (4, "identifiers.0"),
    ]
