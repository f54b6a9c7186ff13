"""A trained local judge on the synthetic history, shared by the RCA tests (training takes a second)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bot.conftest import start_bot  # noqa: F401 (the bot fixture, for test_unseen_repository)
from tests.rca.synthetic import make_history, write_jsonl_gz
from tools.rca.history.cases import History, load_history
from tools.rca.judges.local import RankerModel
from tools.rca.history.training import train_model


@pytest.fixture(scope="session")
def history_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("history")
    commits, cases = make_history()
    return write_jsonl_gz(folder / "cases-acme.jsonl.gz", cases), write_jsonl_gz(folder / "commits-acme.jsonl.gz", commits)


@pytest.fixture(scope="session")
def history(history_files: tuple[Path, Path]) -> History:
    cases, commits = history_files
    return load_history([cases], [commits])


@pytest.fixture(scope="session")
def trained(history: History) -> RankerModel:
    """Trained on the earlier 70% of the synthetic cases, without embeddings."""
    cut = int(len(history.cases) * 0.7)
    return train_model(history, history.cases[:cut], embeddings=None)
