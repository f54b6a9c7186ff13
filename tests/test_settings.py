"""A bad setting stops `culprit` at once: one red line naming the variable and the fix, exit code 1.

Each case runs the installed ``culprit`` command in a subprocess, as a user
would, with one bad variable in its environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge.config import Settings

CULPRIT = str(Path(sys.executable).with_name("culprit"))
RCA = ["rca", "checkout is down"]
SERVE = ["serve", "--port", "0"]


def culprit(arguments: list[str], data_dir: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CULPRIT_DATA_DIR": str(data_dir), **variables}
    return subprocess.run([CULPRIT, *arguments], env=environment, capture_output=True, text=True, timeout=300, check=False)


def refused_with(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The error lines, after checking it failed as a user should see it: exit code 1, no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return result.stderr.splitlines()


CASES = [
    (SERVE, "CULPRIT_DIGEST_HOUR", "31",
     "CULPRIT_DIGEST_HOUR=31: input should be less than or equal to 23; set it to an hour of the day from 0 to 23"),
    (SERVE, "CULPRIT_INCIDENT_CHANNELS", "notjson",
     'CULPRIT_INCIDENT_CHANNELS=notjson: not JSON; set it to a JSON list of channel ids, e.g. ["C0123","C0456"]'),
    (SERVE, "CULPRIT_ALLOWED_USERS", '"U0123"',
     'CULPRIT_ALLOWED_USERS="U0123": input should be a valid list; set it to a JSON list of user ids, e.g. ["U0123"]'),
    (RCA, "CULPRIT_MIN_CONFIDENCE", "5",
     "CULPRIT_MIN_CONFIDENCE=5: input should be less than or equal to 1; set it to a confidence from 0 to 1, e.g. 0.5"),
    (RCA, "CULPRIT_TARGET_PRECISION", "0",
     "CULPRIT_TARGET_PRECISION=0: input should be greater than 0; set it to a precision above 0 and at most 1, e.g. 0.9"),
    (["reports", "trends"], "CULPRIT_OTHER_CONFIDENCE", "-0.1",
     ("CULPRIT_OTHER_CONFIDENCE=-0.1: input should be greater than or equal to 0; "
      "set it to a confidence from 0 to 1, e.g. 0.4")),
    (SERVE, "CULPRIT_DIGEST_DAY_OF_WEEK", "funday",
     ('CULPRIT_DIGEST_DAY_OF_WEEK=funday: invalid weekday name "funday"; '
      'set it to a day such as "mon", or days as cron writes them ("mon-fri", "mon,thu")')),
    (SERVE, "CULPRIT_DIGEST_TIMEZONE", "Mars/Olympus",
     ('CULPRIT_DIGEST_TIMEZONE=Mars/Olympus: no such time zone; set it to an IANA time zone such as "UTC" or '
      '"Europe/Paris"')),
    (SERVE, "CULPRIT_DIGEST_TIMEZONE", "America",  # a folder of zones, not a zone
     ('CULPRIT_DIGEST_TIMEZONE=America: no such time zone; set it to an IANA time zone such as "UTC" or '
      '"Europe/Paris"')),
    (RCA, "CULPRIT_WINDOW_DAYS", "0",
     "CULPRIT_WINDOW_DAYS=0: input should be greater than or equal to 1; set it to a whole number of days from 1 to 365"),
    (RCA, "CULPRIT_BATCH_SIZE", "5",
     ("CULPRIT_BATCH_SIZE=5: input should be greater than or equal to 6; "
      "set it to a whole number of changes from 6 to 100 (each round keeps 5)")),
    (["db", "upgrade"], "CULPRIT_LLM_TIMEOUT_S", "soon",
     ("CULPRIT_LLM_TIMEOUT_S=soon: input should be a valid number, unable to parse string as a number; "
      "set it to a number of seconds above 0, at most 600")),
    (["db", "upgrade"], "CULPRIT_LLM_TIMEOUT_S", "nan",
     "CULPRIT_LLM_TIMEOUT_S=nan: input should be a finite number; set it to a number of seconds above 0, at most 600"),
    (RCA, "CULPRIT_MIN_CONFIDENCE", "-inf",
     "CULPRIT_MIN_CONFIDENCE=-inf: input should be a finite number; set it to a confidence from 0 to 1, e.g. 0.5"),
    (RCA, "CULPRIT_LLM_BASE_URL", "localhost:8000/v1",
     ("CULPRIT_LLM_BASE_URL=localhost:8000/v1: not an http(s) URL with a host; "
      "set it to the http(s) URL of an OpenAI-compatible server, such as http://127.0.0.1:8000/v1")),
    (["doctor"], "CULPRIT_SLACK_API_URL", "slack.internal/api/",
     ("CULPRIT_SLACK_API_URL=slack.internal/api/: not an http(s) URL with a host; "
      "set it to the http(s) URL of the Slack Web API, such as https://slack.com/api/")),
    (["doctor"], "CULPRIT_CHROMA_URL", "http://chroma:eight",
     ("CULPRIT_CHROMA_URL=http://chroma:eight: not a URL; "
      "set it to an http(s) URL such as http://127.0.0.1:8000, or nothing for the embedded store")),
]


@pytest.mark.parametrize(("arguments", "variable", "value", "expected"), CASES, ids=[case[1] for case in CASES])
def test_a_bad_variable_is_one_line_that_names_it_and_the_fix(
    arguments: list[str], variable: str, value: str, expected: str, tmp_path: Path
) -> None:
    lines = refused_with(culprit(arguments, tmp_path / "data", **{variable: value}))
    assert lines == [f"error: {expected}"]
    assert not (tmp_path / "data").exists(), "nothing was touched before the settings were checked"


def test_a_data_dir_that_is_a_file_is_refused_before_anything_runs(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "culprit-data"
    not_a_folder.write_text("a file where the data folder should be")
    lines = refused_with(culprit(["db", "upgrade"], not_a_folder))
    assert lines == [
        (f"error: CULPRIT_DATA_DIR={not_a_folder}: this is a file, not a folder; "
        "set it to a folder culprit can read and write (created if missing)")
    ]


def test_a_data_dir_whose_name_is_too_long_for_a_path_is_refused(tmp_path: Path) -> None:
    too_long = tmp_path / ("d" * 300)  # over the 255 bytes a file name may have
    lines = refused_with(culprit(["db", "upgrade"], too_long))
    assert lines == [
        (f"error: CULPRIT_DATA_DIR={str(too_long)[:200]}...: cannot be used as a folder (File name too long); "
        "set it to a folder culprit can read and write (created if missing)")
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any folder whatever its mode")
def test_a_data_dir_this_user_cannot_use_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0)
    try:
        lines = refused_with(culprit(["reports", "trends"], locked))
    finally:
        locked.chmod(0o700)
    assert lines == [
        (f"error: CULPRIT_DATA_DIR={locked}: this folder cannot be read and written by this user; "
        "set it to a folder culprit can read and write (created if missing)")
    ]


def test_a_database_url_is_refused_without_echoing_its_password(tmp_path: Path) -> None:
    result = culprit(["db", "upgrade"], tmp_path, CULPRIT_DATABASE_URL="postgresql+psycopg://ops:hunter2@db:port/x")
    assert refused_with(result) == [
        ("error: CULPRIT_DATABASE_URL: not a database URL; "
        "set it to an SQLAlchemy URL such as postgresql+psycopg://user:password@host:5432/culprit")
    ]
    assert "hunter2" not in result.stderr


def test_a_server_url_is_refused_without_echoing_its_password(tmp_path: Path) -> None:
    result = culprit(["doctor"], tmp_path, CULPRIT_LLM_BASE_URL="http://ops:hunter2@vllm:port/v1")
    assert refused_with(result) == [
        ("error: CULPRIT_LLM_BASE_URL=http://ops:***@vllm:port/v1: not a URL; "
         "set it to the http(s) URL of an OpenAI-compatible server, such as http://127.0.0.1:8000/v1")
    ]
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    "sources",
    [
        '[{"kind":"confluence","name":"ops","url":"https://bob:hunter2@acme.atlassian.net/wiki","space":"OPS"}]',
        '[{"kind":"wiki","name":"ops","url":"https://bob:hunter2@acme.atlassian.net/wiki","space":"OPS"}]',
    ],
    ids=["password-in-url", "unknown-kind"],
)
def test_a_wiki_source_is_refused_without_echoing_a_password(tmp_path: Path, sources: str) -> None:
    result = culprit(["db", "upgrade"], tmp_path, CULPRIT_WIKI_SOURCES=sources)
    (line,) = refused_with(result)
    assert line.startswith("error: CULPRIT_WIKI_SOURCES: item 0: ")
    assert "hunter2" not in result.stderr


def test_a_huge_value_is_quoted_cut_short(tmp_path: Path) -> None:
    lines = refused_with(culprit(["db", "upgrade"], tmp_path, CULPRIT_INCIDENT_CHANNELS="C" * 100_000))
    assert len(lines) == 1 and len(lines[0]) < 400
    assert lines[0].startswith("error: CULPRIT_INCIDENT_CHANNELS=" + "C" * 200 + "...: not JSON")


def test_a_list_nested_thousands_deep_is_refused_not_a_traceback(tmp_path: Path) -> None:
    lines = refused_with(culprit(["db", "upgrade"], tmp_path, CULPRIT_ALLOWED_USERS="[" * 100_000))
    assert len(lines) == 1
    assert lines[0].endswith('...: the JSON is nested too deeply; set it to a JSON list of user ids, e.g. ["U0123"]')


def test_every_bad_variable_gets_its_own_line(tmp_path: Path) -> None:
    lines = refused_with(culprit(SERVE, tmp_path, CULPRIT_DIGEST_HOUR="24", CULPRIT_MIN_CONFIDENCE="1.5"))
    assert [line.split(":")[1].strip() for line in lines] == ["CULPRIT_MIN_CONFIDENCE=1.5", "CULPRIT_DIGEST_HOUR=24"]


SHARED_SECRET_FIX = "a random string of at least 16 characters (e.g. `openssl rand -hex 32`), or nothing to switch it off"


@pytest.mark.parametrize(("value", "problem"), [(" \t ", "only whitespace"), ("hunter2hunter2", "shorter than 16 characters")])
def test_a_guessable_shared_secret_is_refused_without_echoing_it(value: str, problem: str, tmp_path: Path) -> None:
    lines = refused_with(culprit(SERVE, tmp_path / "data", CULPRIT_REPORTS_TOKEN=value))
    assert lines == [f"error: CULPRIT_REPORTS_TOKEN: {problem}; set it to {SHARED_SECRET_FIX}"]
    assert not (tmp_path / "data").exists(), "nothing was touched before the settings were checked"


@pytest.mark.parametrize(
    "variable",
    ["CULPRIT_REPORTS_TOKEN", "CULPRIT_METRICS_TOKEN", "CULPRIT_CHANGES_TOKEN", "CULPRIT_GITHUB_WEBHOOK_SECRET",
     "CULPRIT_GITLAB_WEBHOOK_TOKEN", "CULPRIT_PAGERDUTY_WEBHOOK_SECRET", "CULPRIT_INCIDENTS_WEBHOOK_SECRET"],
)
def test_every_shared_secret_must_be_long_and_empty_switches_it_off(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge.config import ConfigurationError

    monkeypatch.setenv("CULPRIT_DATA_DIR", str(tmp_path))
    field = variable.removeprefix("CULPRIT_").lower()
    for guessable in (" ", "x", "0123456789abcde"):
        monkeypatch.setenv(variable, guessable)
        with pytest.raises(ConfigurationError) as refused:
            read_settings()
        assert str(refused.value).startswith(f"{variable}: ")
    monkeypatch.setenv(variable, "")  # compose's ${VARIABLE:-}: the endpoint stays off
    assert getattr(read_settings(), field) is None
    monkeypatch.setenv(variable, "0123456789abcdef")
    assert getattr(read_settings(), field).get_secret_value() == "0123456789abcdef"


def test_a_blank_slack_credential_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from knowledge.config import ConfigurationError

    monkeypatch.setenv("CULPRIT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "  ")
    with pytest.raises(ConfigurationError) as refused:
        read_settings()
    assert str(refused.value) == (
        "SLACK_SIGNING_SECRET: only whitespace; set it to the value from the Slack app's settings page, or nothing"
    )


def read_settings() -> Settings:
    """The settings as a command reads them, not cached between calls."""
    from knowledge.config import get_settings

    get_settings.cache_clear()
    try:
        return get_settings()
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("database", ["fresh", "not a database"])
def test_trends_on_a_store_it_cannot_read_says_how_to_fix_it(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    if database == "not a database":
        data_dir.mkdir()
        (data_dir / "culprit.db").write_text("these are not the tables you are looking for")
    (line,) = refused_with(culprit(["reports", "trends"], data_dir))
    reason = "no such table: category_daily" if database == "fresh" else "file is not a database"
    assert line == (
        f"error: the database at sqlite:///{data_dir / 'culprit.db'} cannot be used ({reason}); "
        "run `culprit db upgrade` to create its tables, or set CULPRIT_DATABASE_URL or CULPRIT_DATA_DIR to a usable one"
    )


def test_trends_on_a_database_server_that_is_down_says_so_not_upgrade(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://ops:hunter2@127.0.0.1:{port}/culprit"
    result = culprit(["reports", "trends"], tmp_path / "data", CULPRIT_DATABASE_URL=url)
    (line,) = refused_with(result)
    assert line.startswith(f"error: cannot reach the database at postgresql+psycopg://ops:***@127.0.0.1:{port}/culprit (")
    assert line.endswith("); check CULPRIT_DATABASE_URL and that the server is running")
    assert "hunter2" not in result.stderr


def test_a_refused_record_is_not_blamed_on_a_missing_upgrade(tmp_path: Path) -> None:
    """A constraint that refuses a write (here a trigger, as a racing writer's unique row would) is named as such."""
    import sqlite3

    data_dir = tmp_path / "data"
    assert culprit(["db", "upgrade"], data_dir).returncode == 0
    with sqlite3.connect(data_dir / "culprit.db") as connection:
        connection.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON categories BEGIN SELECT RAISE(ABORT, 'taken by another writer'); END"
        )
    categories = tmp_path / "categories.yaml"
    categories.write_text("- name: crash\n  description: the app stops\n  examples: [it crashed]\n")
    (line,) = refused_with(culprit(["reports", "categories", str(categories)], data_dir))
    assert line == (
        f"error: the database at sqlite:///{data_dir / 'culprit.db'} refused a record (taken by another writer); "
        "the step that stored it was rolled back: run the command again, and if it is refused again "
        "check what else writes to this database"
    )


