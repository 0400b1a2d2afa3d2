"""Prefect flow ``analyze_documents``: ingest → sentencize → embed → classify → store, in batch tasks.

Wiring only: the work is done by ``pipeline.analysis.Analyzer`` (one warm instance per configuration per
process; tasks take the settings, which any worker — a thread here, a Ray worker elsewhere — can carry),
and idempotence by ``pipeline.store`` (claims and per-batch commits keyed by content + configuration).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.context import FlowRunContext
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.concurrency.sync import concurrency

from pipeline import progress
from pipeline.analysis import (Analyzer, analyzer_for, batched, config_fingerprint, input_limits, iter_inputs,
                               work_items)
from pipeline.records import Document, DocumentFailure, RiskLabel, Sentence, SentenceEmbedding
from pipeline.reports.audit import report_for
from pipeline.reports.exports import export, summary_markdown
from pipeline.reports.sentences import write_sentences
from pipeline.settings import Settings
from pipeline.errors import is_transient
from pipeline.placement import Gpu, plan, ray_resources
from pipeline.store import Claims, ResultStore, WorkItem

def retry_if_transient(_task, _task_run, state) -> bool:
    return is_transient(state.result(raise_on_failure=False))


# Records are large and already content-keyed: hashing them for Prefect's cache would only cost time.
TASK_OPTIONS = {"cache_policy": NONE}
# Transient faults (a busy store, a lost connection, a worker process that died) are retried with backoff;
# a bad document is not an exception here: the steps record it as a failure and go on.
RETRY_OPTIONS = {"retries": 3, "retry_delay_seconds": [1, 4, 16], "retry_condition_fn": retry_if_transient,
                 **TASK_OPTIONS}
WAIT_SECONDS = 2.0  # between looks at work another process holds


def _in_ray_worker():
    """The Ray runtime context when this task runs in a Ray worker (prefect-ray), else None."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    return context if context.worker.mode == ray.WORKER_MODE else None


@contextmanager
def gpu_slot(analyzer: Analyzer, stage: str):
    """GPU work is serialised per device across flow runs: a "gpu:N" concurrency slot (see ensure_gpu_limits).
    In a Ray worker, Ray's own resource accounting does that (and N would name another node's GPU): the
    task logs where it ran and what Ray gave it instead."""
    if (ray_context := _in_ray_worker()) is not None:
        get_run_logger().info("stage %s ran on Ray node %s (pid %d) with resources %s", stage,
                              ray_context.get_node_id(), os.getpid(), ray_context.get_assigned_resources())
        yield
        return
    index = analyzer.plan.for_stage(stage).gpu_index
    with concurrency(f"gpu:{index}", occupy=1) if index is not None else nullcontext():
        yield


