"""Render an ``AuditReport`` as a self-contained HTML file, PDF, XLSX, CSV and JSON.

Document text is untrusted: HTML goes through Jinja2 with autoescaping (and no network fetches: CSS, script
and charts are inline), and no cell of a CSV or XLSX export can become a formula — a value starting with
``= + - @``, tab or CR is written as text (XLSX: a string cell; CSV: prefixed with ``'``, as OWASP advises).
Any text the store holds exports (``safe_text``): characters a format cannot show become visible codes, cells
are cut to the format's limit. Each format is written on its own: one that fails is reported in
``Exports.failed`` and the others are still written.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

from pipeline.reports.audit import AuditReport, Finding
from pipeline.reports.diff import Change, RunDiff
from pipeline.reports.safe_text import CSV_CELL_CHARS, XLSX_CELL_CHARS, cut, for_cell, visible

log = logging.getLogger(__name__)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMATS = ("html", "pdf", "xlsx", "csv", "json")
FINDING_COLUMNS = ("label", "score", "needs_review", "document", "page", "start", "end", "text", "context_before", "context_after",
                   "register", "ocr_confidence")
REVIEW_COLUMNS = ("review_status", "final_label", "reviewer", "reviewed_at", "review_comment")
CHANGE_COLUMNS = ("status", "label", "score", "similarity", "document_before", "page_before", "start_before",
                  "text_before", "document_after", "page_after", "start_after", "text_after")
Table = tuple[tuple[str, ...], list[list]]  # header, rows


def _csv_safe(value):
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) else value


def register_cell(finding: Finding) -> str:
    """A finding's register matches as one cell: ``R01 (0.58); R03 (0.41)``."""
    return "; ".join(f"{m.risk_id} ({m.similarity:.2f})" for m in finding.register)


def _finding_row(finding: Finding) -> list:
    return [register_cell(finding) if c == "register" else getattr(finding, c) for c in FINDING_COLUMNS]


def _findings_table(report: AuditReport) -> Table:
    """The findings; read with their review, each also with its status, final label, reviewer and comment."""
    if report.review is None or not report.review.started:
        return FINDING_COLUMNS, [_finding_row(f) for f in report.findings]
    rows = []
    for f in report.findings:
        r = report.review.of(f)
        rows.append([*_finding_row(f), r.status, r.final_label, r.reviewer, r.at, r.comment])
    return (*FINDING_COLUMNS, *REVIEW_COLUMNS), rows


def review_rows(report: AuditReport) -> list[tuple[str, object]]:
    """The review's counts per status and its sign-off block, as (measure, value) rows."""
    review = report.review
    signoff = review.signoff
    block = ([("signed off by", signoff["reviewer"]), ("signed off at", signoff["at"]),
              ("sign-off digest (sha256)", signoff["digest"])] if signoff else [("sign-off", "not signed off")])
    return [*((f"review: {status}", n) for status, n in review.counts.items()), *block]


def page_list(pages: tuple[int, ...]) -> str:
    """Pages as one cell: ``2, 3, 7`` (empty when none)."""
    return ", ".join(map(str, pages))


def _pdf_page_cell(finding: Finding) -> str:
    return f"{finding.page}" if finding.ocr_confidence is None else f"{finding.page} OCR {finding.ocr_confidence:.2f}"


def _document_note(document) -> str | None:
    ocr = f"OCR: pages {page_list(document.ocr_pages)}" if document.ocr_pages else None
    return "; ".join(n for n in (document.note, ocr) if n) or None


def _change_row(change: Change) -> list:
    b, a = change.before, change.after
    return [change.status, change.label, change.score, change.similarity,
            b and b.document, b and b.page, b and b.start, b and b.text,
            a and a.document, a and a.page, a and a.start, a and a.text]


def _run_rows(report: AuditReport) -> list:
    return [("run_id", report.run_id), ("started_at", str(report.started_at)),
            ("finished_at", str(report.finished_at)), ("triggered_by", report.triggered_by),
            ("threshold", report.threshold),
            *((f"model: {role}", json.dumps(m)) for role, m in report.models.items()),
            *((f"setting: {k}", json.dumps(v, default=str)) for k, v in report.settings.items())]


