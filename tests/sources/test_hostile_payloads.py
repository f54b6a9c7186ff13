"""A sender's mistakes or malice in change events and forge webhooks cost only the item they are in:
a time past what a datetime holds, an id with a trailing newline, an object where text belongs, a lone
surrogate PostgreSQL cannot store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from knowledge.changes import Change, ChangeFile
from knowledge.config import TrackedRepo
from knowledge.db import session_scope
from knowledge.ingest import git_log
from knowledge.ingest.history_files import MAX_FILES, MAX_PATH_CHARS, MAX_TITLE_CHARS
from knowledge.sources.events import check_events, store_events
from knowledge.sources.webhooks import github_changes, gitlab_changes, store_webhook_changes
from tests.sources.upstream import Upstream

SHA = "a" * 40
REPO = TrackedRepo(name="acme/shop", path=Path("/srv/shop"))


def _event(**fields: Any) -> dict[str, Any]:
    return {"id": "deploy-1", "kind": "deploy", "service": "checkout", "title": "deploy 1",
            "time": "2025-06-01T10:00:00Z"} | fields  # fmt: skip


def test_each_bad_change_event_is_refused_with_its_reason(database_url: str) -> None:
    batch = check_events([
        _event(id="deploy-1\n"),
        _event(id="late", time="9999-12-31T23:30:00-05:00"),
        _event(id="early", time="0001-01-01T00:00:00+01:00"),
        _event(id="ancient", time="1969-12-31T23:59:59Z"),
        _event(id="wrong-clock", time="2099-01-01T00:00:00Z"),
        _event(id="listed", commits=["abcd\n"]),
        _event(id="object-title", title={"text": "deploy"}),
        _event(id="surrogate", title="deploy \ud800"),
        _event(id="good"),
    ])  # fmt: skip

    reasons = {rejected.index: rejected.reason for rejected in batch.rejected}
    assert [event["id"] for event in batch.events] == ["good"]
    assert reasons[0].startswith("'id' must be")
    assert reasons[1] == "'time' '9999-12-31T23:30:00-05:00' is out of range: give one from 1970 to 9999 in UTC"
    assert reasons[2] == "'time' '0001-01-01T00:00:00+01:00' is out of range: give one from 1970 to 9999 in UTC"
    assert reasons[3] == "'time' '1969-12-31T23:59:59Z' is before 1970: give one from 1970 to 9999 in UTC"
    # Named as the webhooks and incident webhooks name it: "in the future or before 1970" left the sender guessing.
    assert reasons[4] == "'time' '2099-01-01T00:00:00Z' is in the future (more than 5 minutes ahead of culprit's clock)"
    assert "hexadecimal" in reasons[5] and "must be a string" in reasons[6] and "lone surrogate" in reasons[7]
    assert store_events(batch, database_url).new == 1


def _push(*commits: dict[str, Any], repository: Any = None) -> dict[str, Any]:
    return {"ref": "refs/heads/main", "repository": repository or {"full_name": "acme/shop"}, "commits": list(commits)}


def _commit(sha: str, **fields: Any) -> dict[str, Any]:
    return {"id": sha, "message": "pay: retry", "timestamp": "2025-06-01T10:00:00Z", "author": {"name": "Ana"},
            "added": ["src/pay.py"]} | fields  # fmt: skip


def test_each_bad_pushed_commit_is_refused_and_the_rest_stored(database_url: str) -> None:
    changes = github_changes("push", _push(
        _commit(SHA + "\n"),
        _commit("b" * 40, timestamp="9999-12-31T23:30:00-05:00"),
        _commit("c" * 40, message="pay: \ud800 retry"),
        _commit("d" * 40, added=["src/\udfff.py"]),
        _commit("e" * 40, author="Ana"),
    ), [REPO])  # fmt: skip

    assert [record.id for record in changes.records] == ["e" * 40]
    assert changes.refused == (f"commit {'a' * 40}\n: its id is no commit sha (40 or 64 lowercase hex digits)",
                               f"commit {'b' * 40}: time '9999-12-31T23:30:00-05:00' is not from 1970 to 9999",
                               f"commit {'c' * 40}: text holds a lone surrogate such as \\ud800 (not valid Unicode)",
                               f"commit {'d' * 40}: text holds a lone surrogate such as \\ud800 (not valid Unicode)")  # fmt: skip
    assert store_webhook_changes(changes, database_url) == (1, 0)
    with session_scope(database_url) as session:
        assert session.scalars(select(Change.id)).all() == ["e" * 40]


def test_a_pushed_commit_keeps_no_more_files_than_a_history_import_would(database_url: str) -> None:
    """A push listing 12,000 paths stored 12,000 file rows, though a commits file may list at most MAX_FILES;
    its size still counts every distinct path, as ``ingest git`` counts a commit's."""
    added = [f"src/{n}.py" for n in range(MAX_FILES + 2000)]
    changes = github_changes("push", _push(_commit(SHA, added=added, modified=["src/0.py"], removed=["gone.py"])), [REPO])

    (record,) = changes.records
    assert [path for path, _added, _deleted in record.files] == added[:MAX_FILES]
    assert record.n_files == MAX_FILES + 2001
    assert store_webhook_changes(changes, database_url) == (1, 0)
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(ChangeFile)) == MAX_FILES


