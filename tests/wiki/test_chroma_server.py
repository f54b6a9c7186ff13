"""The same ingest and search against a real ``chroma run`` server on loopback (CULPRIT_CHROMA_URL)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from chromadb.api import ClientAPI

from knowledge.config import Settings
from knowledge.errors import CulpritError
from knowledge.wiki.indexing import index_wiki
from knowledge.wiki.store import configured_wiki, open_wiki, wiki_client
from tests.bot.silent_database import SilentDatabase
from tests.loopback import JsonHandler, LoopbackServer
from tests.wiki.stalling_chroma import StallingChroma
from tests.wiki.conftest import write_small_wiki
from tools.wiki.search import search_wiki


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """A Chroma server process of its own, stopped after the test."""
    port = _free_port()
    chroma = Path(sys.executable).parent / "chroma"
    log = (tmp_path / "chroma.log").open("w")
    server = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chroma run did not start: {(tmp_path / 'chroma.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
def server_client(chroma_server: str, data_dir: Path, minilm: object) -> ClientAPI:
    return wiki_client(Settings(data_dir=data_dir, chroma_url=chroma_server))


def test_ingest_and_search_through_a_chroma_server(tmp_path: Path, data_dir: Path, server_client: ClientAPI) -> None:
    assert type(server_client).__name__ != "PersistentClient"
    root = write_small_wiki(tmp_path / "wiki")

    report = index_wiki(root, open_wiki(server_client))
    again = index_wiki(root, open_wiki(server_client))

    assert (report.added, again.unchanged) == (7, 7)
    assert not Settings(data_dir=data_dir).chroma_dir.exists()  # nothing went to the embedded store
    collection = open_wiki(server_client)
    hits = search_wiki("card payments time out at the gateway", collection, service="payments")
    assert hits[0].page == "services/payments/runbook.md"
    assert hits[0].heading == "Runbook: payments > Symptoms"
    assert search_wiki("who owns product search?", collection)[0].page == "services/search/overview.md"


def test_an_unreachable_server_says_how_to_fix_it(data_dir: Path) -> None:
    with pytest.raises(CulpritError, match="chroma run"):
        wiki_client(Settings(data_dir=data_dir, chroma_url=f"http://127.0.0.1:{_free_port()}"))


def test_a_server_that_accepts_and_never_answers_fails_instead_of_hanging_wiki_search(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge.wiki import store

    monkeypatch.setattr(store, "CHROMA_HEARTBEAT_S", 0.5)  # the bound under test, cut short
    with SilentDatabase() as silent:  # a Chroma behind a dead path: accepts, never answers
        url = f"http://127.0.0.1:{urlsplit(silent.url).port}"
        with pytest.raises(CulpritError) as raised:
            configured_wiki(Settings(data_dir=data_dir, chroma_url=url))
        assert silent.connections >= 1

    assert str(raised.value).startswith(f"Chroma at {url} did not answer its heartbeat within 0.5 s; ")
    assert "chroma run" in str(raised.value)


def _stalling_chroma_settings(data_dir: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    from knowledge.wiki import store

    monkeypatch.setattr(store, "CHROMA_REQUEST_S", 0.5)  # the bound under test, cut short
    return Settings(data_dir=data_dir, chroma_url=url)


def test_a_server_that_answers_its_heartbeat_then_stalls_a_query_fails_wiki_search_instead_of_hanging(
    data_dir: Path, minilm: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    chroma = StallingChroma(stalls=lambda method, path: path.endswith(("/get", "/query")))
    with chroma as url:
        settings = _stalling_chroma_settings(data_dir, url, monkeypatch)
        collection = configured_wiki(settings)  # connecting and opening the collection are answered
        with pytest.raises(CulpritError) as raised:
            search_wiki("card payments time out at the gateway", collection)

    assert chroma.stalled_paths == [f"POST /api/v2/tenants/default_tenant/databases/default_database/collections/{collection.id}/get"]

    assert str(raised.value).startswith(f"Chroma at {url} did not answer POST /api/v2/tenants/default_tenant/")
    assert "within 0.5 s (CHROMA_REQUEST_S)" in str(raised.value)
    assert "chroma run" in str(raised.value)


def test_a_server_that_answers_only_its_heartbeat_fails_the_connection_instead_of_hanging(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chroma = StallingChroma(stalls=lambda method, path: path != "/api/v2/heartbeat")
    with chroma as url:
        settings = _stalling_chroma_settings(data_dir, url, monkeypatch)
        with pytest.raises(CulpritError) as raised:
            configured_wiki(settings)

    assert chroma.stalled_paths == ["GET /api/v2/auth/identity"]

    assert str(raised.value).startswith(f"Chroma at {url} did not answer GET /api/v2/auth/identity within 0.5 s")


def test_a_server_trickling_its_answer_to_a_query_fails_wiki_search_though_each_byte_came_in_time(
    data_dir: Path, minilm: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    chroma = StallingChroma(trickles=lambda method, path: path.endswith("/get"), interval=0.02)  # reads: 0.5 s
    with chroma as url:
        settings = _stalling_chroma_settings(data_dir, url, monkeypatch)
        collection = configured_wiki(settings)
        with pytest.raises(CulpritError) as raised:
            search_wiki("card payments time out at the gateway", collection)
        assert chroma.hung_up.wait(30), "culprit kept reading the trickled answer"

    assert str(raised.value).startswith(f"Chroma at {url} did not answer POST /api/v2/tenants/default_tenant/")
    assert "within 0.5 s (CHROMA_REQUEST_S)" in str(raised.value)


def test_an_answer_without_end_is_cut_off_at_its_size_limit(
    data_dir: Path, minilm: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge.wiki import store

    monkeypatch.setattr(store, "CHROMA_MAX_ANSWER_BYTES", 64 * 1024)  # the bound under test, made small
    chroma = StallingChroma(trickles=lambda method, path: path.endswith("/get"), chunk=b" " * 16 * 1024, interval=0.001)
    with chroma as url:
        collection = configured_wiki(Settings(data_dir=data_dir, chroma_url=url))
        with pytest.raises(CulpritError) as raised:
            search_wiki("card payments time out at the gateway", collection)
        assert chroma.hung_up.wait(30), "culprit kept reading the endless answer"

    assert str(raised.value).startswith(f"Chroma at {url} answered POST /api/v2/tenants/default_tenant/")
    assert "is over 65,536 bytes (CHROMA_MAX_ANSWER_BYTES)" in str(raised.value)


def _refused_connection(data_dir: Path, chroma: StallingChroma) -> tuple[str, str]:
    """Chroma's URL and why connecting to it failed, once culprit hung up on its heartbeat."""
    with chroma as url:
        with pytest.raises(CulpritError) as raised:
            configured_wiki(Settings(data_dir=data_dir, chroma_url=url))
        assert chroma.hung_up.wait(30), "culprit kept reading the heartbeat"
    return url, str(raised.value)


