"""Audit report exports from a real store: content, ordering, and hostile document text kept inert."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser

import pytest

from pipeline.reports.audit import build_report
from pipeline.reports.exports import export


def test_findings_threshold_order_provenance_and_failures(report_store, tmp_path):
    store, run_id = report_store
    report = build_report(store, "latest", threshold=0.5, models_dir=tmp_path)
    assert report.run_id == run_id and report.triggered_by == "test"
    scores = [f.score for f in report.findings]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.5
    assert {f.label for f in report.findings} == {"compliance", "internal_control", "financial", "strategic",
                                                  "technology"}  # none and the 0.30 finding stay out
    page = store.pages("a" * 64)[1]
    for finding in report.findings:
        assert page[finding.start:finding.end] == finding.text
        assert page.startswith(finding.context_before, finding.start - len(finding.context_before))
    assert [(d.source, d.error) for d in report.failed] == [("/inbox/broken.pdf", "PDF is encrypted")]
    assert report.totals == {"documents": 2, "failed": 1, "pages": 1, "sentences": 8, "findings": 6,
                             "needs_review": 0}
    assert report.review_below is None  # "risk-minilm@test" is not a registered version: band unknown
    with pytest.raises(Exception, match="no run"):
        build_report(store, "no-such-run", models_dir=tmp_path)


def test_xlsx_cells_that_look_like_formulas_are_strings(report_store, tmp_path):
    from openpyxl import load_workbook

    store, run_id = report_store
    [path] = export(build_report(store, run_id, models_dir=tmp_path), tmp_path / "out", ("xlsx",)).written
    book = load_workbook(path)
    assert book.sheetnames == ["Summary", "Findings", "Documents", "Run"]
    findings = book["Findings"]
    assert findings.freeze_panes == "A2" and findings.auto_filter.ref
    column = findings.cell(row=1, column=[c.value for c in findings[1]].index("text") + 1).column_letter
    texts = {cell.value: cell.data_type for cell in findings[column][1:]}
    for prefix in ("=HYPERLINK(", "@SUM(", "+1 ", "-2%"):
        [(value, kind)] = [(v, k) for v, k in texts.items() if v.startswith(prefix)]
        assert kind == "s", value
    assert not any(cell.data_type == "f" for row in findings.iter_rows() for cell in row)


def test_csv_neutralises_formulas(report_store, tmp_path):
    store, run_id = report_store
    [path] = export(build_report(store, run_id, models_dir=tmp_path), tmp_path / "out", ("csv",)).written
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    starts = {row["text"][:2] for row in rows}
    assert {"'=", "'@", "'+", "'-"} <= starts and not any(row["text"][0] in "=+-@" for row in rows)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self.urls, self.rows, self._in_tbody = [], [], [], 0, False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "tbody":
            self._in_tbody = True
        if tag == "tr" and self._in_tbody:
            self.rows += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_tbody = False


def test_html_is_self_contained_and_document_text_is_inert(report_store, tmp_path):
    store, run_id = report_store
    [path] = export(build_report(store, run_id, models_dir=tmp_path), tmp_path / "out", ("html",)).written
    html = path.read_text(encoding="utf-8")
    parsed = _Collect()
    parsed.feed(html)
    assert parsed.tags.count("script") == 1 and "img" not in parsed.tags  # only the report's own script
    assert parsed.urls == []  # nothing fetched from anywhere
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert parsed.rows == 6 and parsed.tags.count("svg") == 2  # findings table, two charts
    assert "PDF is encrypted" in html and "a" * 64 in html


def test_json_export_and_unknown_format(report_store, tmp_path):
    from pipeline.errors import ConfigurationError

    store, run_id = report_store
    report = build_report(store, run_id, models_dir=tmp_path)
    [path] = export(report, tmp_path / "out", ("json",)).written
    data = json.loads(path.read_text())
    assert data["totals"]["findings"] == 6 and data["findings"][0]["score"] == 0.97
    assert data["models"]["classifier"]["label"] == "risk-minilm@test:fp32"
    with pytest.raises(ConfigurationError, match="unknown report format"):
        export(report, tmp_path / "out", ("docx",))


def test_pdf_embeds_its_font_paginates_and_holds_the_findings(report_store, tmp_path):
    from pypdf import PdfReader

    store, run_id = report_store
    report = build_report(store, run_id, models_dir=tmp_path)
    many = report.findings * 40  # 240 rows: the table must run over several pages
    [path] = export(type(report)(**{**report.__dict__, "findings": many}), tmp_path / "out", ("pdf",)).written
    reader = PdfReader(path)
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) > 3 and text.count("label") >= len(reader.pages) - 2  # header repeated
    assert "<script>alert(1)</script>" in text  # shown as text, not parsed as markup
    assert "PDF is encrypted" in text and run_id in text
    descriptors = []
    for font in (f.get_object() for f in reader.pages[0]["/Resources"]["/Font"].values()):
        for part in [d.get_object() for d in font.get("/DescendantFonts", [])] or [font]:
            descriptors.append(part["/FontDescriptor"].get_object() if "/FontDescriptor" in part else {})
    assert descriptors and all("/FontFile2" in d for d in descriptors)  # every font embedded


def test_run_summary_markdown_has_counts_and_exports_but_no_document_text(report_store, tmp_path):
    from pipeline.reports.exports import summary_markdown

    store, run_id = report_store
    report = build_report(store, run_id, models_dir=tmp_path)
    markdown = summary_markdown(report, [tmp_path / "report.html"])
    assert run_id in markdown and "| technology | 2 |" in markdown and "report.html" in markdown
    assert "alert" not in markdown and "HYPERLINK" not in markdown
