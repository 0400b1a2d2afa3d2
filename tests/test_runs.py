"""The run loop without any orchestrator: ``pipeline.runs`` with its plain in-process executor, as a test, a
notebook or another scheduler would call it. Prefect's wiring of the same loop is tested in tests/flows/."""

from __future__ import annotations

import json
import logging

from pipeline import runs
from pipeline.settings import Settings
from pipeline.store import ResultStore


def test_a_run_without_prefect_stores_writes_and_reuses(tmp_path, samples, isolated_settings, tiny_models_dir,
                                                        monkeypatch):
    monkeypatch.setenv("DOCINTEL_MODELS_DIR", str(tiny_models_dir))
    settings = Settings(store_url=f"sqlite:///{tmp_path / 'store.db'}", sentencizer="rule",
                        report_formats=("json", "csv"))
    store = ResultStore(settings.resolved_store_url)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7 not really")
    executor = runs.Executor(settings, store, logging.getLogger("test"))

    first = runs.execute(executor, [str(samples / "risk_factors_10k.txt"), str(broken)], str(tmp_path / "{run_id}"),
                         placement={}, triggered_by="test")
    summary = first.summary
    assert summary["documents"] == 2 and summary["processed"] == 2 and summary["reused"] == 0
    assert [f["source"] for f in summary["failed"]] == [str(broken.resolve())]
    out = tmp_path / summary["run_id"]
    lines = (out / "sentences.jsonl").read_text().splitlines()
    assert len(lines) == summary["sentences"] > 5 and all(json.loads(line)["risk_label"] for line in lines)
    assert json.loads((out / "report.json").read_text())["triggered_by"] == "test"
    assert sorted(p.name for p in out.iterdir()) == ["report.csv", "report.json", "sentences.jsonl"]

    again = runs.execute(executor, [str(samples / "risk_factors_10k.txt")], None, placement={}, triggered_by="test")
    assert again.summary["processed"] == 0 and again.summary["reused"] == 1 and again.report_markdown is None
