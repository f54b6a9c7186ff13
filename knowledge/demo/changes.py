"""Months of plausible changes to the Acme monorepo: who wrote them, what they touched, when they landed.

Each change keeps its ``kind`` (code, config, flag, migration, dependency,
refactor, ...) and the identifiers behind its title in ``signals``, so the
incident generator can write a symptom that points at it as loosely or as
clearly as it wants.
"""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from knowledge.demo.catalog import (
    FIRST_NAMES,
    GENERIC_CONFIG,
    LAST_NAMES,
    REGIONS,
    REPO,
    SERVICES,
    SERVICES_BY_NAME,
    TEAMS,
    TEAMS_BY_NAME,
    ServiceSpec,
    Topic,
)

BOT_NAME = "dependabot[bot]"
BOT_EMAIL = "49699333+dependabot[bot]@users.noreply.github.com"

# Risky kinds are what break production; their share mirrors a busy monorepo.
KIND_WEIGHTS = {
    "code": 50,
    "test": 6,
    "docs": 4,
    "config": 7,
    "flag": 6,
    "migration": 5,
    "dependency": 8,
    "refactor": 3,
}
SERVICE_WEIGHTS = {
    "web-frontend": 12,
    "api-gateway": 6,
    "auth": 6,
    "payments": 10,
    "checkout": 10,
    "catalog": 8,
    "search": 8,
    "feed": 7,
    "notifications": 6,
    "media": 5,
    "billing-db": 3,
    "shared-libs": 8,
    "platform-config": 5,
}

CODE_TITLES = (
    "fix {topic} when {cond}",
    "retry {topic} on {err}",
    "add metrics for {topic}",
    "log {topic} failures with the request id",
    "cache {topic} lookups",
    "simplify {topic}",
    "handle empty {topic} responses",
    "speed up {topic}",
    "validate {topic} input",
    "make {topic} configurable",
    "remove dead code in {topic}",
    "support {region} in {topic}",
    "tidy up {topic} error messages",
    "batch {topic} writes",
    "stop double-counting in {topic}",
    "guard {topic} against missing fields",
)
CONDITIONS = (
    "the cache is cold",
    "the upstream returns 409",
    "the locale is missing",
    "a retry races the first attempt",
    "the batch is empty",
    "the token expires mid-request",
    "two requests share a key",
    "the provider is slow",
    "the user has no default address",
)
ERRORS = ("409", "429", "503", "timeouts", "connection reset")
PROBLEMS = (
    ("swallowed the upstream error", "surfaces it to the caller"),
    ("retried without backoff", "adds jittered exponential backoff"),
    ("only logged at debug", "logs at warn with the request id"),
    ("allocated a client per request", "reuses a pooled client"),
    ("ignored the configured timeout", "honours the setting"),
    ("served stale data after a deploy", "invalidates on version change"),
    ("assumed the list was never empty", "returns early on an empty list"),
)
BODY_TAILS = (
    "Tested locally and in staging.",
    "Covered by a new unit test.",
    "Part of the Q{quarter} reliability work.",
    "No behaviour change for existing callers.",
    "Dashboards updated to match.",
)
REFACTOR_TITLES = (
    "split {topic} into its own module",
    "move {topic} to the new client interface",
    "rewrite {topic} on top of the shared HTTP client",
    "replace hand-rolled {topic} with the library version",
)
TEST_TITLES = ("add tests for {topic}", "deflake {topic} tests", "cover {topic} edge cases")
DOCS_TITLES = ("document {topic}", "explain {topic} in the README", "add runbook notes for {topic}")
BUILD_CHANGES = (
    ("ci: cache pip downloads between jobs", ".github/workflows/ci.yml"),
    ("ci: run service tests in parallel", ".github/workflows/ci.yml"),
    ("ci: pin actions to commit shas", ".github/workflows/deploy.yml"),
    ("build: bump base image to debian bookworm", "build/docker/base.Dockerfile"),
    ("build: drop the unused protoc step", "Makefile"),
    ("config: raise default log sampling to 10%", "config/global.yaml"),
    ("config: move region list to global config", "config/global.yaml"),
)


@dataclass(frozen=True)
class DemoPerson:
    name: str
    email: str
    team: str