def test_a_pushed_path_is_kept_whole_or_not_at_all_as_git_ingestion_keeps_it(database_url: str) -> None:
    """A pushed path was cut at 1,000 characters: the cut path names another file, evidence of who owns what
    pointing at the wrong one. As ``ingest git`` does, a path past PATH_MAX (it names no file) is counted only."""
    deep = "/".join(["pay"] * 500) + "/retry.py"
    too_long = "d" * (MAX_PATH_CHARS - 1) + "/x"
    changes = github_changes("push", _push(_commit(SHA, added=[deep, too_long], modified=["src/pay.py"])), [REPO])

    (record,) = changes.records
    assert (record.files, record.n_files) == (((deep, None, None), ("src/pay.py", None, None)), 3)
    assert record.directories == ("/".join(["pay"] * 500), "src")
    assert store_webhook_changes(changes, database_url) == (1, 0)
    with session_scope(database_url) as session:
        assert set(session.scalars(select(ChangeFile.path))) == {deep, "src/pay.py"}


def test_a_pushed_commit_has_the_title_git_ingestion_gives_the_same_commit(tmp_path: Path) -> None:
    """A pushed commit's title was cut at 500 characters, git ingestion's at MAX_TITLE_CHARS: the same commit
    got two titles by the way it arrived. Both now split and cut a message alike, a merged pull's title too."""
    upstream = Upstream.create(tmp_path / "shop")
    long_title = "pay: retry the card " * 150  # 3,000 characters
    sha = upstream.commit("src/pay.py", long_title.strip())
    (ingested,) = git_log.read_changes(upstream.path, [sha], "acme/shop", git_log.read_mainline(upstream.path, sha))
    payload = upstream.github_push([sha])
    payload["commits"][0]["message"] = "\n" * 30_000 + payload["commits"][0]["message"]  # past what is read of it

    (pushed,) = github_changes("push", payload, [REPO]).records
    (merged,) = github_changes("pull_request", {
        "action": "closed", "repository": {"full_name": "acme/shop"},
        "pull_request": {"merged": True, "merge_commit_sha": SHA, "title": "x" * (MAX_TITLE_CHARS + 5), "body": "why",
                         "base": {"ref": "main"}, "merged_at": "2025-06-01T10:00:00Z"}}, [REPO]).records  # fmt: skip

    assert len(ingested.title) == 2999 and (pushed.title, pushed.body) == (ingested.title, ingested.body)
    assert (merged.title, merged.body) == ("x" * MAX_TITLE_CHARS, "why")


def test_parts_of_a_payload_that_are_not_objects_are_as_good_as_absent() -> None:
    assert github_changes("push", _push(repository="acme/shop"), [REPO]).ignored == "repository not tracked"
    pull = {"action": "closed", "pull_request": ["merged"], "repository": {"full_name": "acme/shop"}}
    assert github_changes("pull_request", pull, [REPO]).ignored == "not a pull request merged into main"
    merge = {"object_kind": "merge_request", "project": {"path_with_namespace": "acme/shop"}, "object_attributes": "merge"}
    assert gitlab_changes(merge, [REPO]).ignored == "not a merge request merged into main"
    early = {"action": "closed", "repository": {"full_name": "acme/shop"}, "pull_request": {
        "merged": True, "base": {"ref": "main"}, "merge_commit_sha": SHA, "merged_at": "0001-01-01T00:00:00+01:00"}}
    assert github_changes("pull_request", early, [REPO]).refused == (
        f"commit {SHA}: time '0001-01-01T00:00:00+01:00' is not from 1970 to 9999",)


def test_an_event_id_repeated_in_one_batch_is_stored_once_and_the_repeat_refused(database_url: str) -> None:
    batch = check_events([_event(), _event(title="deploy 1 again"), _event(id="deploy-2")])
    assert [(rejected.index, rejected.id, rejected.reason) for rejected in batch.rejected] == [
        (1, "deploy-1", "'id' repeats event 0 of this batch")]
    stored = store_events(batch, database_url)
    assert (stored.new, stored.already_present) == (2, 0)
    with session_scope(database_url) as session:
        assert session.get(Change, "deploy-1").title == "deploy 1"  # type: ignore[union-attr]


def test_a_gitlab_merge_request_time_in_gitlabs_own_format_is_read() -> None:
    merge = {"object_kind": "merge_request", "project": {"path_with_namespace": "acme/shop"},
             "object_attributes": {"action": "merge", "target_branch": "main", "merge_commit_sha": SHA,
                                   "title": "pay: retry", "updated_at": "2026-11-30 09:15:00 UTC"}}  # fmt: skip
    (record,) = gitlab_changes(merge, [REPO]).records
    assert record.landed_time == datetime(2026, 11, 30, 9, 15, tzinfo=UTC)


def test_a_range_end_that_names_several_stored_commits_is_refused_not_read_as_any_one_of_them(database_url: str) -> None:
    """Read by landing time, an end whose abbreviated sha several stored commits start with was whichever of
    them the database gave first: the deploy carried a range nobody sent."""
    first, second, last = "abcd" + "1" * 36, "abcd" + "2" * 36, "ef01" + "3" * 36
    pushed = github_changes("push", _push(_commit(first, timestamp="2025-06-01T10:00:00Z"),
                                          _commit(second, timestamp="2025-06-01T11:00:00Z"),
                                          _commit(last, timestamp="2025-06-01T12:00:00Z")), [REPO])  # fmt: skip
    assert store_webhook_changes(pushed, database_url) == (3, 0)

    stored = store_events(check_events([_event(repo="acme/shop", commit_range="abcd..ef01"),
                                        _event(id="deploy-2", repo="acme/shop", commit_range="abcd2..ef01")]),
                          database_url)  # fmt: skip

    assert [(rejected.index, rejected.reason) for rejected in stored.rejected] == [
        (0, "'commit_range' end abcd names several commits of acme/shop: give more of its sha")]
    with session_scope(database_url) as session:
        assert session.get(Change, "deploy-1") is None
        assert list(session.get(Change, "deploy-2").carries) == [last]  # type: ignore[union-attr]
