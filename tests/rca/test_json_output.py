"""`--json` output is JSON alone on stdout, even when the wiki (Chroma) and the LLM are down.

Run as the installed ``culprit`` script in its own process, so whatever any
library writes to the real stdout (not only what Python loggers say) counts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tools.rca.history.cases import History

CULPRIT = str(Path(sys.executable).with_name("culprit"))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_every_result_parses_as_json_with_the_wiki_and_the_llm_down(
    history_files: tuple[Path, Path], history: History, tmp_path: Path
) -> None:
    cases, commits = (str(path) for path in history_files)
    environment = {
        **os.environ,
        "CULPRIT_DATA_DIR": str(tmp_path / "data"),
        "CULPRIT_CHROMA_URL": f"http://127.0.0.1:{closed_port()}",
        "CULPRIT_LLM_BASE_URL": f"http://127.0.0.1:{closed_port()}/v1",
        "CULPRIT_LLM_MODEL": "culprit-judge",
    }
    case = history.cases[-1]
    logged = []

    def culprit_json(*args: str, exit_code: int = 0) -> object:
        run = subprocess.run([CULPRIT, *args, "--json"], env=environment, capture_output=True, text=True, timeout=600)
        assert run.returncode == exit_code, run.stderr[-3000:]
        logged.append(run.stderr)
        return json.loads(run.stdout)

    assert culprit_json("db", "upgrade")["up_to_date"] is True
    assert culprit_json("ingest", "history", "--cases", cases, "--commits", commits)["loaded"]
    answer = culprit_json(
        "rca", case.incident.text, "--title", case.incident.title,
        "--at", case.incident.started_at.isoformat(), "--repo", "acme/widget",
    )
    assert answer["n_candidates"] > 0
    summary = culprit_json("backtest", "--cases", cases, "--commits", commits, "--no-embeddings", "--judge", "llm")
    assert summary["n_cases"] > 0
    assert "week" in culprit_json("digest", "--dry-run")
    assert culprit_json("reports", "purge")["deleted"] == 0
    doctor = culprit_json("doctor", exit_code=1)
    statuses = {check["name"]: check["status"] for check in doctor["checks"]}
    assert statuses["wiki"] == statuses["llm"] == "fail"

    # The outages were logged, on stderr.
    everything = "\n".join(logged)
    assert "wiki_unavailable" in everything and "llm_judge_fallback" in everything