def _audit_tables(report: AuditReport) -> dict[str, Table]:
    tables = {
        "Summary": (("measure", "value"), [*report.totals.items(), ("review band: scores below", report.review_below),
                                           *((f"findings: {k}", v) for k, v in report.by_category.items())]),
        "Findings": _findings_table(report),
        "Documents": (("source", "doc_id (sha256)", "status", "pages", "sentences", "findings", "stage", "error",
                       "note", "ocr_pages"),
                      [[d.source, d.doc_id, d.status, d.pages, d.sentences, d.findings, d.stage, d.error, d.note,
                        page_list(d.ocr_pages)] for d in report.documents]),
        "Run": (("field", "value"), _run_rows(report)),
    }
    if report.review is not None:
        tables["Summary"][1].extend(review_rows(report))
        tables["Added by reviewers"] = (("label", "model label", "document", "page", "start", "end", "text",
                                         "reviewer", "at", "comment"),
                                        [[r.final_label, f.label, f.document, f.page, f.start, f.end, f.text,
                                          r.reviewer, r.at, r.comment] for f, r in report.review.added])
    if report.register is not None:
        tables["Register"] = (
            ("id", "title", "description", "findings", "best similarity", "strongest evidence", "document"),
            [[risk.id, risk.title, risk.description, len(found), found[0][1] if found else None,
              found[0][0].text if found else None, found[0][0].document if found else None]
             for risk, found in report.register_evidence()])
        tables["Emerging"] = (FINDING_COLUMNS, [_finding_row(f) for f in report.emerging])
    return tables


def _diff_tables(diff: RunDiff) -> dict[str, Table]:
    return {
        "Summary": (("measure", "value"), [("run before", diff.before.run_id), ("run after", diff.after.run_id),
                                           ("reworded at cosine ≥", diff.reworded_min),
                                           ("threshold", diff.after.threshold), *diff.counts.items()]),
        "Changes": (CHANGE_COLUMNS, [_change_row(c) for c in diff.changes]),
        "Run before": (("field", "value"), _run_rows(diff.before)),
        "Run after": (("field", "value"), _run_rows(diff.after)),
    }


def _write_csv_table(table: Table, path: Path) -> Path:
    header, rows = table
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([_csv_safe(for_cell(value, CSV_CELL_CHARS)) for value in row] for row in rows)
    return path


