"""One analysis run, start to finish, without an orchestrator.

A run is recorded in the store, its inputs are hashed into work items and claimed batch by batch (work
another run holds is waited for, or taken over if that run died), each claimed batch goes through the
stages — ingest → sentencize → embed ‖ classify (both read the sentences) → store, committed in one
transaction — and the run ends with sentences.jsonl and the audit reports, read back from the store.

How each step executes is the ``Executor``'s business: this one calls the steps in this process;
``flows/analyze.py`` subclasses it to run them as Prefect tasks, on Ray, or in the warm task worker of
``docintel serve``. Everything a test wants to exercise runs here without Prefect.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import progress
from pipeline.analysis import analyzer_for, batched, config_fingerprint, input_limits, iter_inputs, work_items
from pipeline.reports.audit import AuditReport, report_for
from pipeline.reports.exports import Exports, export, summary_markdown
from pipeline.reports.pages import prepare, with_page_images
from pipeline.reports.sentences import write_sentences
from pipeline.records import Document, DocumentFailure, RiskLabel, Sentence, SentenceEmbedding
from pipeline.review import reviewed_report
from pipeline.settings import Settings
from pipeline.store import Claims, ResultStore, WorkItem

WAIT_SECONDS = 2.0  # between looks at work another process holds


# --- the steps: plain functions of picklable arguments, so any worker (a thread, a Ray worker) can run them

def model_versions(settings: Settings) -> dict[str, str]:
    return analyzer_for(settings).model_versions()


def ingest(settings: Settings, items: Sequence[WorkItem | Path]) -> tuple[list[Document], list[DocumentFailure]]:
    return analyzer_for(settings).ingest(items)


def sentencize(settings: Settings, documents: list[Document]) -> tuple[list[Document], list[Sentence],
                                                                       list[DocumentFailure]]:
    return analyzer_for(settings).sentencize(documents)


def embed(settings: Settings, sentences: list[Sentence]) -> list[SentenceEmbedding]:
    return analyzer_for(settings).embed(sentences)


def classify(settings: Settings, sentences: list[Sentence]) -> list[RiskLabel]:
    return analyzer_for(settings).classify(sentences)


def claim(store: ResultStore, run_id: str, items: list[WorkItem]) -> Claims:
    return store.claim(run_id, items)


def store_batch(store: ResultStore, run_id: str, documents: list[Document], sentences: list[Sentence],
                embeddings: list[SentenceEmbedding], risk_labels: list[RiskLabel], failures: list[DocumentFailure],
                segmenter: str, work_keys: dict[str, str]) -> None:
    """Vectors and labels are joined to their sentences by the store (by sentence key), not by position."""
    store.save(run_id, documents, sentences, embeddings, segmenter, risk_labels, failures=failures,
               work_keys=work_keys)


STEPS: dict[str, Callable[..., Any]] = {
    "model-versions": model_versions, "ingest": ingest, "sentencize": sentencize, "embed": embed,
    "classify": classify, "claim": claim, "store": store_batch,
}


class Executor:
    """Runs a run's steps: here, each as a plain call in this process."""

    def __init__(self, settings: Settings, store: ResultStore, log: logging.Logger | logging.LoggerAdapter) -> None:
        self.settings, self.store, self.log = settings, store, log

    def call(self, step: str, *args):
        return STEPS[step](*args)

    def submit(self, step: str, *args) -> Callable[[], Any]:
        """Start ``step``; returns the function that waits for its result. Here it runs at once."""
        result = self.call(step, *args)
        return lambda: result

    def model_versions(self) -> dict[str, str]:
        return self.call("model-versions", self.settings)

    def claim_and_process(self, run_id: str, items: list[WorkItem]) -> Claims:
        """Claim ``items`` for this run and process the ones it got, ``documents_per_batch`` at a time (an
        archive may bring many documents); the ones another live run holds come back as busy."""
        claims = self.call("claim", self.store, run_id, items)
        for chunk in batched(claims.mine, self.settings.documents_per_batch):
            process_batch(self, run_id, chunk)
        return claims


def process_batch(executor: Executor, run_id: str, items: list[WorkItem]) -> None:
    """The stages over claimed work, committed with the work's status in one transaction. A large document's
    progress inside each stage goes to the run's log."""
    settings = executor.settings
    segmenter = analyzer_for(settings).segmenter_label
    with progress.listening_to_stages(lambda event: executor.log.info("%s", event)):
        documents, failures = executor.call("ingest", settings, items)
        documents, sentences, more = executor.call("sentencize", settings, documents)
        embeddings = executor.submit("embed", settings, sentences)
        risk_labels = executor.submit("classify", settings, sentences)
        embeddings, risk_labels = embeddings(), risk_labels()
    executor.call("store", executor.store, run_id, documents, sentences, embeddings, risk_labels, failures + more,
                  segmenter, {item.source: item.key for item in items})


@dataclass
class RunResult:
    """What a run returns (``summary``) and the markdown summary of its reports, when it wrote any."""

    summary: dict
    report_markdown: str | None = None