def test_good_values_in_every_accepted_form_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CULPRIT_DATA_DIR": str(tmp_path / "not-yet-made"),
        "CULPRIT_INCIDENT_CHANNELS": '["C0123", "C0456"]',
        "CULPRIT_ALLOWED_USERS": "[]",
        "CULPRIT_DIGEST_DAY_OF_WEEK": "mon-fri",
        "CULPRIT_DIGEST_TIMEZONE": "Europe/Paris",
        "CULPRIT_DIGEST_HOUR": "0",
        "CULPRIT_MIN_CONFIDENCE": "1",
        "CULPRIT_BATCH_SIZE": "6",
        "CULPRIT_LLM_BASE_URL": "https://bot:token@vllm.internal/v1",
        "CULPRIT_CHROMA_URL": "",  # compose passes an unset variable as "": the embedded store
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.incident_channels == ["C0123", "C0456"] and settings.allowed_users == []
    assert (settings.digest_day_of_week, settings.digest_timezone, settings.digest_hour) == ("mon-fri", "Europe/Paris", 0)
    assert (settings.min_confidence, settings.batch_size) == (1.0, 6)
    assert (settings.llm_base_url, settings.chroma_url) == ("https://bot:token@vllm.internal/v1", None)


def test_empty_paths_mean_the_defaults_not_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CULPRIT_DATA_DIR", "")  # compose's ${CULPRIT_DATA_DIR:-} when the operator set nothing
    monkeypatch.setenv("CULPRIT_RANKER_PATH", " ")

    settings = Settings()

    assert settings.data_dir == Path(".culprit")
    assert settings.resolved_ranker_path == Path(".culprit/models/ranker.model")
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / '.culprit' / 'culprit.db'}"


