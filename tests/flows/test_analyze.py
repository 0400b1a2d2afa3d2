"""The Prefect flow end to end on real files, with one bad document in the batch."""

from __future__ import annotations

import json

import pytest

from flows.analyze import analyze_documents
from pipeline.store import ResultStore, RiskLabelRow, SentenceRow

pytestmark = pytest.mark.usefixtures("prefect_backend")


def test_flow_over_samples_with_a_bad_document(tmp_path, samples, isolated_settings, tiny_models_dir, monkeypatch):
    monkeypatch.setenv("DOCINTEL_MODELS_DIR", str(tiny_models_dir))
    bad = tmp_path / "inbox" / "broken.pdf"
    bad.parent.mkdir()
    bad.write_bytes(b"%PDF-1.7 truncated garbage")
    unsupported = tmp_path / "inbox" / "scan.tiff"
    unsupported.write_bytes(b"II*\x00")
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    out = tmp_path / "out"

    summary = analyze_documents(
        [str(samples), str(bad), str(unsupported)], out_dir=str(out), sentencizer="rule", store_url=store_url
    )

    sample_files = [p for p in samples.iterdir() if p.suffix in {".txt", ".html", ".pdf", ".docx"}]
    assert summary["documents"] == len(sample_files) + 2
    assert sorted(f["source"].rsplit("/", 1)[1] for f in summary["failed"]) == ["broken.pdf", "scan.tiff"]
    records = [json.loads(line) for line in (out / "sentences.jsonl").read_text().splitlines()]
    assert len(records) == summary["sentences"] > 50
    assert {r["source"] for r in records} == {str(p.resolve()) for p in sample_files}
    assert {"doc_id", "source", "page", "start", "end", "text", "embedding_model", "risk_label", "risk_score",
            "risk_distribution", "classifier_model"} <= set(records[0])
    assert all(r["risk_distribution"][r["risk_label"]] == pytest.approx(r["risk_score"], abs=1e-5) for r in records)

    store = ResultStore(store_url)
    assert store.count(SentenceRow) == len(records) == store.count(RiskLabelRow)
    for record in records[::25]:
        assert store.page_text(record["doc_id"], record["page"])[record["start"]:record["end"]] == record["text"]
    assert sorted(p.rsplit("/", 1)[1] for p in summary["reports"]) == ["report.csv", "report.html", "report.json",
                                                                      "report.pdf", "report.xlsx"]
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["failed"] == 2 and report["totals"]["sentences"] == len(records)
    assert set(report["models"]) == {"embedder", "classifier"}

    placement = store.run_settings(summary["run_id"])["placement"]
    assert [p["stage"] for p in placement["placements"]] == ["ingest", "sentencize", "embed", "classify"]
    assert {p["device"] for p in placement["placements"]} == {"cpu"}  # no GPU on the test machine
    statuses = [r.status for r in store.run_documents(summary["run_id"])]
    assert statuses.count("failed") == 2 and statuses.count("done") == len(sample_files)
    assert all(r.error for r in store.run_documents(summary["run_id"]) if r.status == "failed")


def test_flow_with_the_tensorflow_use_embedder(tmp_path, samples, isolated_settings, tiny_models_dir, monkeypatch):
    """USE (TensorFlow) embeds, the torch classifier still labels, and each vector names its model version."""
    monkeypatch.setenv("DOCINTEL_MODELS_DIR", str(tiny_models_dir))
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    summary = analyze_documents([str(samples / "risk_factors_10k.txt")], out_dir=str(tmp_path / "out"),
                                embedder="use", store_url=store_url)

    records = [json.loads(line) for line in (tmp_path / "out" / "sentences.jsonl").read_text().splitlines()]
    assert not summary["failed"] and len(records) == summary["sentences"] > 5
    assert all(r["embedding_model"].startswith("use@") and r["risk_label"] for r in records)
    store = ResultStore(store_url)
    assert store.embedding_models() == {records[0]["embedding_model"]: (512, len(records))}
    assert store.count(RiskLabelRow) == len(records)