def ensure_gpu_limits(analyzer: Analyzer) -> list[str]:
    """Create the "gpu:N" global concurrency limits (1 slot) the plan uses, if missing."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    names = sorted({f"gpu:{p.gpu_index}" for p in analyzer.plan.placements if p.gpu_index is not None})
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    return names


@task(name="model-versions", **RETRY_OPTIONS)
def model_versions(settings: Settings) -> dict[str, str]:
    return analyzer_for(settings).model_versions()


@task(name="ingest", **RETRY_OPTIONS)
def ingest(settings: Settings, items: list[WorkItem]) -> tuple[list[Document], list[DocumentFailure]]:
    analyzer = analyzer_for(settings)
    with gpu_slot(analyzer, "ingest"):
        return analyzer.ingest(items)


@task(name="sentencize", **RETRY_OPTIONS)
def sentencize(settings: Settings, documents: list[Document]) -> tuple[list[Document], list[Sentence], list[DocumentFailure]]:
    analyzer = analyzer_for(settings)
    with gpu_slot(analyzer, "sentencize"):
        return analyzer.sentencize(documents)


@task(name="embed", **RETRY_OPTIONS)
def embed(settings: Settings, sentences: list[Sentence]) -> list[SentenceEmbedding]:
    analyzer = analyzer_for(settings)
    with gpu_slot(analyzer, "embed"):
        return analyzer.embed(sentences)


@task(name="classify", **RETRY_OPTIONS)
def classify(settings: Settings, embeddings: list[SentenceEmbedding]) -> list[RiskLabel]:
    analyzer = analyzer_for(settings)
    with gpu_slot(analyzer, "classify"):
        return analyzer.classify(embeddings)


@task(name="claim", **RETRY_OPTIONS)
def claim(store: ResultStore, run_id: str, items: list[WorkItem]) -> Claims:
    return store.claim(run_id, items)


@task(name="store", **RETRY_OPTIONS)
def store_batch(
    store: ResultStore,
    run_id: str,
    documents: list[Document],
    embeddings: list[SentenceEmbedding],
    risk_labels: list[RiskLabel],
    failures: list[DocumentFailure],
    segmenter: str,
    work_keys: dict[str, str],
) -> None:
    store.save(run_id, documents, [e.sentence for e in embeddings], embeddings, segmenter, risk_labels,
               failures=failures, work_keys=work_keys)


def _local_call(step, *args):
    return step(*args)


def _stages(settings: Settings, store: ResultStore, run_id: str, items: list[WorkItem], segmenter: str,
            call=_local_call) -> None:
    """Run the stages over claimed work and commit it, results and work status in one transaction.
    ``call`` runs each step: as a Prefect task here (default), submitted to Ray, or as its plain function.
    A large document's progress inside each stage goes to the run's log."""
    logger = get_run_logger()
    with progress.listening_to_stages(lambda event: logger.info("%s", event)):
        documents, failures = call(ingest, settings, items)
        documents, sentences, more = call(sentencize, settings, documents)
        embeddings = call(embed, settings, sentences)
        risk_labels = call(classify, settings, embeddings)
    call(store_batch, store, run_id, documents, embeddings, risk_labels, failures + more, segmenter,
         {item.source: item.key for item in items})


@task(name="analyze-batch", persist_result=True, **RETRY_OPTIONS)
def analyze_batch(settings: Settings, run_id: str, items: list[WorkItem], segmenter: str) -> int:
    """Every stage for one batch of claimed work, executed by the warm task worker of ``docintel serve``
    (its models stay loaded between runs)."""
    _stages(settings, ResultStore(settings.resolved_store_url), run_id, items, segmenter,
            call=lambda step, *args: step.fn(*args))
    return len(items)


@task(name="warm-model-versions", persist_result=True, **RETRY_OPTIONS)
def warm_model_versions(settings: Settings) -> dict[str, str]:
    """``model_versions`` for the task worker of ``docintel serve``."""
    return analyzer_for(settings).model_versions()


SERVED_TASKS = (analyze_batch, warm_model_versions)  # what ``docintel serve`` runs in its warm task worker


def on_ray(address: str | None):
    """The flow with its stage tasks on a Ray cluster (prefect-ray); a local Ray when ``address`` is None."""
    from prefect_ray import RayTaskRunner

    return analyze_documents.with_options(task_runner=RayTaskRunner(address=address))


def _ray_plan(analyzer: Analyzer, settings: Settings):
    """The placement plan for the Ray cluster's GPUs (Ray counts them; their memory is a setting)."""
    import ray

    gpus = [Gpu(i, "ray", settings.ray_gpu_memory_mb) for i in range(int(ray.cluster_resources().get("GPU", 0)))]
    return plan([stage.spec() for stage in analyzer.stages()], gpus)


def _ray_call(resources: dict[str, dict[str, float]]):
    """Submit a stage task to Ray with its resource request; other steps (the store) run in the flow."""
    from prefect_ray.context import remote_options

    def call(step, *args):
        if step.name not in resources:
            return step(*args)
        with remote_options(**resources[step.name]):
            return step.submit(*args).result()
    return call


def _served(step, *args):
    """Run ``step`` in the task worker of ``docintel serve`` and wait for its result. The server records a
    background task run from its event a moment after ``delay`` returns: until then, reading it is a 404."""
    from prefect.exceptions import ObjectNotFound

    future = step.delay(*args)
    for _ in range(100):
        try:
            return future.result()
        except ObjectNotFound:
            time.sleep(0.1)
    return future.result()