def _write_workbook(tables: dict[str, Table], path: Path) -> Path:
    """One sheet per table; frozen header, autofilter, sensible widths; strings never become formulas."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    book.remove(book.active)
    widths = {"text": 80, "context_before": 40, "context_after": 40, "error": 60, "value": 80, "source": 40,
              "description": 60, "strongest evidence": 80, "text_before": 60, "text_after": 60, "register": 24}
    for title, (header, rows) in tables.items():
        sheet = book.create_sheet(title)
        sheet.append(list(header))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for r, row in enumerate(rows, start=2):
            for c, value in enumerate(row, start=1):
                cell = sheet.cell(row=r, column=c)
                cell.value = value = for_cell(value, XLSX_CELL_CHARS)
                if isinstance(value, str):
                    cell.data_type = "s"  # never a formula, whatever the text starts with
                    if len(value) > 60:
                        cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = sheet.dimensions
        for c, name in enumerate(header, start=1):
            sheet.column_dimensions[sheet.cell(row=1, column=c).column_letter].width = widths.get(name, 16)
    book.save(path)
    return path


def _jsonable(report: AuditReport) -> dict:
    data = {
        "run_id": report.run_id, "started_at": report.started_at, "finished_at": report.finished_at,
        "triggered_by": report.triggered_by, "threshold": report.threshold, "review_below": report.review_below,
        "settings": report.settings,
        "models": report.models, "totals": report.totals, "by_category": report.by_category,
        "documents": [asdict(d) for d in report.documents], "findings": [asdict(f) for f in report.findings],
    }
    if report.review is not None and report.review.started:
        for entry, finding in zip(data["findings"], report.findings, strict=True):
            entry["review"] = asdict(report.review.of(finding))
    if report.review is not None:
        data["review"] = {"counts": report.review.counts, "signoff": report.review.signoff,
                          "signed_off": report.review.signoff is not None, "trail_rows": report.review.trail_rows,
                          "added": [{**asdict(f), "review": asdict(r)} for f, r in report.review.added]}
    if report.register is not None:
        data["register"] = {
            "source": report.register.source, "min_similarity": report.register_min_similarity,
            "risks": [{**asdict(risk), "evidence": [{"text": f.text, "document": f.document, "page": f.page,
                                                     "start": f.start, "similarity": sim} for f, sim in found]}
                      for risk, found in report.register_evidence()],
            "emerging": [asdict(f) for f in report.emerging]}
    return data


def _write_json(data: dict, path: Path) -> Path:
    """The exact text; a lone surrogate (not UTF-8) is written as its JSON escape ``\\udXXX``."""
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    path.write_bytes(text.encode("utf-8", "backslashreplace"))
    return path


def write_json(report: AuditReport, path: Path) -> Path:
    return _write_json(_jsonable(report), path)


def write_csv(report: AuditReport, path: Path) -> Path:
    """The findings table (one row per finding), formula-safe. Read with its review, the missed risks
    reviewers added are rows too, and every row says whether (by whom, when, with which digest) the run was
    signed off: a CSV holds one table."""
    header, rows = _audit_tables(report)["Findings"]
    if report.review is not None and report.review.started:
        added = [[*_finding_row(f), r.status, r.final_label, r.reviewer, r.at, r.comment]
                 for f, r in report.review.added]
        signoff = report.review.signoff
        line = (f"signed off by {signoff['reviewer']} at {signoff['at']}, sha256 {signoff['digest']}" if signoff
                else "not signed off")
        header, rows = (*header, "run_signoff"), [[*row, line] for row in rows + added]
    return _write_csv_table((header, rows), path)


def write_xlsx(report: AuditReport, path: Path) -> Path:
    """Summary, Findings, Documents and Run sheets (and Register, Emerging with a register)."""
    return _write_workbook(_audit_tables(report), path)


def _bar_chart(counts: dict[str, int], width: int = 520, bar: int = 22) -> str:
    top = max(counts.values(), default=0) or 1
    rows = []
    for i, (label, n) in enumerate(counts.items()):
        y = i * (bar + 6)
        w = int((width - 190) * n / top)
        rows.append(f'<text x="0" y="{y + 16}" class="axis">{label}</text>'
                    f'<rect x="140" y="{y}" width="{w}" height="{bar}" class="bar"><title>{label}: {n}</title></rect>'
                    f'<text x="{146 + w}" y="{y + 16}" class="axis">{n}</text>')
    return f'<svg role="img" aria-label="Findings by category" width="{width}" height="{len(counts) * (bar + 6)}">' \
           + "".join(rows) + "</svg>"


def _histogram(bins: list[int], width: int = 520, height: int = 140) -> str:
    top = max(bins, default=0) or 1
    step = width / len(bins)
    bars = []
    for i, n in enumerate(bins):
        h = int((height - 20) * n / top)
        bars.append(f'<rect x="{i * step + 2:.0f}" y="{height - 20 - h}" width="{step - 4:.0f}" height="{h}" '
                    f'class="bar"><title>{i / len(bins):.1f}–{(i + 1) / len(bins):.1f}: {n}</title></rect>'
                    f'<text x="{i * step + 4:.0f}" y="{height - 5}" class="axis">{i / len(bins):.1f}</text>')
    return f'<svg role="img" aria-label="Score distribution" width="{width}" height="{height}">' + "".join(bars) \
        + "</svg>"


@cache
def _templates():
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    def shown(value):  # every {{ value }}: document text with its hidden characters made visible
        return visible(value) if isinstance(value, str) and not isinstance(value, Markup) else value

    return Environment(loader=PackageLoader("pipeline.reports", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True), finalize=shown)


def _render(template: str, path: Path, **context) -> Path:
    path.write_text(_templates().get_template(template).render(**context), encoding="utf-8")
    return path


def warm_up() -> None:
    """The report writers' first-use costs now (templates compiled, the PDF font parsed, openpyxl's styles
    built; ≈0.25 s): for a process that forks the processes that write reports."""
    from openpyxl import Workbook

    for template in ("report.html.j2", "diff.html.j2"):
        _templates().get_template(template)
    _Pdf()
    Workbook()


def write_html(report: AuditReport, path: Path) -> Path:
    from markupsafe import Markup

    heat = report.heat_map()
    peak = max((n for row in heat.values() for n in row.values()), default=0) or 1
    return _render(
        "report.html.j2", path, report=report, totals=report.totals, heat=heat, peak=peak,
        evidence=report.register_evidence(), register_cell=register_cell,
        # charts are built from numbers and the fixed taxonomy labels only, never from document text
        category_chart=Markup(_bar_chart(report.by_category)),
        score_chart=Markup(_histogram(report.score_histogram())), review_line=_review_line(report),
        settings_json=json.dumps(report.settings, indent=2, default=str),
        review_rows=review_rows(report) if report.review is not None else [],
        on_pages=_page_boxes(report),
    )


def _page_boxes(report: AuditReport):
    """For the template: a finding's pages that have an image, each with its CSS class and its boxes as
    percentages of the page (left, top, width, height), padded a point for legibility."""
    classes = {key: f"pg-{i}" for i, key in enumerate(report.page_images, start=1)}

    def on_pages(finding: Finding) -> list[tuple[int, str, list[tuple[str, ...]]]]:
        shown = []
        for page in dict.fromkeys(box[0] for box in finding.boxes):
            image = report.page_images.get((finding.doc_id, page))
            if image is None:
                continue
            boxes = [tuple(f"{100 * v:.2f}" for v in ((x0 - 1) / image.width, (top - 1) / image.height,
                                                      (x1 - x0 + 2) / image.width, (bottom - top + 2) / image.height))
                     for p, x0, top, x1, bottom in finding.boxes if p == page]
            shown.append((page, classes[finding.doc_id, page], boxes))
        return shown

    return on_pages


@cache
def _cell_paragraph():
    from reportlab.platypus import Paragraph

    class CellParagraph(Paragraph):
        """A table cell's paragraph, its lines broken once per width: a table wraps each cell when it is
        measured, again for each page it is split across and again when drawn (≈4 times, the bulk of a long
        PDF's cost), and the lines depend on the width alone (a split, which drops them, redoes them)."""

        def wrap(self, availWidth, availHeight):
            if getattr(self, "_wrapped", (None,))[0] != availWidth or not hasattr(self, "blPara"):
                self._wrapped = availWidth, super().wrap(availWidth, availHeight)
            return self._wrapped[1]

    return CellParagraph


class _Pdf:
    """reportlab building blocks shared by the PDF exports: an embedded TrueType font (Bitstream Vera, shipped
    with reportlab; the 14 standard PDF fonts are never embedded), escaped paragraphs (reportlab paragraphs read
    markup, document text must not), and grids whose long tables paginate with their header repeated."""

    CELL_PADDING_PT = 12.0  # reportlab's default: 6 pt left and right
    CELL_MAX_HEIGHT_PT = 360.0  # of the 527 pt an A4 landscape page has inside its margins

    def __init__(self) -> None:
        import reportlab
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont
        from reportlab.platypus import TableStyle

        fonts = Path(reportlab.__file__).parent / "fonts"
        if "Vera" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont("Vera", str(fonts / "Vera.ttf")))
            pdfmetrics.registerFont(TTFont("VeraBd", str(fonts / "VeraBd.ttf")))
        glyphs = sorted({*pdfmetrics.getFont("Vera").face.charToGlyph, ord("\n")})
        self.no_glyph = re.compile("[^" + "".join(re.escape(chr(c)) for c in glyphs) + "]")
        self.body = ParagraphStyle("body", fontName="Vera", fontSize=8, leading=10)
        self.heading = ParagraphStyle("heading", fontName="VeraBd", fontSize=13, leading=17, spaceBefore=8,
                                      spaceAfter=4)
        self.grid = TableStyle([("FONTNAME", (0, 0), (-1, -1), "Vera"), ("FONTNAME", (0, 0), (-1, 0), "VeraBd"),
                                ("FONTSIZE", (0, 0), (-1, -1), 8), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f5")),
                                ("VALIGN", (0, 0), (-1, -1), "TOP")])

    def shown(self, value) -> str:
        """``visible`` text, and a character the embedded font has no glyph for shown by its code too: drawn,
        it would be an empty box (and extracted as NUL)."""
        text = visible("" if value is None else str(value)).replace("\t", " ")
        return self.no_glyph.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)

    def p(self, text, width: float | None = None):
        """An escaped paragraph; in a table column ``width`` points wide it is cut to fit on one page (a cell
        taller than a page is a reportlab LayoutError)."""
        from xml.sax.saxutils import escape

        from reportlab.platypus import Paragraph

        text = self.shown(text)
        if not width:
            return Paragraph(escape(text), self.body)
        cell = _cell_paragraph()
        text = cut(text, int(width / 2.0 * self.CELL_MAX_HEIGHT_PT / self.body.leading))  # no more than could
        paragraph = cell(escape(text), self.body)  # fit in the narrowest glyphs (~2 pt), so wrapping stays cheap
        for _ in range(8):
            height = paragraph.wrap(width - self.CELL_PADDING_PT, self.CELL_MAX_HEIGHT_PT)[1]
            if height <= self.CELL_MAX_HEIGHT_PT:
                break
            text = cut(text, int(len(text) * self.CELL_MAX_HEIGHT_PT / height * 0.9))
            paragraph = cell(escape(text), self.body)
        return paragraph

    def h(self, text):
        from xml.sax.saxutils import escape

        from reportlab.platypus import Paragraph

        return Paragraph(escape(text), self.heading)

    def table(self, header, rows, widths_mm=None):
        """A grid; it paginates, repeating its header on each page."""
        from reportlab.lib.units import mm
        from reportlab.platypus import LongTable

        widths = [w * mm for w in widths_mm] if widths_mm else [0.0] * len(header)
        cells = [[self.p(h) for h in header]] + [[self.cell(v, w) for v, w in zip(row, widths)] for row in rows]
        return LongTable(cells, colWidths=widths if widths_mm else None, repeatRows=1, style=self.grid)

    def cell(self, value, width: float):
        """A value sure to fit its column on one line stays a plain string: reportlab draws it as it is (no
        markup is read) and skips the line breaking that makes paragraphs the bulk of a long PDF's cost."""
        from reportlab.pdfbase.pdfmetrics import stringWidth

        text = self.shown(value)
        fits = "\n" not in text and stringWidth(text, "Vera", 8) + self.CELL_PADDING_PT <= width
        return text if fits else self.p(text, width)

    def spacer(self):
        from reportlab.lib.units import mm
        from reportlab.platypus import Spacer

        return Spacer(1, 3 * mm)

    @staticmethod
    def build(path: Path, title: str, story: list) -> Path:
        from reportlab.lib.pagesizes import A4, landscape
        from reportlab.lib.units import mm
        from reportlab.platypus import SimpleDocTemplate

        SimpleDocTemplate(str(path), pagesize=landscape(A4), title=title, leftMargin=12 * mm, rightMargin=12 * mm,
                          topMargin=12 * mm, bottomMargin=12 * mm,
                          initialFontName="Vera").build(story)  # not Helvetica: the standard fonts are not embedded
        return path


