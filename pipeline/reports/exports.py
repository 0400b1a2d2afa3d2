"""Render an ``AuditReport`` as JSON, CSV, XLSX and a self-contained HTML file.

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
FORMATS = ("html", "xlsx", "csv", "json")
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


WRITERS = {"html": write_html, "xlsx": write_xlsx, "csv": write_csv, "json": write_json}


def export(report: AuditReport, out_dir: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write ``report.<format>`` for each format into ``out_dir``; unknown formats are an error."""
    from pipeline.errors import ConfigurationError

    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise ConfigurationError(f"unknown report format(s) {', '.join(unknown)}; use {', '.join(WRITERS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [WRITERS[f](report, out_dir / f"report.{f}") for f in formats]
