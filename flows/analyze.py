"""Prefect flow ``analyze_documents``: ingest → sentencize → embed → classify → store, in batch tasks.

Wiring only: the work is done by ``pipeline.analysis.Analyzer``.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.concurrency.sync import concurrency

from pipeline import progress
from pipeline.analysis import Analyzer, analyzer_for, batched, expand_inputs
from pipeline.records import Document, DocumentFailure, RiskLabel, Sentence, SentenceEmbedding
from pipeline.reports.audit import report_for
from pipeline.reports.exports import export, summary_markdown
from pipeline.reports.sentences import SentencesWriter, sentence_record
from pipeline.settings import Settings
from pipeline.store import ResultStore

# Records are large and already content-keyed: hashing them for Prefect's cache would only cost time.
TASK_OPTIONS = {"cache_policy": NONE}


@task(name="ingest", **TASK_OPTIONS)
def ingest(analyzer: Analyzer, paths: list[Path]) -> tuple[list[Document], list[DocumentFailure]]:
    return analyzer.ingest(paths)


def gpu_slot(analyzer: Analyzer, stage: str):
    """GPU work is serialised per device across flow runs: a "gpu:N" concurrency slot (see ensure_gpu_limits)."""
    index = analyzer.plan.for_stage(stage).gpu_index
    return concurrency(f"gpu:{index}", occupy=1) if index is not None else nullcontext()


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


@task(name="sentencize", **TASK_OPTIONS)
def sentencize(analyzer: Analyzer, documents: list[Document]) -> tuple[list[Document], list[Sentence], list[DocumentFailure]]:
    with gpu_slot(analyzer, "sentencize"):
        return analyzer.sentencize(documents)


@task(name="embed", **TASK_OPTIONS)
def embed(analyzer: Analyzer, sentences: list[Sentence]) -> list[SentenceEmbedding]:
    with gpu_slot(analyzer, "embed"):
        return analyzer.embed(sentences)


@task(name="classify", **TASK_OPTIONS)
def classify(analyzer: Analyzer, embeddings: list[SentenceEmbedding]) -> list[RiskLabel]:
    with gpu_slot(analyzer, "classify"):
        return analyzer.classify(embeddings)


@task(name="store", retries=3, retry_delay_seconds=[1, 4, 16], **TASK_OPTIONS)
def store_batch(
    store: ResultStore,
    run_id: str,
    documents: list[Document],
    embeddings: list[SentenceEmbedding],
    risk_labels: list[RiskLabel],
    failures: list[DocumentFailure],
    segmenter: str,
) -> None:
    store.save(run_id, documents, [e.sentence for e in embeddings], embeddings, segmenter, risk_labels)
    store.record_failures(run_id, failures)


@flow(name="analyze-documents")
def analyze_documents(
    paths: list[str],
    out_dir: str | None = None,
    embedder: str | None = None,
    sentencizer: str | None = None,
    store_url: str | None = None,
    classifier: str | None = None,
    risk_register: str | None = None,
) -> dict:
    """Analyse documents (files or folders); store results and, with ``out_dir``, write sentences.jsonl."""
    logger = get_run_logger()
    overrides = {"embedder": embedder, "sentencizer": sentencizer, "store_url": store_url, "classifier": classifier,
                 "risk_register": risk_register}
    settings = Settings(**{key: value for key, value in overrides.items() if value is not None})
    analyzer = analyzer_for(settings)
    store = ResultStore(settings.resolved_store_url)
    placement = analyzer.plan
    run_id = store.start_run({**settings.model_dump(mode="json"), "placement": placement.to_dict()},
                             triggered_by="analyze-documents")
    files = expand_inputs(paths)
    writer = SentencesWriter(Path(out_dir)) if out_dir else None
    logger.info("run %s: %d documents, sentencizer=%s, embedder=%s, classifier=%s", run_id, len(files),
                settings.sentencizer, settings.embedder, settings.classifier)
    logger.info("placement plan:\n%s", placement.table())
    if slots := ensure_gpu_limits(analyzer):
        logger.info("GPU work serialised through concurrency limits %s", ", ".join(slots))

    done, failed, sentence_count, findings, models_used = 0, [], 0, 0, {}
    progress.report(0, len(files))
    for batch in batched(files, settings.documents_per_batch):
        documents, failures = ingest(analyzer, list(batch))
        documents, sentences, more = sentencize(analyzer, documents)
        failures = failures + more
        embeddings = embed(analyzer, sentences)
        risk_labels = classify(analyzer, embeddings)
        store_batch(store, run_id, documents, embeddings, risk_labels, failures, analyzer.segmenter_label)
        if embeddings:
            models_used.update(embedder=embeddings[0].model, classifier=risk_labels[0].model)
        if writer:
            writer.append(sentence_record(e, r) for e, r in zip(embeddings, risk_labels, strict=True))
        for failure in failures:
            logger.warning("%s failed at %s: %s", failure.source, failure.stage, failure.error)
        done += len(batch)
        failed.extend(failures)
        sentence_count += len(sentences)
        findings += sum(r.label != "none" for r in risk_labels)
        progress.report(done, len(files))
        logger.info("%d/%d documents, %d sentences so far", done, len(files), sentence_count)

    store.finish_run(run_id, models_used)
    output = str(writer.close()) if writer else None
    reports = []
    if out_dir and settings.report_formats:
        report = report_for(store, run_id, settings)
        written = export(report, Path(out_dir), tuple(settings.report_formats))
        reports = [str(p) for p in written]
        logger.info("reports: %s", ", ".join(reports))
        create_markdown_artifact(summary_markdown(report, written), key="docintel-run-summary",
                                 description=f"docintel run {run_id}")
    return {
        "run_id": run_id,
        "documents": len(files),
        "failed": [{"source": f.source, "stage": f.stage, "error": f.error} for f in failed],
        "sentences": sentence_count,
        "risk_sentences": findings,
        "sentences_file": output,
        "reports": reports,
        "store_url": settings.resolved_store_url,
    }
