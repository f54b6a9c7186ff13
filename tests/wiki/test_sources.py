"""Wiki sources synced through langchain-community loaders: a Confluence space on a local fake REST API,
a Notion export folder and a Slack export of incident channels. A sync embeds only what changed and
removes only its own pages; its pages are found by search and cited by name."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from chromadb.api.models.Collection import Collection
from structlog.testing import capture_logs

from knowledge.config import WikiSource
from knowledge.errors import InputError
from knowledge.wiki.indexing import index_wiki
from knowledge.wiki.sources import sync_source
from tests.wiki.conftest import write_small_wiki
from tests.wiki.fake_confluence import FakeConfluence
from tools.wiki.search import searcher_for

TOKEN = "confluence-token-6a2c"


def _confluence(url: str) -> WikiSource:
    return WikiSource(kind="confluence", name="ops", url=url, space="OPS", username="bot@acme.com", token_env="CONF_TOKEN")


def test_a_confluence_space_syncs_only_what_changed(wiki_store: Collection, tmp_path: Path) -> None:
    index_wiki(write_small_wiki(tmp_path / "wiki"), wiki_store)  # a folder wiki next to it must survive syncs
    fake = FakeConfluence("bot@acme.com", TOKEN)
    fake.pages = {
        "101": ("Runbook: ledger", "<h1>Runbook: ledger</h1><h2>Symptoms</h2><p>Ledger writes stall on lock waits.</p>"
                "<h2>Mitigation</h2><p>Fail over the ledger primary.</p>", 1),
        "102": ("Postmortem: DNS outage", "<h1>DNS outage</h1><h2>Root cause</h2><p>A resolver config push dropped a zone.</p>", 1),
    }  # fmt: skip
    with fake as url:
        first = sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
        again = sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
        title, html, _version = fake.pages["101"]
        fake.pages["101"] = (title, html.replace("Fail over the ledger primary.", "Restart the ledger lock manager."), 2)
        del fake.pages["102"]
        edited = sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})

    assert (first.added, first.updated, first.removed) == (3, 0, 0)  # one chunk per section
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    assert (edited.updated, edited.unchanged, edited.removed) == (1, 1, 1)
    hits = searcher_for(wiki_store).search("how do I recover the ledger lock manager", k=3)
    assert hits[0].page == "confluence:ops/101" and "lock manager" in hits[0].snippet
    assert any(hit.page == "services/payments/runbook.md" for hit in searcher_for(wiki_store).search("card authorisations fail", k=3))


def test_a_refused_token_is_an_error_that_does_not_show_it(wiki_store: Collection) -> None:
    with FakeConfluence("bot@acme.com", TOKEN) as url, pytest.raises(InputError) as refused:
        sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": "wrong-" + TOKEN})
    assert "ops" in str(refused.value) and TOKEN not in str(refused.value)


def test_a_notion_export_is_searchable_without_notion_ids_in_titles(wiki_store: Collection, tmp_path: Path) -> None:
    export = tmp_path / "notion"
    (export / "Runbooks 0123456789abcdef0123456789abcdef").mkdir(parents=True)
    (export / "Runbooks 0123456789abcdef0123456789abcdef" / "Queue backlog fedcba9876543210fedcba9876543210.md").write_text(
        "# Queue backlog\n\n## Symptoms\nOrders stay pending while the broker queue grows.\n")  # fmt: skip
    source = WikiSource(kind="notion", name="eng", path=export)

    report = sync_source(source, wiki_store, {})

    assert report.added == 1 and report.pages[0].title == "Queue backlog"
    (hit, *_rest) = searcher_for(wiki_store).search("orders pending broker queue", k=1)
    assert hit.page.startswith("notion:eng/Runbooks") and hit.title == "Queue backlog"


def _slack_export(path: Path, channels: dict[str, list[dict[str, str]]]) -> Path:
    with zipfile.ZipFile(path, "w") as export:
        export.writestr("channels.json", json.dumps([{"id": f"C{n}", "name": name} for n, name in enumerate(channels)]))
        for name, messages in channels.items():
            export.writestr(f"{name}/2025-11-02.json", json.dumps(messages))
    return path


def test_a_slack_export_of_incident_channels_becomes_incident_history(wiki_store: Collection, tmp_path: Path) -> None:
    export = _slack_export(tmp_path / "slack.zip", {
        "inc-checkout-500s": [
            {"type": "message", "user": "U1", "ts": "1762077600.000100", "text": "checkout returns 500 since 10:00"},
            {"type": "message", "user": "U2", "ts": "1762078200.000200", "text": "rolled back the tax service deploy, errors gone"},
        ],
        "inc-clock": [
            {"type": "message", "user": "U4", "ts": "1e20", "text": "a time no calendar holds"},  # crashed the export
            {"type": "message", "user": 7, "ts": "1762077600.0", "text": "db failover done"},
            {"type": "message", "user": "U5", "ts": "1762077600.0", "text": "same second, other user"},
        ],
        "random": [{"type": "message", "user": "U3", "ts": "1762077600.000300", "text": "lunch? tax service talk"}],
    })  # fmt: skip
    source = WikiSource(kind="slack", name="incidents", path=export)

    report = sync_source(source, wiki_store, {}, incident_channel_pattern="inc-*")

    assert [page.path for page in report.pages] == ["slack:incidents/inc-checkout-500s", "slack:incidents/inc-clock"]
    assert "no calendar" not in report.pages[1].body and "10:00 7: db failover done" in report.pages[1].body
    (hit, *_rest) = searcher_for(wiki_store).search("checkout 500 tax service rollback", k=1)
    assert hit.page == "slack:incidents/inc-checkout-500s" and hit.heading.endswith("2025-11-02")
    assert "lunch" not in str(wiki_store.get()["documents"])


def test_a_zip_bomb_is_refused_before_it_is_read(wiki_store: Collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import knowledge.wiki.sources as sources

    export = _slack_export(tmp_path / "big.zip", {"inc-a": [{"ts": "1.0", "user": "U", "text": "x" * 5000}]})
    monkeypatch.setattr(sources, "MAX_EXPORT_BYTES", 1000)
    with pytest.raises(InputError, match="unpacks to over 1000 bytes"):
        sync_source(WikiSource(kind="slack", name="incidents", path=export), wiki_store, {})


def _notion_export(path: Path) -> Path:
    """A Notion export folder with one runbook."""
    path.mkdir()
    (path / "Cache warmup.md").write_text("# Cache warmup\n\n## Steps\nWarm the product cache before a launch.\n")
    return path


def test_a_scheduled_sync_runs_once_per_slot_across_replicas(
    wiki_store: Collection, tmp_path: Path, database_url: str
) -> None:
    from knowledge.wiki.sources import sync_wiki_sources

    export = _notion_export(tmp_path / "notion")
    missing = WikiSource(kind="notion", name="gone", path=tmp_path / "nowhere")
    sources = [WikiSource(kind="notion", name="eng", path=export), missing]

    first = sync_wiki_sources(sources, wiki_store, database_url, 15, {})
    second = sync_wiki_sources(sources, wiki_store, database_url, 15, {})  # another replica, same slot

    assert [(result.synced, result.counts.get("added")) for result in first] == [(True, 1), (True, None)]
    assert "does not exist" in first[1].error
    assert [result.synced for result in second] == [False, False]


def test_a_source_failing_in_any_way_is_reported_and_the_others_still_sync(
    wiki_store: Collection, tmp_path: Path, database_url: str
) -> None:
    from knowledge.wiki.sources import sync_wiki_sources

    slack = tmp_path / "slack.zip"
    with zipfile.ZipFile(slack, "w") as export:
        export.writestr("channels.json", "[{not json")  # read by the loader itself, as it opens the export
    sources = [WikiSource(kind="slack", name="incidents", path=slack),
               WikiSource(kind="notion", name="eng", path=_notion_export(tmp_path / "notion"))]  # fmt: skip

    with capture_logs() as logs:
        results = sync_wiki_sources(sources, wiki_store, database_url, 15, {})

    assert [(result.source, result.counts.get("added")) for result in results] == [("incidents", None), ("eng", 1)]
    assert results[0].error.startswith("JSONDecodeError")
    assert [log["source"] for log in logs if log["event"] == "wiki source sync failed"] == ["incidents"]


def test_an_unreadable_page_in_an_export_is_refused_and_the_others_sync(
    wiki_store: Collection, tmp_path: Path, database_url: str
) -> None:
    from knowledge.wiki.sources import sync_wiki_sources

    notion = _notion_export(tmp_path / "notion")
    (notion / "Legacy.md").write_bytes("# Ancien runbook\nCaf\xe9".encode("latin-1"))
    slack = _slack_export(tmp_path / "slack.zip", {
        "inc-db": [{"type": "message", "user": "U1", "ts": "1762077600.0", "text": "primary failed over"}],
        "inc-broken": [],
    })  # fmt: skip
    with zipfile.ZipFile(slack, "a") as export:
        export.writestr("inc-broken/2025-11-03.json", "[{not json")
    sources = [WikiSource(kind="notion", name="eng", path=notion), WikiSource(kind="slack", name="incidents", path=slack)]

    with capture_logs() as logs:
        results = sync_wiki_sources(sources, wiki_store, database_url, 15, {})

    assert [(result.counts.get("pages"), result.error) for result in results] == [(1, ""), (1, "")]
    assert [(log["source"], log["page"]) for log in logs if log["event"] == "wiki page refused, its indexed sections kept"] == [
        ("eng", "notion:eng/Legacy.md"), ("incidents", "slack:incidents/inc-broken"),
    ]  # fmt: skip
    assert [refused.page for result in results for refused in result.refused] == [
        "notion:eng/Legacy.md", "slack:incidents/inc-broken",
    ]  # fmt: skip
    assert "not UTF-8" in results[0].refused[0].reason
    assert "inc-broken/2025-11-03.json is not readable JSON" in results[1].refused[0].reason
    assert {page.split("#")[0] for page in wiki_store.get()["ids"]} == {"notion:eng/Cache warmup.md", "slack:incidents/inc-db"}


def test_source_pages_over_the_size_limit_are_refused_and_keep_their_sections(
    wiki_store: Collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge.wiki import pages

    fake = FakeConfluence("bot@acme.com", TOKEN)
    fake.pages = {
        "101": ("Runbook: ledger", "<h2>Symptoms</h2><p>Ledger writes stall on lock waits.</p>", 1),
        "102": ("Postmortem: DNS outage", "<h2>Root cause</h2><p>A resolver config push dropped a zone.</p>", 1),
    }
    notion = _notion_export(tmp_path / "notion")
    slack = _slack_export(tmp_path / "slack.zip", {
        "inc-db": [{"type": "message", "user": "U1", "ts": "1762077600.0", "text": "primary failed over"}],
        "inc-flood": [{"type": "message", "user": "U2", "ts": "1762077600.0", "text": "retrying"}],
    })  # fmt: skip
    with fake as url:
        sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
        monkeypatch.setattr(pages, "MAX_PAGE_BYTES", 500)
        title, html, _version = fake.pages["102"]
        fake.pages["102"] = (title, html + "<p>" + "resolver log line " * 40 + "</p>", 2)  # grew past the limit
        confluence = sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
    (notion / "Access log.md").write_text("# Access log\n" + "GET /healthz 200\n" * 100)
    notion_report = sync_source(WikiSource(kind="notion", name="eng", path=notion), wiki_store, {})
    with zipfile.ZipFile(slack, "a") as export:
        export.writestr("inc-flood/2025-11-03.json", json.dumps([{"ts": "1762164000.0", "user": "U2", "text": "x" * 600}]))
        for day, ts in (("02", "1762077600.0"), ("03", "1762164000.0")):  # each day fits, the channel does not
            export.writestr(f"inc-long/2025-11-{day}.json", json.dumps([{"ts": ts, "user": "U3", "text": "y" * 300}]))
    slack_report = sync_source(WikiSource(kind="slack", name="incidents", path=slack), wiki_store, {})

    assert [(refused.page, refused.reason) for refused in confluence.refused] == [
        ("confluence:ops/102", ("confluence:ops/102: its body is over the 500 bytes page size limit (MAX_PAGE_BYTES); "
                                "split it into smaller pages")),
    ]  # fmt: skip
    assert (confluence.unchanged, confluence.removed) == (1, 0)
    assert "confluence:ops/102#Postmortem: DNS outage > Root cause#1" in wiki_store.get()["ids"]  # kept
    assert [refused.page for refused in notion_report.refused] == ["notion:eng/Access log.md"]
    assert [page.path for page in notion_report.pages] == ["notion:eng/Cache warmup.md"]
    assert [refused.page for refused in slack_report.refused] == ["slack:incidents/inc-flood", "slack:incidents/inc-long"]
    assert "inc-flood/2025-11-03.json is over the 500 bytes page size limit" in slack_report.refused[0].reason
    assert slack_report.refused[1].reason.startswith("slack:incidents/inc-long is over the 500 bytes page size limit")
    assert [page.path for page in slack_report.pages] == ["slack:incidents/inc-db"]


def _confluence_pages_indexed(wiki_store: Collection) -> set[str]:
    return {chunk.split("/")[1].split("#")[0] for chunk in wiki_store.get()["ids"] if chunk.startswith("confluence:")}


def _three_page_space() -> FakeConfluence:
    fake = FakeConfluence("bot@acme.com", TOKEN)
    fake.pages = {
        "101": ("Runbook: ledger", "<h2>Symptoms</h2><p>Ledger writes stall on lock waits.</p>", 1),
        "102": ("Postmortem: DNS outage", "<h2>Root cause</h2><p>A resolver config push dropped a zone.</p>", 1),
        "103": ("Runbook: queue", "<h2>Mitigation</h2><p>Drain the broker queue.</p>", 1),
    }
    return fake


def test_a_confluence_answer_too_large_to_read_refuses_only_the_page_that_makes_it_so(
    wiki_store: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge.wiki import source_loaders

    fake = _three_page_space()
    with fake as url:
        sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
        monkeypatch.setattr(source_loaders, "MAX_RESPONSE_BYTES", 3000)  # each page fits, the listing of all does not
        title, html, _version = fake.pages["102"]
        fake.pages["102"] = (title, html + "<p>" + "resolver log line " * 200 + "</p>", 2)  # one page no longer fits
        capped = sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
        monkeypatch.setattr(source_loaders, "MAX_RESPONSE_BYTES", 100)  # not even the listing without bodies fits
        with pytest.raises(InputError) as failed:
            sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})

    assert [(refused.page, refused.reason) for refused in capped.refused] == [
        ("confluence:ops/102", "confluence:ops/102: Confluence answered /rest/api/content/102 with over 3,000 bytes "
                               "(MAX_RESPONSE_BYTES)"),
    ]  # fmt: skip
    assert (capped.unchanged, capped.removed) == (2, 0)
    assert "confluence:ops/102#Postmortem: DNS outage > Root cause#1" in wiki_store.get()["ids"]  # kept
    assert "answered /rest/api/content with over 100 bytes (MAX_RESPONSE_BYTES)" in str(failed.value)
    assert _confluence_pages_indexed(wiki_store) == {"101", "102", "103"}


def test_a_confluence_listing_that_answers_more_than_asked_ends_with_each_page_once(wiki_store: Collection) -> None:
    fake = FakeConfluence("bot@acme.com", TOKEN)
    fake.pages = {
        "101": ("Runbook: ledger", "<h2>Symptoms</h2><p>Ledger writes stall on lock waits.</p>", 1),
        "102": ("Runbook: queue", "<h2>Mitigation</h2><p>Drain the broker queue.</p>", 1),
    }
    fake.answers_more_than_asked = True  # atlassian's own loop asks again while an answer is longer than its limit
    with fake as url:
        report = sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})

    assert sorted(page.path for page in report.pages) == ["confluence:ops/101", "confluence:ops/102"]
    assert report.added == 2 and len(fake.requests) == 2  # the second answer brought nothing new


def test_a_confluence_page_missing_a_field_is_refused_and_the_others_sync(wiki_store: Collection) -> None:
    fake = FakeConfluence("bot@acme.com", TOKEN)
    fake.pages = {
        "101": ("Runbook: ledger", "<h2>Symptoms</h2><p>Ledger writes stall on lock waits.</p>", 1),
        "102": ("Runbook: queue", "<h2>Mitigation</h2><p>Drain the broker queue.</p>", 1),
    }
    fake.without_links = {"102"}
    with fake as url:
        report = sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})

    assert [page.path for page in report.pages] == ["confluence:ops/101"]
    assert [(refused.page, refused.reason) for refused in report.refused] == [
        ("confluence:ops/102", "confluence:ops/102: Confluence gave it without a readable '_links' (KeyError); check the page"),
    ]  # fmt: skip


def test_a_confluence_space_over_what_one_sync_may_hold_refuses_the_rest_and_they_keep_their_sections(
    wiki_store: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _three_page_space() as url:
        sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
        monkeypatch.setattr("knowledge.wiki.sources.MAX_SOURCE_BYTES", 120)  # the first two pages fit, the third does not
        capped = sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})

    assert [page.path for page in capped.pages] == ["confluence:ops/101", "confluence:ops/102"]
    assert [refused.page for refused in capped.refused] == ["confluence:ops/103"]
    assert "near the 120 bytes one sync may hold (MAX_SOURCE_BYTES)" in capped.refused[0].reason
    assert (capped.unchanged, capped.removed) == (2, 0)
    assert "confluence:ops/103#Runbook: queue > Mitigation#1" in wiki_store.get()["ids"]  # kept


def test_a_confluence_space_is_converted_one_listing_answer_at_a_time() -> None:
    from knowledge.wiki.source_loaders import CappedConfluenceLoader

    fake = FakeConfluence("bot@acme.com", TOKEN)
    fake.pages = {
        "101": ("Runbook: ledger", "<h2>Symptoms</h2><p>Ledger writes stall on lock waits.</p>", 1),
        "102": ("Runbook: queue", "<h2>Mitigation</h2><p>Drain the broker queue.</p>", 1),
    }
    with fake as url:
        loader = CappedConfluenceLoader(url=url, username="bot@acme.com", api_key=TOKEN, space_key="OPS",
                                        keep_markdown_format=True, include_restricted_content=True, limit=1)  # fmt: skip
        documents = loader.lazy_load()
        first = next(documents)
        asked_before_the_first_page = len(fake.requests)
        rest = list(documents)

    assert first.metadata["id"] == "101" and asked_before_the_first_page == 1  # the second answer not asked yet
    assert [document.metadata["id"] for document in rest] == ["102"]


def test_a_confluence_server_trickling_its_answer_fails_the_sync_at_the_deadline(
    wiki_store: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    trickling = _three_page_space()
    with trickling as url:
        sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})  # indexed while it answered at once
        trickling.trickle_seconds = 0.01  # each byte well within the read timeout, the whole answer never done in time
        monkeypatch.setattr("knowledge.wiki.source_loaders.MAX_ANSWER_SECONDS", 0.2)
        with pytest.raises(InputError) as failed:
            sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
        assert trickling.hung_up.wait(30)  # culprit closed the connection, not read to the end

    assert "took over 0.2 s to answer /rest/api/content (MAX_ANSWER_SECONDS)" in str(failed.value)
    assert _confluence_pages_indexed(wiki_store) == {"101", "102", "103"}


def test_a_confluence_page_that_stalls_its_answer_is_refused_and_the_others_sync(
    wiki_store: Collection, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge.wiki.sources import sync_wiki_sources

    fake = _three_page_space()
    with fake as url:
        sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})  # indexed while every page answered
        fake.slow_pages = {"102"}  # any answer carrying its body sends headers without end, each byte in time
        fake.pages["103"] = ("Runbook: queue", "<h2>Mitigation</h2><p>Drain the broker queue, then replay.</p>", 2)
        monkeypatch.setattr("knowledge.wiki.source_loaders.MAX_ANSWER_SECONDS", 0.3)
        with capture_logs() as logs:
            [result] = sync_wiki_sources([_confluence(url)], wiki_store, database_url, 15, {"CONF_TOKEN": TOKEN})
        assert fake.hung_up.wait(30)  # culprit closed the stalled connections

    assert result.error == "" and (result.counts["updated"], result.counts["unchanged"]) == (1, 1)
    assert [(refused.page, refused.reason) for refused in result.refused] == [
        ("confluence:ops/102", "confluence:ops/102: Confluence took over 0.3 s to answer /rest/api/content/102 "
                               "(MAX_ANSWER_SECONDS); check the server or the network between it and culprit"),
    ]  # fmt: skip
    assert [log["page"] for log in logs if log["event"] == "wiki page refused, its indexed sections kept"] == [
        "confluence:ops/102"
    ]
    assert _confluence_pages_indexed(wiki_store) == {"101", "102", "103"}  # 102 keeps its sections


def test_a_confluence_page_the_server_fails_on_is_refused_and_the_others_sync(wiki_store: Collection) -> None:
    fake = _three_page_space()
    fake.failing_pages = {"103"}  # the listing carrying its body fails with HTTP 500, so does its own answer
    with fake as url:
        report = sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})

    assert [page.path for page in report.pages] == ["confluence:ops/101", "confluence:ops/102"]
    assert [(refused.page, refused.reason) for refused in report.refused] == [
        ("confluence:ops/103", "confluence:ops/103: Confluence failed to give it (HTTPError: internal server error)"),
    ]  # fmt: skip


UPSTREAM = "http://sync:s3cret-pass@confluence-backend:8090"
"""Where a proxy in front of Confluence sends its requests, quoted by its errors with the password."""


def test_a_confluence_page_refused_is_told_without_a_password_the_server_quoted(wiki_store: Collection) -> None:
    """The atlassian library's message is the server's: a proxy's error can quote a URL with its password,
    or the token it was sent; the refused page's reason names the failure without either."""
    fake = _three_page_space()
    fake.failing_pages, fake.failure_message = {"103"}, f"{UPSTREAM} refused the token {TOKEN}"
    with fake as url:
        report = sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})

    assert [(refused.page, refused.reason) for refused in report.refused] == [
        ("confluence:ops/103", "confluence:ops/103: Confluence failed to give it "
                               "(HTTPError: http://***@confluence-backend:8090 refused the token ***)"),
    ]  # fmt: skip


