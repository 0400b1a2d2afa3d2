"""Period over period with the real MiniLM: new, removed, reworded and unchanged risk sentences, and exports."""

from __future__ import annotations

import csv

import pytest

from pipeline.errors import ConfigurationError
from pipeline.reports.diff import diff_runs
from pipeline.reports.exports import export_diff
from pipeline.settings import Settings
from pipeline.store import ResultStore

LAST_YEAR = [
    ("Lenders may accelerate the loan if we breach the leverage covenant.", "financial", 0.93),
    ("We depend on a single supplier for power semiconductors.", "operational", 0.9),
    ("A material weakness in inventory costing was identified.", "internal_control", 0.95),
    ("=HYPERLINK(\"http://evil.example\") fines under the GDPR could reach 4% of turnover.", "compliance", 0.8),
    ("The board met four times.", "none", 0.99),
]
THIS_YEAR = [
    ("Lenders may accelerate the loan if we breach the leverage covenant.", "financial", 0.94),  # unchanged
    ("We rely on one supplier for our power semiconductors.", "operational", 0.91),  # reworded
    ("A ransomware attack halted production at our Brno plant for nine days.", "technology", 0.96),  # new
    ("=HYPERLINK(\"http://evil.example\") fines under the GDPR could reach 4% of turnover.", "compliance", 0.81),
    ("The board met six times.", "none", 0.99),
]


@pytest.fixture()
def two_runs(tmp_path, labelled_run):
    store = ResultStore(f"sqlite:///{tmp_path / 'store.db'}")
    before = labelled_run(store, "/filings/annual-2024.txt", LAST_YEAR)
    after = labelled_run(store, "/filings/annual-2025.txt", THIS_YEAR)
    return store, before, after


def test_new_removed_reworded_and_unchanged(two_runs):
    store, before, after = two_runs
    diff = diff_runs(store, before, after, models_dir=Settings().models_dir)
    assert diff.counts == {"new": 1, "removed": 1, "reworded": 1, "unchanged": 2}
    [new], [removed], [reworded] = diff.of("new"), diff.of("removed"), diff.of("reworded")
    assert new.after.text.startswith("A ransomware attack") and new.before is None
    assert removed.before.text.startswith("A material weakness") and removed.after is None
    assert reworded.before.text == LAST_YEAR[1][0] and reworded.after.text == THIS_YEAR[1][0]
    assert 0.8 <= reworded.similarity < 1 and reworded.after.document == "/filings/annual-2025.txt"
    # a stricter rewording threshold turns the rewording into one removal and one addition
    strict = diff_runs(store, before, after, models_dir=Settings().models_dir, reworded_min=0.99)
    assert strict.counts == {"new": 2, "removed": 2, "reworded": 0, "unchanged": 2}


def test_diff_exports_in_every_format_formula_safe(two_runs, tmp_path):
    from openpyxl import load_workbook
    from pypdf import PdfReader

    store, before, after = two_runs
    diff = diff_runs(store, before, after, models_dir=Settings().models_dir)
    paths = dict(zip(("html", "pdf", "xlsx", "csv", "json"), export_diff(diff, tmp_path / "out").written))
    assert all(p.name.startswith("diff.") and p.stat().st_size > 0 for p in paths.values())
    html = paths["html"].read_text(encoding="utf-8")
    assert "<del>We depend on a single supplier" in html and "<ins>We rely on one supplier" in html
    rows = list(csv.DictReader(paths["csv"].open(encoding="utf-8")))
    assert {r["status"] for r in rows} == {"new", "removed", "reworded", "unchanged"}
    assert any(r["text_after"].startswith("'=HYPERLINK") for r in rows)
    sheet = load_workbook(paths["xlsx"])["Changes"]
    assert not any(cell.data_type == "f" for row in sheet.iter_rows() for cell in row)
    text = " ".join(page.extract_text() for page in PdfReader(paths["pdf"]).pages)
    assert "ransomware attack halted production" in text and "Reworded" in text


def test_runs_embedded_by_different_models_are_not_compared(two_runs):
    import numpy as np

    from pipeline.records import Document, Page, RiskLabel, Sentence, SentenceEmbedding, Span

    store, before, _ = two_runs
    text = THIS_YEAR[2][0]
    document = Document("d" * 64, "/filings/annual-2025.txt", "text/plain", (Page(1, text),))
    sentence = Sentence(document.doc_id, document.source, (Span(1, 0, len(text)),), text, 0)
    other = SentenceEmbedding(sentence, np.ones(512, "float32"), "use@0a8ecada93a3")  # another embedder
    run_id = store.start_run({}, triggered_by="test")
    store.save(run_id, [document], [sentence], [other], "spacy:layout",
               [RiskLabel(sentence, "technology", 0.96, {"technology": 0.96}, "risk-minilm@test:fp32")])
    store.finish_run(run_id, {"embedder": other.model, "classifier": "risk-minilm@test:fp32"})
    with pytest.raises(ConfigurationError, match="cannot be compared"):
        diff_runs(store, before, run_id, models_dir=Settings().models_dir)
