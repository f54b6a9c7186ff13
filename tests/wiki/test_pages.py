"""Reading pages: front matter, heading paths, service tags and the author's mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.errors import InputError
from knowledge.wiki import pages
from knowledge.wiki.indexing import read_wiki
from knowledge.wiki.pages import MAX_CHUNK_CHARS, find_pages, read_page, split_into_chunks
from tests.wiki.conftest import write_small_wiki


def _page(root: Path, relative: str, text: str):  # type: ignore[no-untyped-def]
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return read_page(root, path)


def test_runbook_is_cut_at_headings_with_its_title_path(tmp_path: Path) -> None:
    root = write_small_wiki(tmp_path)
    page = read_page(root, root / "services/payments/runbook.md")
    chunks = split_into_chunks(page)

    assert page.title == "Runbook: payments" and page.kind == "runbook"
    assert [chunk.heading for chunk in chunks] == [
        "Runbook: payments",
        "Runbook: payments > Symptoms",
        "Runbook: payments > Mitigation",
        "Runbook: payments > Mitigation > Refund backlog",
    ]
    assert chunks[1].text == "Card authorisations fail with ERR_GATEWAY_TIMEOUT and checkout hangs."
    assert chunks[1].document.startswith("Runbook: payments > Symptoms\n")
    assert len({chunk.chunk_id for chunk in chunks}) == 4


def test_service_tags_come_from_the_path_when_front_matter_has_none(tmp_path: Path) -> None:
    root = write_small_wiki(tmp_path)
    overview = read_page(root, root / "services/search/overview.md")
    guide = read_page(root, root / "guides/rollback.txt")

    assert overview.services == ("search",) and overview.kind == "service"
    assert overview.title == "Search service"
    assert guide.services == () and guide.kind == "page" and guide.title == "Rollback"
    assert split_into_chunks(guide)[0].metadata().get("services") is None


def test_front_matter_declares_title_type_and_services(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "notes/outage.md",
        "---\ntitle: Checkout outage\ntype: postmortem\nservices: [payments, checkout]\nincident: INC-9\n---\n"
        "## Summary\nPool exhausted.\n",
    )
    assert (page.title, page.kind, page.services) == ("Checkout outage", "postmortem", ("checkout", "payments"))
    assert page.front_matter["incident"] == "INC-9"
    assert split_into_chunks(page)[0].metadata()["services"] == ["checkout", "payments"]


def test_a_heading_with_a_long_run_of_spaces_is_read_at_once(tmp_path: Path) -> None:
    """The heading pattern was cubic in a heading's inner spaces: this page took hours to read."""
    spaced = "Step" + " " * 20_000 + "one"
    page = _page(tmp_path, "broker.md", f"# Broker\n## {spaced} ##  \nRestart the broker.\n")
    chunks = split_into_chunks(page)
    assert page.title == "Broker" and [chunk.heading for chunk in chunks] == [f"Broker > {spaced}"]


def test_headings_inside_code_blocks_are_not_sections(tmp_path: Path) -> None:
    page = _page(tmp_path, "shell.md", "# Shell\n## Steps\n```\n# not a heading\nrun it\n```\n")
    chunks = split_into_chunks(page)
    assert [chunk.heading for chunk in chunks] == ["Shell > Steps"]
    assert "# not a heading" in chunks[0].text


def test_long_sections_are_cut_at_paragraphs(tmp_path: Path) -> None:
    paragraphs = "\n\n".join(f"Paragraph {n}: " + "word " * 60 for n in range(12))
    chunks = split_into_chunks(_page(tmp_path, "long.md", f"# Long\n## Notes\n{paragraphs}\n"))
    assert len(chunks) > 1
    assert all(len(chunk.text) <= MAX_CHUNK_CHARS for chunk in chunks)
    assert {chunk.heading for chunk in chunks} == {"Long > Notes"}
    assert len({chunk.chunk_id for chunk in chunks}) == len(chunks)


def test_a_content_change_changes_only_that_sections_hash(tmp_path: Path) -> None:
    root = write_small_wiki(tmp_path)
    path = root / "services/payments/runbook.md"
    before = {c.chunk_id: c.content_hash for c in split_into_chunks(read_page(root, path))}
    path.write_text(path.read_text().replace("secondary processor", "backup processor"))
    after = {c.chunk_id: c.content_hash for c in split_into_chunks(read_page(root, path))}
    assert before.keys() == after.keys()
    assert [chunk_id for chunk_id in before if before[chunk_id] != after[chunk_id]] == [
        "services/payments/runbook.md#Runbook: payments > Mitigation#1"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\ntitle: [unclosed\n---\nbody", "not valid YAML"),
        ("---\ntitle: x\nbody without end", "never closed"),
        ("---\n- a\n- b\n---\nbody", "must be a mapping"),
        ("---\ntype: howto\n---\nbody", "not one of runbook, postmortem, service, page"),
        ("---\nservices: 5\n---\nbody", "services must be a name or a list of names"),  # was a TypeError
        ("---\nx: &lol [lol, lol, lol]\ntitle: [*lol, *lol, *lol]\n---\nbody", r"aliases \(\*lol\) are not allowed"),
        ("---\ntitle: " + "[" * 5000 + "]" * 5000 + "\n---\nbody", "nested over 100 levels deep"),  # was a RecursionError
    ],
)
def test_bad_front_matter_names_the_file_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as error:
        _page(tmp_path, "bad/page.md", text)
    assert "bad/page.md" in str(error.value)


def test_find_pages_skips_hidden_folders_and_other_files(tmp_path: Path) -> None:
    root = write_small_wiki(tmp_path)
    (root / ".git").mkdir()
    (root / ".git" / "notes.md").write_text("# hidden")
    (root / "queries.jsonl").write_text("{}")
    assert [path.relative_to(root).as_posix() for path in find_pages(root)] == [
        "guides/rollback.txt",
        "services/payments/runbook.md",
        "services/search/overview.md",
    ]
    with pytest.raises(InputError, match="does not exist"):
        find_pages(root / "missing")


def test_a_page_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_small_wiki(tmp_path / "wiki")
    (root / "dumps").mkdir()
    (root / "dumps/heap.txt").write_text("x" * 5000)
    (root / "dumps/cpuinfo.md").symlink_to("/proc/cpuinfo")  # stat says 0 bytes: only a bounded read tells
    assert (root / "dumps/cpuinfo.md").stat().st_size == 0 and len(Path("/proc/cpuinfo").read_bytes()) > 1000
    monkeypatch.setattr(pages, "MAX_PAGE_BYTES", 1000)

    read = read_wiki(root)

    assert [page.path for page in read.pages] == [
        "guides/rollback.txt", "services/payments/runbook.md", "services/search/overview.md",
    ]  # fmt: skip
    assert [(refused.page, refused.reason) for refused in read.refused] == [
        (page, f"{page} is over the 1,000 bytes page size limit (MAX_PAGE_BYTES); split it into smaller pages")
        for page in ("dumps/cpuinfo.md", "dumps/heap.txt")
    ]


def test_the_page_size_limit_is_two_mib() -> None:
    assert pages.oversized_page("big.md", 2 * 1024 * 1024) is None
    assert "over the 2 MiB page size limit" in str(pages.oversized_page("big.md", 2 * 1024 * 1024 + 1))