def _audit_trail(pdf: _Pdf, report: AuditReport) -> list:
    return [pdf.table(("input", "content sha256", "status", "note"),
                      [(d.source, d.doc_id, d.status, _document_note(d)) for d in report.documents], (80, 95, 17, 80)),
            pdf.spacer(),
            pdf.table(("model", "version", "sha256"),
                      [(role, m["label"], "; ".join(f"{k}: {v}" for k, v in m["sha256"].items()))
                       for role, m in report.models.items()], (25, 70, 175))]


def write_pdf(report: AuditReport, path: Path) -> Path:
    """A4 landscape: summary, findings by category, the findings table, the register view, failed documents
    and the audit trail."""
    pdf = _Pdf()
    story = [pdf.h(f"Risk findings — run {report.run_id}"),
             pdf.p(f"Started {report.started_at}, finished {report.finished_at}; triggered by {report.triggered_by}. "
                   f"Findings: risk labels at score ≥ {report.threshold}, highest first."),
             pdf.spacer(),
             pdf.table(tuple(report.totals), [tuple(report.totals.values())]),
             pdf.h("Findings by category"),
             pdf.table(tuple(report.by_category), [tuple(report.by_category.values())]),
             pdf.h("Findings"),
             pdf.p(_review_line(report)),
             pdf.table(("label", "score", "review", "document", "page", "offsets", "sentence", "register"),
                       [(f.label, f"{f.score:.3f}", _pdf_review_cell(report, f), Path(f.document).name,
                         _pdf_page_cell(f), f"{f.start}–{f.end}", f.text, register_cell(f)) for f in report.findings],
                       (27, 13, 30, 34, 11, 22, 106, 29))]
    if report.review is not None:
        story += [pdf.h("Review and sign-off"),
                  pdf.table(("measure", "value"), [(k, str(v)) for k, v in review_rows(report)], (70, 202))]
        if report.review.added:
            story += [pdf.h("Missed risks added by reviewers"),
                      pdf.table(("label", "document", "page", "sentence", "reviewer", "comment"),
                                [(r.final_label, Path(f.document).name, f.page, f.text, r.reviewer, r.comment)
                                 for f, r in report.review.added], (27, 40, 11, 124, 30, 40))]
    if report.register is not None:
        evidence = report.register_evidence()
        story += [pdf.h("Risk register: risks with evidence"),
                  pdf.p(f"{len(report.register.risks)} risks from {report.register.source}; evidence at embedding "
                        f"cosine ≥ {report.register_min_similarity}."),
                  pdf.table(("id", "risk", "findings", "strongest evidence"),
                            [(risk.id, risk.title, len(found),
                              f"{found[0][0].text} — {Path(found[0][0].document).name}, p. {found[0][0].page} "
                              f"({found[0][1]:.2f})") for risk, found in evidence if found], (15, 60, 17, 180)),
                  pdf.h("Risk register: risks without evidence"),
                  pdf.table(("id", "risk"), [(risk.id, risk.title) for risk, found in evidence if not found], (15, 257)),
                  pdf.h("Emerging risks: findings that match no register entry"),
                  pdf.table(("label", "score", "document", "page", "sentence"),
                            [(f.label, f"{f.score:.3f}", Path(f.document).name, f.page, f.text)
                             for f in report.emerging], (26, 13, 45, 11, 177))]
    if report.failed:
        story += [pdf.h("Documents that failed"),
                  pdf.table(("source", "stage", "error"), [(d.source, d.stage, d.error) for d in report.failed],
                            (90, 25, 155))]
    story += [pdf.h("Audit trail"), *_audit_trail(pdf, report)]
    return pdf.build(path, f"docintel run {report.run_id}", story)