@dataclass
class DemoChange:
    """One landed change with the ground truth the interchange format does not carry."""

    id: str
    title: str
    body: str
    author: DemoPerson
    author_time: int
    commit_time: int
    landed_time: int
    landed_via_merge: bool
    files: list[tuple[str, int, int]]
    kind: str
    service: str
    signals: dict[str, str] = field(default_factory=dict)

    @property
    def paths(self) -> list[str]:
        return [path for path, _added, _deleted in self.files]

    def history_record(self, landed_seq: int) -> dict[str, object]:
        """The line of a ``commits-*.jsonl`` file, as ../shared/data/README.md describes it."""
        dirs = sorted({path.rsplit("/", 1)[0] if "/" in path else "" for path in self.paths})
        return {
            "repo": REPO,
            "sha": self.id,
            "author": self.author.name,
            "email": self.author.email,
            "author_time": self.author_time,
            "commit_time": self.commit_time,
            "landed_time": self.landed_time,
            "landed_via_merge": self.landed_via_merge,
            "landed_seq": landed_seq,
            "title": self.title,
            "body": self.body,
            "body_truncated": False,
            "n_files": len(self.files),
            "added": sum(added for _path, added, _deleted in self.files),
            "deleted": sum(deleted for _path, _added, deleted in self.files),
            "files": [list(file) for file in self.files],
            "files_truncated": False,
            "dirs": dirs,
        }


def new_sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def build_people(rng: random.Random) -> dict[str, list[DemoPerson]]:
    """Every team's members with unique names and company emails."""
    names = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(names)
    people: dict[str, list[DemoPerson]] = {}
    taken = 0
    for team in TEAMS:
        members = []
        for first, last in names[taken : taken + team.size]:
            local = _ascii(f"{first}.{last}").lower().replace("'", "")
            members.append(DemoPerson(f"{first} {last}", f"{local}@acme.dev", team.name))
        people[team.name] = members
        taken += team.size
    return people


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _slug(text: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in _ascii(text).lower()).split())


