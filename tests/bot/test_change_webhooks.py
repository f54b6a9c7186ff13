"""Pushes reach culprit by webhook: signed deliveries store their commits at once, the next poll
completes them, and two replicas that poll and receive the same deliveries store each change once."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import selectinload

from bot import sources_http
from bot.jobs import poll_tracked_repositories
from knowledge.changes import Change
from knowledge.claims import Claim
from knowledge.db import session_scope, utcnow
from knowledge.sources.polling import WEBHOOK_DELIVERIES
from tests.bot.conftest import Bot, StartBot
from tests.sources.upstream import CHANGES_TOKEN, GITLAB_TOKEN, WEBHOOK_SECRET, Upstream, send_github


def _changes(url: str) -> dict[str, Change]:
    with session_scope(url) as session:
        return {change.id: change for change in session.scalars(select(Change).options(selectinload(Change.files)))}


def _bot(start_bot: StartBot, database_url: str, upstream: Upstream) -> Bot:
    return start_bot(database_url, env={
        "CULPRIT_REPOS": json.dumps([upstream.tracked()]),
        "CULPRIT_GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CULPRIT_GITLAB_WEBHOOK_TOKEN": GITLAB_TOKEN,
    })  # fmt: skip


def test_a_signed_push_is_stored_at_once_and_the_next_poll_completes_it(
    database_url: str, start_bot: StartBot, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    shas = [upstream.commit("src/pay.py", "pay: retry declined cards", lines=4), upstream.commit("docs/a.md", "docs")]
    bot = _bot(start_bot, database_url, upstream)

    answer = send_github(bot.url, upstream.github_push(shas), delivery="d-1")
    assert answer.status_code == 200 and answer.json() == {"repo": "acme/shop", "stored": 2, "already_present": 0}
    pushed = _changes(database_url)[shas[0]]
    assert pushed.partial and pushed.title == "pay: retry declined cards"
    assert [(f.path, f.added) for f in pushed.files] == [("src/pay.py", None)]

    assert send_github(bot.url, upstream.github_push(shas), delivery="d-1").json() == {"duplicate": True}
    assert poll_tracked_repositories(bot.settings) == 0  # nothing new: the push already told of both
    completed = _changes(database_url)[shas[0]]
    assert not completed.partial and [(f.path, f.added, f.deleted) for f in completed.files] == [("src/pay.py", 4, 0)]


def test_deliveries_that_are_not_trusted_or_not_for_the_branch_store_nothing(
    database_url: str, start_bot: StartBot, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    sha = upstream.commit("src/a.py", "a change")
    bot = _bot(start_bot, database_url, upstream)

    forged = send_github(bot.url, upstream.github_push([sha]), delivery="d-2", secret="not-the-secret")
    not_json = httpx.post(f"{bot.url}/webhooks/github", content=b"{not json", timeout=30,
                          headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})  # fmt: skip
    huge = httpx.post(f"{bot.url}/webhooks/github", content=b"x" * (6 * 1024 * 1024), timeout=60)
    other_branch = upstream.github_push([sha]) | {"ref": "refs/heads/feature"}
    ignored = send_github(bot.url, other_branch, delivery="d-3")
    unknown_repo = upstream.github_push([sha]) | {"repository": {"full_name": "someone/else"}}
    untracked = send_github(bot.url, unknown_repo, delivery="d-4")
    wrong_token = httpx.post(f"{bot.url}/webhooks/gitlab", json=upstream.gitlab_push([sha]),
                             headers={"X-Gitlab-Token": "guess"}, timeout=30)  # fmt: skip

    assert (forged.status_code, not_json.status_code, huge.status_code, wrong_token.status_code) == (401, 401, 413, 401)
    assert ignored.json() == {"ignored": "not a push to main"} and untracked.json() == {"ignored": "repository not tracked"}
    assert _changes(database_url) == {}


def test_a_gitlab_push_hook_with_its_token_is_stored(database_url: str, start_bot: StartBot, tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    sha = upstream.commit("src/flags.py", "flags: default new checkout on")
    bot = _bot(start_bot, database_url, upstream)
    headers = {"X-Gitlab-Token": GITLAB_TOKEN, "X-Gitlab-Event-UUID": "uuid-1"}

    first = httpx.post(f"{bot.url}/webhooks/gitlab", json=upstream.gitlab_push([sha]), headers=headers, timeout=30)
    again = httpx.post(f"{bot.url}/webhooks/gitlab", json=upstream.gitlab_push([sha]), headers=headers, timeout=30)

    assert first.json()["stored"] == 1 and again.json() == {"duplicate": True}
    assert _changes(database_url)[sha].services == [] and _changes(database_url)[sha].repo == "acme/shop"


def test_a_pushed_commit_whose_time_cannot_be_read_is_refused_and_the_rest_of_the_push_stored(
    database_url: str, start_bot: StartBot, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    good, unreadable, missing = (upstream.commit(f"src/m{n}.py", f"change {n}") for n in range(3))
    bot = _bot(start_bot, database_url, upstream)
    github = upstream.github_push([good, unreadable])
    github["commits"][1]["timestamp"] = "last Tuesday"
    gitlab = upstream.gitlab_push([missing])
    del gitlab["commits"][0]["timestamp"]

    pushed = send_github(bot.url, github, delivery="d-5")
    hooked = httpx.post(f"{bot.url}/webhooks/gitlab", json=gitlab, timeout=30,
                        headers={"X-Gitlab-Token": GITLAB_TOKEN, "X-Gitlab-Event-UUID": "uuid-5"})  # fmt: skip

    assert pushed.status_code == 200 and pushed.json() == {
        "repo": "acme/shop", "stored": 1, "already_present": 0,
        "refused": [f"commit {unreadable}: 'timestamp' 'last Tuesday' is not a time (ISO 8601 expected)"]}  # fmt: skip
    assert hooked.json()["refused"] == [f"commit {missing}: no 'timestamp' time"]
    stored = _changes(database_url)
    assert list(stored) == [good]  # never stored at "now", inside every current incident's window
    commit_time = int(upstream.git("show", "-s", "--format=%ct", good))
    assert stored[good].landed_time.timestamp() == commit_time


def test_a_pushed_commit_dated_in_the_future_is_refused_not_stored_landing_then(
    database_url: str, start_bot: StartBot, tmp_path: Path
) -> None:
    """A commit dated 2099 was stored landing in 2099: in every incident's window until the poll came."""
    upstream = Upstream.create(tmp_path / "shop")
    good, future, tomorrow, ahead = (upstream.commit(f"src/f{n}.py", f"change {n}") for n in range(4))
    bot = _bot(start_bot, database_url, upstream)
    github = upstream.github_push([good, future, ahead])
    github["commits"][1]["timestamp"] = "2099-01-01T00:00:00Z"
    github["commits"][2]["timestamp"] = (utcnow() + timedelta(minutes=1)).isoformat()  # a clock a minute fast
    gitlab = upstream.gitlab_push([tomorrow])
    gitlab["commits"][0]["timestamp"] = when = (utcnow() + timedelta(days=1)).isoformat()

    pushed = send_github(bot.url, github, delivery="d-future")
    hooked = httpx.post(f"{bot.url}/webhooks/gitlab", json=gitlab, timeout=30,
                        headers={"X-Gitlab-Token": GITLAB_TOKEN, "X-Gitlab-Event-UUID": "uuid-future"})  # fmt: skip

    assert pushed.status_code == 200 and pushed.json() == {
        "repo": "acme/shop", "stored": 2, "already_present": 0, "refused": [
            f"commit {future}: 'timestamp' '2099-01-01T00:00:00Z' is in the future (more than 5 minutes ahead of culprit's clock)"]}  # fmt: skip
    assert hooked.json()["refused"] == [f"commit {tomorrow}: 'timestamp' {when!r} is in the future (more than 5 minutes "
                                        "ahead of culprit's clock)"]  # fmt: skip
    assert sorted(_changes(database_url)) == sorted([good, ahead])


