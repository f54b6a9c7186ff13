"""How soon a pushed change is visible to ``/rca``, and what an idle poll costs.

Three figures, on a real upstream (a bare repository the benchmark ``git push``es
to from a clone) and a real store:

- polling: the bot's own scheduler polls every ``--poll-seconds``; each push
  lands at a random moment, and the latency is from the push to the moment the
  change is in the candidates ``/rca`` loads (``changes_landed_between`` over
  the window, as the RCA graph's load step reads it). Goal: p95 under two poll
  intervals.
- webhook: the real server (Starlette under uvicorn, as in the tests) receives
  the signed GitHub push delivery right after the push; latency from the push
  to visible. Goal: p95 under 5 s.
- idle poll: CPU time (this process and its git children) of one scheduler
  tick over ``--repos`` tracked repositories of ``--commits`` commits each
  with nothing new. Goal: under 2 s for 20 repositories.

    .venv/bin/python benchmarks/change_latency.py [--pushes 20] [--poll-seconds 5] [--repos 20]
        [--commits 2000] [--postgres URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def visible(database_url: str, sha: str) -> bool:
    """Whether ``/rca`` asked now would load this change as a candidate."""
    from knowledge.changes import changes_landed_between
    from knowledge.db import session_scope, utcnow

    now = utcnow()
    with session_scope(database_url) as session:
        return any(change.id == sha for change in changes_landed_between(session, now - timedelta(days=14), now + timedelta(seconds=1)))


def wait_visible(database_url: str, sha: str, pushed: float, limit: float = 120.0) -> float:
    while not visible(database_url, sha):
        if time.monotonic() - pushed > limit:
            raise SystemExit(f"{sha[:10]} not visible after {limit} s")
        time.sleep(0.05)
    return time.monotonic() - pushed


class Pusher:
    """A developer's clone of a bare upstream: commit, then ``git push``."""

    def __init__(self, root: Path) -> None:
        from tests.sources.upstream import Upstream

        self.bare = root / "upstream.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True)
        self.clone = Upstream.create(root / "clone")
        self.clone.git("remote", "add", "origin", str(self.bare))

    def push(self, number: int) -> tuple[str, float]:
        sha = self.clone.commit(f"src/m{number % 7}.py", f"change {number}", lines=3)
        started = time.monotonic()
        self.clone.git("push", "-q", "origin", "main")
        return sha, started


def polling_latency(database_url: str, root: Path, pushes: int, poll_seconds: int) -> list[float]:
    from bot.jobs import build_scheduler
    from knowledge.config import Settings, TrackedRepo

    pusher = Pusher(root / "polled")
    pusher.push(0)
    settings = Settings(data_dir=root / "data-poll", database_url=database_url, poll_seconds=poll_seconds,
                        repos=[TrackedRepo(name="acme/polled", url=f"file://{pusher.bare}")])  # fmt: skip
    scheduler = build_scheduler(lambda *_: None, settings)
    scheduler.start()
    latencies = []
    try:
        for number in range(1, pushes + 1):
            time.sleep(random.uniform(0, poll_seconds))
            sha, pushed = pusher.push(number)
            latencies.append(wait_visible(database_url, sha, pushed))
    finally:
        scheduler.shutdown(wait=True)
    return latencies


