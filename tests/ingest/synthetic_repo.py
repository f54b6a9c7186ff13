"""A synthetic git history written with ``git fast-import`` (thousands of commits per second),
with the facts ingestion must recover: feature branches merged with merge commits,
a binary file, a rename, and known line counts and landing times."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

START = 1_700_000_000
MAIN_STEP = 600
FEATURE_STEP = 60
BINARY = bytes(range(256)) * 4


@dataclass
class ExpectedChange:
    mark: int
    title: str
    author_time: int
    landed_time: int
    via_merge: bool
    files: list[tuple[str, int | None, int | None]]
    sha: str = ""


@dataclass
class SyntheticHistory:
    """What the generated repository must ingest to, keyed by commit sha once written."""

    path: Path
    changes: list[ExpectedChange] = field(default_factory=list)
    merge_times: list[int] = field(default_factory=list)

    def by_title(self, title: str) -> ExpectedChange:
        return next(change for change in self.changes if change.title == title)


class _Stream:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.mark = 0

    def data(self, payload: bytes) -> None:
        self.parts.append(b"data %d\n" % len(payload) + payload + b"\n")

    def commit(
        self, ref: str, when: int, author: str, title: str, parents: list[int], operations: list[bytes]
    ) -> int:
        self.mark += 1
        self.parts.append(f"commit {ref}\nmark :{self.mark}\n".encode())
        self.parts.append(f"author {author} <{author.lower().replace(' ', '.')}@example.org> {when} +0000\n".encode())
        self.parts.append(f"committer {author} <{author.lower().replace(' ', '.')}@example.org> {when} +0000\n".encode())
        self.data(f"{title}\n\nWhy: step {self.mark} of the synthetic history.\n".encode())
        for index, parent in enumerate(parents):
            self.parts.append(f"{'from' if index == 0 else 'merge'} :{parent}\n".encode())
        self.parts.extend(operations)
        return self.mark


def _modify(path: str, content: bytes) -> bytes:
    return f"M 100644 inline {path}\n".encode() + b"data %d\n" % len(content) + content + b"\n"


def write_history(path: Path, n_commits: int, merge_every: int = 25, feature_len: int = 3) -> SyntheticHistory:
    """A repository whose ``main`` has ``n_commits`` non-merge commits in all.

    Every ``merge_every`` main-line commits a feature branch of ``feature_len``
    commits is merged with a merge commit, so those commits land at the merge.
    Commit 3 adds a binary file and commit 5 renames a file.
    """
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    history = SyntheticHistory(path)
    stream = _Stream()
    contents: dict[str, list[str]] = {}
    tip: int | None = None
    written = 0
    step = 0
    while written < n_commits:
        step += 1
        when = START + MAIN_STEP * step
        operations: list[bytes] = []
        files: list[tuple[str, int | None, int | None]] = []
        if step == 3:
            operations.append(_modify("assets/logo.png", BINARY))
            files.append(("assets/logo.png", None, None))
        elif step == 5:
            old, new = "src/mod4/file4.c", "src/moved/file4.c"
            lines = contents.pop(old)
            contents[new] = lines
            operations.append(f"R {old} {new}\n".encode())
            files += [(old, 0, len(lines)), (new, len(lines), 0)]
        else:
            file = f"src/mod{step % 7}/file{step % 7}.c" if step != 1 else "README"
            previous = contents.get(file, [])
            added = 1 + step % 4
            dropped = min(len(previous), step % 3)
            lines = previous[dropped:] + [f"line {step}.{n}" for n in range(added)]
            contents[file] = lines
            operations.append(_modify(file, "".join(f"{line}\n" for line in lines).encode()))
            files.append((file, added, dropped))
        title = f"change {step} on main"
        tip = stream.commit("refs/heads/main", when, f"Dev {step % 5}", title, [tip] if tip else [], operations)
        history.changes.append(ExpectedChange(tip, title, when, when, False, sorted(files)))
        written += 1
        if step % merge_every == 0 and written < n_commits:
            feature_tip, feature_files = tip, []
            feature_changes = []
            for index in range(min(feature_len, n_commits - written)):
                file = f"features/f{step}/part{index}.py"
                content = f"def part_{index}():\n    return {step}\n"
                feature_files.append((file, content))
                authored = when + FEATURE_STEP * (index + 1)
                title = f"feature {step} part {index}"
                feature_tip = stream.commit(f"refs/heads/feature-{step}", authored, "Feature Dev", title,
                                            [feature_tip], [_modify(file, content.encode())])  # fmt: skip
                feature_changes.append(ExpectedChange(feature_tip, title, authored, 0, True, [(file, 2, 0)]))
                written += 1
            merged_at = when + FEATURE_STEP * (feature_len + 2)
            merge_operations = [_modify(file, content.encode()) for file, content in feature_files]
            tip = stream.commit("refs/heads/main", merged_at, "Maintainer", f"Merge feature {step}",
                                [tip, feature_tip], merge_operations)  # fmt: skip
            for change in feature_changes:
                change.landed_time = merged_at
            history.changes += feature_changes
            history.merge_times.append(merged_at)
    marks = path / ".git" / "culprit-marks"
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet", f"--export-marks={marks}"],
        input=b"".join(stream.parts),
        check=True,
    )
    sha_of = dict(line.split() for line in marks.read_text().splitlines())
    for change in history.changes:
        change.sha = sha_of[f":{change.mark}"]
    return history


def git_as_ana(repo: Path, *args: str, when: int = 1_710_000_000) -> str:
    """A git command as one developer at a fixed time, so commits and their shas repeat; its output."""
    stamp = f"{when} +0000"
    env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp,
           "GIT_AUTHOR_NAME": "Ana", "GIT_AUTHOR_EMAIL": "ana@example.org",
           "GIT_COMMITTER_NAME": "Ana", "GIT_COMMITTER_EMAIL": "ana@example.org"}  # fmt: skip
    return subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True, text=True).stdout


def commit_object(repo: Path, parent: str, title: str, author_date: str, committer_date: str) -> str:
    """A commit written byte by byte, with dates git itself would not write but will read back."""
    tree = git_as_ana(repo, "rev-parse", f"{parent}^{{tree}}").strip()
    body = (f"tree {tree}\nparent {parent}\nauthor Ana <ana@example.org> {author_date} +0000\n"
            f"committer Ana <ana@example.org> {committer_date} +0000\n\n{title}\n")  # fmt: skip
    made = subprocess.run(["git", "-C", str(repo), "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
                          input=body, capture_output=True, text=True, check=True)  # fmt: skip
    return made.stdout.strip()


def one_commit_repo(repo: Path, title: str) -> str:
    """A new repository on ``main`` with one commit (one file) by Ana; that commit's sha."""
    repo.mkdir()
    git_as_ana(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("print('v1')\n")
    git_as_ana(repo, "add", ".")
    git_as_ana(repo, "commit", "-q", "-m", title)
    return git_as_ana(repo, "rev-parse", "HEAD").strip()


_YEAR_2099 = 4_070_908_800  # 2099-01-01T00:00:00Z: a committer's clock that is wrong


def future_dated_repo(repo: Path) -> dict[str, str]:
    """A history whose main line holds a commit and a merge made by a clock set to 2099 (``GIT_COMMITTER_DATE``),
    the merge bringing in a side branch's commit; their shas by title, the good ones' too."""
    shas = {"Start the app": one_commit_repo(repo, "Start the app")}
    git_as_ana(repo, "switch", "-q", "-c", "side")
    git_as_ana(repo, "commit", "-q", "--allow-empty", "-m", "Side fix", when=1_710_000_100)
    git_as_ana(repo, "switch", "-q", "main")
    for title, when in [("Wrong clock", _YEAR_2099), ("Merge side", _YEAR_2099), ("Right clock", 1_710_000_300)]:
        if title == "Merge side":
            git_as_ana(repo, "merge", "-q", "--no-ff", "-m", title, "side", when=when)
        else:
            git_as_ana(repo, "commit", "-q", "--allow-empty", "-m", title, when=when)
        shas[title] = git_as_ana(repo, "rev-parse", "HEAD").strip()
    shas["Side fix"] = git_as_ana(repo, "rev-parse", "side").strip()
    return shas


def latin_1_commit(repo: Path, author: str, message: str, when: int = 1_710_000_100) -> str:
    """A commit by ``author`` written in ISO-8859-1 by a clone configured for it, as git writes one for a
    team whose tools speak Latin-1: its bytes are Latin-1 and its header says ``encoding ISO-8859-1``; its sha."""
    git_as_ana(repo, "config", "i18n.commitEncoding", "ISO-8859-1")
    (repo / "app.py").write_text(f"print({when})\n")
    git_as_ana(repo, "add", ".")
    stamp = f"{when} +0000".encode()
    env = {**os.environb, b"GIT_AUTHOR_NAME": author.encode("latin-1"), b"GIT_AUTHOR_EMAIL": b"jose@example.org",
           b"GIT_AUTHOR_DATE": stamp, b"GIT_COMMITTER_NAME": b"Ana", b"GIT_COMMITTER_EMAIL": b"ana@example.org",
           b"GIT_COMMITTER_DATE": stamp}  # fmt: skip
    subprocess.run([b"git", b"-C", bytes(repo), b"commit", b"-q", b"-m", message.encode("latin-1")], env=env, check=True)
    return git_as_ana(repo, "rev-parse", "HEAD").strip()


def headerless_latin_1_commit(repo: Path, author: str, message: str, path: str, when: int = 1_710_000_100) -> str:
    """A commit on ``main`` adding ``path`` whose author, message and path are ISO-8859-1 bytes under no
    ``encoding`` header, as old histories hold them (git's and curl's own have some); its sha.

    Today's ``git commit`` rewrites such bytes as UTF-8 itself ("did not conform to UTF-8"), so the
    object is written byte by byte, as git before 1.7 or an importer wrote it."""
    name = path.encode("latin-1")
    (repo / os.fsdecode(name)).write_text(f"print({when})\n")
    subprocess.run([b"git", b"-C", bytes(repo), b"add", b"--", name], check=True)
    tree = git_as_ana(repo, "write-tree").strip()
    parent = git_as_ana(repo, "rev-parse", "HEAD").strip()
    body = (f"tree {tree}\nparent {parent}\nauthor {author} <jose@example.org> {when} +0000\n"
            f"committer Ana <ana@example.org> {when} +0000\n\n{message}\n").encode("latin-1")  # fmt: skip
    made = subprocess.run(["git", "-C", str(repo), "hash-object", "-t", "commit", "-w", "--stdin"],
                          input=body, capture_output=True, check=True)  # fmt: skip
    sha = made.stdout.decode().strip()
    git_as_ana(repo, "update-ref", "refs/heads/main", sha)
    return sha


def stalled_change_repo(repo: Path, title: str, change_title: str) -> str:
    """:func:`one_commit_repo` and a second commit whose new ``app.py`` blob is a pipe nobody writes (as on a
    hung mount): the commit graph and messages read, but git never finishes opening that object. Its sha."""
    one_commit_repo(repo, title)
    (repo / "app.py").write_text("print('v2')\n")
    git_as_ana(repo, "commit", "-q", "-am", change_title, when=1_710_000_100)
    blob = git_as_ana(repo, "rev-parse", "HEAD:app.py").strip()
    loose = repo / ".git" / "objects" / blob[:2] / blob[2:]
    loose.unlink()
    os.mkfifo(loose)
    return blob
