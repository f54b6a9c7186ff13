"""The production stack in deploy/compose.yml: what an operator relies on when they run it."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from bot.cli import app as culprit_cli
from knowledge.config import Settings
from tests.deploy.compose_file import (
    COMPOSE_FILE,
    DEPLOY_DIR,
    ENV_EXAMPLE,
    REPO_ROOT,
    MissingVariable,
    read_env_file,
    resolved_compose,
    variables_in,
)

# Settings an operator of this stack has no reason to change, each for a stated reason.
NOT_IN_COMPOSE = {
    "data_dir",  # fixed to the image's /data volume (set below as a constant)
    "slack_app_token",  # Socket Mode: one process, not several replicas behind a load balancer
    "slack_api_url",  # points the Web API client at a fake Slack in tests
    "ranker_path",  # the trained model lives in the shared data volume
    "other_confidence",  # a property of the trained classifier, not of the install
}
SECRETS = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY")
# vLLM's tool-call parser for each model family: a mismatch turns every tool call into plain text.
PARSER_FOR_FAMILY = {
    "qwen2.5": "hermes",
    "qwen3": "hermes",
    "hermes": "hermes",
    "llama-3": "llama3_json",
    "mistral": "mistral",
}
# Organisations whose models need an accepted licence and a token (HF_TOKEN) to download.
GATED_ORGANISATIONS = {"meta-llama", "google", "mistralai"}


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return read_env_file()


@pytest.fixture(scope="module")
def stack(example_env: dict[str, str]) -> dict:
    return resolved_compose(example_env)


def serve_command(service: dict) -> list[str]:
    command = service["command"]
    assert command[:2] == ["culprit", "serve"], command
    return command


def test_the_stack_has_every_part(stack: dict) -> None:
    assert set(stack["services"]) == {"postgres", "chroma", "migrate", "culprit", "scheduler", "nginx", "vllm"}
    assert stack["services"]["chroma"]["image"].startswith("chromadb/chroma:")
    assert stack["services"]["vllm"]["image"].startswith("vllm/vllm-openai:")
    assert stack["services"]["postgres"]["image"].startswith("postgres:")


def test_two_http_replicas_and_exactly_one_scheduler(stack: dict) -> None:
    services = stack["services"]
    replicas = serve_command(services["culprit"])
    assert int(services["culprit"]["deploy"]["replicas"]) == 2
    assert "--no-scheduler" in replicas and "--socket-mode" not in replicas
    scheduler = serve_command(services["scheduler"])
    assert "--no-scheduler" not in scheduler
    assert int(services["scheduler"]["deploy"]["replicas"]) == 1
    runs_jobs = [
        name for name, service in services.items()
        if service.get("command", [])[:2] == ["culprit", "serve"] and "--no-scheduler" not in service["command"]
    ]
    assert runs_jobs == ["scheduler"]


def test_every_culprit_command_is_one_the_cli_accepts(stack: dict) -> None:
    runner = CliRunner()
    for name in ("migrate", "culprit", "scheduler"):
        command = stack["services"][name]["command"]
        assert command[0] == "culprit"
        result = runner.invoke(culprit_cli, [*command[1:], "--help"])
        assert result.exit_code == 0, f"{name}: {command} -> {result.output}"


def test_migrations_run_once_before_the_replicas(stack: dict) -> None:
    services = stack["services"]
    assert services["migrate"]["command"] == ["culprit", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("culprit", "scheduler"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["nginx"]["depends_on"]["culprit"]["condition"] == "service_healthy"


def test_every_long_running_service_has_a_health_check(stack: dict) -> None:
    for name, service in stack["services"].items():
        if name == "migrate":
            assert service["healthcheck"] == {"disable": True}
            continue
        check = service.get("healthcheck", {})
        assert check.get("test") and check["test"][0] in {"CMD", "CMD-SHELL"}, name
    assert "/healthz" in " ".join(stack["services"]["culprit"]["healthcheck"]["test"])
    assert "/api/v2/heartbeat" in " ".join(stack["services"]["chroma"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(stack["services"]["postgres"]["healthcheck"]["test"])


def test_vllm_runs_on_the_gpu_profile_with_tools_and_lora(stack: dict) -> None:
    vllm = stack["services"]["vllm"]
    assert vllm["profiles"] == ["gpu"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    command = vllm["command"]
    assert "--enable-auto-tool-choice" in command and "--enable-lora" in command
    # The judge asks for the top logprobs of a whole election batch.
    assert int(command[command.index("--max-logprobs") + 1]) >= int(
        stack["services"]["culprit"]["environment"]["CULPRIT_BATCH_SIZE"]
    )
    for name, service in stack["services"].items():
        if name != "vllm":
            assert "profiles" not in service, f"{name} must start without the gpu profile"


def test_every_setting_comes_from_the_environment(stack: dict) -> None:
    raw = COMPOSE_FILE.read_text()
    environment = stack["services"]["culprit"]["environment"]
    settings_fields = set(Settings.model_fields)
    exposed = set()
    for key in environment:
        field = key.lower().removeprefix("culprit_")
        assert field in settings_fields, f"{key} is not a culprit setting (typo?)"
        exposed.add(field)
    assert exposed | NOT_IN_COMPOSE == settings_fields, (
        f"settings missing from compose.yml: {sorted(settings_fields - exposed - NOT_IN_COMPOSE)}"
    )
    for key, value in re.findall(r"^\s*([A-Z][A-Z0-9_]*):\s*(.*)$", raw, re.M):
        if SECRETS.search(key):
            assert "${" in value, f"{key} must come from the environment, not the file"
    documented = set(read_env_file()) | set(re.findall(r"^# ?([A-Z_]+)=", ENV_EXAMPLE.read_text(), re.M))
    assert variables_in(raw) <= documented, f"not in .env.example: {sorted(variables_in(raw) - documented)}"


def test_the_example_environment_gives_valid_settings(
    stack: dict, example_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in stack["services"]["culprit"]["environment"].items():
        assert "$" not in str(value), f"{name} left unresolved: {value}"
        monkeypatch.setenv(name, str(value))
    configured = Settings()
    assert configured.database_url == (
        f"postgresql+psycopg://{example_env['POSTGRES_USER']}:{example_env['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{example_env['POSTGRES_DB']}"
    )
    assert configured.slack_signing_secret is not None
    assert configured.slack_signing_secret.get_secret_value() == example_env["SLACK_SIGNING_SECRET"]
    assert configured.allowed_channels == [] and configured.incident_channel_pattern == "inc-*"
    assert configured.chroma_url == "http://chroma:8000"
    assert not configured.llm_base_url and not configured.reports_token  # off until the operator sets them


def test_required_secrets_stop_compose_when_missing(example_env: dict[str, str]) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "POSTGRES_PASSWORD"):
        with pytest.raises(MissingVariable, match=name):
            resolved_compose({key: value for key, value in example_env.items() if key != name})


def test_image_volume_and_ports_match_the_dockerfile(stack: dict) -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    exposed = re.search(r"^EXPOSE (\d+)", dockerfile, re.M)[1]
    data_dir = re.search(r"CULPRIT_DATA_DIR=(\S+)", dockerfile)[1]
    for name in ("migrate", "culprit", "scheduler"):
        service = stack["services"][name]
        assert (DEPLOY_DIR / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == (
            REPO_ROOT / "Dockerfile"
        )
        assert service["environment"]["CULPRIT_DATA_DIR"] == data_dir
        assert f"culprit-data:{data_dir}" in service["volumes"]
    for name in ("culprit", "scheduler"):
        command = stack["services"][name]["command"]
        assert command[command.index("--port") + 1] == exposed
        assert command[command.index("--host") + 1] == "0.0.0.0"
        assert f"127.0.0.1:{exposed}/healthz" in " ".join(stack["services"][name]["healthcheck"]["test"])


def test_the_load_balancer_fronts_the_replicas(stack: dict) -> None:
    nginx = stack["services"]["nginx"]
    mount = next(volume for volume in nginx["volumes"] if volume.endswith(":/etc/nginx/nginx.conf:ro"))
    config = (DEPLOY_DIR / mount.split(":")[0]).read_text()
    exposed = re.search(r"^EXPOSE (\d+)", (REPO_ROOT / "Dockerfile").read_text(), re.M)[1]
    assert re.search(rf"server culprit:{exposed}\b", config)
    listen = re.search(r"listen (\d+);", config)[1]
    assert nginx["ports"] == [f"{read_env_file()['CULPRIT_PUBLIC_PORT']}:{listen}"]
    assert "proxy_next_upstream error" in config and "non_idempotent" not in config
    assert "ports" not in stack["services"]["culprit"], "replicas are reached through nginx only"
    assert config.count("{") == config.count("}")


def family_parser(model: str) -> str:
    """The parser a model's family needs, by its Hugging Face name; unknown families fail the test."""
    name = model.lower().split("/")[-1]
    matches = [parser for family, parser in PARSER_FOR_FAMILY.items() if name.startswith(family)]
    assert matches, f"no known tool-call parser for {model}: add its family to PARSER_FOR_FAMILY"
    return matches[0]


