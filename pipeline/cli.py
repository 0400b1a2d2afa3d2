"""The ``docintel`` command."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

# Prefect defaults for a local, offline run, unless the user set them: no telemetry calls out of an
# audit environment, and room for the ephemeral API server to start on a small, busy machine.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}

app = typer.Typer(help="docintel: find the sentences in audit documents that signal risk.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """docintel command line."""
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)


@app.command()
def run(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to analyse.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder for sentences.jsonl.")] = Path("out"),
    embedder: Annotated[str | None, typer.Option(help="minilm | mpnet | a hub id or local model path.")] = None,
    sentencizer: Annotated[
        str | None, typer.Option(help="layout (default) | layout-rule | layout-parser | rule | senter | parser | a spaCy pipeline.")
    ] = None,
    store_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the results store.")] = None,
) -> None:
    """Run the analysis flow over PATHS and write OUT/sentences.jsonl."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.analyze import analyze_documents
    from pipeline import progress

    with Progress(TextColumn("documents"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task_id = bar.add_task("analyse", total=None)
        with progress.listening(lambda done, total: bar.update(task_id, completed=done, total=total)):
            summary = analyze_documents(
                [str(p) for p in paths], out_dir=str(out), embedder=embedder, sentencizer=sentencizer,
                store_url=store_url,
            )
    typer.echo(json.dumps(summary, indent=2))
    if summary["failed"]:
        typer.echo(f"{len(summary['failed'])} document(s) failed; the others completed.", err=True)


@app.command("evaluate-segmentation")
def evaluate_segmentation(
    modes: Annotated[
        list[str] | None, typer.Option("--mode", help="Modes to score (repeatable); default: all built-in modes.")
    ] = None,
    gold: Annotated[Path | None, typer.Option(help="Folder of gold files.")] = None,
    eval_docs: Annotated[Path | None, typer.Option(help="Folder of the shared eval documents.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score sentence segmentation modes against the hand-checked gold set (P/R/F1, words/s)."""
    from pipeline.evaluation.segmentation import load_gold_set, markdown_table, score_mode
    from pipeline.settings import REPO_ROOT
    from pipeline.stages.sentencize import BUILTIN_MODES

    gold_set = load_gold_set(
        gold or REPO_ROOT / "data" / "segmentation" / "gold",
        eval_docs or REPO_ROOT.parent / "shared" / "eval" / "docs",
        REPO_ROOT,
    )
    scores = [score_mode(mode, gold_set) for mode in (modes or BUILTIN_MODES)]
    if as_json:
        typer.echo(json.dumps([score.as_dict() for score in scores], indent=2))
    else:
        segments = sum(len(g.segments) for g in gold_set)
        typer.echo(f"{segments} gold segments in {len(gold_set)} documents\n")
        typer.echo(markdown_table(scores))
