"""CULPRIT_REPOS is checked before anything runs, and a refused value is never echoed: it may hold a password."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_settings import culprit, refused_with


def test_a_repository_url_with_a_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    repos = [{"name": "acme/web", "url": "https://ops:hunter2@github.com/acme/web.git"}]
    result = culprit(["db", "upgrade"], tmp_path, CULPRIT_REPOS=json.dumps(repos))
    (line,) = refused_with(result)
    assert line.startswith("error: CULPRIT_REPOS: item 0: ") and "name it in token_env" in line
    assert "hunter2" not in result.stderr


def test_a_repository_needs_a_url_or_a_path_and_distinct_names(tmp_path: Path) -> None:
    nowhere = culprit(["db", "upgrade"], tmp_path, CULPRIT_REPOS='[{"name": "acme/web"}]')
    twice = culprit(["db", "upgrade"], tmp_path,
                    CULPRIT_REPOS='[{"name": "a", "path": "/x"}, {"name": "a", "path": "/y"}]')  # fmt: skip
    assert "needs exactly one of url or path" in refused_with(nowhere)[0]
    assert "two repositories have the same name" in refused_with(twice)[0]


def test_a_repository_url_that_git_would_read_as_an_option_is_refused(tmp_path: Path) -> None:
    repos = [{"name": "acme/web", "url": f"--upload-pack=touch {tmp_path / 'ran'};"}]
    result = culprit(["db", "upgrade"], tmp_path, CULPRIT_REPOS=json.dumps(repos))
    (line,) = refused_with(result)
    assert line.startswith("error: CULPRIT_REPOS: item 0: ") and "cannot start with '-'" in line
    assert not (tmp_path / "ran").exists()
