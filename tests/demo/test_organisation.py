"""The demo organisation is a fixture other tests trust: it must be reproducible and internally true."""

from __future__ import annotations

import bisect
import json
from collections import Counter
from pathlib import Path

import pytest

from knowledge.demo import DemoOrganisation, generate_organisation, write_demo_files
from knowledge.demo.incidents import WINDOW_DAYS
from knowledge.ingest.history_files import read_cases, read_commits
from knowledge.ingest.catalog import parse_catalog
from knowledge.ingest.codeowners import parse_codeowners
from knowledge.ownership import compile_pattern
from tools.reports.intake import read_report_file

SMALL = {"n_changes": 700, "n_incidents": 60, "days": 60}


@pytest.fixture(scope="module")
def org() -> DemoOrganisation:
    return generate_organisation(seed=11, **SMALL)


def _all_bytes(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()}


def test_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    first = write_demo_files(generate_organisation(seed=3, **SMALL), tmp_path / "a")
    second = write_demo_files(generate_organisation(seed=3, **SMALL), tmp_path / "b")
    other = write_demo_files(generate_organisation(seed=4, **SMALL), tmp_path / "c")

    assert _all_bytes(first.directory) == _all_bytes(second.directory)
    assert first.commits.read_bytes() != other.commits.read_bytes()
    assert first.cases.read_bytes() != other.cases.read_bytes()


def test_rewriting_the_same_organisation_leaves_files_untouched(tmp_path: Path, org: DemoOrganisation) -> None:
    files = write_demo_files(org, tmp_path)
    stamps = {path: path.stat().st_mtime_ns for path in (files.catalog, files.codeowners, files.commits, files.cases)}
    write_demo_files(org, tmp_path)
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps


def test_sizes_follow_the_arguments(org: DemoOrganisation) -> None:
    fixes = sum(change.kind in ("revert", "fix") for change in org.changes)
    assert len(org.changes) == SMALL["n_changes"] + fixes
    assert fixes == len(org.incidents) == SMALL["n_incidents"]
    assert (org.end - org.start).days == SMALL["days"]
    assert 10 <= len(org.services) <= 15


def test_every_culprit_is_a_candidate_and_candidates_are_exactly_the_window(org: DemoOrganisation) -> None:
    landed = [change.landed_time for change in org.changes]
    assert landed == sorted(landed)
    for incident in [*org.incidents, org.example]:
        low = bisect.bisect_left(landed, incident.started_time - WINDOW_DAYS * 86400)
        high = bisect.bisect_left(landed, incident.started_time)
        expected = [change.id for change in reversed(org.changes[low:high])]
        assert incident.candidates == expected
        assert set(incident.culprits) <= set(incident.candidates)
        assert all(org.changes_by_id[c].landed_time < incident.started_time for c in incident.culprits)


def test_culprits_touch_the_impacted_service_or_one_it_depends_on(org: DemoOrganisation) -> None:
    names = {service.name for service in org.services}
    for incident in org.incidents:
        assert incident.service in names
        if incident.service == incident.culprit_service:
            continue
        assert incident.culprit_service in org.service(incident.service).depends_on
    kinds = Counter(org.changes_by_id[incident.culprits[0]].kind for incident in org.incidents)
    risky = sum(kinds[kind] for kind in ("config", "flag", "migration", "dependency", "refactor"))
    assert risky > len(org.incidents) / 2, kinds
    assert org.example.culprits[0] not in {c for incident in org.incidents for c in incident.culprits}


def test_a_share_of_incidents_is_hard() -> None:
    incidents = generate_organisation(seed=7, n_changes=1500, n_incidents=200, days=120).incidents
    hard = [incident for incident in incidents if incident.difficulty == "hard"]
    assert 0.08 <= len(hard) / len(incidents) <= 0.25
    assert all(incident.service != incident.culprit_service for incident in hard)


def test_service_globs_and_codeowners_cover_every_changed_file(org: DemoOrganisation) -> None:
    globs = [compile_pattern(glob) for service in org.services for glob in service.globs]
    rules = [compile_pattern(line.pattern) for line in org.ownership if line.pattern != "*"]
    for change in org.changes:
        for path in change.paths:
            assert any(glob.matches(path) for glob in globs), path
            assert any(rule.matches(path) for rule in rules), path


def test_dependency_graph_is_acyclic_and_connected(org: DemoOrganisation) -> None:
    graph = {service.name: set(service.depends_on) for service in org.services}
    assert all(dependency in graph for dependencies in graph.values() for dependency in dependencies)

    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, f"cycle through {name}"
        if name in done:
            return
        visiting.add(name)
        for dependency in graph[name]:
            visit(dependency)
        visiting.discard(name)
        done.add(name)

    for name in graph:
        visit(name)

    undirected = {name: set(deps) for name, deps in graph.items()}
    for name, deps in graph.items():
        for dependency in deps:
            undirected[dependency].add(name)
    reached, frontier = {"web-frontend"}, ["web-frontend"]
    while frontier:
        for neighbour in undirected[frontier.pop()] - reached:
            reached.add(neighbour)
            frontier.append(neighbour)
    assert reached == set(graph)


def test_files_parse_with_the_real_readers(tmp_path: Path, org: DemoOrganisation) -> None:
    files = write_demo_files(org, tmp_path)
    commits = read_commits(files.commits).records
    cases = read_cases(files.cases).records
    assert [commit.id for commit in commits] == [change.id for change in org.changes]
    assert all(len(commit.id) == 40 and int(commit.id, 16) >= 0 for commit in commits)
    assert any(commit.landed_via_merge and commit.author_time < commit.landed_time for commit in commits)
    assert [case.case_id for case in cases] == [incident.id for incident in org.incidents]
    assert all(case.truth.culprits[0] in case.candidates for case in cases)

    components = parse_catalog(files.catalog.read_text(), str(files.catalog))
    assert {c.name: c.depends_on for c in components} == {s.name: s.depends_on for s in org.services}
    assert all(c.owner and c.path_globs for c in components)
    rules = parse_codeowners(files.codeowners.read_text(), str(files.codeowners))
    assert [rule.pattern for rule in rules] == [line.pattern for line in org.ownership]
    assert "@acme/payments-team" in {owner for rule in rules for owner in rule.owners}

    reports, problems = read_report_file(files.reports)
    assert not problems and len(reports) == len(org.reports.reports) > 1000
    assert {report.label for report in reports} == {c["name"] for c in json.loads(files.categories.read_text())}
    assert org.reports.spikes

    pages = list(files.wiki.rglob("*.md"))
    assert any("postmortems" in page.parts for page in pages)
    assert files.wiki_queries.exists()


def test_incident_text_reads_like_a_responder_at_the_start(org: DemoOrganisation) -> None:
    for incident in org.incidents:
        culprit = org.changes_by_id[incident.culprits[0]]
        assert incident.title and incident.text
        assert culprit.id[:7] not in incident.text
        assert culprit.title not in incident.text
    lexical = [incident for incident in org.incidents if incident.difficulty == "lexical"]
    assert lexical and len(lexical) < len(org.incidents)
