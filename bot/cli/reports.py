"""``culprit reports ...`` (ingest, categories, train, evaluate, discover, trends, purge) and ``culprit digest``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table

from bot.cli.console import console, errors, print_json, progress_bar
from knowledge.errors import InputError


def register(app: typer.Typer) -> None:
    reports = typer.Typer(help="User bug reports: intake, categories, trends.", no_args_is_help=True)

    @reports.command("ingest")
    def ingest(
        file: Path,
        skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable lines instead of stopping."),
        as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
    ) -> None:
        """Redact, classify and store reports from a CSV or JSONL file (id,text[,category][,created_at])."""
        from knowledge.config import get_settings
        from knowledge.db import migrate
        from tools.reports.classifiers import configured_classifier
        from tools.reports.intake import BATCH, IntakeResult, ingest_reports, read_report_file

        settings = get_settings()
        migrate(settings.resolved_database_url)
        incoming, problems = read_report_file(file, skip_bad)
        for problem in problems:
            errors.print(f"[yellow]skipped[/] {problem}", highlight=False)
        classifier = configured_classifier(settings)
        total = IntakeResult()
        with progress_bar() as progress:
            task = progress.add_task("storing reports", total=len(incoming))
            for start in range(0, len(incoming), BATCH):
                total.add(ingest_reports(
                    incoming[start : start + BATCH], source="file", url=settings.resolved_database_url,
                    classifier=classifier, other_confidence=settings.other_confidence,
                ))
                progress.advance(task, len(incoming[start : start + BATCH]))
        summary = total.as_dict() | {"skipped_lines": len(problems)}
        if as_json:
            print_json(summary)
            return
        console.print(
            f"stored {total.stored} of {total.received} reports ({total.duplicates} seen before, "
            f"{total.other} to 'other', {len(problems)} bad lines skipped)"
        )

    @reports.command("categories")
    def categories(file: Path, as_json: bool = typer.Option(False, "--json", help="Print the names as JSON.")) -> None:
        """Load categories from YAML or JSON: a list of {name, description, examples}."""
        from sqlalchemy.dialects import postgresql, sqlite

        from knowledge.config import get_settings
        from knowledge.db import migrate, session_scope
        from knowledge.reports import Category

        definitions = _read_categories(file)
        url = get_settings().resolved_database_url
        migrate(url)
        with session_scope(url) as session:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            for item in definitions:
                statement = dialect.insert(Category).values(**item, origin="expert")
                session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["name"],
                        set_={"description": statement.excluded.description, "examples": statement.excluded.examples},
                    )
                )
        if as_json:
            print_json({"loaded": [d["name"] for d in definitions]})
            return
        console.print(f"loaded {len(definitions)} categories: " + ", ".join(d["name"] for d in definitions))

    @reports.command("train")
    def train(file: Path, as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
        """Train the embedded classifier on a labeled CSV/JSONL file (the category column)."""
        from knowledge.config import get_settings
        from tools.reports.classifiers import classifier_path
        from tools.reports.classifiers.embedded import EmbeddedClassifier
        from tools.reports.intake import read_report_file
        from tools.reports.redaction import redact

        labeled = _labeled(read_report_file(file)[0], file)
        with errors.status(f"embedding and training on {len(labeled)} reports"):
            model = EmbeddedClassifier.train([redact(r.text) for r in labeled], [r.label or "" for r in labeled])
        path = classifier_path(get_settings().data_dir)
        model.save(path)
        if as_json:
            print_json({"reports": len(labeled), "categories": list(model.categories), "model": str(path)})
            return
        console.print(f"trained on {len(labeled)} reports in {len(model.categories)} categories; saved to {path}")

    @reports.command("evaluate")
    def evaluate(
        file: Path,
        seed: int = typer.Option(42, help="Seed of the stratified 80/20 split."),
        as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
    ) -> None:
        """Accuracy, macro-F1, per-category scores and confusion matrix, next to a TF-IDF baseline."""
        from tools.reports.evaluation import evaluate_split
        from tools.reports.intake import read_report_file

        labeled = _labeled(read_report_file(file)[0], file)
        with errors.status("evaluating") as status:
            result = evaluate_split([r.text for r in labeled], [r.label or "" for r in labeled], seed=seed, on_step=status.update)
        if as_json:
            print_json(result.as_dict())
            return
        console.print(
            f"n={result.n} (trained on {result.n_train})  accuracy {result.accuracy:.3f}  macro-F1 {result.macro_f1:.3f}  "
            f"| TF-IDF baseline: accuracy {result.baseline['accuracy']:.3f}  macro-F1 {result.baseline['macro_f1']:.3f}"
        )
        scores = Table("category", "precision", "recall", "F1", "support")
        for name, item in result.per_category.items():
            scores.add_row(name, f"{item.precision:.3f}", f"{item.recall:.3f}", f"{item.f1:.3f}", str(item.support))
        console.print(scores)
        confusion = Table("true \\ predicted", *result.labels)
        for name, row in zip(result.labels, result.confusion, strict=True):
            confusion.add_row(name, *map(str, row))
        console.print(confusion)

    @reports.command("discover")
    def discover(
        since: str = typer.Option(None, help="Only reports created on or after this date (YYYY-MM-DD)."),
        out: Path = typer.Option(Path("discovery"), help="Folder for the map PNG and the summary."),
        save: bool = typer.Option(False, "--save", help="Save the recurring clusters as categories."),
        as_json: bool = typer.Option(False, "--json", help="Print the clusters as JSON."),
    ) -> None:
        """Cluster stored reports into candidate categories, with a 2-D map and a summary."""
        from knowledge.config import get_settings
        from tools.llm.client import LLMEndpoint
        from tools.reports.discovery import discover_categories, save_discovered

        settings = get_settings()
        url = settings.resolved_database_url
        llm = LLMEndpoint.from_settings(settings) if settings.llm_configured else None
        start = _parse_day(since) if since else None
        with errors.status("embedding and clustering reports"):
            discovery = discover_categories(url, since=start, out_dir=out, llm=llm)
        if save:
            save_discovered(discovery, url)
        if as_json:
            print_json(discovery.as_dict())
            return
        console.print(discovery.summary())
        console.print(f"map: {discovery.map_png}  summary: {discovery.summary_path}")

    @reports.command("trends")
    def trends(
        category: str = typer.Option(None, help="Only this category."),
        days: int = typer.Option(14, help="How many days back from --end."),
        end: str = typer.Option(None, help="Last day shown, YYYY-MM-DD (default: today)."),
        as_json: bool = typer.Option(False, "--json", help="Print the daily counts as JSON."),
    ) -> None:
        """Daily report counts per category."""
        from knowledge.config import get_settings
        from tools.reports.trends import daily_series

        last_day = _parse_day(end) if end else datetime.now(UTC).date()
        series = daily_series(category, days, last_day, get_settings().resolved_database_url)
        if as_json:
            print_json({name: [{"day": d, "count": c} for d, c in points] for name, points in series.items()})
            return
        if not series:
            console.print(f"no reports in the {days} days up to {last_day}")
            return
        days_shown = [d for d, _ in next(iter(series.values()))]
        table = Table("category", *[d.strftime("%m-%d") for d in days_shown], "total")
        for name, points in series.items():
            table.add_row(name, *[str(c) for _, c in points], str(sum(c for _, c in points)))
        console.print(table)

    @reports.command("purge")
    def purge(as_json: bool = typer.Option(False, "--json", help="Print the count as JSON.")) -> None:
        """Delete raw reports older than the retention (CULPRIT_REPORT_RETENTION_DAYS); counts stay."""
        from knowledge.config import get_settings
        from tools.reports.intake import purge_expired_reports

        settings = get_settings()
        deleted = purge_expired_reports(settings.report_retention_days, settings.resolved_database_url)
        if as_json:
            print_json({"deleted": deleted, "retention_days": settings.report_retention_days})
            return
        console.print(f"deleted {deleted} reports older than {settings.report_retention_days} days")

    app.add_typer(reports, name="reports")

    @app.command("digest")
    def digest(
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the digest instead of posting it."),
        end: str = typer.Option(None, help="Last day of the week to summarise (default: yesterday)."),
        as_json: bool = typer.Option(False, "--json", help="Print the digest's figures and text as JSON."),
    ) -> None:
        """The weekly digest of user reports and RCA results."""
        from dataclasses import asdict

        from knowledge.config import get_settings
        from tools.reports.digest import build_digest

        if not dry_run:
            raise InputError("posting needs the running bot (`culprit serve`); use --dry-run to print it here")
        last_day = _parse_day(end) if end else datetime.now(UTC).date() - timedelta(days=1)
        settings = get_settings()
        digest = build_digest(
            last_day, settings.resolved_database_url, with_chart=False, min_confidence=settings.min_confidence
        )
        if as_json:
            print_json({**{k: v for k, v in asdict(digest).items() if k != "chart_png"}, "text": digest.text})
            return
        console.print(digest.text, markup=False, highlight=False)


def _read_categories(file: Path) -> list[dict[str, object]]:
    import yaml

    if not file.is_file():
        raise InputError(f"no such file: {file}; give a YAML or JSON list of {{name, description, examples}}")
    try:
        loaded = json.loads(file.read_text()) if file.suffix == ".json" else yaml.safe_load(file.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise InputError(f"{file} is not valid YAML/JSON ({error})") from error
    if not isinstance(loaded, list) or not loaded:
        raise InputError(f"{file} must hold a non-empty list of {{name, description, examples}}")
    definitions = []
    for index, item in enumerate(loaded):
        if not isinstance(item, dict) or not str(item.get("name") or "").strip():
            raise InputError(f"{file}: category {index} needs a 'name'")
        examples = item.get("examples") or []
        if not isinstance(examples, list):
            raise InputError(f"{file}: 'examples' of {item['name']!r} must be a list of report texts")
        definitions.append(
            {"name": str(item["name"]).strip(), "description": str(item.get("description") or ""), "examples": [str(e) for e in examples]}
        )
    return definitions


def _labeled(reports: list, file: Path) -> list:
    labeled = [r for r in reports if r.label]
    if not labeled:
        raise InputError(f"{file} has no 'category' column values; label the reports to train or evaluate")
    return labeled


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise InputError(f"bad date {value!r}; use YYYY-MM-DD") from error
