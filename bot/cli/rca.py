"""``culprit rca``, ``train``, ``embed-changes`` and ``backtest``: the RCA engine from the terminal.

The engine (LangGraph, the judges, MiniLM) loads inside each command, so ``--help``
and the other commands start without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import Progress as RichProgress
from rich.progress import TaskID
from rich.table import Table

from bot.cli.console import console, print_json, progress_bar
from bot.cli.dates import parse_time
from knowledge.errors import InputError

if TYPE_CHECKING:
    from knowledge.config import Settings
    from tools.rca.embeddings import ChangeEmbeddings, EmbeddingRun
    from tools.rca.history.cases import History

CaseFiles = Annotated[list[Path], typer.Option("--cases", help="cases-*.jsonl(.gz) file; repeat for several.")]
CommitFiles = Annotated[list[Path], typer.Option("--commits", help="commits-*.jsonl(.gz) file; repeat for several.")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
NoEmbeddings = Annotated[
    bool, typer.Option("--no-embeddings", help="Skip semantic similarity (no MiniLM; faster, a little less accurate).")
]


@contextmanager
def stage_progress() -> Iterator[Callable[[str | None, int], None]]:
    """Progress for multi-stage work: ``(description, total)`` opens a bar, ``(None, n)`` advances it."""
    with progress_bar() as bars:
        current: list[TaskID] = []

        def report(description: str | None, amount: int) -> None:
            if description is not None:
                current.append(_open(bars, description, amount))
            elif current:
                bars.advance(current[-1], amount)

        yield report


def _open(bars: RichProgress, description: str, total: int) -> TaskID:
    return bars.add_task(escape(description), total=total or None)  # may name a repository


def _named_repositories(paths: list[Path], names: list[str]) -> list[tuple[Path, str | None]]:
    """Pair each ``--from-repo`` with its ``--repo``: the model learns a repository under the name its
    changes were ingested with, or every answer on it says the model never learned it."""
    if names and len(names) != len(paths):
        raise InputError(
            f"{len(names)} --repo for {len(paths)} --from-repo; give one --repo per --from-repo, in the same order, "
            "or none to name each from its origin"
        )
    return list(zip(paths, names or [None] * len(paths), strict=True))


def _read_history(cases: list[Path], commits: list[Path]) -> History:
    if not cases or not commits:
        raise InputError("give at least one --cases file and one --commits file")
    from tools.rca.history.cases import load_history

    history = load_history(cases, commits)
    if not history.cases:
        raise InputError(f"no cases in {', '.join(map(str, cases))}")
    return history


def _embeddings_for(
    history: History, skip: bool, data_dir: Path, report: Callable[[str | None, int], None]
) -> ChangeEmbeddings | None:
    """The embedding cache, with every commit of the history in it (embedding only new ones)."""
    if skip:
        return None
    from tools.rca.embeddings import ChangeEmbeddings
    from tools.rca.resources import embeddings_dir

    store = ChangeEmbeddings(embeddings_dir(data_dir))
    missing = store.missing(list(history.commits.values()))
    if missing:
        report(f"embedding {len(missing)} changes (once; cached in {store.directory})", len(missing))
        store.add(missing, on_progress=lambda n: report(None, n))
    return store


def _embed_store(
    store: ChangeEmbeddings, database_url: str, report: Callable[[str | None, int], None],
    since: datetime | None = None, repo: str | None = None,
) -> EmbeddingRun:
    """Embed the ingested changes the cache lacks, so the first RCA only embeds its incident."""
    from tools.rca.embeddings import embed_store_changes

    def opened(count: int) -> None:
        if count:
            report(f"embedding {count} ingested changes (once; cached in {store.directory})", count)

    return embed_store_changes(
        store, database_url, since, repo, on_start=opened, on_progress=lambda n: report(None, n)
    )


def _store_is_ready(database_url: str) -> bool:
    """Whether the store can be read and holds changes (training works without one)."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from knowledge.db import DatabaseUnavailable
    from tools.rca.store import store_has_changes

    try:
        return store_has_changes(database_url)
    except (DatabaseUnavailable, OperationalError, ProgrammingError):
        return False


