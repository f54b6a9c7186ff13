"""Who owns a path: CODEOWNERS and MAINTAINERS semantics, and re-ingesting a changed file."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.ingest.codeowners import ingest_codeowners, parse_codeowners
from knowledge.ingest.maintainers import ingest_maintainers, parse_maintainers
from knowledge.ownership import OwnershipIndex, all_rules

CODEOWNERS = r"""
# Everyone's fallback
*                    @acme/platform
*.js                 @acme/frontend   # inline comment
/docs/               @acme/writers
docs/*               @acme/docs-top
apps/                @acme/apps
**/logs              @acme/observability
/build/logs/
/src/payments/       @acme/payments @ana
/src/payments/vendor/**/*.lock @acme/deps
src/*/README.md      @acme/readme

[Security][2] @acme/security
/src/payments/crypto/
/src/auth/           @acme/identity
"""

MAINTAINERS = """List of maintainers

Descriptions of section entries:

\tM: *Mail* patches to: FullName <address@domain>
\tF: *Files* and directories wildcard patterns.

NETWORKING DRIVERS
M:\tJane Net <jane@example.org>
M:\tbob@example.org
L:\tnetdev@vger.kernel.org
S:\tMaintained
F:\tdrivers/net/
F:\tinclude/linux/netdevice.h
X:\tdrivers/net/wireless/

WIRELESS
M:\tWen Wifi <wen@example.org>
F:\tdrivers/net/wireless/
F:\tinclude/net/cfg*.h

THE REST
M:\tLinus <linus@example.org>
F:\t*
F:\t*/
"""


@pytest.fixture
def codeowners() -> OwnershipIndex:
    return OwnershipIndex.from_rules(parse_codeowners(CODEOWNERS, "CODEOWNERS"))


@pytest.mark.parametrize(
    ("path", "owners"),
    [
        ("Makefile", ["@acme/platform"]),
        ("web/static/app.js", ["@acme/frontend"]),
        ("docs/guide.md", ["@acme/docs-top"]),  # docs/* is later than /docs/ and covers direct children
        ("docs/build-app/troubleshooting.md", ["@acme/writers"]),  # ... but not nested ones
        ("services/apps/api.py", ["@acme/apps"]),  # apps/ matches at any depth
        ("deeply/nested/logs/today.txt", ["@acme/observability"]),
        ("build/logs/today.txt", []),  # no owners: unset, although **/logs matched earlier
        ("src/payments/charge.py", ["@acme/payments", "@ana"]),
        ("src/payments/vendor/a/b/yarn.lock", ["@acme/deps"]),
        ("src/payments/README.md", ["@acme/readme"]),
        ("src/payments/crypto/keys.py", ["@acme/payments", "@ana", "@acme/security"]),  # section default
        ("./src/auth/login.py", ["@acme/platform", "@acme/identity"]),  # sections add up
    ],
)
def test_codeowners_last_match_wins_within_a_section(codeowners: OwnershipIndex, path: str, owners: list[str]) -> None:
    assert codeowners.owners(path) == owners


def test_patterns_that_backtrack_without_end_answer_at_once() -> None:
    """Under a backtracking regex engine each of these took seconds to hours on one path of a commit."""
    index = OwnershipIndex.from_rules(parse_codeowners(
        "*a*a*a*a*a*a*a*a*a*a*a*a*b @acme/stars\n" + "x/" + "**/a/" * 12 + "b @acme/deep\n", "CODEOWNERS"))  # fmt: skip

    assert index.owners("a" * 200) == []
    assert index.owners("a" * 30 + "b") == ["@acme/stars"]
    assert index.owners("x/" + "a/" * 200 + "c") == []
    assert index.owners("x/" + "a/" * 200 + "b") == ["@acme/deep"]


def test_negated_codeowners_patterns_are_refused_with_their_line() -> None:
    with pytest.raises(InputError, match=r"CODEOWNERS:3: .*negated"):
        parse_codeowners("* @a\n\n!docs/ @b\n", "CODEOWNERS")


@pytest.fixture
def maintainers() -> OwnershipIndex:
    return OwnershipIndex.from_rules(parse_maintainers(MAINTAINERS, "MAINTAINERS"))


@pytest.mark.parametrize(
    ("path", "owners"),
    [
        ("drivers/net/ethernet/intel/e1000.c", ["NETWORKING DRIVERS", "Jane Net", "bob@example.org", "THE REST", "Linus"]),
        ("drivers/net/wireless/ath/main.c", ["WIRELESS", "Wen Wifi", "THE REST", "Linus"]),  # X: excludes
        ("include/linux/netdevice.h", ["NETWORKING DRIVERS", "Jane Net", "bob@example.org", "THE REST", "Linus"]),
        ("include/net/cfg80211.h", ["WIRELESS", "Wen Wifi", "THE REST", "Linus"]),
        ("include/net/sub/cfg80211.h", ["THE REST", "Linus"]),  # a glob stays in its directory
        ("Makefile", ["THE REST", "Linus"]),
    ],
)
def test_maintainers_every_covering_entry_owns(maintainers: OwnershipIndex, path: str, owners: list[str]) -> None:
    assert maintainers.owners(path) == owners


def test_a_maintainers_entry_without_a_name_is_refused() -> None:
    with pytest.raises(InputError, match="MAINTAINERS:4: .*subsystem name"):
        parse_maintainers("NET\nF:\tnet/\n\nF:\tdrivers/\n", "MAINTAINERS")


def test_a_maintainers_line_with_a_long_run_of_spaces_is_read_at_once() -> None:
    """The tag pattern used to try the line's end at every character: quadratic in its spaces."""
    text = "NET\nM:\tAna <ana@example.org>\nF:\tdrivers/net/   \nF:\tdrivers/a" + " " * 200_000 + "b\n"
    with pytest.raises(InputError, match="MAINTAINERS:4: the path pattern is over 4096 characters"):
        parse_maintainers(text, "MAINTAINERS")
    rules = parse_maintainers(text.rsplit("F:", 1)[0], "MAINTAINERS")
    assert [(rule.pattern, rule.owners) for rule in rules] == [("/drivers/net/", ["NET", "Ana"])]