@flow(name="analyze-documents", persist_result=True)
def analyze_documents(
    paths: list[str],
    out_dir: str | None = None,
    embedder: str | None = None,
    sentencizer: str | None = None,
    store_url: str | None = None,
    classifier: str | None = None,
    risk_register: str | None = None,
    served: bool = False,
) -> dict:
    """Analyse documents (files or folders) and store the results; with ``out_dir`` (``{run_id}`` in it is
    replaced), write sentences.jsonl and the audit reports. Work already done under the same content,
    settings and model versions is reused, not redone; work another run holds is waited for. ``served``:
    the stages run in the warm task worker of ``docintel serve`` instead of this process."""
    logger = get_run_logger()
    overrides = {"embedder": embedder, "sentencizer": sentencizer, "store_url": store_url, "classifier": classifier,
                 "risk_register": risk_register}
    settings = Settings(**{key: value for key, value in overrides.items() if value is not None})
    analyzer = analyzer_for(settings)
    store = ResultStore(settings.resolved_store_url)
    on_ray_cluster = type(FlowRunContext.get().task_runner).__name__ == "RayTaskRunner"
    placement = _ray_plan(analyzer, settings) if on_ray_cluster else analyzer.plan
    run_id = store.start_run({**settings.model_dump(mode="json"), "placement": placement.to_dict()},
                             triggered_by=_trigger())
    logger.info("run %s: sentencizer=%s, embedder=%s, classifier=%s", run_id, settings.sentencizer,
                settings.embedder, settings.classifier)
    logger.info("placement plan%s:\n%s", " for the Ray cluster" if on_ray_cluster else "", placement.table())
    if on_ray_cluster:
        resources = ray_resources(placement, settings.ray_gpu_memory_mb)
        logger.info("Ray resource requests per stage: %s", resources)
        call = _ray_call(resources | {"model-versions": {  # it loads both models
            "num_cpus": 1.0, "num_gpus": sum(resources[s].get("num_gpus", 0) for s in ("embed", "classify"))}})
        versions = call(model_versions, settings)
    else:
        if slots := ensure_gpu_limits(analyzer):
            logger.info("GPU work serialised through concurrency limits %s", ", ".join(slots))
        call = _local_call
        versions = _served(warm_model_versions, settings) if served else model_versions(settings)
    config = config_fingerprint(settings, versions)

    def process(items: list[WorkItem]) -> None:
        for chunk in batched(items, settings.documents_per_batch):  # an archive may bring many documents
            if served:
                _served(analyze_batch, settings, run_id, chunk, analyzer.segmenter_label)
            else:
                _stages(settings, store, run_id, chunk, analyzer.segmenter_label, call=call)

    seen, processed, waiting = 0, 0, []
    staging = settings.home.resolve() / "staging" / run_id  # archives are expanded here; removed after the run
    progress.report(0, None)
    try:
        for batch in batched(iter_inputs(paths), settings.documents_per_batch):
            items, refused = work_items(batch, config, staging, input_limits(settings))
            if refused:
                store.record_failures(run_id, refused)
            claims = claim(store, run_id, items)
            if claims.mine:
                process(claims.mine)
            seen, processed, waiting = seen + len(batch), processed + len(claims.mine), waiting + claims.busy
            progress.report(seen, None)
            logger.info("%d inputs seen, %d processed here, %d held by another run", seen, processed, len(waiting))
        while waiting:  # another run holds these: wait for it to finish them, or take over if it died
            time.sleep(WAIT_SECONDS)
            claims = claim(store, run_id, waiting)
            if claims.mine:
                process(claims.mine)
            processed, waiting = processed + len(claims.mine), claims.busy
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    store.finish_run(run_id, versions)
    return _outputs(store, run_id, settings, out_dir.format(run_id=run_id) if out_dir else None, processed)


def _trigger() -> str:
    """Which deployment started this run, or the flow's name for a direct call."""
    from prefect.runtime import deployment

    return f"deployment {deployment.name}" if deployment.name else "analyze-documents"


def _outputs(store: ResultStore, run_id: str, settings: Settings, out_dir: str | None, processed: int) -> dict:
    """sentences.jsonl and the reports, both read back from the store, and the run's summary."""
    logger = get_run_logger()
    documents = store.run_documents(run_id)
    failed = [d for d in documents if d.status == "failed"]
    for failure in failed:
        logger.warning("%s failed at %s: %s", failure.source, failure.stage, failure.error)
    output, sentences, reports, export_errors = None, None, [], {}
    if out_dir:
        path, sentences = write_sentences(store, run_id, Path(out_dir), settings.models_dir)
        output = str(path)
    if out_dir and settings.report_formats:
        report = report_for(store, run_id, settings)
        exports = export(report, Path(out_dir), tuple(settings.report_formats))
        reports, export_errors = [str(p) for p in exports.written], exports.failed
        logger.info("reports: %s", ", ".join(reports))
        if export_errors:  # the results are stored: they can be exported again with `docintel report`
            store.record_export_errors(run_id, export_errors)
            for name, error in export_errors.items():
                logger.error("the %s report could not be written: %s", name, error)
        create_markdown_artifact(summary_markdown(report, exports.written), key="docintel-run-summary",
                                 description=f"docintel run {run_id}")
    progress.report(len(documents), len(documents))
    return {
        "run_id": run_id,
        "documents": len(documents),
        "processed": processed,
        "reused": sum(1 for d in documents if d.reused_from),
        "failed": [{"source": f.source, "stage": f.stage, "error": f.error} for f in failed],
        "sentences": sentences,
        "sentences_file": output,
        "reports": reports,
        "export_errors": export_errors,
        "store_url": settings.resolved_store_url,
    }