@dataclass(frozen=True)
class ServingAfterTraining:
    """Which model the bot and ``culprit rca`` answer with once a trained one is saved, and how to make
    the new one answer when it does not."""

    serves: bool
    version: int | None  # the promoted version that answers instead, if one does
    model: str
    to_serve: str | None

    def to_dict(self) -> dict[str, object]:
        return {"serves": self.serves, "serving": {"version": self.version, "model": self.model}, "to_serve": self.to_serve}

    def line(self) -> str:
        if self.serves:
            from bot.runtime import RESOURCES_TTL_S

            return f"it answers in `culprit rca` now, and in the bot once it reloads its model (every {RESOURCES_TTL_S:g} s)"
        which = f"the promoted model version {self.version} at" if self.version else "only the model at CULPRIT_RANKER_PATH,"
        return (f"[yellow]it does not answer:[/] {which} {escape(self.model)}, answers in the bot and "
                f"`culprit rca`; {escape(self.to_serve or '')}")


def serving_after_training(saved: Path, settings: Settings) -> ServingAfterTraining:
    """A promoted version answers before any file, and of the files only CULPRIT_RANKER_PATH is read.

    Without saying so a team trains, sees "saved", and believes its new model answers while the promoted one does.
    """
    from tools.rca.retrain.registry import serving_model

    promoted = serving_model(settings.resolved_database_url, data_dir=settings.data_dir)
    if promoted.version is not None:
        return ServingAfterTraining(
            False, promoted.version, str(promoted.path),
            "a promoted model version answers before CULPRIT_RANKER_PATH: run `culprit model retrain` to train a "
            "version on the store's labelled incidents and promote it if it replays no worse "
            "(`culprit model list` shows the versions)",
        )  # fmt: skip
    configured = settings.resolved_ranker_path
    if saved.resolve() != configured.resolve():
        return ServingAfterTraining(False, None, str(configured), f"set CULPRIT_RANKER_PATH={saved}")
    return ServingAfterTraining(True, None, str(saved), None)