def _pdf_review_cell(report: AuditReport, finding: Finding) -> str:
    band = "needs review" if finding.needs_review else ""
    if report.review is None or not report.review.started:
        return band
    r = report.review.of(finding)
    decided = r.status if r.final_label == finding.label else f"{r.status} → {r.final_label}"
    return "; ".join(x for x in (band, decided, r.reviewer and f"by {r.reviewer}", r.comment) if x)


def _review_line(report: AuditReport) -> str:
    if report.review_below is None:
        return "Review band unknown: the classifier version that labelled this run is not registered here."
    return (f"{len(report.to_review)} of {len(report.findings)} findings need review: their score is below "
            f"{report.review_below}, where fewer than 90% of the classifier's labels were right on real dev sentences.")


def summary_markdown(report: AuditReport, files: list[Path]) -> str:
    """A short run summary (counts and where the exports are) for the orchestrator's UI. Counts and the
    fixed taxonomy only: no document text, so nothing from a document is rendered as markdown."""
    totals = report.totals
    lines = [f"### docintel run `{report.run_id}`", "",
             f"{totals['documents']} documents ({totals['failed']} failed), {totals['pages']} pages, "
             f"{totals['sentences']} sentences, **{totals['findings']} findings** at score ≥ {report.threshold}.", "",
             _review_line(report), "",
             "| category | findings |", "|---|---:|", *(f"| {k} | {v} |" for k, v in report.by_category.items()), ""]
    if report.register is not None:
        evidence = report.register_evidence()
        lines += [f"Risk register: {sum(1 for _, found in evidence if found)} of {len(evidence)} risks with "
                  f"evidence, {len(report.emerging)} emerging findings.", ""]
    return "\n".join([*lines, "Exports:", *(f"- `{path}`" for path in files)])


