"""The demo organisation's changes written as a real git repository, oldest first on ``main``.

The demo names changes by made-up shas; its fixes (reverts and ``Fixes:``
trailers) name their culprits that way. Commits are written with ``git
fast-import`` in runs that end before each fix, so the culprit's real sha is
known when the fix's message is written with it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from knowledge.demo.changes import DemoChange
from knowledge.demo.organisation import DemoOrganisation


def _commit(change: DemoChange, mark: int, parent: int | None, message: str) -> bytes:
    who = f"{change.author.name} <{change.author.email}>"
    data = message.encode()
    parts = [
        f"commit refs/heads/main\nmark :{mark}\n".encode(),
        f"author {who} {change.author_time} +0000\ncommitter {who} {change.landed_time} +0000\n".encode(),
        b"data %d\n" % len(data) + data + b"\n",
    ]
    if parent is not None:
        parts.append(f"from :{parent}\n".encode())
    for path, added, _deleted in change.files:
        content = f"{change.id}\n".encode() * max(added, 1)
        parts.append(f"M 100644 inline {path}\n".encode() + b"data %d\n" % len(content) + content + b"\n")
    return b"".join(parts)


def write_demo_repository(org: DemoOrganisation, path: Path) -> dict[str, str]:
    """Write every change of ``org`` as a commit; returns demo id -> real sha."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    marks = path / ".git" / "demo-marks"
    real: dict[str, str] = {}
    mark_of: dict[str, int] = {}
    pending: list[bytes] = []
    fixes = {incident.fix_id: incident for incident in org.incidents}

    def flush() -> None:
        if not pending:
            return
        subprocess.run(
            ["git", "-C", str(path), "fast-import", "--quiet", f"--import-marks-if-exists={marks}",
             f"--export-marks={marks}"],
            input=b"".join(pending) + b"done\n", check=True,
        )  # fmt: skip
        pending.clear()
        by_mark = dict(line.split() for line in marks.read_text().splitlines())
        for change_id, mark in mark_of.items():
            real[change_id] = by_mark[f":{mark}"]

    previous: int | None = None
    for number, change in enumerate(org.changes, start=1):
        message = f"{change.title}\n\n{change.body}".strip() + "\n"
        incident = fixes.get(change.id)
        if incident is not None:
            flush()
            demo_sha = incident.culprits[0]
            message = message.replace(demo_sha, real[demo_sha]).replace(demo_sha[:12], real[demo_sha][:12])
        mark_of[change.id] = number
        pending.append(_commit(change, number, previous, message))
        previous = number
    flush()
    subprocess.run(["git", "-C", str(path), "checkout", "-q", "main"], check=True)
    return real