def test_task_logic_without_the_engine(tmp_path, isolated_settings):
    """Tasks are thin: ``.fn`` runs the same step without Prefect."""
    from flows.analyze import ingest
    from pipeline.settings import Settings

    good = tmp_path / "a.txt"
    good.write_text("Cash is tight. Lenders may call the loan.", encoding="utf-8")
    documents, failures = ingest.fn(Settings(), [good, tmp_path / "missing.txt"])
    assert len(documents) == 1 and failures[0].stage == "ingest" and "no such file" in failures[0].error


def test_gpu_concurrency_limit_is_created_on_demand(isolated_settings):
    """A plan that uses GPU 0 gets a one-slot "gpu:0" global concurrency limit; running it twice is fine.
    (The GPU is described, not used: only the plan and Prefect's limit are exercised.)"""
    from prefect.client.orchestration import get_client

    from flows.analyze import ensure_gpu_limits, gpu_slot
    from pipeline.analysis import Analyzer
    from pipeline.placement import Gpu, plan
    from pipeline.settings import Settings

    analyzer = Analyzer(Settings())
    analyzer.__dict__["plan"] = plan([s.spec() for s in analyzer.stages()], [Gpu(0, "described", 81_559)])
    assert ensure_gpu_limits(analyzer) == ensure_gpu_limits(analyzer) == ["gpu:0"]
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("gpu:0").limit == 1
    with gpu_slot(analyzer, "classify"):
        with get_client(sync_client=True) as client:
            assert client.read_global_concurrency_limit_by_name("gpu:0").active_slots == 1


def test_a_transient_store_fault_is_retried_and_rows_are_stored_once(tmp_path, samples, isolated_settings,
                                                                     tiny_models_dir, monkeypatch):
    """Fault injection around the real store: the first commit succeeds but its caller sees "database is
    locked" (as when an acknowledgement is lost); Prefect retries the store task, nothing is stored twice."""
    from sqlalchemy.exc import OperationalError

    from pipeline.store import DocumentRow, RunDocumentRow, WorkRow

    monkeypatch.setenv("DOCINTEL_MODELS_DIR", str(tiny_models_dir))
    real_save, calls = ResultStore.save, []

    def save_then_fail_once(self, *args, **kwargs):
        calls.append(1)
        ids = real_save(self, *args, **kwargs)
        if len(calls) == 1:
            raise OperationalError("COMMIT", {}, Exception("database is locked"))
        return ids

    monkeypatch.setattr(ResultStore, "save", save_then_fail_once)
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7 truncated garbage")
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    summary = analyze_documents([str(samples / "risk_factors_10k.txt"), str(bad)], sentencizer="rule",
                                store_url=store_url)
    store = ResultStore(store_url)
    assert len(calls) == 2 and summary["processed"] == 2 and len(summary["failed"]) == 1
    assert store.count(DocumentRow) == 1 and store.count(WorkRow) == 2 and store.count(RunDocumentRow) == 2
    assert store.count(SentenceRow) == store.count(RiskLabelRow) > 20


def test_a_large_document_logs_its_progress_inside_each_stage(tmp_path, isolated_settings, tiny_models_dir,
                                                               monkeypatch):
    """Over 1,000 pages: the run's Prefect log says how far each stage has got, instead of going silent."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    monkeypatch.setenv("DOCINTEL_MODELS_DIR", str(tiny_models_dir))
    filing = tmp_path / "filing.txt"
    filing.write_text("\f".join(f"Revenue fell on page {i}. Lenders may call the loan." for i in range(1, 1201)))
    state = analyze_documents([str(filing)], sentencizer="rule", store_url=f"sqlite:///{tmp_path / 'store.db'}",
                              return_state=True)
    assert state.is_completed() and state.result()["processed"] == 1 and not state.result()["failed"]
    APILogHandler().flush()  # send what is queued for the API now
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])), limit=200, offset=0)
    messages = [log.message for log in logs]
    for stage, last in (("ingest", "1,200 of 1,200 pages"), ("sentencize", "1,200 of 1,200 pages"),
                        ("embed", "2,400 of 2,400 sentences"), ("classify", "2,400 of 2,400 sentences")):
        assert f"{stage}: {filing.resolve()}: {last}" in messages, messages