def webhook_latency(database_url: str, root: Path, pushes: int) -> list[float]:
    from bot.app import create_app
    from bot.server import create_server
    from knowledge.config import get_settings
    from tests.bot.fake_slack import FakeSlack, FakeSlackServer
    from tests.bot.live import LiveServer
    from tests.bot.slack_requests import SIGNING_SECRET
    from tests.sources.upstream import WEBHOOK_SECRET, send_github

    pusher = Pusher(root / "pushed")
    pusher.clone.name = "acme/pushed"
    fake = FakeSlackServer(FakeSlack(channel_names={}))
    latencies = []
    with fake:
        os.environ.update({
            "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SIGNING_SECRET, "CULPRIT_SLACK_API_URL": fake.api_url,
            "CULPRIT_DATA_DIR": str(root / "data-webhook"), "CULPRIT_DATABASE_URL": database_url,
            "CULPRIT_GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CULPRIT_REPOS": json.dumps([{"name": "acme/pushed", "url": f"file://{pusher.bare}"}]),
        })  # fmt: skip
        get_settings.cache_clear()
        settings = get_settings()
        with LiveServer(create_server(create_app(settings), settings)) as url:
            for number in range(pushes):
                sha, pushed = pusher.push(number)
                answer = send_github(url, pusher.clone.github_push([sha]), delivery=f"bench-{number}")
                assert answer.status_code == 200, answer.text
                latencies.append(wait_visible(database_url, sha, pushed))
    return latencies


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def idle_poll_cpu(database_url: str, root: Path, repos: int, commits: int) -> tuple[float, float, float]:
    """(CPU s, wall s) of one idle tick over ``repos`` repositories, after a first tick that ingests them."""
    from knowledge.config import TrackedRepo
    from knowledge.sources.polling import poll_repositories
    from tests.ingest.synthetic_repo import write_history

    tracked = []
    for number in range(repos):
        history = write_history(root / f"idle-{number}", n_commits=commits)
        tracked.append(TrackedRepo(name=f"acme/idle-{number}", path=history.path))
    mirrors = root / "data-idle" / "mirrors"
    measure: Callable[[], tuple[float, float]] = lambda: (cpu_seconds(), time.perf_counter())  # noqa: E731
    cpu, wall = measure()
    first = poll_repositories(tracked, mirrors, database_url, poll_seconds=1)
    first_cpu, first_wall = cpu_seconds() - cpu, time.perf_counter() - wall
    assert all(result.polled and not result.error for result in first), first
    time.sleep(1.1)  # the next poll slot
    cpu, wall = measure()
    idle = poll_repositories(tracked, mirrors, database_url, poll_seconds=1)
    idle_cpu, idle_wall = cpu_seconds() - cpu, time.perf_counter() - wall
    assert all(result.polled and result.new == 0 for result in idle), idle
    print(f"  first tick ({repos} x {commits} commits): {first_cpu:.2f} s CPU, {first_wall:.2f} s wall", file=sys.stderr)
    return idle_cpu, idle_wall, first_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--poll-seconds", type=int, default=5)
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--postgres", help="a PostgreSQL URL (an empty database) instead of SQLite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for name in [name for name in os.environ if name.startswith(("SLACK_", "CULPRIT_"))]:
        del os.environ[name]
    from knowledge.db import migrate

    with tempfile.TemporaryDirectory(prefix="culprit-change-latency-") as temporary:
        root = Path(temporary)
        database_url = args.postgres or f"sqlite:///{root / 'culprit.db'}"
        migrate(database_url)
        polled = polling_latency(database_url, root, args.pushes, args.poll_seconds)
        pushed = webhook_latency(database_url, root, args.pushes)
        idle_cpu, idle_wall, first_cpu = idle_poll_cpu(database_url, root, args.repos, args.commits)
    figures = {
        "database": "postgresql" if args.postgres else "sqlite",
        "poll_seconds": args.poll_seconds,
        "polling_p50_s": round(percentile(polled, 50), 2), "polling_p95_s": round(percentile(polled, 95), 2),
        "polling_max_s": round(max(polled), 2), "polling_goal_s": 2 * args.poll_seconds,
        "webhook_p50_s": round(percentile(pushed, 50), 3), "webhook_p95_s": round(percentile(pushed, 95), 3),
        "webhook_max_s": round(max(pushed), 3), "webhook_goal_s": 5,
        "idle_poll_repos": args.repos, "idle_poll_commits_each": args.commits,
        "idle_poll_cpu_s": round(idle_cpu, 3), "idle_poll_wall_s": round(idle_wall, 3), "idle_poll_goal_cpu_s": 2,
        "first_poll_cpu_s": round(first_cpu, 2),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }  # fmt: skip
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for name, value in figures.items():
        print(f"{name:>24}: {value}")


if __name__ == "__main__":
    main()