def register(app: typer.Typer) -> None:
    @app.command("rca")
    def rca(
        text: Annotated[str, typer.Argument(help="What is broken, in the responder's words.")],
        title: Annotated[str, typer.Option("--title", help="Incident title.")] = "",
        service: Annotated[str | None, typer.Option("--service", help="The impacted service.")] = None,
        at: Annotated[str | None, typer.Option("--at", help="When it started (ISO time; default now).")] = None,
        repo: Annotated[str | None, typer.Option("--repo", help="Only this repository's commits (change events such as deploys are always kept).")] = None,
        json_output: JsonOutput = False,
    ) -> None:
        """Suggest the changes most likely to have caused an incident, with their evidence."""
        if not text.strip() and not title.strip():
            raise InputError("describe the incident: give its TEXT or --title")
        from bot.cli.answer_view import print_answer
        from graph.rca_graph import run_rca
        from knowledge.config import get_settings
        from knowledge.db import migrate
        from tools.rca.answers import IncidentQuery
        from tools.rca.resources import load_resources
        from tools.rca.retrain.registry import serving_model
        from tools.rca.store import store_has_changes

        started_at = parse_time(at)
        settings = get_settings()
        migrate(settings.resolved_database_url)  # a fresh data directory gets its schema, a dead database a clear error
        if not store_has_changes(settings.resolved_database_url):
            raise InputError("the store holds no changes; load some first with `culprit ingest`")
        query = IncidentQuery(text=text, title=title, service=service, repo=repo, started_at=started_at)
        # The model the bot answers with: a promoted version when there is one, else CULPRIT_RANKER_PATH.
        resources = load_resources(settings, serving_model(settings.resolved_database_url, data_dir=settings.data_dir))
        result = run_rca(query, database_url=settings.resolved_database_url, resources=resources)
        if json_output:
            print_json(result.to_dict())
        else:
            print_answer(result, resources.min_confidence)

    @app.command("train")
    def train(
        cases: Annotated[list[Path] | None, typer.Option("--cases", help="cases-*.jsonl(.gz) file; repeat for several.")] = None,
        commits: Annotated[
            list[Path] | None, typer.Option("--commits", help="commits-*.jsonl(.gz) file; repeat for several.")
        ] = None,
        from_repo: Annotated[
            list[Path] | None,
            typer.Option("--from-repo", help="Mine this git repository's fix commits first (`history mine`); repeatable."),
        ] = None,
        repo: Annotated[
            list[str] | None,
            typer.Option(
                "--repo",
                help="Name of the --from-repo repository at the same place in the command line, as `ingest git "
                "--repo` or CULPRIT_REPOS names it (default: from origin, else the folder); repeatable.",
            ),
        ] = None,
        out: Annotated[Path | None, typer.Option("--out", help="Where to save the model (default: where rca looks).")] = None,
        no_embeddings: NoEmbeddings = False,
        json_output: JsonOutput = False,
    ) -> None:
        """Train the local judge and its confidence calibration on past investigations.

        With embeddings, the history's commits and the store's ingested changes are
        embedded too (once), so the first RCA embeds only its incident."""
        from knowledge.config import get_settings
        from tools.rca.history.training import train_model
        from tools.rca.judges.local import save_model

        settings = get_settings()
        cases, commits = list(cases or []), list(commits or [])
        for repository, name in _named_repositories(from_repo or [], repo or []):
            from bot.cli.history import mine, show_mining

            mined = mine(repository, settings.data_dir / "mined", name, None, None)
            if not json_output:
                show_mining(mined)
            cases.append(Path(mined.files[0]))
            commits.append(Path(mined.files[1]))
        history = _read_history(cases, commits)
        ingested: EmbeddingRun | None = None
        with stage_progress() as report:
            embeddings = _embeddings_for(history, no_embeddings, settings.data_dir, report)
            if embeddings is not None and _store_is_ready(settings.resolved_database_url):
                ingested = _embed_store(embeddings, settings.resolved_database_url, report)
            report(f"learning from {len(history.cases)} cases", 2 * len(history.cases))
            model = train_model(history, history.cases, embeddings, progress=lambda n: report(None, n))
        path = save_model(model, out or settings.resolved_ranker_path)
        summary = {
            "model": str(path),
            "cases": model.n_cases,
            "repos": model.repos,
            "features": len(model.feature_names),
            "uses_embeddings": model.uses_embeddings,
            "confidence_prior": round(model.confidence.prior, 4),
            "calibration": model.confidence.method,
            "leave_one_repository_out_ece": model.confidence.loro_ece,
            "ingested_changes_embedded": ingested.embedded if ingested else 0,
        }
        serving = serving_after_training(path, settings)
        if json_output:
            print_json({**summary, **serving.to_dict()})
        else:
            console.print(
                f"trained on {model.n_cases} cases from {', '.join(model.repos)}; saved to {path} "
                f"(held-out top-5 rate used for calibration: {model.confidence.prior:.2f})"
            )
            console.print(serving.line())

    @app.command("embed-changes")
    def embed_changes(
        since: Annotated[
            str | None, typer.Option("--since", help="Only changes landed since this ISO date or time (default: all).")
        ] = None,
        repo: Annotated[str | None, typer.Option("--repo", help="Only changes of this repository.")] = None,
        json_output: JsonOutput = False,
    ) -> None:
        """Embed ingested changes ahead of time, so the first RCA answers without embedding its window."""
        from knowledge.config import get_settings
        from tools.rca.embeddings import ChangeEmbeddings
        from tools.rca.resources import embeddings_dir
        from tools.rca.store import store_has_changes

        settings = get_settings()
        landed_since = parse_time(since, "--since") if since else None
        if not store_has_changes(settings.resolved_database_url):
            raise InputError("the store holds no changes; load some first with `culprit ingest`")
        cache = embeddings_dir(settings.data_dir)
        with stage_progress() as report:
            run = _embed_store(ChangeEmbeddings(cache), settings.resolved_database_url, report, landed_since, repo)
        summary = {
            "changes": run.changes,
            "embedded": run.embedded,
            "already_cached": run.already_cached,
            "seconds": run.seconds,
            "cache": str(cache),
        }
        if json_output:
            print_json(summary)
        else:
            console.print(
                f"{run.embedded} changes embedded, {run.already_cached} already cached "
                f"(of {run.changes}) in {run.seconds:.1f} s; cache in {cache}"
            )

    @app.command("backtest")
    def backtest(
        cases: CaseFiles,
        commits: CommitFiles,
        train_fraction: Annotated[float, typer.Option("--train-fraction", min=0.05, max=0.95)] = 0.7,
        model_path: Annotated[Path | None, typer.Option("--model", help="Use this model instead of training.")] = None,
        judge: Annotated[str, typer.Option("--judge", help="local or llm.")] = "local",
        symptom_only: Annotated[
            bool, typer.Option("--symptom-only", help="Keep only a symptom: first sentence, no paths or code names.")
        ] = False,
        no_embeddings: NoEmbeddings = False,
        plot: Annotated[
            Path | None, typer.Option("--plot", help="Draw the reliability diagram and precision/reach curve to this PNG.")
        ] = None,
        json_output: JsonOutput = False,
    ) -> None:
        """Replay later past incidents per repository and score the answers against baselines."""
        from graph.rca_graph import replay_incident
        from knowledge.config import get_settings
        from tools.rca.history.backtest import BacktestOptions, run_backtest
        from tools.rca.judges.local import load_model
        from tools.rca.resources import make_judge

        settings = get_settings()
        history = _read_history(cases, commits)
        model = load_model(model_path) if model_path else None
        make_judge(judge, model, settings)  # fail early on a missing LLM configuration
        options = BacktestOptions(
            train_fraction=train_fraction,
            symptom=symptom_only,
            judge_kind=judge,
            batch_size=settings.batch_size,
            min_confidence=settings.min_confidence,
            target_precision=settings.target_precision,
        )
        with stage_progress() as report:
            embeddings = _embeddings_for(history, no_embeddings, settings.data_dir, report)
            summary = run_backtest(
                history, replay_incident, lambda trained: make_judge(judge, trained, settings), options, embeddings,
                model, report,
            )
        if plot is not None:
            from tools.rca.history.plots import plot_calibration

            plot_calibration(summary, plot)
        if json_output:
            print_json(summary)
        else:
            _print_backtest(summary)


