"""Render an ``AuditReport`` as a self-contained HTML file, PDF, XLSX, CSV and JSON.

Document text is untrusted: HTML goes through Jinja2 with autoescaping (and no network fetches: CSS, script
and charts are inline), and no cell of a CSV or XLSX export can become a formula — a value starting with
``= + - @``, tab or CR is written as text (XLSX: a string cell; CSV: prefixed with ``'``, as OWASP advises).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

from pipeline.reports.audit import AuditReport

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMATS = ("html", "pdf", "xlsx", "csv", "json")
FINDING_COLUMNS = ("label", "score", "document", "page", "start", "end", "text", "context_before", "context_after")


def _csv_safe(value):
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) else value


def _jsonable(report: AuditReport) -> dict:
    return {
        "run_id": report.run_id, "started_at": report.started_at, "finished_at": report.finished_at,
        "triggered_by": report.triggered_by, "threshold": report.threshold, "settings": report.settings,
        "models": report.models, "totals": report.totals, "by_category": report.by_category,
        "documents": [asdict(d) for d in report.documents], "findings": [asdict(f) for f in report.findings],
    }


def write_json(report: AuditReport, path: Path) -> Path:
    path.write_text(json.dumps(_jsonable(report), indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    return path


def write_csv(report: AuditReport, path: Path) -> Path:
    """The findings table (one row per finding), formula-safe."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(FINDING_COLUMNS)
        for finding in report.findings:
            writer.writerow([_csv_safe(getattr(finding, column)) for column in FINDING_COLUMNS])
    return path