def write_diff_html(diff: RunDiff, path: Path) -> Path:
    return _render("diff.html.j2", path, diff=diff)


def write_diff_pdf(diff: RunDiff, path: Path) -> Path:
    pdf = _Pdf()
    story = [pdf.h(f"Risk changes — run {diff.before.run_id} → run {diff.after.run_id}"),
             pdf.p(f"Before: {diff.before.started_at}; after: {diff.after.started_at}. Findings at score ≥ "
                   f"{diff.after.threshold}; reworded when embedding cosine ≥ {diff.reworded_min}."),
             pdf.spacer(),
             pdf.table(tuple(diff.counts), [tuple(diff.counts.values())])]
    for status in ("new", "removed", "reworded"):
        story += [pdf.h(status.capitalize()),
                  pdf.table(("label", "score", "cosine", "before", "after"),
                            [(c.label, f"{c.score:.3f}", "" if c.similarity is None else f"{c.similarity:.2f}",
                              c.before and f"{c.before.text} — {Path(c.before.document).name}, p. {c.before.page}",
                              c.after and f"{c.after.text} — {Path(c.after.document).name}, p. {c.after.page}")
                             for c in diff.of(status)], (26, 13, 13, 110, 110))]
    story += [pdf.h("Audit trail: run before"), *_audit_trail(pdf, diff.before),
              pdf.h("Audit trail: run after"), *_audit_trail(pdf, diff.after)]
    return pdf.build(path, f"docintel diff {diff.before.run_id} {diff.after.run_id}", story)


