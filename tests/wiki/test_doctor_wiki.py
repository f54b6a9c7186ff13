"""`culprit doctor`'s wiki line on a real embedded Chroma store: empty says how to fill it, indexed passes."""

from __future__ import annotations

from pathlib import Path

from chromadb.api.models.Collection import Collection

from bot.doctor import DoctorOptions
from bot.doctor.services import check_wiki
from knowledge.config import Settings
from knowledge.wiki.indexing import index_wiki
from tests.wiki.conftest import write_small_wiki


def test_an_empty_wiki_passes_with_the_ingest_command_then_counts_its_sections_once_indexed(
    wiki_store: Collection, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "store")  # where wiki_store keeps its embedded Chroma

    [empty] = check_wiki(settings, DoctorOptions())  # a team without a wiki: RCA only, doctor still green
    assert empty.status == "pass" and "no wiki indexed" in empty.detail and "culprit ingest wiki" in empty.detail

    index_wiki(write_small_wiki(tmp_path / "wiki"), wiki_store)
    [indexed] = check_wiki(settings, DoctorOptions())
    assert indexed.status == "pass"
    assert f"{wiki_store.count()} sections indexed" in indexed.detail