def test_a_heartbeat_trickled_past_its_time_fails_the_connection(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge.wiki import store

    monkeypatch.setattr(store, "CHROMA_HEARTBEAT_S", 0.5)  # the bound under test, cut short
    chroma = StallingChroma(trickles=lambda method, path: path == "/api/v2/heartbeat", interval=0.02)

    url, refusal = _refused_connection(data_dir, chroma)

    assert refusal.startswith(f"Chroma at {url} did not answer its heartbeat within 0.5 s; ")


def test_a_heartbeat_without_end_is_cut_off_at_its_size_limit(data_dir: Path) -> None:
    chroma = StallingChroma(
        trickles=lambda method, path: path == "/api/v2/heartbeat", chunk=b" " * 16 * 1024, interval=0.001
    )

    url, refusal = _refused_connection(data_dir, chroma)

    assert refusal.startswith(f"Chroma at {url} answered its heartbeat with over 65,536 bytes")


class _ChromaBehindASickProxy(JsonHandler):
    """Answers the heartbeat, then refuses the client's identity request with an error quoting the
    upstream URL it was given, its password included, as a proxy in front of Chroma might."""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path.startswith("/api/v2/heartbeat"):
            self.send_json(200, {"nanosecond heartbeat": 1})
            return
        upstream = "http://chroma:s3cret@10.0.0.5:8000"
        self.send_json(500, {"error": "InternalError", "message": f"upstream {upstream} refused {self.path}"})


def test_a_server_whose_error_quotes_a_password_fails_the_connection_without_it(data_dir: Path) -> None:
    """chromadb's message for a refused request quotes the server's answer, which can hold a URL with its
    password; the error a responder reads (and doctor and the logs) quotes it masked."""
    server = LoopbackServer(_ChromaBehindASickProxy)
    try:
        with pytest.raises(CulpritError) as raised:
            wiki_client(Settings(data_dir=data_dir, chroma_url=server.url))
    finally:
        server.close()

    assert "s3cret" not in str(raised.value) and "upstream http://***@10.0.0.5:8000 refused" in str(raised.value)
    assert str(raised.value).startswith(f"cannot reach the Chroma server at {server.url} (")
    assert "chroma run" in str(raised.value)
