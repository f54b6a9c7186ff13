"""A team's repository as the tests push to it: a real git work tree, commits made with ``git commit``,
and the GitHub and GitLab webhook payloads a forge would send for them (built from the commits themselves)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

WEBHOOK_SECRET = "webhook-secret-5d1e"
GITLAB_TOKEN = "gitlab-token-77aa"
CHANGES_TOKEN = "changes-token-19bf"


@dataclass
class Upstream:
    """The remote a tracked repository follows; ``commit`` returns the new sha."""

    path: Path
    name: str = "acme/shop"
    branch: str = "main"
    shas: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, path: Path, name: str = "acme/shop") -> Upstream:
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
        return cls(path, name)

    def git(self, *args: str, when: int | None = None) -> str:
        stamp = f"{when or int(datetime.now(UTC).timestamp())} +0000"
        env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp,
               "GIT_AUTHOR_NAME": "Ana", "GIT_AUTHOR_EMAIL": "ana@example.org",
               "GIT_COMMITTER_NAME": "Ana", "GIT_COMMITTER_EMAIL": "ana@example.org"}  # fmt: skip
        done = subprocess.run(["git", "-C", str(self.path), *args], env=env, capture_output=True, text=True, check=True)
        return done.stdout

    def commit(self, file: str, title: str, lines: int = 3, when: int | None = None) -> str:
        target = self.path / file
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a") as handle:
            handle.writelines(f"{title} line {number}\n" for number in range(lines))
        self.git("add", file, when=when)
        self.git("commit", "-q", "-m", f"{title}\n\nWhy: {title.lower()}.", when=when)
        sha = self.git("rev-parse", "HEAD").strip()
        self.shas.append(sha)
        return sha

    def tracked(self, **extra: Any) -> dict[str, Any]:
        """This repository's entry in CULPRIT_REPOS."""
        return {"name": self.name, "path": str(self.path), "branch": self.branch, **extra}

    def _commit_payload(self, sha: str) -> dict[str, Any]:
        message = self.git("show", "-s", "--format=%B", sha).strip()
        when = datetime.fromtimestamp(int(self.git("show", "-s", "--format=%ct", sha)), UTC).isoformat()
        added, modified = [], []
        for line in self.git("show", "--name-status", "--format=", sha).splitlines():
            status, _, path = line.partition("\t")
            (added if status == "A" else modified).append(path)
        return {"id": sha, "message": message, "timestamp": when, "url": f"https://github.example/{self.name}/commit/{sha}",
                "author": {"name": "Ana", "email": "ana@example.org"}, "added": added, "modified": modified,
                "removed": [], "distinct": True}  # fmt: skip

    def github_push(self, shas: list[str]) -> dict[str, Any]:
        return {
            "ref": f"refs/heads/{self.branch}", "before": "0" * 40, "after": shas[-1],
            "repository": {"full_name": self.name, "clone_url": f"https://github.example/{self.name}.git"},
            "commits": [self._commit_payload(sha) for sha in shas],
        }  # fmt: skip

    def gitlab_push(self, shas: list[str]) -> dict[str, Any]:
        return {
            "object_kind": "push", "ref": f"refs/heads/{self.branch}",
            "project": {"path_with_namespace": self.name, "git_http_url": f"https://gitlab.example/{self.name}.git"},
            "commits": [self._commit_payload(sha) for sha in shas],
        }  # fmt: skip


def send_github(base_url: str, payload: dict[str, Any], delivery: str, event: str = "push",
                secret: str = WEBHOOK_SECRET) -> httpx.Response:  # fmt: skip
    """POST a delivery as GitHub signs it (HMAC-SHA256 of the raw body)."""
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature,
               "Content-Type": "application/json"}  # fmt: skip
    return httpx.post(f"{base_url}/webhooks/github", content=body, headers=headers, timeout=60)
