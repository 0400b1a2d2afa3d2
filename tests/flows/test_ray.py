"""The flow on a Ray cluster through prefect-ray: a local Ray head with one logical GPU (this machine has
none; Ray accounts logical resources all the same). Each stage task must run in a Ray worker with the
resources derived from the placement plan, and the results must equal the local runner's."""

from __future__ import annotations

import ast
import time

import pytest

from flows.analyze import analyze_documents, on_ray
from pipeline.store import ResultStore

pytestmark = [pytest.mark.usefixtures("prefect_backend"), pytest.mark.slow]


def _rows(store: ResultStore) -> set:
    run = store.run("latest")
    classifier = run.settings["models_used"]["classifier"]
    return {(s.doc_id, s.page, s.start, s.end, s.text, label.label, round(label.score, 4))
            for d in store.run_documents(run.run_id)
            for s, label in store.labelled_sentences(d.doc_id, "spacy:rule", classifier)}


def test_stages_run_on_ray_with_planned_resources_and_equal_results(tmp_path, samples, tiny_models_dir,
                                                                     isolated_settings, monkeypatch):
    import ray
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    monkeypatch.setenv("DOCINTEL_MODELS_DIR", str(tiny_models_dir))
    monkeypatch.setenv("DOCINTEL_RAY_GPU_MEMORY_MB", "8000")  # a small GPU, so the fractions are visible
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, namespace="prefect")
    for _ in range(600):  # the node reports its resources a moment after init (over 10 s once, under load)
        if ray.cluster_resources().get("GPU"):
            break
        time.sleep(0.1)
    assert ray.cluster_resources().get("GPU"), "the local Ray node never reported its logical GPU"
    try:
        address = ray.get_runtime_context().gcs_address
        files = [str(samples / "risk_factors_10k.txt"), str(samples / "board_minutes.pdf")]
        state = on_ray(address)(files, sentencizer="rule", store_url=f"sqlite:///{tmp_path / 'ray.db'}",
                                return_state=True)
        summary = state.result()
    finally:
        ray.shutdown()
    local = analyze_documents(files, sentencizer="rule", store_url=f"sqlite:///{tmp_path / 'local.db'}")
    assert summary["processed"] == local["processed"] == 2 and not summary["failed"]
    assert _rows(ResultStore(summary["store_url"])) == _rows(ResultStore(local["store_url"]))

    placement = ResultStore(summary["store_url"]).run_settings(summary["run_id"])["placement"]
    assert {p["stage"]: p["device"] for p in placement["placements"]} == {
        "ingest": "cpu", "sentencize": "cpu", "embed": "cuda:0", "classify": "cuda:0"}  # the cluster's plan
    ran = {}
    for _ in range(30):  # the Ray workers ship their logs to the API in the background
        with get_client(sync_client=True) as client:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])),
                                    limit=200, offset=0)
        for log in logs:
            if "ran on Ray node" in log.message:
                granted = ast.literal_eval(log.message.split("with resources ", 1)[1])
                ran.setdefault(log.message.split()[1], set()).add(tuple(sorted(granted.items())))
        if len(ran) == 4:
            break
        time.sleep(1)
    # (512 MB cap + 600 MB torch context) / 8000 MB → 0.14 of the GPU; classify (1024 + 600) / 8000 → 0.21
    assert ran == {"ingest": {(("CPU", 1.0),)}, "sentencize": {(("CPU", 1.0),)},
                   "embed": {(("CPU", 1.0), ("GPU", 0.14))}, "classify": {(("CPU", 1.0), ("GPU", 0.21))}}
