"""Services from a Backstage catalog and how far apart they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.ingest.catalog import ingest_catalog, parse_catalog
from knowledge.services import (
    Service,
    all_services,
    dependency_path,
    services_for_path,
)

CATALOG = """
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: shop
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  description: Takes the customer's money.
  annotations:
    culprit.dev/paths: "services/checkout/, libs/cart/**"
spec:
  type: service
  owner: group:default/team-checkout
  dependsOn:
    - component:default/payments
    - resource:default/orders-db
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments
spec:
  owner: team-payments
  paths: [services/payments/]
  dependsOn: [component:ledger]
---
kind: Component
metadata:
  name: ledger
spec:
  owner: team-finance
  paths: ["/ledger/"]
---
kind: Component
metadata:
  name: search
spec:
  owner: team-search
  paths: ["*.search.yaml"]
"""


def test_components_become_services(tmp_path: Path) -> None:
    components = {component.name: component for component in parse_catalog(CATALOG, "catalog-info.yaml")}

    assert set(components) == {"checkout", "payments", "ledger", "search"}
    checkout = components["checkout"]
    assert checkout.owner == "team-checkout"
    assert checkout.description == "Takes the customer's money."
    assert checkout.path_globs == ["services/checkout/", "libs/cart/**"]
    assert checkout.depends_on == ["payments"]  # the database is a resource, not a service
    assert components["payments"].depends_on == ["ledger"]


def _services() -> list[Service]:
    return [
        Service(name=c.name, owner=c.owner, path_globs=c.path_globs, depends_on=c.depends_on)
        for c in parse_catalog(CATALOG, "catalog-info.yaml")
    ]


def test_dependency_paths_run_both_ways_along_calls() -> None:
    services = _services()

    assert dependency_path(services, "checkout", "ledger") == ["checkout", "payments", "ledger"]
    assert dependency_path(services, "ledger", "checkout") == ["ledger", "payments", "checkout"]
    assert dependency_path(services, "checkout", "checkout") == ["checkout"]
    assert dependency_path(services, "checkout", "search") is None


def test_paths_map_to_services() -> None:
    services = _services()

    assert services_for_path("services/checkout/api/handler.py", services) == ["checkout"]
    assert services_for_path("libs/cart/deep/total.py", services) == ["checkout"]
    assert services_for_path("/ledger/book.py", services) == ["ledger"]
    assert services_for_path("config/prod.search.yaml", services) == ["search"]
    assert services_for_path("services/ledger/book.py", services) == []


def test_catalog_upserts_and_reingesting_changes_nothing(database_url: str, tmp_path: Path) -> None:
    first_file = tmp_path / "catalog-info.yaml"
    first_file.write_text(CATALOG)

    first = ingest_catalog([first_file], database_url)
    again = ingest_catalog([first_file], database_url)
    assert (first.new, again.new, again.already_present, again.updated) == (4, 0, 4, 0)

    moved = tmp_path / "ledger.yaml"
    moved.write_text("kind: Component\nmetadata: {name: ledger}\nspec: {owner: team-ledger, paths: [ledger/]}\n")
    update = ingest_catalog([moved], database_url)
    assert (update.new, update.updated) == (0, 1)
    with session_scope(database_url) as session:
        services = {service.name: service for service in all_services(session)}
    assert services["ledger"].owner == "team-ledger"
    assert services["checkout"].depends_on == ["payments"]


# A "billion laughs" block: each alias repeats the anchored list before it nine times.
LAUGHS = "x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\nx-b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Component\nmetadata: {name: [oops\n", r"catalog-info.yaml:\d+: malformed YAML"),
        ("kind: Component\nmetadata: {description: nameless}\n", "has no metadata.name"),
        (LAUGHS + "kind: Component\nmetadata: {name: checkout}\nspec: {owner: *b}\n",
         r"catalog-info.yaml:\d+: malformed YAML \(aliases \(\*a\) are not allowed"),
        ("kind: Component\nmetadata: {name: checkout}\nspec: {dependsOn: [{name: payments}]}\n",
         r"\(checkout\): spec.dependsOn holds something that is not a name or path"),
        ("kind: Component\nmetadata: {name: checkout}\nspec: {paths: [[checkout/]]}\n",
         r"\(checkout\): spec.paths holds something that is not a name or path"),
        ("kind: Component\nmetadata: {name: deep}\nspec: {dependsOn: " + "[" * 5000 + "]" * 5000 + "}\n",
         r"catalog-info.yaml:3: malformed YAML \(nested over 100 levels deep; flatten it\)"),
    ],
)
def test_a_broken_catalog_is_refused_before_anything_is_written(
    database_url: str, tmp_path: Path, text: str, message: str
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(CATALOG)
    broken = tmp_path / "catalog-info.yaml"
    broken.write_text(text)

    with pytest.raises(InputError, match=message):
        ingest_catalog([good, broken], database_url)
    with session_scope(database_url) as session:
        assert all_services(session) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Component\nmetadata: {name: \"pay\\0ments\"}\n", "the component name holds a NUL character"),
        ("kind: Component\nmetadata: {name: payments}\nspec: {owner: \"" + "t" * 201 + "\"}\n",
         r"the owner or dependency name 'tttt.*over 200 characters"),
        ("kind: Component\nmetadata: {name: payments, description: \"a\\0b\"}\n", "the description holds a NUL"),
    ],
)
def test_a_name_no_store_can_hold_is_refused(database_url: str, tmp_path: Path, text: str, message: str) -> None:
    catalog = tmp_path / "catalog-info.yaml"
    catalog.write_text(text)
    with pytest.raises(InputError, match=message):
        ingest_catalog([catalog], database_url)


def test_a_catalog_over_10_mib_is_refused_before_it_is_read(database_url: str, tmp_path: Path) -> None:
    huge = tmp_path / "catalog-info.yaml"
    with huge.open("wb") as handle:
        handle.truncate((10 << 20) + 1)
    with pytest.raises(InputError, match=r"catalog-info.yaml is 10,485,761 bytes, over 10,485,760"):
        ingest_catalog([huge], database_url)