def test_a_confluence_sync_that_fails_is_told_without_a_password_the_server_quoted(wiki_store: Collection) -> None:
    fake = _three_page_space()
    fake.failing, fake.failure_message = True, f"{UPSTREAM} is down"
    with fake as url, pytest.raises(InputError) as failed:
        sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})

    assert str(failed.value) == (
        f"wiki source ops: Confluence at {url} failed: http://***@confluence-backend:8090 is down"
    )


def test_a_confluence_server_sending_its_headers_without_end_fails_the_sync_at_the_deadline(
    wiki_store: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalling = _three_page_space()
    with stalling as url:
        sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
        stalling.slow_headers = True  # each header byte well within the read timeout, the headers never done
        monkeypatch.setattr("knowledge.wiki.source_loaders.MAX_ANSWER_SECONDS", 0.3)
        with pytest.raises(InputError) as failed:
            sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
        assert stalling.hung_up.wait(30)

    assert "took over 0.3 s to answer /rest/api/content (MAX_ANSWER_SECONDS)" in str(failed.value)
    assert _confluence_pages_indexed(wiki_store) == {"101", "102", "103"}


def test_confluence_pages_left_when_a_sync_ran_out_of_time_are_refused_unasked(
    wiki_store: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _three_page_space()
    with fake as url:
        sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
        fake.failing_pages = {"102"}  # the listing fails, so its pages are to be asked one by one
        monkeypatch.setattr("knowledge.wiki.source_loaders.MAX_SYNC_SECONDS", 0.0)  # no time left for that
        asked_before = len(fake.requests)
        report = sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})

    assert {request.split("?")[0] for request in fake.requests[asked_before:]} == {"/rest/api/content"}  # listings only
    assert [refused.page for refused in report.refused] == ["confluence:ops/101", "confluence:ops/102", "confluence:ops/103"]
    assert "not asked: this sync has run for over 0 s (MAX_SYNC_SECONDS)" in report.refused[0].reason
    assert (report.removed, _confluence_pages_indexed(wiki_store)) == (0, {"101", "102", "103"})


def test_a_confluence_server_asking_to_retry_in_an_hour_fails_the_sync_instead_of_holding_it(
    wiki_store: Collection,
) -> None:
    limiting = _three_page_space()
    with limiting as url:
        sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})
        limiting.retry_after = "3600"  # atlassian's client would sleep that long, then ask again without end
        with pytest.raises(InputError) as failed:
            sync_source(_confluence(url), wiki_store, {"CONF_TOKEN": TOKEN})

    assert "429" in str(failed.value) and "Too Many Requests" in str(failed.value)
    assert _confluence_pages_indexed(wiki_store) == {"101", "102", "103"}
