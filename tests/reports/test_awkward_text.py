"""Text the pipeline can store but formats choke on: every export must still be written and readable.

Reproduces the reported crashes — a 55,000-character "sentence" (reportlab LayoutError: a table cell taller
than the page) and control characters from PDF text (openpyxl IllegalCharacterError) — and checks what each
format shows instead: visible codes, cells cut to the format's limit with a marker, the full text in JSON.
"""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

from pipeline.records import Document, Page, RiskLabel, Sentence, SentenceEmbedding, Span
from pipeline.reports.audit import build_report
from pipeline.reports.exports import FORMATS, export
from pipeline.reports.safe_text import XLSX_CELL_CHARS, cut, visible
from pipeline.store import ResultStore

LONG = " ".join(f"word{i % 97}" for i in range(8_000))  # ~55,000 characters, no punctuation
TOKEN = "x" * 40_000  # no space to break at
CONTROL = "\x0bTotal revenue\x1b[31m fell\x07 sharply\x00 in the quarter"
BIDI = "Payment to \u202eevil\u202c vendor was approved without review"
TEXTS = [LONG, TOKEN, CONTROL, BIDI]


@pytest.fixture()
def awkward(tmp_path):
    """A real store holding one run whose findings are the awkward texts (labels stand in for the classifier)."""
    page = "\n".join(TEXTS)
    document = Document("b" * 64, "/inbox/awkward.txt", "text/plain", (Page(1, page),))
    sentences, offset = [], 0
    for index, text in enumerate(TEXTS):
        sentences.append(Sentence(document.doc_id, document.source, (Span(1, offset, offset + len(text)),), text,
                                  index))
        offset += len(text) + 1
    embeddings = [SentenceEmbedding(s, np.ones(4, "float32") / 2, "minilm@test") for s in sentences]
    labels = [RiskLabel(s, "financial", 0.9, {"financial": 0.9}, "risk-minilm@test:fp32") for s in sentences]
    store = ResultStore(f"sqlite:///{tmp_path / 'store.db'}")
    run_id = store.start_run({"sentencizer": "layout"}, triggered_by="test")
    store.save(run_id, [document], sentences, embeddings, "spacy:layout", labels)
    store.finish_run(run_id, {"embedder": "minilm@test", "classifier": "risk-minilm@test:fp32"})
    return build_report(store, run_id, models_dir=tmp_path)


def test_every_format_is_written_and_reads_back(awkward, tmp_path):
    from openpyxl import load_workbook
    from pypdf import PdfReader

    exports = export(awkward, tmp_path / "out", FORMATS)
    assert exports.failed == {} and [p.suffix for p in exports.written] == [".html", ".pdf", ".xlsx", ".csv", ".json"]
    out = tmp_path / "out"

    data = json.loads((out / "report.json").read_text(encoding="utf-8"))  # exact text, whole
    assert sorted(f["text"] for f in data["findings"]) == sorted(TEXTS)

    sheet = load_workbook(out / "report.xlsx")["Findings"]
    text_column = [c.value for c in sheet[1]].index("text")
    cells = [row[text_column].value for row in sheet.iter_rows(min_row=2)]
    assert len(cells) == 4 and all(len(c) <= XLSX_CELL_CHARS for c in cells)
    assert cut(visible(LONG), XLSX_CELL_CHARS) in cells and visible(CONTROL) in cells
    assert any(c.endswith("characters in all; the whole text is in the JSON export and sentences.jsonl]") for c in cells)
    assert "[U+000B]Total revenue[U+001B][31m fell[U+0007] sharply[U+0000] in the quarter" in cells

    rows = list(csv.DictReader((out / "report.csv").open(encoding="utf-8")))
    assert sorted(r["text"] for r in rows) == sorted(cut(visible(t), XLSX_CELL_CHARS) for t in TEXTS)

    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Payment to [U+202E]evil[U+202C] vendor" in html and "\u202e" not in html and "\x1b" not in html
    assert LONG[:20_000] in html  # HTML holds any length: nothing cut

    pdf = PdfReader(out / "report.pdf")
    text = "".join(page.extract_text() for page in pdf.pages)
    assert "[U+001B]" in text and "characters in all" in text
    assert "word0 word1 word2" in text


def test_a_format_that_fails_costs_only_itself(awkward, tmp_path):
    """A real failure, not a stub: the PDF's target name is taken by a folder."""
    out = tmp_path / "out"
    (out / "report.pdf").mkdir(parents=True)
    exports = export(awkward, out, FORMATS)
    assert list(exports.failed) == ["pdf"] and "IsADirectoryError" in exports.failed["pdf"]
    assert sorted(p.name for p in exports.written) == ["report.csv", "report.html", "report.json", "report.xlsx"]
    assert not list(out.glob("*.partial"))


def test_lone_surrogates_are_escaped_as_such(awkward, tmp_path):
    """UTF-8 cannot hold a lone surrogate: JSON keeps it as its escape, the other formats show its code."""
    finding = dataclasses.replace(awkward.findings[0], text="Revenue \ud800 fell \udfff")
    report = dataclasses.replace(awkward, findings=[finding])
    exports = export(report, tmp_path / "out", FORMATS)
    assert exports.failed == {}
    raw = (tmp_path / "out" / "report.json").read_bytes().decode("utf-8")
    assert "Revenue \\ud800 fell \\udfff" in raw
    assert json.loads(raw)["findings"][0]["text"] == "Revenue \ud800 fell \udfff"
    assert "Revenue [U+D800] fell [U+DFFF]" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


@pytest.fixture()
def long_report(awkward):
    """Enough findings for the PDF to be laid out in a forked child (``FORK_FROM_ROWS``)."""
    from pipeline.reports.exports import FORK_FROM_ROWS

    short = next(f for f in awkward.findings if f.text == CONTROL)
    return dataclasses.replace(awkward, findings=[dataclasses.replace(short, start=i) for i in range(FORK_FROM_ROWS)])


def test_the_callers_work_is_done_before_the_formats_the_parent_writes(long_report, tmp_path):
    out, seen = tmp_path / "out", []
    exports = export(long_report, out, FORMATS, meanwhile=lambda: seen.append(sorted(p.name for p in out.iterdir())))
    assert exports.failed == {} and len(exports.written) == 5
    assert seen == [[]] or seen == [["report.pdf.partial"]]  # only the forked PDF may have begun


def _children() -> set[str]:
    from pathlib import Path

    return {pid for task in Path("/proc/self/task").iterdir() for pid in (task / "children").read_text().split()}


def test_a_failure_of_the_callers_work_leaves_no_report_and_no_child(long_report, tmp_path):
    out, before = tmp_path / "out", _children()

    def fails():
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        export(long_report, out, FORMATS, meanwhile=fails)
    assert list(out.iterdir()) == []
    assert _children() <= before  # the PDF's child was waited for: not even a zombie is left
