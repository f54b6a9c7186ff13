"""``culprit agent``: the mention agent outside Slack (evaluation on a question set)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bot.cli.console import console, print_json

agent_app = typer.Typer(help="The mention agent: evaluate it on responder questions.", no_args_is_help=True)


@agent_app.command("evaluate")
def evaluate_agent(
    file: Annotated[Path, typer.Argument(help="A question file (see benchmarks/data/agent_questions.json).")],
    routes_only: Annotated[
        bool, typer.Option("--routes-only", help="Score the router's tool choice only; run no tool.")
    ] = False,
    split: Annotated[
        str | None, typer.Option("--split", help="Only the questions of this split (e.g. tune, heldout).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores and misses as JSON on stdout.")] = False,
) -> None:
    """Tool, argument and answer accuracy of the agent (the router, or the LLM when one is configured)
    on the configured store; one RCA is stored as the answer of an evaluation thread first."""
    from functools import partial

    from graph.agent_tools import AgentContext
    from graph.evaluation import evaluate
    from graph.rca_graph import run_rca
    from knowledge.config import get_settings
    from knowledge.db import migrate, utcnow
    from knowledge.wiki.store import configured_wiki
    from tools.rca.resources import load_resources
    from tools.rca.retrain.registry import serving_model

    settings = get_settings()
    url = settings.resolved_database_url
    migrate(url)
    resources = load_resources(settings, serving_model(url, data_dir=settings.data_dir))  # what the bot answers with

    def investigate(query):  # type: ignore[no-untyped-def]
        return run_rca(query, database_url=url, resources=resources, persist=bool(query.incident_id))

    context = AgentContext(
        started_at=utcnow(), database_url=url, investigate=investigate, wiki=partial(configured_wiki, settings)
    )
    result = evaluate(file, context, settings, with_answers=not routes_only, split=split)
    if as_json:
        print_json(result.as_dict())
        return
    for name, scores in [("all", result.scores()), *((s, result.scores(s)) for s in sorted({o.split for o in result.outcomes}))]:
        answer = "n/a" if scores.answer is None else f"{scores.answer:.3f}"
        console.print(
            f"[bold]{name}[/] ({scores.n} questions, via {result.via}): tool {scores.tool:.3f}, "
            f"tool+arguments {scores.args:.3f}, answer {answer}",
            highlight=False,
        )
    for miss in result.as_dict()["misses"]:
        shown = (f"{miss['id']} {miss['question']!r}: expected {miss['expected']}, got {miss['tool']} {miss['args']}"
                 + ("" if miss["answer_ok"] is not False else " (fact missing)"))  # fmt: skip
        console.print(f"  [yellow]miss[/] {escape(shown)}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")
