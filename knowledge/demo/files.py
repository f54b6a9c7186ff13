"""The demo organisation written in the formats culprit ingests from real teams.

Files are byte-identical for a seed (gzip without timestamps, stable key
order) and are only rewritten when their content changes, so running the demo
twice leaves the directory untouched.
"""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from knowledge.demo.catalog import REPO
from knowledge.demo.organisation import DemoOrganisation
from knowledge.demo.reports import DEMO_CATEGORIES
from knowledge.demo.wiki import write_demo_wiki

HISTORY_NAME = REPO.replace("/", "__")


@dataclass(frozen=True)
class DemoFiles:
    """Where each part of the demo organisation was written."""

    directory: Path
    catalog: Path
    codeowners: Path
    commits: Path
    cases: Path
    example_incident: Path
    wiki: Path
    wiki_queries: Path
    reports: Path
    categories: Path


def write_demo_files(org: DemoOrganisation, directory: Path) -> DemoFiles:
    """Write catalog, CODEOWNERS, history, the example incident and the wiki under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = DemoFiles(
        directory=directory,
        catalog=directory / "catalog-info.yaml",
        codeowners=directory / "CODEOWNERS",
        commits=directory / "history" / f"commits-{HISTORY_NAME}.jsonl.gz",
        cases=directory / "history" / f"cases-{HISTORY_NAME}.jsonl.gz",
        example_incident=directory / "example-incident.json",
        wiki=directory / "wiki",
        wiki_queries=directory / "wiki" / "queries.jsonl",
        reports=directory / "reports" / "reports.jsonl",
        categories=directory / "reports" / "categories.json",
    )
    write_if_changed(files.catalog, catalog_yaml(org).encode())
    write_if_changed(files.codeowners, codeowners_text(org).encode())
    commits = [change.history_record(seq) for seq, change in enumerate(org.changes, start=1)]
    write_if_changed(files.commits, gzip_json_lines(commits))
    write_if_changed(files.cases, gzip_json_lines([incident.case_record() for incident in org.incidents]))
    write_if_changed(files.example_incident, (json.dumps(org.example.case_record(), indent=2) + "\n").encode())
    write_if_changed(files.reports, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in org.reports.reports).encode())
    write_if_changed(files.categories, (json.dumps(report_categories(org), indent=2) + "\n").encode())
    return replace(files, wiki_queries=write_wiki(org, files.wiki))


def report_categories(org: DemoOrganisation) -> list[dict[str, object]]:
    """The categories an expert would define, with three real reports of each as examples."""
    return [
        {
            "name": name,
            "description": spec["description"],
            "examples": [r["text"] for r in org.reports.reports if r["category"] == name][:3],
        }
        for name, spec in DEMO_CATEGORIES.items()
    ]


def write_wiki(org: DemoOrganisation, directory: Path) -> Path:
    """The wiki generator writes every page; staging it keeps unchanged pages untouched."""
    with tempfile.TemporaryDirectory() as scratch:
        staged = Path(scratch)
        queries = write_demo_wiki(staged, org.service_records(), org.postmortems(), seed=org.seed)
        for page in sorted(staged.rglob("*")):
            if page.is_file():
                write_if_changed(directory / page.relative_to(staged), page.read_bytes())
        return directory / queries.relative_to(staged)


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write ``content`` unless the file already holds exactly that; True when written."""
    if path.exists() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return True


def gzip_json_lines(records: list[dict[str, object]]) -> bytes:
    """JSON lines, gzipped with no name or timestamp so the bytes depend on the records only."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False).encode())
            handle.write(b"\n")
    return buffer.getvalue()


def catalog_yaml(org: DemoOrganisation) -> str:
    """One Backstage ``kind: Component`` document per service."""
    documents = []
    for service in org.services:
        kind = {"lib": "library", "sql": "database", "config": "configuration"}.get(service.language, "service")
        documents.append({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {
                "name": service.name,
                "description": service.description,
                "annotations": {
                    "culprit.dev/paths": ",".join(service.globs),
                    "github.com/project-slug": org.repo,
                },
                "tags": [service.language],
            },
            "spec": {
                "type": kind,
                "lifecycle": "production",
                "owner": service.owner,
                "dependsOn": [f"component:default/{name}" for name in service.depends_on],
            },
        })
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)


def codeowners_text(org: DemoOrganisation) -> str:
    """GitHub CODEOWNERS with comment headers; the last matching rule wins."""
    lines = ["# Acme platform code owners. Later rules take precedence over earlier ones."]
    section = None
    width = max(len(line.pattern) for line in org.ownership) + 2
    for line in org.ownership:
        if line.section != section:
            section = line.section
            lines += ["", f"# {section}"]
        lines.append(f"{line.pattern.ljust(width)}{' '.join(line.owners)}")
    return "\n".join(lines) + "\n"