def test_vllm_serves_an_open_model_with_the_parser_of_its_family(stack: dict) -> None:
    vllm = stack["services"]["vllm"]
    command = vllm["command"]
    model = command[command.index("--model") + 1]
    assert model.split("/")[0] not in GATED_ORGANISATIONS, f"{model} needs a token to download"
    assert command[command.index("--tool-call-parser") + 1] == family_parser(model)
    tag = vllm["image"].rsplit(":", 1)[1]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", tag), f"vLLM image tag {tag!r} is not a pinned release"


def test_docs_serve_every_model_with_the_parser_of_its_family() -> None:
    served = re.findall(r"vllm serve (\S+)[^`]*?--tool-call-parser (\S+)", (REPO_ROOT / "docs/llm.md").read_text())
    assert served, "docs/llm.md shows no `vllm serve` with a tool-call parser"
    for model, parser in served:
        assert parser == family_parser(model), f"docs/llm.md serves {model} with {parser}"


def test_one_served_model_name_in_compose_docs_and_example(stack: dict) -> None:
    command = stack["services"]["vllm"]["command"]
    served = command[command.index("--served-model-name") + 1]
    commented = dict(re.findall(r"^# ?([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
    assert commented["CULPRIT_LLM_MODEL"] == served
    docs = (REPO_ROOT / "docs/llm.md").read_text()
    assert set(re.findall(r"--served-model-name (\S+)", docs)) == {served}
    assert f"CULPRIT_LLM_MODEL={served}" in docs
    assert f"CULPRIT_LLM_MODEL={served}" in (REPO_ROOT / "docs/production.md").read_text()


def test_every_commented_example_line_is_safe_to_uncomment(example_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    commented = dict(re.findall(r"^# ?([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
    assert commented, "no commented settings to check"
    for name, value in commented.items():
        assert value and not re.search(r"\s|[()#]", value), f"{name}={value!r} is not a bare value"
    uncommented = {**example_env, **commented}
    for name, value in resolved_compose(uncommented)["services"]["culprit"]["environment"].items():
        monkeypatch.setenv(name, str(value))
    configured = Settings()
    assert configured.llm_configured
    assert configured.llm_model == commented["CULPRIT_LLM_MODEL"]


def test_the_image_installs_locked_dependencies_before_the_source() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert len(stages) >= 2, "multi-stage: build tools and caches stay out of the final image"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", dockerfile, re.M)[1]
    assert "@sha256:" in base or re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), f"unpinned base {base}"
    lines = dockerfile.splitlines()
    first_source_copy = next(i for i, line in enumerate(lines) if re.match(r"COPY (bot|graph|tools|knowledge)\b", line))
    dependencies = next(i for i, line in enumerate(lines) if "-c constraints.txt" in line)
    assert dependencies < first_source_copy
    assert "COPY --from=build /opt/venv /opt/venv" in dockerfile


def test_one_lock_file_for_the_image_the_tests_and_ci() -> None:
    lock = {
        name.lower().replace("_", "-"): version
        for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)$", (REPO_ROOT / "constraints.txt").read_text(), re.M)
    }
    assert "-c constraints.txt" in (REPO_ROOT / "scripts/test.sh").read_text()
    assert "scripts/test.sh" in (REPO_ROOT / ".ci/run").read_text()
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    for requirement in wanted:
        name = re.match(r"[A-Za-z0-9_.\-]+", requirement)[0].lower().replace("_", "-")
        assert name in lock, f"{name} is not locked in constraints.txt"
    # The CPU torch is found through pip's configuration (find-links) or PyTorch's CPU index, not by its label.
    assert lock["torch"] == "2.13.0"