def _metrics_row(name: str, numbers: dict) -> list[str]:  # type: ignore[type-arg]
    baselines = numbers["baselines"]
    return [
        escape(name),  # a repository name from the history files
        str(numbers["n_cases"]),
        f"{numbers['top1']:.2f}",
        f"{numbers['top5']:.2f}",
        f"{numbers['mrr']:.2f}",
        f"{numbers['recall']:.2f}",
        f"{numbers['gate']['precision']:.2f}/{numbers['gate']['reach']:.2f}",
        f"{baselines['bm25']['top1']:.2f}/{baselines['bm25']['top5']:.2f}/{baselines['bm25']['mrr']:.2f}",
        f"{baselines['recency']['top1']:.2f}/{baselines['recency']['top5']:.2f}/{baselines['recency']['mrr']:.2f}",
        f"{numbers['latency_ms']['p50']:.0f}/{numbers['latency_ms']['p95']:.0f}",
    ]


def _print_backtest(summary: dict) -> None:  # type: ignore[type-arg]
    variant = "symptom-only" if summary["symptom_only"] else "full text"
    table = Table(title=f"Backtest ({variant}, judge {summary['judge']}; gate at the confidence threshold)")
    for column in (
        "repo", "cases", "top-1", "top-5", "MRR", "recall",
        "gate P/R", "BM25 1/5/MRR", "newest 1/5/MRR", "p50/p95 ms",
    ):
        table.add_column(column)
    for repo, numbers in summary["per_repository"].items():
        table.add_row(*_metrics_row(repo, numbers))
    table.add_row(*_metrics_row("all", summary))
    console.print(table)
    curve = Table(title="Precision / reach by confidence threshold (all repositories)")
    for column in ("threshold", "precision", "reach"):
        curve.add_column(column)
    for point in summary["curve"]:
        curve.add_row(f"{point['threshold']:.1f}", f"{point['precision']:.2f}", f"{point['reach']:.2f}")
    console.print(curve)