@pytest.mark.postgres
def test_two_replicas_polling_and_receiving_the_same_webhooks_store_each_change_once(
    postgres_url: str, start_bot: StartBot, tmp_path: Path
) -> None:
    from knowledge.db import migrate

    migrate(postgres_url)
    upstream = Upstream.create(tmp_path / "shop")
    replicas = [_bot(start_bot, postgres_url, upstream) for _ in range(2)]
    settings = [bot.settings.model_copy(update={"data_dir": tmp_path / f"replica-{n}"}) for n, bot in enumerate(replicas)]
    stored_by_webhooks: list[int] = []
    deliveries: list[dict[str, Any]] = []
    polled: list[int] = []

    def deliver(bot: Bot, payload: dict[str, Any], delivery: str) -> None:
        answer = send_github(bot.url, payload, delivery=delivery).json()
        deliveries.append(answer | {"delivery": delivery})
        stored_by_webhooks.append(answer.get("stored", 0))

    shas: list[str] = []
    for round_number in range(3):
        pushed = [upstream.commit(f"src/r{round_number}/m{n}.py", f"round {round_number} change {n}") for n in range(3)]
        shas += pushed
        payload = upstream.github_push(pushed)
        work: list[Callable[[], None]] = [
            *(lambda bot=bot: deliver(bot, payload, f"push-{round_number}") for bot in replicas),
            *(lambda own=own: polled.append(poll_tracked_repositories(own)) for own in settings),
        ]
        threads = [threading.Thread(target=job) for job in work]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for own in settings:  # a later poll completes whatever the webhooks stored first
        polled.append(poll_tracked_repositories(own.model_copy(update={"poll_seconds": 1})))

    with session_scope(postgres_url) as session:
        rows = session.execute(select(Change.id, func.count()).group_by(Change.id)).all()
        partial = session.scalars(select(Change.id).where(Change.partial)).all()
    assert sorted(change_id for change_id, _count in rows) == sorted(shas) and {count for _id, count in rows} == {1}
    assert partial == []
    assert sum(stored_by_webhooks) + sum(polled) == len(shas)
    for round_number in range(3):
        answers = [answer for answer in deliveries if answer["delivery"] == f"push-{round_number}"]
        assert sorted("stored" in answer for answer in answers) == [False, True]
        # The other is a duplicate, or told to redeliver when it came while the first was still being stored.
        other = next(answer for answer in answers if "stored" not in answer)
        assert other.get("duplicate") or "redeliver" in other["error"], other