class ChangeWriter:
    """Draws changes one at a time; keeps per-service counters such as migration numbers."""

    def __init__(self, rng: random.Random, people: dict[str, list[DemoPerson]]) -> None:
        self.rng = rng
        self.people = people
        self.everyone = [person for members in people.values() for person in members]
        self.migration_numbers = {service.name: 40 + rng.randrange(60) for service in SERVICES}
        self.library_versions: dict[tuple[str, str], tuple[int, int, int]] = {}
        self.bot = DemoPerson(BOT_NAME, BOT_EMAIL, "")

    # --- who and when -------------------------------------------------------------

    def author_for(self, service: ServiceSpec) -> DemoPerson:
        if service.name == "billing-db" and self.rng.random() < 0.5:
            return self.rng.choice(self.people["dba-team"])
        if self.rng.random() < 0.12:
            return self.rng.choice(self.everyone)
        return self.rng.choice(self.people[service.team])

    def landed_times(self, count: int, start: datetime, days: int) -> list[int]:
        """Working-hours timestamps, busier on weekdays, sorted."""
        day_weights = [
            1.0 if (start + timedelta(days=day)).weekday() < 5 else 0.12 for day in range(days)
        ]
        chosen_days = self.rng.choices(range(days), weights=day_weights, k=count)
        times = []
        for day in chosen_days:
            hour = min(23.99, max(0.0, self.rng.gauss(13.5, 3.2)))
            moment = start + timedelta(days=day, hours=hour, seconds=self.rng.randrange(60))
            times.append(int(moment.timestamp()))
        return sorted(times)

    # --- what ---------------------------------------------------------------------

    def draw(self, landed_time: int) -> DemoChange:
        """One change of a random service and kind, landing at ``landed_time``."""
        rng = self.rng
        service = SERVICES_BY_NAME[
            rng.choices(list(SERVICE_WEIGHTS), weights=list(SERVICE_WEIGHTS.values()))[0]
        ]
        kind = self._kind_for(service)
        title, body, files, signals, author = getattr(self, f"_{kind}")(service)
        author = author or self.author_for(service)
        via_merge = author.name != BOT_NAME and rng.random() < 0.07
        if via_merge:
            author_time = landed_time - rng.randrange(3600, 5 * 86400)
            commit_time = author_time + rng.randrange(60, 3600)
        else:
            author_time = landed_time - int(rng.expovariate(1 / 7200))
            commit_time = landed_time
        if body and kind != "dependency" and rng.random() < 0.5:
            prefix = TEAMS_BY_NAME[service.team].ticket_prefix
            body += f"\n\nRefs {prefix}-{rng.randrange(100, 4000)}"
        return DemoChange(
            id=new_sha(rng),
            title=title,
            body=body,
            author=author,
            author_time=author_time,
            commit_time=commit_time,
            landed_time=landed_time,
            landed_via_merge=via_merge,
            files=files,
            kind=kind,
            service=service.name,
            signals=signals,
        )

    def _kind_for(self, service: ServiceSpec) -> str:
        if service.name == "platform-config":
            return "build"
        if service.name == "billing-db":
            return self.rng.choices(["migration", "code"], weights=[3, 1])[0]
        weights = dict(KIND_WEIGHTS)
        if not service.tables:
            weights.pop("migration")
        if not service.flags:
            weights.pop("flag")
        if service.name == "shared-libs":
            weights.pop("config")
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def _prefix(self, service: ServiceSpec, topic: Topic | None = None) -> str:
        if service.name == "shared-libs" and topic:
            return topic.area
        return service.name

    def _lines(self, median: int) -> int:
        return max(1, int(self.rng.lognormvariate(math.log(median), 0.8)))

    def _body(self, topic: Topic) -> str:
        rng = self.rng
        if rng.random() < 0.2:
            return ""
        problem, fix = rng.choice(PROBLEMS)
        sentences = [f"Previously {topic.phrase} {problem}; this change {fix}."]
        if rng.random() < 0.6:
            sentences.append(rng.choice(BODY_TAILS).format(quarter=rng.randint(1, 4)))
        return " ".join(sentences)

    def _code(self, service: ServiceSpec) -> tuple[str, str, list, dict, None]:
        rng = self.rng
        topic = rng.choice(service.topics)
        template = rng.choice(CODE_TITLES)
        title = f"{self._prefix(service, topic)}: " + template.format(
            topic=topic.phrase, cond=rng.choice(CONDITIONS), err=rng.choice(ERRORS), region=rng.choice(REGIONS)
        )
        source, test = source_files(service, topic)
        files = [(source, self._lines(25), self._lines(8))]
        if rng.random() < 0.7:
            files.append((test, self._lines(30), self._lines(4)))
        if rng.random() < 0.25:
            other, _ = source_files(service, rng.choice(service.topics))
            if other != source:
                files.append((other, self._lines(6), self._lines(3)))
        return title, self._body(topic), files, {"topic": topic.phrase, "stem": topic.stem}, None

    def _refactor(self, service: ServiceSpec) -> tuple[str, str, list, dict, None]:
        rng = self.rng
        topic = rng.choice(service.topics)
        title = f"{self._prefix(service, topic)}: " + rng.choice(REFACTOR_TITLES).format(topic=topic.phrase)
        neighbours = [other for other in service.topics if other.area == topic.area]
        files: dict[str, tuple[int, int]] = {}
        for index in range(rng.randint(8, 30)):
            source, test = source_files(service, topic if index == 0 else rng.choice(neighbours))
            files[source] = (self._lines(90), self._lines(70))
            if rng.random() < 0.5:
                files[test] = (self._lines(40), self._lines(30))
        for path in rng.sample(support_files(service, topic), 3):
            files[path] = (self._lines(40), self._lines(40))
        body = (
            f"Mechanical refactor of {topic.phrase}; no behaviour change intended. "
            "Reviewers: the interesting part is the first file, the rest follows."
        )
        return title, body, [(path, a, d) for path, (a, d) in files.items()], {
            "topic": topic.phrase, "stem": topic.stem
        }, None

    def _test(self, service: ServiceSpec) -> tuple[str, str, list, dict, None]:
        topic = self.rng.choice(service.topics)
        title = f"{self._prefix(service, topic)}: " + self.rng.choice(TEST_TITLES).format(topic=topic.phrase)
        _, test = source_files(service, topic)
        return title, "", [(test, self._lines(35), self._lines(6))], {"topic": topic.phrase}, None

    def _docs(self, service: ServiceSpec) -> tuple[str, str, list, dict, None]:
        topic = self.rng.choice(service.topics)
        title = f"{self._prefix(service, topic)}: " + self.rng.choice(DOCS_TITLES).format(topic=topic.phrase)
        directory = f"libs/{topic.area}" if service.name == "shared-libs" else service.directory
        path = f"{directory}/docs/{topic.stem}.md" if self.rng.random() < 0.6 else f"{directory}/README.md"
        return title, "", [(path, self._lines(20), self._lines(5))], {"topic": topic.phrase}, None

    def _config(self, service: ServiceSpec) -> tuple[str, str, list, dict, None]:
        rng = self.rng
        param = rng.choice(service.config_params + GENERIC_CONFIG)
        low, high = sorted(rng.sample(param.values, 2))
        raise_it = rng.random() < 0.5
        a, b = (low, high) if raise_it else (high, low)
        verb = "raise" if raise_it else "lower"
        title = f"{service.name}: {verb} {param.name} from {a}{param.unit} to {b}{param.unit}"
        body = rng.choice((
            f"We saw pressure on {param.name} during the last peak; {verb} it and watch the dashboards.",
            f"Aligns {param.name} with the other services after the capacity review.",
            "",
        ))
        files = [(config_file(service, "production"), 1, 1)]
        if rng.random() < 0.5:
            files.append((config_file(service, "staging"), 1, 1))
        return title, body, files, {"param": param.name, "symptom": param.symptom}, None

    def _flag(self, service: ServiceSpec) -> tuple[str, str, list, dict, None]:
        rng = self.rng
        flag = rng.choice(service.flags)
        title = f"{service.name}: " + rng.choice((
            f"enable {flag} for {rng.choice((1, 5, 10, 25, 50, 100))}% of traffic",
            f"roll out {flag} to {rng.choice(REGIONS)}",
            f"turn off {flag} while we investigate",
            f"ramp {flag} to {rng.choice((25, 50, 75))}%",
        ))
        files = [(f"config/flags/{service.name}.yaml", rng.randint(1, 3), rng.randint(1, 3))]
        return title, "", files, {"flag": flag}, None

    def _migration(self, service: ServiceSpec) -> tuple[str, str, list, dict, None]:
        rng = self.rng
        table, columns = rng.choice(service.tables)
        column = rng.choice(columns)
        action, slug = rng.choice((
            (f"add index on {table}({column})", f"add_{table}_{column}_index"),
            (f"add column {column} to {table}", f"add_{column}_to_{table}"),
            (f"backfill {table}.{column}", f"backfill_{table}_{column}"),
            (f"make {table}.{column} NOT NULL", f"{table}_{column}_not_null"),
            (f"drop unused default on {table}.{column}", f"drop_{table}_{column}_default"),
        ))
        self.migration_numbers[service.name] += 1
        number = self.migration_numbers[service.name]
        if service.name == "billing-db":
            path = f"db/billing/migrations/V{number}__{slug}.sql"
        else:
            path = f"{service.directory}/migrations/{number:04d}_{slug}.sql"
        files = [(path, self._lines(18), 0)]
        if service.language == "python":
            files.append((f"{service.directory}/src/{_slug(service.name)}/models.py", self._lines(4), self._lines(2)))
        body = rng.choice(("Runs online; the table is small enough.", "Needed for the upcoming report query.", ""))
        return f"{service.name}: {action}", body, files, {"table": table, "column": column}, None

    def _dependency(self, service: ServiceSpec) -> tuple[str, str, list, dict, DemoPerson | None]:
        rng = self.rng
        if service.name == "shared-libs":
            topic = rng.choice(service.topics)
            library = rng.choice(("urllib3", "httpx", "opentelemetry-sdk", "redis", "sqlalchemy"))
            directory = f"libs/{topic.area}"
            manifest, lock = f"{directory}/pyproject.toml", f"{directory}/requirements.lock"
        else:
            library = rng.choice(service.libraries)
            manifest, lock = manifest_files(service)
            directory = service.directory
        major, minor, patch = self.library_versions.get(
            (service.name, library), (rng.randint(1, 6), rng.randint(0, 20), rng.randint(0, 9))
        )
        bump = rng.random()
        new = (major + 1, 0, 0) if bump < 0.1 else (major, minor + 1, 0) if bump < 0.5 else (major, minor, patch + 1)
        self.library_versions[(service.name, library)] = new
        old_text, new_text = f"{major}.{minor}.{patch}", ".".join(map(str, new))
        files = [(manifest, 1, 1), (lock, self._lines(30), self._lines(25))]
        signals = {"library": library}
        if rng.random() < 0.45:
            title = f"build(deps): bump {library} from {old_text} to {new_text} in /{directory}"
            body = (
                f"Bumps {library} from {old_text} to {new_text}.\n\n"
                "Dependabot will resolve any conflicts with this PR as long as you don't alter it yourself."
            )
            return title, body, files, signals, self.bot
        title = f"{self._prefix(service)}: bump {library} to {new_text}"
        body = rng.choice((f"Picks up the upstream fix for a memory leak in {library}.", "Routine upgrade.", ""))
        return title, body, files, signals, None

    def _build(self, service: ServiceSpec) -> tuple[str, str, list, dict, None]:
        title, path = self.rng.choice(BUILD_CHANGES)
        return title, "", [(path, self._lines(6), self._lines(4))], {}, None


