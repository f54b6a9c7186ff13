"""A small real git repository with planted fix, revert and "introduced by" cases and distractors.

Commits are made with ``git commit`` at chosen times (one every two hours), so
every planted case has a known culprit inside its 14-day window and every
distractor has a known reason to make no case.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

START = 1_700_000_000
STEP = 2 * 3600


@dataclass
class PlantedCase:
    fix_title: str
    culprit_title: str
    kind: str


@dataclass
class FixHistory:
    path: Path
    shas: dict[str, str] = field(default_factory=dict)  # title -> sha
    planted: list[PlantedCase] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


class _Writer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.time = START
        self.count = 0
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)

    def git(self, *args: str, when: int | None = None) -> str:
        stamp = f"{when or self.time} +0000"
        env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp,
               "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.org",
               "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.org"}  # fmt: skip
        done = subprocess.run(["git", "-C", str(self.path), *args], env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    def commit(self, message: str, path: str | None = None, advance: int = STEP) -> str:
        self.time += advance
        self.count += 1
        target = self.path / (path or f"src/file{self.count % 5}.c")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a") as handle:
            handle.write(f"line {self.count}\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


def write_fix_history(path: Path) -> FixHistory:
    """Six planted cases (one of each recognised form) and distractors that must make none."""
    w = _Writer(path)
    history = FixHistory(path)
    shas = history.shas

    def plant(fix: str, culprit: str, kind: str) -> None:
        history.planted.append(PlantedCase(fix.split("\n", 1)[0], culprit, kind))

    ancient = "storage: compact segments in the background"
    shas[ancient] = w.commit(ancient)
    w.time += 30 * 86400  # a month of quiet: the next fix's culprit is outside its window
    for n in range(4):
        w.commit(f"build: tidy makefile step {n}")
    for title in ("parser: speed up header scanning", "cache: share entries across workers",
                  "tls: negotiate session tickets", "dns: retry with exponential backoff",
                  "log: write through a ring buffer", "ui: new colour scheme"):  # fmt: skip
        shas[title] = w.commit(title)
        w.commit(f"docs: note for {title.split(':')[0]}")

    # A side branch that never lands on main, and a merged one.
    w.git("checkout", "-q", "-b", "experiment")
    shas["experiment: try a new allocator"] = w.commit("experiment: try a new allocator", "src/alloc.c")
    w.git("checkout", "-q", "main")
    w.git("checkout", "-q", "-b", "topic")
    shas["topic: add metrics endpoint"] = w.commit("topic: add metrics endpoint", "src/metrics.c")
    w.git("checkout", "-q", "main")
    w.time += STEP
    w.git("merge", "-q", "--no-ff", "-m", "Merge branch 'topic'", "topic", when=w.time)
    shas["merge topic"] = w.git("rev-parse", "HEAD")

    fixes = [
        (f"parser: fix crash on an empty header\n\nThe scanner reads past the end of an empty header line.\n\n"
         f"Fixes: {shas['parser: speed up header scanning'][:12]} (\"parser: speed up header scanning\")\n"
         "Signed-off-by: Dev <dev@example.org>", "parser: speed up header scanning", "fixes"),
        (f"Revert \"cache: share entries across workers\"\n\nThis reverts commit "
         f"{shas['cache: share entries across workers']}.\n\nWorkers served stale entries under load.",
         "cache: share entries across workers", "revert"),
        (f"tls: handshakes fail against old servers\n\nThe failure was introduced by "
         f"{shas['tls: negotiate session tickets'][:8]} which always sends the ticket extension.",
         "tls: negotiate session tickets", "regression"),
        (f"dns: lookups time out after one retry\n\nA regression since {shas['dns: retry with exponential backoff'][:10]}: "
         "the timer is never re-armed.", "dns: retry with exponential backoff", "regression"),
        (f"log: lines are lost when the disk is full\n\nBroken by {shas['log: write through a ring buffer'][:9]}, "
         "which drops the buffer on a short write.", "log: write through a ring buffer", "regression"),
        ("Revert \"ui: new colour scheme\"\n\nThe new colours are unreadable on dark terminals.",
         "ui: new colour scheme", "revert"),
    ]
    for message, culprit, kind in fixes:
        w.commit(message)
        plant(message, culprit, kind)

    # Distractors: each names a change but must make no case, for the reason given.
    w.commit(f"storage: fix a lost segment on shutdown\n\nFixes: {shas[ancient][:12]} (\"{ancient}\")")
    w.commit("net: fix a socket leak\n\nFixes: 1234abcd5678 (\"net: pool sockets\")")
    w.commit(f"alloc: fix the double free\n\nIntroduced by {shas['experiment: try a new allocator'][:12]}.")
    w.commit(f"metrics: fix the wrong counter\n\nFixes: {shas['merge topic'][:12]} (\"Merge branch 'topic'\")")
    history.skipped = {"outside_window": 1, "unknown_change": 1, "not_on_branch": 1, "named_change_is_merge": 1}
    # Mentions that are not links: a cherry-pick note, a sha in a commit that fixes nothing, a number.
    w.commit(f"parser: fix a typo in a comment\n\n(cherry picked from commit {shas['parser: speed up header scanning']})")
    w.commit(f"docs: describe the ticket option added in {shas['tls: negotiate session tickets'][:10]}")
    w.commit("release: bump the version to 20231115 and tag it")
    return history