@pytest.mark.parametrize(
    ("variable", "value", "fix"),
    [
        ("CULPRIT_LLM_TIMEOUT_S", "601", "a number of seconds above 0, at most 600"),
        ("CULPRIT_WINDOW_DAYS", "1000000000", "a whole number of days from 1 to 365"),
        ("CULPRIT_BATCH_SIZE", "1000000", "a whole number of changes from 6 to 100 (each round keeps 5)"),
        ("CULPRIT_USER_RATE_LIMIT_PER_MINUTE", "10001", "a whole number of requests from 1 to 10000"),
        ("CULPRIT_REPORT_RETENTION_DAYS", "3651", "a whole number of days from 1 to 3650 (ten years)"),
        ("CULPRIT_THREAD_RETENTION_DAYS", "1000000000", "a whole number of days from 1 to 3650 (ten years)"),
        ("CULPRIT_POLL_SECONDS", "1000000000000", "a whole number of seconds from 1 to 86400 (a day)"),
        ("CULPRIT_WIKI_SYNC_MINUTES", "10081", "a whole number of minutes from 1 to 10080 (a week)"),
    ],
)
def test_a_number_past_its_upper_bound_is_refused(
    variable: str, value: str, fix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge.config import ConfigurationError, get_settings

    monkeypatch.setenv("CULPRIT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError) as refused:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert str(refused.value).startswith(f"{variable}={value}: input should be less than or equal to ")
    assert str(refused.value).endswith(f"; set it to {fix}")
