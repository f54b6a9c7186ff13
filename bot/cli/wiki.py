"""``culprit wiki search|evaluate`` and ``culprit ingest wiki DIR``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bot.cli.console import console, print_json, progress_bar
from bot.cli.ingest import ingest_app
from knowledge.errors import CulpritError

if TYPE_CHECKING:
    from knowledge.wiki.indexing import IndexReport
    from tools.wiki.search import WikiSearcher

wiki_app = typer.Typer(help="Search the runbooks, service pages and postmortems.", no_args_is_help=True)

JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def _searcher() -> WikiSearcher:
    """The configured wiki's searcher; Chroma and MiniLM load here, when a command needs them."""
    from knowledge.config import get_settings
    from knowledge.wiki.store import configured_wiki
    from tools.wiki.search import searcher_for

    searcher = searcher_for(configured_wiki(get_settings()))
    if not len(searcher):
        raise CulpritError("the wiki index is empty; load pages with `culprit ingest wiki DIR` first")
    return searcher


@wiki_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="What you see or want to know, in your own words.")],
    service: Annotated[str | None, typer.Option("--service", help="Only pages tagged with this service.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many pages to show.")] = 5,
    as_json: JsonOutput = False,
) -> None:
    """The pages that best answer QUERY, each with its best-matching section."""
    hits = _searcher().search(query, service=service, k=k)
    if as_json:
        print_json([asdict(hit) for hit in hits])
        return
    if not hits:
        console.print("no page matches" + (f" for service {service}" if service else ""))
        return
    for rank, hit in enumerate(hits, start=1):
        console.print(f"[bold]{rank}. {escape(hit.page)}[/]  [dim]{hit.score:.4f}[/]", highlight=False)
        console.print(f"   [cyan]{escape(hit.heading)}[/]", highlight=False)
        console.print(f"   {escape(hit.snippet)}", highlight=False, soft_wrap=True)  # wiki text: "[/etc]" is markup


@wiki_app.command("evaluate")
def evaluate_command(
    questions_file: Annotated[Path, typer.Argument(help="JSONL lines {\"question\": ..., \"page\": ...}.")],
    as_json: JsonOutput = False,
) -> None:
    """Recall@3 and MRR of hybrid search against BM25 alone and embeddings alone, in one run."""
    from tools.wiki.evaluation import evaluate, load_questions

    questions = load_questions(questions_file)
    searcher = _searcher()
    with progress_bar(transient=True) as bars:
        task = bars.add_task("asking the wiki", total=3 * len(questions))
        result = evaluate(searcher, questions, on_question=lambda: bars.advance(task))
    if as_json:
        print_json(result)
        return
    table = Table("method", "recall@3", "MRR", title=f"{result['questions']} questions, {result['chunks']} chunks")
    table.add_row("hybrid", f"{result['recall_at_3']:.3f}", f"{result['mrr']:.3f}", style="bold")
    for method, score in result["baselines"].items():
        table.add_row(f"{method} alone", f"{score['recall_at_3']:.3f}", f"{score['mrr']:.3f}")
    console.print(table)
    for miss in result["misses"]:
        console.print(f"[yellow]missed[/] {escape(repr(miss['question']))} -> {escape(miss['page'])}", highlight=False)
    for page in result["pages_not_indexed"]:
        console.print(f"[red]not indexed[/] {escape(page)}: ingest the folder that holds it", highlight=False)


@wiki_app.command("sync")
def sync(as_json: JsonOutput = False) -> None:
    """Re-sync every source in CULPRIT_WIKI_SOURCES now (Confluence, Notion export, Slack export);
    only changed sections are embedded again."""
    import os

    from knowledge.config import get_settings
    from knowledge.wiki.sources import source_failure, sync_source
    from knowledge.wiki.store import configured_wiki

    settings = get_settings()
    if not settings.wiki_sources:
        raise CulpritError('no wiki sources: set CULPRIT_WIKI_SOURCES, e.g. [{"kind":"notion","name":"eng","path":"/exports/notion"}]')
    collection = configured_wiki(settings)
    synced: dict[str, IndexReport] = {}
    failed: dict[str, str] = {}
    for source in settings.wiki_sources:  # one source failing leaves the others to sync, as the schedule does
        try:
            synced[source.name] = sync_source(source, collection, os.environ, settings.incident_channel_pattern)
        except Exception as error:  # noqa: BLE001 - reported per source below, and the exit status is 1
            failed[source.name] = source_failure(error)
    if as_json:
        print_json({
            **{name: {**report.counts(), "refused": _refused(report)} for name, report in synced.items()},
            **{name: {"error": reason} for name, reason in failed.items()},
        })  # fmt: skip
    else:
        _show_synced(synced, failed)
    if failed:
        raise typer.Exit(1)