def source_files(service: ServiceSpec, topic: Topic) -> tuple[str, str]:
    """The module behind a topic and its test, laid out as the service's language does."""
    directory, stem = service.directory, topic.stem
    if service.language == "ts":
        return f"{directory}/src/{topic.area}/{stem}.tsx", f"{directory}/src/{topic.area}/{stem}.test.tsx"
    if service.language == "go":
        return f"{directory}/internal/{stem}/{stem}.go", f"{directory}/internal/{stem}/{stem}_test.go"
    if service.language == "sql":
        return f"{directory}/queries/{stem}.sql", f"{directory}/tests/{stem}_test.sql"
    if service.language == "lib":
        package = _slug(topic.area)
        return f"libs/{topic.area}/src/{package}/{stem}.py", f"libs/{topic.area}/tests/test_{stem}.py"
    if service.language == "config":
        return "config/global.yaml", ".github/workflows/ci.yml"
    package = _slug(service.name)
    return f"{directory}/src/{package}/{stem}.py", f"{directory}/tests/test_{stem}.py"


def support_files(service: ServiceSpec, topic: Topic) -> list[str]:
    """Modules every service has besides its topics; refactors sweep through them."""
    directory = service.directory
    if service.language == "ts":
        return [f"{directory}/src/{name}" for name in ("api/client.ts", "hooks/useApi.ts", "App.tsx", "routes.tsx")]
    if service.language == "go":
        return [f"{directory}/{name}" for name in (
            "cmd/server/main.go", "internal/server/server.go", "internal/config/config.go", "internal/server/middleware.go"
        )]
    if service.language == "sql":
        return [f"{directory}/{name}" for name in ("schema.sql", "views/reporting.sql", "grants.sql")]
    if service.language == "lib":
        package = f"libs/{topic.area}/src/{_slug(topic.area)}"
        return [f"{package}/{name}" for name in ("__init__.py", "errors.py", "settings.py")]
    package = f"{directory}/src/{_slug(service.name)}"
    return [f"{package}/{name}" for name in ("__init__.py", "errors.py", "settings.py", "clients.py", "api.py")]


def config_file(service: ServiceSpec, environment: str) -> str:
    extension = "json" if service.language == "ts" else "yaml"
    return f"{service.directory}/config/{environment}.{extension}"


def manifest_files(service: ServiceSpec) -> tuple[str, str]:
    if service.language == "ts":
        return f"{service.directory}/package.json", f"{service.directory}/package-lock.json"
    if service.language == "go":
        return f"{service.directory}/go.mod", f"{service.directory}/go.sum"
    return f"{service.directory}/pyproject.toml", f"{service.directory}/requirements.lock"