def write_xlsx(report: AuditReport, path: Path) -> Path:
    """Summary, Findings, Documents and Run sheets; frozen headers, autofilter, sensible widths."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    totals = report.totals
    sheets = {
        "Summary": (("measure", "value"), [*totals.items(), *((f"findings: {k}", v) for k, v in
                                                               report.by_category.items())]),
        "Findings": (FINDING_COLUMNS, [[getattr(f, c) for c in FINDING_COLUMNS] for f in report.findings]),
        "Documents": (("source", "doc_id (sha256)", "status", "pages", "sentences", "findings", "stage", "error"),
                      [[d.source, d.doc_id, d.status, d.pages, d.sentences, d.findings, d.stage, d.error]
                       for d in report.documents]),
        "Run": (("field", "value"), [("run_id", report.run_id), ("started_at", str(report.started_at)),
                                     ("finished_at", str(report.finished_at)), ("triggered_by", report.triggered_by),
                                     ("threshold", report.threshold),
                                     *((f"model: {role}", json.dumps(m)) for role, m in report.models.items()),
                                     *((f"setting: {k}", json.dumps(v, default=str))
                                       for k, v in report.settings.items())]),
    }
    book.remove(book.active)
    widths = {"text": 80, "context_before": 40, "context_after": 40, "error": 60, "value": 80, "source": 40}
    for title, (header, rows) in sheets.items():
        sheet = book.create_sheet(title)
        sheet.append(list(header))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for r, row in enumerate(rows, start=2):
            for c, value in enumerate(row, start=1):
                cell = sheet.cell(row=r, column=c)
                cell.value = value
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


def write_html(report: AuditReport, path: Path) -> Path:
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    environment = Environment(loader=PackageLoader("pipeline.reports", "templates"),
                              autoescape=select_autoescape(default=True, default_for_string=True))
    heat = report.heat_map()
    peak = max((n for row in heat.values() for n in row.values()), default=0) or 1
    html = environment.get_template("report.html.j2").render(
        report=report, totals=report.totals, heat=heat, peak=peak,
        # charts are built from numbers and the fixed taxonomy labels only, never from document text
        category_chart=Markup(_bar_chart(report.by_category)),
        score_chart=Markup(_histogram(report.score_histogram())),
        settings_json=json.dumps(report.settings, indent=2, default=str),
    )
    path.write_text(html, encoding="utf-8")
    return path


def _pdf_fonts() -> tuple[str, str]:
    """Bitstream Vera, shipped inside reportlab: a TrueType font that is embedded in the PDF (the 14 standard
    PDF fonts are not) and covers more than Latin-1."""
    from pathlib import Path as _Path

    import reportlab
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    fonts = _Path(reportlab.__file__).parent / "fonts"
    if "Vera" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("Vera", str(fonts / "Vera.ttf")))
        pdfmetrics.registerFont(TTFont("VeraBd", str(fonts / "VeraBd.ttf")))
    return "Vera", "VeraBd"


def write_pdf(report: AuditReport, path: Path) -> Path:
    """A4 landscape: summary, findings by category, the findings table (paginated, header repeated on each
    page), failed documents and the audit trail. Document text is escaped: reportlab paragraphs read markup."""
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    regular, bold = _pdf_fonts()
    body = ParagraphStyle("body", fontName=regular, fontSize=8, leading=10)
    heading = ParagraphStyle("heading", fontName=bold, fontSize=13, leading=17, spaceBefore=8, spaceAfter=4)

    def p(text) -> Paragraph:
        return Paragraph(escape("" if text is None else str(text)), body)

    grid = TableStyle([("FONTNAME", (0, 0), (-1, -1), regular), ("FONTNAME", (0, 0), (-1, 0), bold),
                       ("FONTSIZE", (0, 0), (-1, -1), 8), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                       ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f5")), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    story = [Paragraph(escape(f"Risk findings — run {report.run_id}"), heading),
             p(f"Started {report.started_at}, finished {report.finished_at}; triggered by {report.triggered_by}. "
               f"Findings: risk labels at score ≥ {report.threshold}, highest first."),
             Spacer(1, 4 * mm),
             Table([[p(k) for k in report.totals], [p(v) for v in report.totals.values()]], style=grid),
             Paragraph("Findings by category", heading),
             Table([[p(k) for k in report.by_category], [p(v) for v in report.by_category.values()]], style=grid),
             Paragraph("Findings", heading)]
    rows = [[p(h) for h in ("label", "score", "document", "page", "offsets", "sentence")]]
    rows += [[p(f.label), p(f"{f.score:.3f}"), p(Path(f.document).name), p(f.page), p(f"{f.start}–{f.end}"), p(f.text)]
             for f in report.findings]
    story.append(LongTable(rows, colWidths=[28 * mm, 14 * mm, 45 * mm, 13 * mm, 22 * mm, 148 * mm], repeatRows=1,
                           style=grid))
    if report.failed:
        story += [Paragraph("Documents that failed", heading),
                  Table([[p("source"), p("stage"), p("error")]] + [[p(d.source), p(d.stage), p(d.error)]
                                                                   for d in report.failed],
                        colWidths=[90 * mm, 25 * mm, 155 * mm], style=grid)]
    story += [Paragraph("Audit trail", heading),
              Table([[p("input"), p("content sha256"), p("status")]] + [[p(d.source), p(d.doc_id), p(d.status)]
                                                                       for d in report.documents],
                    colWidths=[90 * mm, 120 * mm, 20 * mm], style=grid),
              Spacer(1, 3 * mm),
              Table([[p("model"), p("version"), p("sha256")]] + [
                  [p(role), p(m["label"]), p("; ".join(f"{k}: {v}" for k, v in m["sha256"].items()))]
                  for role, m in report.models.items()], colWidths=[25 * mm, 70 * mm, 175 * mm], style=grid)]
    SimpleDocTemplate(str(path), pagesize=landscape(A4), title=f"docintel run {report.run_id}",
                      leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm, bottomMargin=12 * mm,
                      initialFontName=regular).build(story)  # not Helvetica: the standard fonts are not embedded
    return path


def summary_markdown(report: AuditReport, files: list[Path]) -> str:
    """A short run summary (counts and where the exports are) for the orchestrator's UI. Counts and the
    fixed taxonomy only: no document text, so nothing from a document is rendered as markdown."""
    totals = report.totals
    lines = [f"### docintel run `{report.run_id}`", "",
             f"{totals['documents']} documents ({totals['failed']} failed), {totals['pages']} pages, "
             f"{totals['sentences']} sentences, **{totals['findings']} findings** at score ≥ {report.threshold}.", "",
             "| category | findings |", "|---|---:|", *(f"| {k} | {v} |" for k, v in report.by_category.items()), "",
             "Exports:", *(f"- `{path}`" for path in files)]
    return "\n".join(lines)


WRITERS = {"html": write_html, "pdf": write_pdf, "xlsx": write_xlsx, "csv": write_csv, "json": write_json}


def export(report: AuditReport, out_dir: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write ``report.<format>`` for each format into ``out_dir``; unknown formats are an error."""
    from pipeline.errors import ConfigurationError

    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise ConfigurationError(f"unknown report format(s) {', '.join(unknown)}; use {', '.join(WRITERS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [WRITERS[f](report, out_dir / f"report.{f}") for f in formats]
