"""``culprit reports ...`` (ingest, categories, train, show, relabel, evaluate, discover, trends, purge) and ``culprit digest``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from bot.cli.console import console, counted, errors, print_json, progress_bar
from bot.cli.dates import parse_day
from knowledge.errors import InputError
from tools.reports.classifiers.finetune import FineTuning

if TYPE_CHECKING:
    from knowledge.config import Settings
    from tools.reports.classifiers import Classifier
    from tools.reports.evaluation import Evaluation


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
        from tools.reports.classifiers import configured_classifier, unread_classifier
        from tools.reports.intake import BATCH, IntakeResult, ingest_reports, read_report_file

        settings = get_settings()
        migrate(settings.resolved_database_url)
        incoming, problems = read_report_file(file, skip_bad)
        for problem in problems:
            errors.print(f"[yellow]skipped[/] {escape(str(problem))}", highlight=False)
        classifier = configured_classifier(settings)
        if (unread := unread_classifier(settings.data_dir)) is not None:
            errors.print(f"[yellow]not classified by the trained classifier:[/] {escape(unread)}", highlight=False)
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
            f"{total.other} to 'other', {counted(len(problems), 'bad line', 'bad lines')} skipped)"
        )

    @reports.command("categories")
    def categories(file: Path, as_json: bool = typer.Option(False, "--json", help="Print the names as JSON.")) -> None:
        """Load categories from YAML or JSON: a list of {name, description, examples}. Merged into the stored
        ones: a name already stored gets the file's description and examples; stored names not in the file stay."""
        from sqlalchemy import select
        from sqlalchemy.dialects import postgresql, sqlite

        from knowledge.config import get_settings
        from knowledge.db import migrate, session_scope
        from knowledge.reports import Category

        definitions = _read_categories(file)
        names = list(dict.fromkeys(str(d["name"]) for d in definitions))
        url = get_settings().resolved_database_url
        migrate(url)
        with session_scope(url) as session:
            stored = set(session.scalars(select(Category.name)))
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            for item in definitions:
                statement = dialect.insert(Category).values(**item, origin="expert")
                session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["name"],
                        set_={"description": statement.excluded.description, "examples": statement.excluded.examples},
                    )
                )
        added, updated = [n for n in names if n not in stored], [n for n in names if n in stored]
        kept = len(stored - set(names))
        if as_json:
            print_json({"loaded": names, "added": added, "updated": updated, "kept": kept})
            return
        console.print(
            f"loaded {counted(len(names), 'category', 'categories')}: {len(added)} new ({', '.join(added) or 'none'}), "
            f"{len(updated)} updated ({', '.join(updated) or 'none'}); "
            f"{counted(kept, 'stored category', 'stored categories')} not in {file.name} kept",
            markup=False, highlight=False,
        )

    @reports.command("train")
    def train(
        file: Path = typer.Argument(None, help="Labeled CSV/JSONL (the category column); optional when reports were relabeled."),
        fine_tune: bool = typer.Option(
            True, "--fine-tune/--no-fine-tune",
            help="Adapt MiniLM's top layers to the labels first (minutes); --no-fine-tune trains the head only (seconds).",
        ),
        minutes: float = typer.Option(15.0, "--max-minutes", min=0.1, help="Upper bound on fine-tuning time."),
        steps: int = typer.Option(FineTuning.max_steps, "--steps", min=1, help="Upper bound on fine-tuning steps (64 reports each)."),
        stored: bool = typer.Option(True, "--stored-labels/--no-stored-labels", help="Also learn from stored reports responders labeled."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Train the embedded classifier on a labeled file plus the stored reports responders relabeled."""
        from knowledge.config import get_settings
        from knowledge.db import migrate
        from tools.reports.classifiers import classifier_path
        from tools.reports.classifiers.embedded import EmbeddedClassifier
        from tools.reports.intake import read_report_file
        from tools.reports.labels import stored_labels
        from tools.reports.redaction import redact

        settings = get_settings()
        examples = {redact(r.text.strip()): r.label or "" for r in _labeled(read_report_file(file)[0], file)} if file else {}
        from_file = len(examples)
        if stored:
            migrate(settings.resolved_database_url)
            examples.update(stored_labels(settings.resolved_database_url))  # a responder's label wins over the file's
        if not examples:
            raise InputError("nothing to train on: give a labeled file or relabel stored reports (`culprit reports relabel ID CATEGORY`)")
        with progress_bar() as progress:
            model = EmbeddedClassifier.train(
                list(examples), list(examples.values()),
                fine_tune=_fine_tuning(fine_tune, minutes, steps), on_progress=_stages(progress),
            )
        path = classifier_path(settings.data_dir)
        model.save(path)
        how = "fine-tuned MiniLM" if model.tuned is not None else "packaged MiniLM"
        if as_json:
            print_json({
                "reports": len(examples), "from_stored_labels": len(examples) - from_file,
                "categories": list(model.categories), "fine_tuned": model.tuned is not None, "model": str(path),
            })
            return
        console.print(
            f"trained on {len(examples)} reports ({len(examples) - from_file} more from stored labels) in "
            f"{len(model.categories)} categories ({how}); saved to {path}",
            markup=False,
        )

    @reports.command("show")
    def show(report_id: str, as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
        """One stored report: its category, confidence and why (nearest labeled examples, heaviest words)."""
        from knowledge.config import get_settings
        from tools.reports.labels import label_said, report_with_why, why_lines

        report = report_with_why(report_id, get_settings().resolved_database_url)
        if as_json:
            print_json(report)
            return
        confidence = "" if report["confidence"] is None else f" (confidence {report['confidence']:.2f})"
        category = report["category"] or "not classified yet"
        console.print(f"{report['id']} {report['created_at']}: {category}{confidence}{label_said(report)}", markup=False, highlight=False)
        console.print(report["text"], markup=False, highlight=False)
        lines = why_lines(report["why"]) or ["  no reason was kept (classified before reasons were, or by the LLM)"]
        console.print("why:\n" + "\n".join(lines), markup=False, highlight=False)

    @reports.command("relabel")
    def relabel(
        report_id: str,
        category: str,
        new: bool = typer.Option(False, "--new", help="CATEGORY is a new category, not a known one misspelled."),
    ) -> None:
        """Give a stored report the right category; the counts follow and the next `reports train` learns it."""
        from knowledge.config import get_settings
        from tools.reports.labels import relabel_report

        done = relabel_report(report_id, category, get_settings().resolved_database_url, new=new)
        console.print(f"{done.report_id}: {done.previous or 'unclassified'} -> {done.category}", markup=False, highlight=False)

    @reports.command("evaluate")
    def evaluate(
        file: Path = typer.Argument(..., help="Labeled reports to score on (the test reports when --train or --model is given)."),
        train_file: Path = typer.Option(None, "--train", help="Train on exactly this labeled file and test on FILE."),
        model_file: Path = typer.Option(None, "--model", help="Score this trained classifier on FILE instead of training one."),
        seed: int = typer.Option(  # scikit-learn takes a seed of 32 bits: another was its traceback
            42, min=0, max=2**32 - 1, help="Seed of the stratified 80/20 split (without --train or --model)."
        ),
        fine_tune: bool = typer.Option(True, "--fine-tune/--no-fine-tune", help="Fine-tune MiniLM when training, as `reports train` does."),
        minutes: float = typer.Option(15.0, "--max-minutes", min=0.1, help="Upper bound on fine-tuning time."),
        steps: int = typer.Option(FineTuning.max_steps, "--steps", min=1, help="Upper bound on fine-tuning steps."),
        as_json: bool = typer.Option(False, "--json", help="Print the scores as one JSON document."),
    ) -> None:
        """Accuracy, macro-F1, per-category scores and confusion matrix, next to a TF-IDF baseline
        (and the LLM classifier when one is configured)."""
        from knowledge.config import get_settings
        from tools.reports.classifiers.embedded import EmbeddedClassifier
        from tools.reports.evaluation import Labeled, evaluate_given, evaluate_model, evaluate_split
        from tools.reports.intake import read_report_file
        from tools.reports.redaction import redact

        def read(path: Path) -> Labeled:
            labeled = _labeled(read_report_file(path)[0], path)
            return Labeled([redact(r.text) for r in labeled], [r.label or "" for r in labeled])

        settings = get_settings()
        test = read(file)
        train = read(train_file) if train_file else None
        llm = _llm_classifier(settings)
        tuning = _fine_tuning(fine_tune, minutes, steps)
        threshold = settings.other_confidence
        with progress_bar(transient=True) as progress:
            stages = _stages(progress)
            if model_file is not None:
                split = f"{file}" + (" (baseline trained on " + str(train_file) + ")" if train_file else "")
                result = evaluate_model(EmbeddedClassifier.load(model_file), test, train, stages, llm, threshold, split=split)
            elif train is not None:
                result = evaluate_given(train, test, stages, tuning, llm, threshold, split=f"train {train_file}, test {file}")
            else:
                result = evaluate_split(test.texts, test.labels, seed=seed, on_progress=stages, fine_tune=tuning, llm=llm, other_confidence=threshold)
        if as_json:
            print_json(result.as_dict())
            return
        _print_evaluation(result)

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
        start = parse_day(since, "--since") if since else None
        with errors.status("embedding and clustering reports"):
            discovery = discover_categories(url, since=start, out_dir=out, llm=llm)
        if save:
            save_discovered(discovery, url)
        if as_json:
            print_json(discovery.as_dict())
            return
        console.print(discovery.summary(), markup=False)  # quotes reports: "[/x]" in one crashed the command
        console.print(f"map: {discovery.map_png}  summary: {discovery.summary_path}", markup=False)

    @reports.command("trends")
    def trends(
        category: str = typer.Option(None, help="Only this category."),
        days: int = typer.Option(14, min=1, max=3650, help="How many days back from --end (1 to 3650)."),
        end: str = typer.Option(None, help="Last day shown, YYYY-MM-DD (default: today)."),
        as_json: bool = typer.Option(False, "--json", help="Print the daily counts as JSON."),
    ) -> None:
        """Daily report counts per category."""
        from knowledge.config import get_settings
        from tools.reports.trends import daily_series, require_known_category

        last_day = parse_day(end, "--end") if end else datetime.now(UTC).date()
        url = get_settings().resolved_database_url
        if category:  # an unknown one used to read as "no reports", as a quiet category does
            require_known_category(category, url)
        series = daily_series(category, days, last_day, url)
        if as_json:
            print_json({name: [{"day": d, "count": c} for d, c in points] for name, points in series.items()})
            return
        if not series:
            console.print(f"no reports in the {days} days up to {last_day}")
            return
        days_shown = [d for d, _ in next(iter(series.values()))]
        table = Table("category", *[d.strftime("%m-%d") for d in days_shown], "total")
        for name, points in series.items():
            table.add_row(escape(name), *[str(c) for _, c in points], str(sum(c for _, c in points)))
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
        from tools.rca.resources import answer_threshold
        from tools.reports.digest import build_digest

        if not dry_run:
            raise InputError("posting needs the running bot (`culprit serve`); use --dry-run to print it here")
        last_day = parse_day(end, "--end") if end else datetime.now(UTC).date() - timedelta(days=1)
        settings = get_settings()
        digest = build_digest(
            last_day, settings.resolved_database_url, with_chart=False, min_confidence=answer_threshold(settings)
        )
        if as_json:
            print_json({**{k: v for k, v in asdict(digest).items() if k != "chart_png"}, "text": digest.text})
            return
        console.print(digest.text, markup=False, highlight=False)


def _fine_tuning(enabled: bool, minutes: float, steps: int) -> FineTuning | None:
    return FineTuning(max_seconds=minutes * 60, max_steps=steps) if enabled else None


def _stages(progress: Progress) -> Callable[[str, int, int], None]:
    """A training or evaluation callback that keeps one progress bar per stage."""
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    return update


def _llm_classifier(settings: Settings) -> Classifier | None:
    """The LLM classifier when vLLM and categories are configured, for scoring next to the embedded one."""
    if not settings.llm_configured:
        return None
    from tools.llm.client import LLMEndpoint
    from tools.reports.classifiers.llm import LLMClassifier, categories_from_database

    try:
        return LLMClassifier(LLMEndpoint.from_settings(settings), categories_from_database(settings.resolved_database_url))
    except InputError as error:
        errors.print(f"[yellow]not scoring the LLM classifier:[/] {escape(str(error))}", highlight=False)
        return None


def _print_evaluation(result: Evaluation) -> None:
    tuned = "fine-tuned" if result.fine_tuned else "packaged MiniLM"
    line = f"n={result.n} (trained on {result.n_train}, {result.split}, {tuned})  accuracy {result.accuracy:.3f}  macro-F1 {result.macro_f1:.3f}"
    if result.baseline:
        line += f"  | TF-IDF baseline: accuracy {result.baseline.accuracy:.3f}  macro-F1 {result.baseline.macro_f1:.3f}"
    if result.llm:
        line += f"  | LLM: accuracy {result.llm.accuracy:.3f}  macro-F1 {result.llm.macro_f1:.3f}"
    console.print(line, highlight=False)
    if result.below_other_confidence is not None:
        console.print(f"{result.below_other_confidence} of {result.n} below CULPRIT_OTHER_CONFIDENCE (would go to 'other')")
    table = Table("category", "precision", "recall", "F1", "support")
    for name, item in result.per_category.items():
        table.add_row(escape(name), f"{item.precision:.3f}", f"{item.recall:.3f}", f"{item.f1:.3f}", str(item.support))
    console.print(table)
    confusion = Table("true \\ predicted", *map(escape, result.labels))  # category names from the labeled file
    for name, row in zip(result.labels, result.confusion, strict=True):
        confusion.add_row(escape(name), *map(str, row))
    console.print(confusion)


def _read_categories(file: Path) -> list[dict[str, object]]:
    import yaml

    from knowledge.ingest.rules import read_text
    from knowledge.plain_yaml import load_plain

    if not file.exists():
        raise InputError(f"no such file: {file}; give a YAML or JSON list of {{name, description, examples}}")
    text = read_text(file)  # a folder, an unreadable or non-UTF-8 file, or one of megabytes: one line each
    try:
        loaded = json.loads(text) if file.suffix == ".json" else load_plain(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise InputError(f"{file} is not valid YAML/JSON ({error})") from error
    except RecursionError:  # "[[[[..." thousands deep exhausts the parser's stack
        raise InputError(f"{file} is nested too deeply; give a flat list of {{name, description, examples}}") from None
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

