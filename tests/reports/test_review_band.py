"""The review band reaches every output: a finding whose score is below its classifier's band is marked
``needs_review`` in sentences.jsonl, the JSON/CSV/XLSX/HTML/PDF reports and the summary count; a run labelled
by a classifier version that is no longer registered says its band is unknown instead of guessing."""

from __future__ import annotations

import csv
import json
import shutil

from openpyxl import load_workbook
from stores import labelled_store

from pipeline.calibration import Calibration
from pipeline.models import ModelRegistry
from pipeline.reports.audit import build_report
from pipeline.reports.exports import FORMATS, export
from pipeline.reports.sentences import write_sentences
from pipeline.store import ResultStore

SCORES = [("Lenders may accelerate the loan.", "financial", 0.97), ("Suppliers may fail us.", "operational", 0.62),
          ("A regulator may fine us.", "compliance", 0.88), ("The board met.", "none", 0.40)]


def _store(tmp_path, classifier: str) -> tuple[ResultStore, str]:
    store, run_id = labelled_store(tmp_path, SCORES, classifier, source="/inbox/review.txt")
    store.finish_run(run_id, {"embedder": "minilm@test", "classifier": classifier})
    return store, run_id


def test_findings_below_the_band_are_marked_in_every_output(tiny_models_dir, tmp_path):
    models_dir = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models_dir)
    resolved = ModelRegistry(models_dir).resolve("risk-minilm")
    Calibration(1.0, 0.9, "test").save(resolved.location)
    store, run_id = _store(tmp_path, f"{resolved.label}:int8-onnxruntime")

    report = build_report(store, run_id, models_dir=models_dir)
    assert report.review_below == 0.9
    assert {f.text: f.needs_review for f in report.findings} == {
        "Lenders may accelerate the loan.": False, "Suppliers may fail us.": True, "A regulator may fine us.": True}
    assert report.totals["needs_review"] == 2

    out = tmp_path / "out"
    assert export(report, out, FORMATS).failed == {}
    write_sentences(store, run_id, out, models_dir)
    lines = [json.loads(line) for line in (out / "sentences.jsonl").read_text().splitlines()]
    assert [line["needs_review"] for line in lines] == [False, True, True, True]  # the unsure "none" too
    exported = json.loads((out / "report.json").read_text())
    assert exported["review_below"] == 0.9 and exported["totals"]["needs_review"] == 2
    assert {f["text"]: f["needs_review"] for f in exported["findings"]} == \
        {f.text: f.needs_review for f in report.findings}
    rows = list(csv.DictReader((out / "report.csv").open(encoding="utf-8")))
    assert {r["text"]: r["needs_review"] for r in rows}["Suppliers may fail us."] == "True"
    sheet = load_workbook(out / "report.xlsx")["Findings"]
    header = [c.value for c in sheet[1]]
    assert "needs_review" in header and sheet.auto_filter.ref
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'data-attr="review"' in html and html.count('data-review="yes"') == 2
    assert "2 of 3 findings need review" in html


def test_an_unregistered_classifier_version_has_no_band(tiny_models_dir, tmp_path):
    store, run_id = _store(tmp_path, "risk-minilm@000000000000:int8-onnxruntime")
    report = build_report(store, run_id, models_dir=tiny_models_dir)
    assert report.review_below is None and not any(f.needs_review for f in report.findings)
    out = tmp_path / "out"
    export(report, out, ("html",))
    assert "Review band unknown" in (out / "report.html").read_text(encoding="utf-8")
    write_sentences(store, run_id, out, tiny_models_dir)
    assert {json.loads(line)["needs_review"] for line in (out / "sentences.jsonl").read_text().splitlines()} == {None}