def test_the_index_checks_only_rules_under_the_path(maintainers: OwnershipIndex) -> None:
    """Thousands of rules: a path in one subsystem must not cost a scan of all of them."""
    rules = parse_maintainers(
        "\n\n".join(f"SUBSYSTEM {n}\nM:\tDev {n} <d{n}@x>\nF:\tdrivers/s{n}/\nF:\tinclude/s{n}.h" for n in range(1000)),
        "MAINTAINERS",
    )
    index = OwnershipIndex.from_rules(rules)
    assert index.owners("drivers/s321/core.c") == ["SUBSYSTEM 321", "Dev 321"]
    assert index.owners("include/s7.h") == ["SUBSYSTEM 7", "Dev 7"]
    assert index.owners("README") == []


def test_reingesting_replaces_the_rules_of_that_file_only(database_url: str, tmp_path: Path) -> None:
    codeowners_file = tmp_path / "CODEOWNERS"
    codeowners_file.write_text("* @acme/platform\n/src/ @acme/core\n")
    maintainers_file = tmp_path / "MAINTAINERS"
    maintainers_file.write_text(MAINTAINERS)

    first = ingest_codeowners(codeowners_file, database_url)
    ingest_maintainers(maintainers_file, database_url)
    again = ingest_codeowners(codeowners_file, database_url)
    assert (first.new, first.already_present, again.new, again.already_present) == (2, 0, 0, 2)

    codeowners_file.write_text("* @acme/platform\n/src/ @acme/runtime\n")
    changed = ingest_codeowners(codeowners_file, database_url)
    assert (changed.new, changed.already_present) == (1, 1)
    with session_scope(database_url) as session:
        rules = all_rules(session)
    assert len(rules) == 2 + 7
    assert OwnershipIndex.from_rules(rules).owners("src/main.c") == ["@acme/runtime", "THE REST", "Linus"]


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_codeowners, "* @a\nsrc/ @b\x00c\n", r"CODEOWNERS:2: the owner name holds a NUL character"),
        (parse_codeowners, "* @a\n[Team]\n\nsrc/\x00/ @b\n", r"CODEOWNERS:4: the path pattern holds a NUL character"),
        (parse_codeowners, f"* @a\n[{'T' * 201}] @b\n", r"CODEOWNERS:2: the section or owner name 'TTTT.*is over 200 characters"),
        (parse_codeowners, f"/{'d/' * 2100} @a\n", r"CODEOWNERS:1: the path pattern is over 4096 characters"),
        (parse_maintainers, "NET\x00\nF:\tnet/\n", r"MAINTAINERS:1: the subsystem name holds a NUL character"),
        (parse_maintainers, f"NET\nM:\t{'J' * 201} <j@x>\nF:\tnet/\n", r"MAINTAINERS:2: the maintainer name .*over 200"),
    ],
)
def test_a_name_or_pattern_no_store_can_hold_is_refused_with_its_line(parse: object, text: str, message: str) -> None:
    source = "CODEOWNERS" if parse is parse_codeowners else "MAINTAINERS"
    with pytest.raises(InputError, match=message):
        parse(text, source)  # type: ignore[operator]


def test_an_ownership_file_over_10_mib_is_refused_before_it_is_read(database_url: str, tmp_path: Path) -> None:
    huge = tmp_path / "CODEOWNERS"
    with huge.open("wb") as handle:
        handle.truncate((10 << 20) + 1)  # sparse: the size without the bytes
    with pytest.raises(InputError, match=r"CODEOWNERS is 10,485,761 bytes, over 10,485,760"):
        ingest_codeowners(huge, database_url)
    with pytest.raises(InputError, match=r"MAINTAINERS is 10,485,761 bytes"):
        ingest_maintainers(huge.rename(tmp_path / "MAINTAINERS"), database_url)
