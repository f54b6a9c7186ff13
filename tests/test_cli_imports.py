"""`culprit --help` answers at once: the entry module and the help screens load no ML,
vector-store or graph library (those load inside the commands that use them)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "torch",
    "sentence_transformers",
    "transformers",
    "chromadb",
    "langgraph",
    "lightgbm",
    "sklearn",
    "umap",
    "matplotlib",
)

# Runs in a fresh interpreter: this test process has most of these loaded already.
_PROBE = """
import json, sys
from bot.cli import app
for args in {helps!r}:
    try:
        app(args, prog_name="culprit")
    except SystemExit as stop:
        assert not stop.code, (args, stop.code)
print("\\n" + json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


@pytest.mark.parametrize(
    "helps",
    [[], [["--help"]], [["rca", "--help"]], [["ingest", "git", "--help"], ["wiki", "--help"], ["demo", "--help"]]],
    ids=["import", "help", "rca-help", "other-helps"],
)
def test_help_loads_no_heavy_library(helps: list[list[str]]) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE.format(helps=helps, heavy=HEAVY)], capture_output=True, text=True, check=True
    )

    assert json.loads(probe.stdout.splitlines()[-1]) == []
    if helps:
        assert "Usage: culprit" in probe.stdout