def _diff_jsonable(diff: RunDiff) -> dict:
    return {"before": diff.before.run_id, "after": diff.after.run_id, "reworded_min": diff.reworded_min,
            "threshold": diff.after.threshold, "counts": diff.counts,
            "changes": [{"status": c.status, "similarity": c.similarity,
                         "before": c.before and asdict(c.before), "after": c.after and asdict(c.after)}
                        for c in diff.changes]}


WRITERS = {"html": write_html, "pdf": write_pdf, "xlsx": write_xlsx, "csv": write_csv, "json": write_json}
DIFF_WRITERS = {
    "html": write_diff_html, "pdf": write_diff_pdf,
    "xlsx": lambda diff, path: _write_workbook(_diff_tables(diff), path),
    "csv": lambda diff, path: _write_csv_table(_diff_tables(diff)["Changes"], path),
    "json": lambda diff, path: _write_json(_diff_jsonable(diff), path),
}


@dataclass(frozen=True)
class Exports:
    """What an export wrote, and each format that failed with its error."""

    written: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # format → "ErrorType: message"


def _export(subject, out_dir: Path, formats: tuple[str, ...], writers: dict, stem: str,
            meanwhile: Callable[[], None] | None = None) -> Exports:
    """Each format through a ``.partial`` file renamed when complete, so a failed writer leaves no half file
    under the final name; a writer that raises costs its own format only. With other work to do and a
    second core, the PDF (the slowest: reportlab's line breaking, pure Python) is laid out in a forked
    child meanwhile: the other formats, and first ``meanwhile`` (the caller's; if it raises, nothing is
    written and the error is the caller's)."""
    from pipeline.errors import ConfigurationError

    unknown = [f for f in formats if f not in writers]
    if unknown:
        raise ConfigurationError(f"unknown report format(s) {', '.join(unknown)}; use {', '.join(writers)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    fork = "pdf" in formats and (len(formats) > 1 or meanwhile is not None) and _worth_a_fork(subject)
    result, joins = Exports(), {}

    def start(name: str) -> None:
        partial = out_dir / f"{stem}.{name}.partial"
        try:
            if fork and name == "pdf":
                joins[name] = _in_fork(lambda: writers[name](subject, partial))
                return
            writers[name](subject, partial)
            joins[name] = lambda: None
        except Exception as exc:  # an export bug must not cost the other formats, nor the stored results
            _failed(result, partial, name, exc)

    if fork:
        start("pdf")
    if meanwhile is not None:
        try:
            meanwhile()
        except BaseException:
            for name, join in joins.items():  # the child is waited for, its half file removed
                with contextlib.suppress(Exception):
                    join()
                (out_dir / f"{stem}.{name}.partial").unlink(missing_ok=True)
            raise
    for name in formats:
        if not (fork and name == "pdf"):
            start(name)
    for name in formats:
        if name not in joins:
            continue
        partial = out_dir / f"{stem}.{name}.partial"
        try:
            joins[name]()
            partial.replace(out_dir / f"{stem}.{name}")
        except Exception as exc:
            _failed(result, partial, name, exc)
            continue
        result.written.append(out_dir / f"{stem}.{name}")
    return result


def _failed(result: Exports, partial: Path, name: str, exc: Exception) -> None:
    log.debug("the %s export failed", name, exc_info=True)  # the caller reports it; the trace is for us
    partial.unlink(missing_ok=True)
    result.failed[name] = f"{type(exc).__name__}: {exc}"


class ForkedWriterError(RuntimeError):
    """A writer run in a forked child failed; the message is the child's error."""


FORK_FROM_ROWS = 300  # below, the PDF takes less than a fork of a process holding the models costs (measured)


def _worth_a_fork(subject) -> bool:
    rows = len(getattr(subject, "findings", None) or getattr(subject, "changes", None) or ())
    return rows >= FORK_FROM_ROWS and hasattr(os, "fork") and (os.cpu_count() or 1) > 1


def _in_fork(write: Callable[[], None]) -> Callable[[], None]:
    """Run ``write`` in a forked child (it touches no lock, store or logger of the parent, and leaves by
    ``os._exit``); returns the join, which raises the child's error. The child is told not to use the
    tokenizers' threads, which also keeps their fork warning off the console."""
    readable, writable = os.pipe()
    parent, before = os.getpid(), os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # read by the tokenizers' fork handler in the child
    try:
        pid = os.fork()
    finally:
        if os.getpid() == parent and before is None:  # the parent as it was; the child keeps it
            del os.environ["TOKENIZERS_PARALLELISM"]
        elif os.getpid() == parent:
            os.environ["TOKENIZERS_PARALLELISM"] = before
    if pid == 0:
        os.close(readable)
        try:
            write()
            message = b""
        except BaseException as exc:  # noqa: BLE001 — every failure goes back to the parent as its message
            message = f"{type(exc).__name__}: {exc}".encode("utf-8", "backslashreplace")
        os.write(writable, message)
        os._exit(0)
    os.close(writable)

    def join() -> None:
        with os.fdopen(readable, "rb") as pipe:
            message = pipe.read().decode("utf-8")
        _, status = os.waitpid(pid, 0)
        if message or status:
            raise ForkedWriterError(message or f"the writer's process ended with status {status}")

    return join


def export(report: AuditReport, out_dir: Path, formats: tuple[str, ...] = FORMATS,
           meanwhile: Callable[[], None] | None = None) -> Exports:
    """Write ``report.<format>`` for each format into ``out_dir``; unknown formats are an error. ``meanwhile``
    is the caller's own work, done while a forked child lays out the PDF."""
    return _export(report, out_dir, formats, WRITERS, "report", meanwhile)


def export_diff(diff: RunDiff, out_dir: Path, formats: tuple[str, ...] = FORMATS) -> Exports:
    """Write ``diff.<format>`` for each format into ``out_dir``."""
    return _export(diff, out_dir, formats, DIFF_WRITERS, "diff")