def _show_synced(synced: dict[str, IndexReport], failed: dict[str, str]) -> None:
    for name, reason in failed.items():
        console.print(f"[bold]{escape(name)}[/]: [red]failed[/]: {escape(reason)}", highlight=False, soft_wrap=True)
    for name, report in synced.items():
        counts = report.counts()
        console.print(f"[bold]{escape(name)}[/]: {counts['pages']} pages, [green]{counts['added']} added[/], "
                      f"[cyan]{counts['updated']} updated[/], {counts['unchanged']} unchanged, "
                      f"[red]{counts['removed']} removed[/]" + _refused_count(report), highlight=False)  # fmt: skip
        _show_refused(report)


def _refused(report: IndexReport) -> list[dict[str, str]]:
    return [asdict(refused) for refused in report.refused]


def _refused_count(report: IndexReport) -> str:
    if not report.refused:
        return ""
    pages = "1 page" if len(report.refused) == 1 else f"{len(report.refused)} pages"
    return f", [yellow]{pages} refused (their indexed sections kept)[/]"


def _show_refused(report: IndexReport) -> None:
    for refused in report.refused:  # the reason quotes the page's own text, which may read as markup
        console.print(f"  [yellow]refused[/] {escape(refused.reason)}", highlight=False, soft_wrap=True)


@ingest_app.command("wiki")
def ingest_wiki(
    directory: Annotated[Path, typer.Argument(help="Folder of Markdown/text pages (runbooks, postmortems...).")],
    as_json: JsonOutput = False,
) -> None:
    """Index wiki pages in Chroma (only changed sections are re-embedded) and link postmortems to changes."""
    from knowledge.config import get_settings
    from knowledge.db import migrate
    from knowledge.wiki.indexing import index_wiki
    from knowledge.wiki.postmortems import link_postmortems
    from knowledge.wiki.store import configured_wiki
    from tools.rca.store import stored_words

    settings = get_settings()
    collection = configured_wiki(settings)
    with progress_bar() as bars:
        task = bars.add_task("embedding changed sections", total=None)
        report = index_wiki(
            directory, collection, progress=lambda done, total: bars.update(task, completed=done, total=total)
        )
        bars.update(task, total=max(report.added + report.updated, 1), completed=max(report.added + report.updated, 1))
    links = None
    if any(page.kind == "postmortem" for page in report.pages):
        url = settings.resolved_database_url
        migrate(url)
        links = link_postmortems(report.pages, url, stored_words)
    counts = report.counts()
    linked = [{"incident": link.incident_id, "changes": list(link.change_ids)} for link in links.linked] if links else []
    skipped = links.skipped if links else []
    if as_json:
        print_json({**counts, "refused": _refused(report), "postmortems_linked": linked, "postmortems_skipped": skipped})
        return
    console.print(
        f"[bold]wiki[/] from {escape(str(directory))}: {counts['pages']} pages, {counts['chunks']} sections: "
        f"[green]{counts['added']} added[/], [cyan]{counts['updated']} updated[/], "
        f"{counts['unchanged']} unchanged, [red]{counts['removed']} removed[/]" + _refused_count(report),
        highlight=False,
        soft_wrap=True,
    )
    _show_refused(report)
    for link in linked:
        console.print(f"  incident {link['incident']} root cause {', '.join(link['changes'])}", markup=False, highlight=False)
    for note in skipped:
        console.print(f"  [yellow]not linked[/] {escape(note)}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(wiki_app, name="wiki")
