"""One batch of hostile inputs among good ones, through the real flow: each hostile input gets its own
clear error in the store and in the reports, every good document completes, and no file is written
outside the output folder and docintel's home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile import LIMITS_ENV, build_inbox

from flows.analyze import analyze_documents
from pipeline.store import ResultStore

pytestmark = pytest.mark.usefixtures("prefect_backend")


def test_hostile_batch_fails_each_bad_input_clearly_and_completes_the_rest(tmp_path, isolated_settings,
                                                                          tiny_models_dir, good_docx, monkeypatch):
    monkeypatch.setenv("DOCINTEL_MODELS_DIR", str(tiny_models_dir))
    monkeypatch.setenv("DOCINTEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCINTEL_DOCUMENTS_PER_BATCH", "64")  # all of them in one batch
    for name, value in LIMITS_ENV.items():
        monkeypatch.setenv(name, value)
    inbox = tmp_path / "inbox"
    expected = build_inbox(inbox, good_docx)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    before = set(tmp_path.rglob("*"))

    summary = analyze_documents([str(inbox)], out_dir=str(tmp_path / "out"), sentencizer="rule", store_url=store_url)

    store = ResultStore(store_url)
    rows = {Path(r.source.split("!/")[0]).name + ("!/" + r.source.split("!/")[1] if "!/" in r.source else ""): r
            for r in store.run_documents(summary["run_id"])}
    for name, words in expected.items():
        if words is None and name != "bundle.zip":
            assert rows[name].status == "done", (name, rows[name].error)
        elif words is not None:
            assert rows[name].status == "failed" and words in rows[name].error, (name, rows[name].error)
    assert rows["bundle.zip!/memo/a.txt"].status == rows["bundle.zip!/board.docx"].status == "done"
    assert "bundle.zip" not in rows  # the archive itself is a container, not a document

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    failed = {Path(d["source"]).name: d["error"] for d in report["documents"] if d["status"] == "failed"}
    assert {name for name, words in expected.items() if words is not None} == set(failed)
    html = (tmp_path / "out" / "report.html").read_text()
    assert all(name in html for name in failed) and f"parsing was stopped after {LIMITS_ENV['DOCINTEL_PARSE_TIMEOUT_S']} s" in html
    assert summary["sentences"] > 0 and len(summary["failed"]) == len(failed)

    created = set(tmp_path.rglob("*")) - before
    allowed = (tmp_path / "out", tmp_path / "home", tmp_path / "store.db")
    assert all(any(p == a or a in p.parents or p.name.startswith("store.db") for a in allowed) for p in created)
    assert not (tmp_path / "home" / "staging" / summary["run_id"]).exists()  # expanded archives are cleaned up