def test_a_merged_pull_request_is_stored_and_the_poll_replaces_its_merge_by_the_commits_it_brought(
    database_url: str, start_bot: StartBot, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    upstream.commit("README.md", "start")
    upstream.git("checkout", "-q", "-b", "feature")
    brought = [upstream.commit("src/tax.py", "tax: round half even"), upstream.commit("src/tax.py", "tax: cache rates")]
    upstream.git("checkout", "-q", "main")
    upstream.git("merge", "-q", "--no-ff", "-m", "Merge pull request #7 from acme/feature", "feature")
    merge = upstream.git("rev-parse", "HEAD").strip()
    bot = _bot(start_bot, database_url, upstream)
    pull_request = {
        "action": "closed",
        "pull_request": {
            "merged": True, "merge_commit_sha": merge, "title": "Tax rounding", "body": "Rounds half even.",
            "merged_at": "2026-11-30T10:00:00Z", "user": {"login": "ana"}, "html_url": "https://github.example/pr/7",
            "base": {"ref": "main", "repo": {"full_name": "acme/shop"}},
        },
    }  # fmt: skip

    answer = send_github(bot.url, pull_request, delivery="pr-7", event="pull_request")
    assert answer.json()["stored"] == 1
    told = _changes(database_url)[merge]
    assert told.partial and told.title == "Tax rounding" and told.link == "https://github.example/pr/7"

    poll_tracked_repositories(bot.settings)
    stored = _changes(database_url)
    assert merge not in stored and set(brought) <= set(stored)
    assert all(stored[sha].landed_via_merge and not stored[sha].partial for sha in brought)


def test_a_delivery_whose_store_failed_is_stored_when_redelivered(store: str, start_bot: StartBot, tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path / "shop")
    sha = upstream.commit("src/pay.py", "pay: retry declined cards")
    bot = _bot(start_bot, store, upstream)
    # The changes table goes missing under the bot: storing fails after the delivery was claimed.
    with session_scope(store) as session:
        session.execute(text("ALTER TABLE changes RENAME TO changes_away"))
    failed = send_github(bot.url, upstream.github_push([sha]), delivery="d-9")
    assert failed.status_code == 503 and "redeliver" in failed.json()["error"]
    assert failed.headers["retry-after"] == "30"
    with session_scope(store) as session:
        session.execute(text("ALTER TABLE changes_away RENAME TO changes"))

    redelivered = send_github(bot.url, upstream.github_push([sha]), delivery="d-9")
    assert redelivered.json() == {"repo": "acme/shop", "stored": 1, "already_present": 0}
    assert sha in _changes(store)


def test_a_redelivery_whose_delivery_is_claimed_but_not_stored_is_told_to_come_back_not_taken_for_a_duplicate(
    database_url: str, start_bot: StartBot, tmp_path: Path
) -> None:
    """A delivery whose store failed with the database, which then also failed to give the claim back, left
    it claimed: its redelivery within the lease was answered 200 duplicate, and its commits were never stored."""
    upstream = Upstream.create(tmp_path / "shop")
    sha = upstream.commit("src/pay.py", "pay: retry declined cards")
    bot = _bot(start_bot, database_url, upstream)
    now = utcnow()
    with session_scope(database_url) as session:  # as a replica left it that is alive, on another host
        session.add(Claim(scope=WEBHOOK_DELIVERIES, key="github:d-held", holder="replica-2:17:a1b2c3d4", claimed_at=now))
        session.add(Claim(scope=WEBHOOK_DELIVERIES, key="github:d-done", holder="replica-2:17:a1b2c3d4",
                          claimed_at=now, done_at=now))  # fmt: skip

    held = send_github(bot.url, upstream.github_push([sha]), delivery="d-held")
    done = send_github(bot.url, upstream.github_push([sha]), delivery="d-done")

    assert held.status_code == 503 and held.headers["retry-after"] == "30" and "redeliver" in held.json()["error"]
    assert done.json() == {"duplicate": True} and _changes(database_url) == {}
    with session_scope(database_url) as session:  # its lease runs out: the redelivery takes it over
        session.get(Claim, (WEBHOOK_DELIVERIES, "github:d-held")).claimed_at = now - sources_http.DELIVERY_LEASE - timedelta(seconds=5)
    redelivered = send_github(bot.url, upstream.github_push([sha]), delivery="d-held")
    assert redelivered.json() == {"repo": "acme/shop", "stored": 1, "already_present": 0}


def test_a_push_listing_a_commit_twice_stores_it_once_not_a_500(database_url: str, start_bot: StartBot, tmp_path: Path) -> None:
    """Both copies went into one insert: its unique key failed the delivery with a 500, and every redelivery too."""
    upstream = Upstream.create(tmp_path / "shop")
    sha = upstream.commit("src/pay.py", "pay: retry declined cards")
    bot = _bot(start_bot, database_url, upstream)
    github, gitlab = upstream.github_push([sha, sha]), upstream.gitlab_push([sha, sha])

    pushed = send_github(bot.url, github, delivery="d-twice")
    hooked = httpx.post(f"{bot.url}/webhooks/gitlab", json=gitlab, timeout=30,
                        headers={"X-Gitlab-Token": GITLAB_TOKEN, "X-Gitlab-Event-UUID": "uuid-twice"})  # fmt: skip

    assert pushed.status_code == 200 and pushed.json() == {"repo": "acme/shop", "stored": 1, "already_present": 1}
    assert hooked.status_code == 200 and hooked.json() == {"repo": "acme/shop", "stored": 0, "already_present": 2}
    assert list(_changes(database_url)) == [sha]


def test_a_body_nested_too_deeply_is_a_400_not_a_crash(database_url: str, start_bot: StartBot, tmp_path: Path) -> None:
    import hashlib
    import hmac

    upstream = Upstream.create(tmp_path / "shop")
    bot = start_bot(database_url, env={"CULPRIT_REPOS": json.dumps([upstream.tracked()]),
                                       "CULPRIT_GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                                       "CULPRIT_CHANGES_TOKEN": CHANGES_TOKEN})  # fmt: skip
    body = b"[" * 100_000 + b"]" * 100_000
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    hook = httpx.post(f"{bot.url}/webhooks/github", content=body, timeout=60,
                      headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-deep", "X-Hub-Signature-256": signature})  # fmt: skip
    events = httpx.post(f"{bot.url}/changes", content=body, timeout=60, headers={"Authorization": f"Bearer {CHANGES_TOKEN}"})

    assert (hook.status_code, events.status_code) == (400, 400)
    assert hook.json() == events.json() == {"error": "JSON nested too deep: more than 64 arrays or objects inside one another"}


@pytest.mark.timeout(60)  # a hang guard only: a parse on the event loop would leave /healthz unanswered for good
@pytest.mark.parametrize("route", ["/webhooks/github", "/webhooks/gitlab", "/changes"])
def test_a_body_being_parsed_holds_up_no_other_request(
    route: str, store: str, start_bot: StartBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender's 5 MiB body takes a while to parse; the parse is held here until /healthz has answered."""
    parsing, parse_may_finish = threading.Event(), threading.Event()
    parse = sources_http.json_body

    def held_parse(body: bytes) -> Any:
        parsing.set()
        parse_may_finish.wait()
        return parse(body)

    monkeypatch.setattr(sources_http, "json_body", held_parse)
    upstream = Upstream.create(tmp_path / "shop")
    sha = upstream.commit("src/pay.py", "pay: retry declined cards")
    bot = start_bot(store, env={"CULPRIT_REPOS": json.dumps([upstream.tracked()]), "CULPRIT_CHANGES_TOKEN": CHANGES_TOKEN,
                                "CULPRIT_GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET, "CULPRIT_GITLAB_WEBHOOK_TOKEN": GITLAB_TOKEN})  # fmt: skip
    flag = {"id": "flag-9", "kind": "flag", "service": "checkout", "title": "new_checkout_flow on", "time": utcnow().isoformat()}
    send: Callable[[], httpx.Response] = {
        "/webhooks/github": lambda: send_github(bot.url, upstream.github_push([sha]), delivery="d-held"),
        "/webhooks/gitlab": lambda: httpx.post(f"{bot.url}/webhooks/gitlab", json=upstream.gitlab_push([sha]), timeout=60,
                                               headers={"X-Gitlab-Token": GITLAB_TOKEN, "X-Gitlab-Event-UUID": "u-held"}),
        "/changes": lambda: httpx.post(f"{bot.url}/changes", json=[flag], timeout=60,
                                       headers={"Authorization": f"Bearer {CHANGES_TOKEN}"}),
    }[route]  # fmt: skip

    with ThreadPoolExecutor(max_workers=1) as sender:
        try:
            answer = sender.submit(send)  # .result() re-raises whatever the sender's thread raised
            assert parsing.wait(timeout=30), f"{route} never started parsing the body"
            health = httpx.get(f"{bot.url}/healthz", timeout=None)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert not answer.done()  # answered while the body was still being parsed
        finally:
            parse_may_finish.set()  # also on failure, so the server (and this executor) can finish
        stored = answer.result()
    assert stored.status_code == 200 and stored.json()["stored"] == 1, stored.text
