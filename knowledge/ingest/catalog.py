"""Services from Backstage ``catalog-info.yaml`` files.

Only ``kind: Component`` entities become services. Their code lives where the
``culprit.dev/paths`` annotation (comma-separated) or ``spec.paths`` says, and
``spec.dependsOn`` gives the dependency graph the retriever measures distance on,
``spec.type`` tells shared libraries (``library``) from services. A catalog
that changed re-attributes the stored changes (``knowledge.attribution``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from knowledge.attribution import reattribute
from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.ingest.report import LoadReport
from knowledge.ingest.rules import check_name, check_pattern, read_text
from knowledge.plain_yaml import load_all_plain
from knowledge.services import Service

PATHS_ANNOTATION = "culprit.dev/paths"


@dataclass
class CatalogComponent:
    name: str
    owner: str = ""
    description: str = ""
    path_globs: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    kind: str = ""


def entity_name(reference: str) -> str:
    """``component:default/payments``, ``component:payments`` or ``payments`` -> ``payments``."""
    return reference.split(":", 1)[-1].rsplit("/", 1)[-1].strip()


def _is_component_reference(reference: str) -> bool:
    """Components only: resources (databases, queues) are not services with code to blame."""
    return ":" not in reference or reference.split(":", 1)[0].strip().lower() == "component"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _texts(spec: dict[str, Any], key: str, where: str) -> list[str]:
    """``spec[key]`` as the list of strings it must be: a mapping or number in it (a YAML indentation
    slip) was stored as its Python text, a dependency named ``{'name': 'payments'}``."""
    listed = _as_list(spec.get(key))
    if not all(isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in listed):
        raise InputError(f"{where}: spec.{key} holds something that is not a name or path; list one per line")
    return [str(item) for item in listed]


def _component(document: dict[str, Any], where: str) -> CatalogComponent:
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    spec = document.get("spec") if isinstance(document.get("spec"), dict) else {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}: a Component has no metadata.name; give every component a name")
    check_name(name.strip(), "component name", where)
    annotations = metadata.get("annotations") if isinstance(metadata.get("annotations"), dict) else {}
    globs = [glob.strip() for glob in str(annotations.get(PATHS_ANNOTATION, "")).split(",") if glob.strip()]
    globs += [glob.strip() for glob in _texts(spec, "paths", f"{where} ({name})") if glob.strip()]
    for glob in globs:
        check_pattern(glob, f"{where} ({name})")
    depends_on = [
        entity_name(reference)
        for reference in _texts(spec, "dependsOn", f"{where} ({name})")
        if _is_component_reference(reference)
    ]
    owner = entity_name(str(spec.get("owner") or ""))
    for other in [owner, *depends_on]:
        check_name(other, "owner or dependency name", f"{where} ({name})")
    description = str(metadata.get("description") or "").strip()
    if "\x00" in description:
        raise InputError(f"{where} ({name}): the description holds a NUL character; remove it")
    return CatalogComponent(
        name=name.strip(),
        owner=owner,
        description=description,
        path_globs=list(dict.fromkeys(globs)),
        depends_on=list(dict.fromkeys(depends_on)),
        kind=str(spec.get("type") or "").strip()[:50],
    )


def parse_catalog(text: str, source: str) -> list[CatalogComponent]:
    """Components of a multi-document YAML file; malformed YAML names its line."""
    try:
        documents = load_all_plain(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(f"{where}: malformed YAML ({problem}); fix the file and ingest again") from None
    return [
        _component(document, f"{source} (document {number})")
        for number, document in enumerate(documents, start=1)
        if isinstance(document, dict) and str(document.get("kind", "")).lower() == "component"
    ]


def _fields(component: CatalogComponent | Service) -> tuple[str, str, list[str], list[str], str]:
    return (
        component.owner, component.description, list(component.path_globs), list(component.depends_on),
        component.kind or "",
    )  # fmt: skip


def ingest_catalog(paths: list[Path], url: str) -> LoadReport:
    """Upsert every component of every file; all files are parsed before anything is written."""
    components: dict[str, tuple[CatalogComponent, str]] = {}
    for path in paths:
        source = str(path.resolve())
        for component in parse_catalog(read_text(path), source):
            components[component.name] = (component, source)
    report = LoadReport(kind="services", source=", ".join(str(path) for path in paths))
    with session_scope(url) as session:
        stored = {
            service.name: service
            for service in session.scalars(select(Service).where(Service.name.in_(list(components))))
        }
        for name, (component, source) in components.items():
            service = stored.get(name)
            if service is None:
                session.add(Service(name=name, source=source, owner=component.owner,
                                    description=component.description, path_globs=component.path_globs,
                                    depends_on=component.depends_on, kind=component.kind))  # fmt: skip
                report.new += 1
            elif _fields(service) == _fields(component) and service.source == source:
                report.already_present += 1
            else:
                service.owner, service.description = component.owner, component.description
                service.path_globs, service.depends_on = component.path_globs, component.depends_on
                service.source, service.kind = source, component.kind
                report.updated += 1
    if report.new or report.updated:
        reattribute(url)  # stored changes follow the catalog they are attributed by
    return report
