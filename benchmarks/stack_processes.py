"""The production stack as processes on this machine, all on loopback, for benchmarks/stack.py.

Two ``culprit serve --no-scheduler`` replicas and one scheduler replica on a
fresh PostgreSQL database of the local server, ``chroma run``, the CPU vLLM
with the tiny model from tests/vllm_server.py, and the fake Slack Web API from
tests/bot/fake_slack.py. The database is seeded by ``culprit demo`` once and
kept as a template (``culprit_stack_seed``, with its data directory under
.test-cache/), so later runs copy it in a second.

Every process runs in its own session and is tracked here: ``Stack.close()``
terminates each by its own process group, whatever happened.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.bot.fake_slack import FakeSlack, FakeSlackServer
from tests.bot.slack_requests import SIGNING_SECRET
from tests.vllm_server import CACHE_DIR, REPO_ROOT, VllmServer, build_vllm, free_port

POSTGRES_ADMIN_URL = os.environ.get("CULPRIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SEED_DATABASE = "culprit_stack_seed"
SEED_DIR = CACHE_DIR / "stack-seed"
REPORTS_TOKEN = "stack-reports-token"
INCIDENT_CHANNEL = "CINC1"
DIGEST_CHANNEL = "CDIGEST"
CHANNEL_NAMES = {INCIDENT_CHANNEL: "inc-checkout", DIGEST_CHANNEL: "weekly-digest"}
CULPRIT = str(Path(sys.executable).parent / "culprit")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}


def database_url(name: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def admin_sql(*statements: str) -> None:
    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def wait_until(check: object, what: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``check()`` until true; fail with ``what`` on time-out or when ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}")
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what}: not ready after {timeout_s:.0f} s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def seed(progress: object) -> dict[str, object]:
    """The demo organisation in ``culprit_stack_seed`` and its data directory, made once."""
    marker = SEED_DIR / "seeded.json"
    if marker.exists():
        return json.loads(marker.read_text())
    progress(f"seeding the demo organisation into {SEED_DATABASE} (once; kept as a template)")  # type: ignore[operator]
    shutil.rmtree(SEED_DIR, ignore_errors=True)
    admin_sql(f'DROP DATABASE IF EXISTS "{SEED_DATABASE}" WITH (FORCE)', f'CREATE DATABASE "{SEED_DATABASE}"')
    env = {**_clean_environment(), "CULPRIT_DATA_DIR": str(SEED_DIR / "data"), "CULPRIT_DATABASE_URL": database_url(SEED_DATABASE)}
    started = time.monotonic()
    result = subprocess.run([CULPRIT, "demo", "--json"], env=env, capture_output=True, text=True, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"culprit demo failed:\n{result.stderr[-3000:]}")
    outcome = json.loads(result.stdout)
    summary = {"seconds": round(time.monotonic() - started, 1), "loaded": outcome["loaded"]}
    marker.write_text(json.dumps(summary))
    return summary


def _clean_environment() -> dict[str, str]:
    keep = {name: value for name, value in os.environ.items() if not name.startswith(("SLACK_", "CULPRIT_", "OPENAI_"))}
    return {**keep, **OFFLINE}


@dataclass
class Replica:
    """One ``culprit serve`` process on a loopback port."""

    name: str
    port: int
    scheduler: bool
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Stack:
    """Everything started for one run, and how to stop each part."""

    workdir: Path
    with_vllm: bool
    progress: object
    with_classifier: bool = True
    database: str = field(default_factory=lambda: f"culprit_stack_{uuid.uuid4().hex[:10]}")
    replicas: list[Replica] = field(default_factory=list)
    scheduler: Replica | None = None
    slack: FakeSlack | None = None
    vllm: VllmServer | None = None
    chroma: subprocess.Popen[bytes] | None = None
    chroma_port: int = 0
    _fake_slack: FakeSlackServer | None = None
    _exit: ExitStack = field(default_factory=ExitStack)

    @property
    def database_url(self) -> str:
        return database_url(self.database)

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def say(self, message: str) -> None:
        self.progress(message)  # type: ignore[operator]

    def start(self, replicas: int = 2) -> Stack:
        self.say(f"copying the seeded database into {self.database}")
        admin_sql(f'CREATE DATABASE "{self.database}" TEMPLATE "{SEED_DATABASE}"')
        self._exit.callback(admin_sql, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        shutil.copytree(SEED_DIR / "data", self.data_dir)
        if not self.with_classifier:  # reports are stored as "other", without MiniLM: the storage path alone
            (self.data_dir / "models" / "report_classifier.model").unlink()
        self._fake_slack = FakeSlackServer(FakeSlack(channel_names=dict(CHANNEL_NAMES)))
        self.slack = self._exit.enter_context(self._fake_slack)
        self._start_chroma()
        if self.with_vllm:
            self.say("starting the CPU vLLM with the tiny model")
            build, _ = build_vllm()
            self.vllm = VllmServer(build, self.workdir / "logs" / "vllm.log").start()
            self._exit.callback(self.vllm.stop)
        for number in range(replicas):
            self.replicas.append(Replica(f"replica-{number + 1}", free_port(), False, self.workdir / "logs" / f"replica-{number + 1}.log"))
        self.scheduler = Replica("scheduler", free_port(), True, self.workdir / "logs" / "scheduler.log")
        self.say(f"starting {replicas} culprit replicas and the scheduler")
        for replica in [*self.replicas, self.scheduler]:
            self.start_replica(replica, wait=False)
        for replica in [*self.replicas, self.scheduler]:
            self.wait_healthy(replica)
        return self

    def environment(self, digest_channel: str = DIGEST_CHANNEL) -> dict[str, str]:
        assert self._fake_slack is not None
        env = {
            **_clean_environment(),
            "SLACK_BOT_TOKEN": "xoxb-stack",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "CULPRIT_SLACK_API_URL": self._fake_slack.api_url,
            "CULPRIT_DATABASE_URL": self.database_url,
            "CULPRIT_DATA_DIR": str(self.data_dir),
            "CULPRIT_CHROMA_URL": f"http://127.0.0.1:{self.chroma_port}",
            "CULPRIT_REPORTS_TOKEN": REPORTS_TOKEN,
            "CULPRIT_DIGEST_CHANNEL": digest_channel,
            "CULPRIT_USER_RATE_LIMIT_PER_MINUTE": "1000",
            "OMP_NUM_THREADS": "1",
        }
        if self.vllm is not None:
            env.update({"CULPRIT_LLM_BASE_URL": self.vllm.base_url, "CULPRIT_LLM_MODEL": self.vllm.model, "CULPRIT_LLM_TIMEOUT_S": "10"})
        return env

    def start_replica(self, replica: Replica, wait: bool = True, digest_channel: str = DIGEST_CHANNEL) -> None:
        command = [CULPRIT, "serve", "--host", "127.0.0.1", "--port", str(replica.port)]
        if not replica.scheduler:
            command.append("--no-scheduler")
        replica.log_path.parent.mkdir(parents=True, exist_ok=True)
        with replica.log_path.open("a") as log:
            replica.process = subprocess.Popen(
                command, env=self.environment(digest_channel), stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, start_new_session=True,
            )
        if wait:
            self.wait_healthy(replica)

    def wait_healthy(self, replica: Replica, timeout_s: float = 240) -> None:
        wait_until(lambda: http_ok(f"{replica.url}/healthz"), f"{replica.name} /healthz", timeout_s, replica.process)

    def stop_replica(self, replica: Replica, hard: bool = False) -> None:
        """SIGTERM lets uvicorn finish its requests (a rolling restart); SIGKILL is a crash."""
        if replica.running:
            assert replica.process is not None
            _signal_group(replica.process, signal.SIGKILL if hard else signal.SIGTERM)
            try:
                replica.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                _signal_group(replica.process, signal.SIGKILL)
                replica.process.wait(timeout=10)

    def _start_chroma(self) -> None:
        self.chroma_port = free_port()
        chroma = str(Path(sys.executable).parent / "chroma")
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        with (self.workdir / "logs" / "chroma.log").open("w") as log:
            self.chroma = subprocess.Popen(
                [chroma, "run", "--path", str(self.data_dir / "chroma"), "--host", "127.0.0.1", "--port", str(self.chroma_port)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **OFFLINE}, start_new_session=True,
            )
        self._exit.callback(_stop_process, self.chroma)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{self.chroma_port}/api/v2/heartbeat"), "chroma run", 60, self.chroma)

    def close(self) -> None:
        for replica in [*self.replicas, *([self.scheduler] if self.scheduler else [])]:
            if replica.process is not None:
                _stop_process(replica.process)
        self._exit.close()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(os.getpgid(process.pid), signum)
    except ProcessLookupError:
        pass


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)
