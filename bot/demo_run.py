"""``culprit demo`` end to end: generate Acme, load it, train the local judge, answer one incident.

This sits in ``bot/`` because it crosses every layer: generation and loading
are ``knowledge``, training is ``tools``, the answer is the ``graph``. Each step
skips work already done, so a second run on the same data directory changes
nothing and still prints the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graph.rca_graph import run_rca
from knowledge.config import Settings
from knowledge.demo import DemoFiles, DemoOrganisation, generate_organisation, write_demo_files
from knowledge.demo.loader import load_demo
from knowledge.errors import CulpritError
from knowledge.wiki.store import configured_wiki
from knowledge.ingest.progress import Progress
from knowledge.ingest.report import LoadReport
from tools.rca.answers import IncidentQuery, RcaAnswer
from tools.reports.classifiers import classifier_path, configured_classifier
from tools.reports.classifiers.embedded import EmbeddedClassifier
from tools.rca.history.cases import History, load_history
from tools.rca.judges.local import RankerModel, load_model, save_model
from tools.rca.history.training import train_model
from tools.rca.resources import load_resources
from tools.rca.store import stored_words
from tools.reports.redaction import redact
from tools.reports.intake import BATCH as REPORT_BATCH
from tools.reports.intake import IntakeResult, ingest_reports, read_report_file


@dataclass
class DemoRun:
    """What the demo did, for the terminal or ``--json``."""

    org: DemoOrganisation
    files: DemoFiles
    loaded: list[LoadReport]
    training: str
    answer: RcaAnswer
    threshold: float  # the confidence the answer was gated at

    @property
    def example_query(self) -> IncidentQuery:
        return self.answer.incident

    @property
    def culprit_rank(self) -> int | None:
        """Where the answer key's culprit landed in the suggestions (1-based), if at all."""
        for suggestion in self.answer.suggestions:
            if suggestion.change_id in self.org.example.culprits:
                return suggestion.rank
        return None


def run_demo(
    settings: Settings,
    directory: Path,
    seed: int,
    progress: Progress,
    days: int = 180,
    n_changes: int = 3000,
    n_incidents: int = 300,
) -> DemoRun:
    url = settings.resolved_database_url
    progress.start("generating the Acme organisation")
    org = generate_organisation(seed, n_changes=n_changes, n_incidents=n_incidents, days=days)
    progress.start(f"writing demo files to {directory}")
    files = write_demo_files(org, directory)
    loaded = load_demo(files, url, configured_wiki(settings), stored_words, progress)
    loaded.append(load_demo_reports(files, settings, progress))
    training = train_demo_ranker(files, settings.resolved_ranker_path, progress)
    progress.start(f"answering the example incident {org.example.id}")
    resources = load_resources(settings)
    answer = run_rca(example_query(org), database_url=url, resources=resources, persist=False)
    return DemoRun(
        org=org, files=files, loaded=loaded, training=training, answer=answer, threshold=resources.min_confidence
    )


def example_query(org: DemoOrganisation) -> IncidentQuery:
    """The example incident as a responder would type it into ``/rca``."""
    example = org.example
    return IncidentQuery(
        text=example.text,
        title=example.title,
        service=example.service,
        started_at=example.started_at,
        repo=org.repo,
        incident_id=example.id,
    )


def load_demo_reports(files: DemoFiles, settings: Settings, progress: Progress) -> LoadReport:
    """Bug reports through the real intake (redaction, classification, daily counts).

    Without a report classifier yet, one is trained on a labelled sixth of the
    reports, as a team would label a sample of its own.
    """
    incoming, _problems = read_report_file(files.reports)
    classifier = configured_classifier(settings)
    if classifier is None:
        labelled = incoming[::6]
        progress.start(f"training the report classifier on {len(labelled)} labelled reports")
        classifier = EmbeddedClassifier.train([redact(r.text) for r in labelled], [r.label or "" for r in labelled])
        classifier.save(classifier_path(settings.data_dir))
    progress.start("redacting, classifying and storing bug reports", total=len(incoming))
    result = IntakeResult()
    for start in range(0, len(incoming), REPORT_BATCH):
        batch = incoming[start : start + REPORT_BATCH]
        result.add(ingest_reports(
            batch, source="demo", classifier=classifier, other_confidence=settings.other_confidence,
            url=settings.resolved_database_url,
        ))
        progress.advance(len(batch))
    return LoadReport(
        kind="bug reports", source=str(files.reports), new=result.stored, already_present=result.duplicates
    )


def train_demo_ranker(files: DemoFiles, path: Path, progress: Progress) -> str:
    """Train the local judge on the demo's past incidents unless that exact model is in place.

    It learns without change embeddings, so its answers rank on the other signals:
    embedding every change would more than double the demo's run time. ``culprit
    embed-changes`` then ``culprit train`` give a model that uses them.
    A model trained on someone's own history is never replaced.
    """
    history = load_history([files.cases], [files.commits])
    existing = _existing_model(path)
    if existing is not None and existing.repos != history.repos():
        return f"kept the local judge at {path} (trained on {', '.join(existing.repos)}, not on the demo)"
    if existing is not None and _trained_on(existing, history):
        return f"the local judge at {path} is already trained on these {len(history.cases)} incidents"
    progress.start("training the local judge on past incidents", total=2 * len(history.cases))
    model = train_model(history, history.cases, None, progress=progress.advance)
    save_model(model, path)
    return f"trained the local judge on {model.n_cases} past incidents ({path})"


def _existing_model(path: Path) -> RankerModel | None:
    if not path.exists():
        return None
    try:
        return load_model(path)
    except CulpritError:
        return None


def _trained_on(model: RankerModel, history: History) -> bool:
    trained_until = float(history.cases[-1].incident.time + 1)
    return model.trained_until == trained_until and model.n_cases == len(history.cases)
