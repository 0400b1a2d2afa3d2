"""Property: any text a document can hold goes through sentencize → store → all five exports.

Hypothesis generates page text from every Unicode category (lone surrogates included), control characters
and ANSI escapes, bidirectional overrides, and runs of up to 100,000 characters with no space or punctuation.
The pages are normalised as ingest does (``tidy``), split by the real spaCy sentencizer, stored in a real
SQLite store, and exported. Nothing may raise, offsets must stay exact, and every stored sentence must be in
every export: exactly in JSON and sentences.jsonl, as each format shows it (visible codes, cut cells) in the
others. The labels stand in for the classifier, which is not what is under test.
"""

from __future__ import annotations

import csv
import html
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.records import Document, Page, RiskLabel
from pipeline.reports.audit import build_report
from pipeline.reports.exports import FORMATS, FORMULA_PREFIXES, _Pdf, export
from pipeline.reports.safe_text import CSV_CELL_CHARS, XLSX_CELL_CHARS, cut, visible
from pipeline.reports.sentences import write_sentences
from pipeline.stages.ingest import tidy
from pipeline.store import ResultStore

PIECES = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),  # every category, Cs (surrogates) included
    st.sampled_from(["\x0b", "\x1b[31m", "\x1b[0m", "\x00", "\x07", "\x7f", "\x85", "\x9b", "\r", "\r\n", "\f",
                     "\t", "\n\n", "\u202e", "\u202d", "\u2066", "\u2069", "\ufeff", "\ufffe", "\uffff"]),
    st.sampled_from(["Liquidity may tighten if lenders call the facility. ", "Revenue fell 4% (approx.) in Q3. ",
                     "e.g. the U.S. business. ", "1. Risks\n\n", "=SUM(A1:A9) was wrong. ", "- bullet item\n"]),
    st.builds(lambda char, n: char * n, st.sampled_from("xé字\u200b-"), st.integers(1_000, 100_000)),
)
PAGE = st.lists(PIECES, min_size=1, max_size=8).map("".join)


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return re.sub(r"[\s\xad]+", "", "".join(page.extract_text() for page in PdfReader(path).pages))


@pytest.mark.parametrize("mode", ["layout", "rule"])
@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(pages=st.lists(PAGE, min_size=1, max_size=3))
def test_any_text_survives_sentencize_store_and_every_export(sentencizers, mode, pages):
    from openpyxl import load_workbook

    document = Document("c" * 64, "/inbox/generated.txt", "text/plain",
                        tuple(Page(i, tidy(text)) for i, text in enumerate(pages, start=1)))
    sentences = sentencizers[mode].process([document])
    for sentence in sentences:
        assert document.text_of(sentence.spans) == sentence.text  # provenance exact
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out"
        store = ResultStore(f"sqlite:///{folder}/store.db")
        run_id = store.start_run({"sentencizer": mode}, triggered_by="test")
        labels = [RiskLabel(s, "financial", 0.9, {"financial": 0.9}, "risk@test:fp32") for s in sentences]
        store.save(run_id, [document], sentences, [], f"spacy:{mode}", labels)
        store.finish_run(run_id, {"embedder": "minilm@test", "classifier": "risk@test:fp32"})
        stored = [row.text for row, _ in store.labelled_sentences(document.doc_id, f"spacy:{mode}", "risk@test:fp32")]
        assert stored == [s.text for s in sentences]

        _, count = write_sentences(store, run_id, out)
        lines = (out / "sentences.jsonl").read_text(encoding="utf-8").splitlines()
        assert count == len(stored) and [json.loads(line)["text"] for line in lines] == stored

        exports = export(build_report(store, run_id, threshold=0.0, models_dir=Path(folder)), out, FORMATS)
        assert exports.failed == {}
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        assert sorted(f["text"] for f in report["findings"]) == sorted(stored)

        def cell(text: str, limit: int) -> str:
            return cut(visible(text), limit)

        def csv_cell(text: str) -> str:
            shown = cell(text, CSV_CELL_CHARS)
            return "'" + shown if shown.startswith(FORMULA_PREFIXES) else shown

        rows = list(csv.DictReader((out / "report.csv").open(encoding="utf-8", newline="")))
        assert sorted(r["text"] for r in rows) == sorted(csv_cell(t) for t in stored)
        sheet = load_workbook(out / "report.xlsx")["Findings"]
        text_column = [c.value for c in sheet[1]].index("text")
        assert sorted(row[text_column].value or "" for row in sheet.iter_rows(min_row=2)) == \
            sorted(cell(t, XLSX_CELL_CHARS) for t in stored)
        page = html.unescape((out / "report.html").read_text(encoding="utf-8"))
        assert all(visible(t) in page for t in stored)
        pdf_text, shown = _pdf_text(out / "report.pdf"), _Pdf().shown
        # a soft hyphen is drawn only where a line breaks at it
        assert all(re.sub(r"[\s\xad]+", "", shown(t))[:200] in pdf_text for t in stored)