def execute(executor: Executor, paths: Sequence[str], out_dir: str | None, *, placement: dict,
            triggered_by: str) -> RunResult:
    """One run over ``paths`` (files, folders, archives). With ``out_dir`` (``{run_id}`` in it is replaced),
    write sentences.jsonl and the audit reports. Work already done under the same content, settings and model
    versions is reused, not redone."""
    settings, store, log = executor.settings, executor.store, executor.log
    run_id = store.start_run({**settings.model_dump(mode="json"), "placement": placement}, triggered_by=triggered_by)
    log.info("run %s: sentencizer=%s, embedder=%s, classifier=%s", run_id, settings.sentencizer, settings.embedder,
             settings.classifier)
    if out_dir and "html" in settings.report_formats and settings.report_page_images:
        prepare(input_limits(settings))  # starts meanwhile
    versions = executor.model_versions()
    config = config_fingerprint(settings, versions)

    seen, processed, waiting = 0, 0, []
    staging = settings.home.resolve() / "staging" / run_id  # archives are expanded here; removed after the run
    progress.report(0, None)
    try:
        for batch in batched(iter_inputs(paths), settings.documents_per_batch):
            items, refused = work_items(batch, config, staging, input_limits(settings))
            if refused:
                store.record_failures(run_id, refused)
            claims = executor.claim_and_process(run_id, items)
            seen, processed, waiting = seen + len(batch), processed + len(claims.mine), waiting + claims.busy
            progress.report(seen, None)
            log.info("%d inputs seen, %d processed here, %d held by another run", seen, processed, len(waiting))
        while waiting:  # another run holds these: wait for it to finish them, or take over if it died
            time.sleep(WAIT_SECONDS)
            claims = executor.claim_and_process(run_id, waiting)
            processed, waiting = processed + len(claims.mine), claims.busy
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    store.finish_run(run_id, versions)
    return outputs(store, run_id, settings, out_dir.format(run_id=run_id) if out_dir else None, processed, log)


def export_reports(store: ResultStore, run_id: str, settings: Settings, out_dir: Path,
                   log: logging.Logger | logging.LoggerAdapter,
                   meanwhile: Callable[[], None] | None = None) -> tuple[AuditReport, Exports]:
    """The run's reports in every format the settings name. The HTML report's page images are rendered (in
    the parser's process) while the other formats are written; if they cannot be made, the HTML report is
    written without them and says so. ``meanwhile`` is done while the PDF is laid out (see ``export``)."""
    formats = tuple(settings.report_formats)
    report = reviewed_report(store, report_for(store, run_id, settings))
    if "html" not in formats or not settings.report_page_images:
        return report, export(report, out_dir, formats, meanwhile)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pictured = pool.submit(with_page_images, report, store, input_limits(settings), settings.report_page_images)
        others = export(report, out_dir, tuple(f for f in formats if f != "html"), meanwhile)
        try:
            shown = pictured.result()
        except Exception as exc:  # a bug here must not cost the HTML report: it goes out without page images
            log.error("the HTML report's page images could not be made: %s", exc, exc_info=True)
            shown = dataclasses.replace(report, page_images_note=f"Page images could not be made: {exc}")
    html = export(shown, out_dir, ("html",))
    order = {name: i for i, name in enumerate(formats)}
    return report, Exports(sorted([*others.written, *html.written], key=lambda p: order[p.suffix[1:]]),
                           {**others.failed, **html.failed})


def outputs(store: ResultStore, run_id: str, settings: Settings, out_dir: str | None, processed: int,
            log: logging.Logger | logging.LoggerAdapter) -> RunResult:
    """sentences.jsonl and the reports, both read back from the store, and the run's summary. A report format
    that cannot be written is recorded with the run (export it again with ``docintel report``)."""
    documents = store.run_documents(run_id)
    failed = [d for d in documents if d.status == "failed"]
    for failure in failed:
        log.warning("%s failed at %s: %s", failure.source, failure.stage, failure.error)
    reports, export_errors, markdown, written = [], {}, None, []

    def sentences_file() -> None:  # with reports, written while their PDF is laid out in a forked child
        written.append(write_sentences(store, run_id, Path(out_dir), settings.models_dir))

    if out_dir and settings.report_formats:
        report, exports = export_reports(store, run_id, settings, Path(out_dir), log, meanwhile=sentences_file)
        reports, export_errors = [str(p) for p in exports.written], exports.failed
        log.info("reports: %s", ", ".join(reports))
        if export_errors:
            store.record_export_errors(run_id, export_errors)
            for name, error in export_errors.items():
                log.error("the %s report could not be written: %s", name, error)
        markdown = summary_markdown(report, exports.written)
    elif out_dir:
        sentences_file()
    progress.report(len(documents), len(documents))
    summary = {
        "run_id": run_id,
        "documents": len(documents),
        "processed": processed,
        "reused": sum(1 for d in documents if d.reused_from),
        "failed": [{"source": f.source, "stage": f.stage, "error": f.error} for f in failed],
        "sentences": written[0][1] if written else None,
        "sentences_file": str(written[0][0]) if written else None,
        "reports": reports,
        "export_errors": export_errors,
        "store_url": settings.resolved_store_url,
    }
    return RunResult(summary, markdown)
