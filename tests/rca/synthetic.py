"""A small made-up project history: components, their files and words, commits and incidents.

Each incident is caused by a planted change in the component its words
describe, landed up to a few days before it, so a ranker that reads the text
beats one that only prefers the newest change.
"""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

COMPONENTS: dict[str, list[str]] = {
    "http": ["header", "chunked", "redirect", "request"],
    "ftp": ["passive", "listing", "upload", "account"],
    "ssl": ["certificate", "handshake", "cipher", "verify"],
    "dns": ["resolver", "lookup", "timeout", "cache"],
    "cookie": ["expiry", "domain", "jar", "session"],
    "proxy": ["tunnel", "connect", "authentication", "socks"],
    "smtp": ["mail", "recipient", "greeting", "auth"],
    "mime": ["boundary", "multipart", "encoding", "attachment"],
}
NOISE_TITLES = ["docs: fix typo in manual", "tests: add test case", "build: bump version", "ci: update workflow"]
NOISE_PATHS = {"docs": "docs/MANUAL.md", "tests": "tests/data/test1.txt", "build": "configure.ac", "ci": ".github/ci.yml"}
START = datetime(2023, 1, 1, tzinfo=UTC)


def _commit(
    rng: random.Random, sequence: int, landed: datetime, repo: str, components: dict[str, list[str]]
) -> dict[str, Any]:
    if rng.random() < 0.25:
        title = rng.choice(NOISE_TITLES)
        path = NOISE_PATHS[title.split(":")[0]]
        files = [[path, 2, 1]]
    else:
        component = rng.choice(sorted(components))
        word = rng.choice(components[component])
        verb = rng.choice(["rework", "refactor", "simplify", "extend"])
        title = f"{component}: {verb} {word} handling"
        files = [[f"lib/{component}.c", rng.randint(5, 200), rng.randint(0, 50)], [f"lib/{component}.h", 3, 1]]
    stamp = int(landed.timestamp())
    return {
        "repo": repo,
        "sha": f"{sequence:04d}" + "%036x" % rng.getrandbits(144),
        "author": rng.choice(["ann", "bob", "cy"]),
        "email": "dev@example.com",
        "author_time": stamp,
        "commit_time": stamp,
        "landed_time": stamp,
        "landed_via_merge": False,
        "landed_seq": sequence,
        "title": title,
        "body": "",
        "n_files": len(files),
        "added": sum(file[1] for file in files),
        "deleted": sum(file[2] for file in files),
        "files": files,
        "files_truncated": False,
        "dirs": sorted({file[0].rsplit("/", 1)[0] for file in files}),
    }


def make_history(
    n_days: int = 80,
    n_cases: int = 36,
    seed: int = 3,
    repo: str = "acme/widget",
    components: dict[str, list[str]] = COMPONENTS,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(commits, cases) in the interchange format; commits land every three hours.
    ``components`` maps each component to the words its commits and incidents use."""
    rng = random.Random(seed)
    commits = [_commit(rng, index, START + timedelta(hours=3 * index), repo, components) for index in range(n_days * 8)]
    cases: list[dict[str, Any]] = []
    for number in range(n_cases):
        started = START + timedelta(days=20 + number * (n_days - 22) / n_cases, minutes=7)
        window = [c for c in commits if started - timedelta(days=14) <= _landed(c) < started]
        recent = [c for c in window if _landed(c) >= started - timedelta(days=4) and ":" in c["title"]
                  and c["title"].split(":")[0] in components]
        culprit = rng.choice(recent)
        component = culprit["title"].split(":")[0]
        word = culprit["title"].split()[2]
        cases.append(
            {
                "case_id": f"{repo}@case{number:03d}",
                "repo": repo,
                "incident": {
                    "time": int(started.timestamp()),
                    "time_iso": started.isoformat(),
                    "title": f"{word} broken for {component} users",
                    "text": f"Since a recent change the {word} step fails. Customers see errors in {component}.",
                },
                "window_days": 14,
                "window_start": int((started - timedelta(days=14)).timestamp()),
                "n_candidates": len(window),
                "candidates": [c["sha"] for c in sorted(window, key=_landed, reverse=True)],
                "truth": {"culprits": [culprit["sha"]], "link_kind": "fixes"},
                "provenance": {"fix_title": "never read"},
                "leak": None,
            }
        )
    return commits, cases


def _landed(commit: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(commit["landed_time"], UTC)


def write_jsonl_gz(path: Path, rows: list[dict[str, Any]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path
