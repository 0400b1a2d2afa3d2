"""Risk register mapping with the real MiniLM: loading and checking registers, evidence, gaps, emerging risks."""

from __future__ import annotations

import csv

import pytest

from pipeline.errors import ConfigurationError
from pipeline.reports.audit import build_report
from pipeline.reports.exports import export
from pipeline.reports.register import load_register
from pipeline.settings import REPO_ROOT, Settings
from pipeline.store import ResultStore

REGISTER = [
    ("FIN-1", "Covenant breach", "Breach of the leverage covenant lets lenders accelerate the loan; refinancing risk."),
    ("IT-4", "Cyber attack", "Phishing or ransomware compromises accounts and systems; data is stolen."),
    ("LEG-2", "Bribery and corruption", "Agents or distributors pay bribes in breach of anti-corruption law."),
]
FINDINGS = [
    ("Lenders may accelerate the loan if we breach the leverage covenant.", "financial", 0.93),
    ("A phishing attack compromised two finance mailboxes and stole customer data.", "technology", 0.91),
    ("Our sole supplier of wafers had a fire at its plant and cannot ship until May.", "operational", 0.88),
    ("The Committee approved the minutes of the last meeting.", "none", 0.99),
]


def _write_csv(path, rows, header=("id", "title", "description")):
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


@pytest.fixture()
def mapped(tmp_path, labelled_run):
    store = ResultStore(f"sqlite:///{tmp_path / 'store.db'}")
    run_id = labelled_run(store, "/inbox/q3-minutes.txt", FINDINGS)
    register = _write_csv(tmp_path / "register.csv", REGISTER)
    return store, build_report(store, run_id, models_dir=Settings().models_dir, register=register,
                               register_min_similarity=0.35, device="cpu")


def test_findings_map_to_their_register_risks_and_the_rest_are_emerging(mapped):
    _, report = mapped
    best = {f.text.split()[1]: f.register[0].risk_id if f.register else None for f in report.findings}
    assert best == {"may": "FIN-1", "phishing": "IT-4", "sole": None}  # the supplier fire is in no register entry
    evidence = {risk.id: [f.text for f, _ in found] for risk, found in report.register_evidence()}
    assert evidence["LEG-2"] == [] and FINDINGS[0][0] in evidence["FIN-1"] and FINDINGS[1][0] in evidence["IT-4"]
    assert [f.text for f in report.emerging] == [FINDINGS[2][0]]
    for finding in report.findings:
        sims = [m.similarity for m in finding.register]
        assert sims == sorted(sims, reverse=True) and all(s >= 0.35 for s in sims)


def test_every_format_shows_the_register_view(mapped, tmp_path):
    from openpyxl import load_workbook
    from pypdf import PdfReader

    store, report = mapped
    paths = dict(zip(("html", "pdf", "xlsx", "json"), export(report, tmp_path / "out", ("html", "pdf", "xlsx", "json")).written))
    html = paths["html"].read_text(encoding="utf-8")
    assert "Register risks with evidence" in html and "Bribery and corruption" in html
    assert html.index("Emerging risks") < html.index("sole supplier of wafers", html.index("Emerging risks"))
    book = load_workbook(paths["xlsx"])
    assert {"Register", "Emerging"} <= set(book.sheetnames)
    register_rows = {row[0]: row for row in book["Register"].iter_rows(min_row=2, values_only=True)}
    assert register_rows["LEG-2"][3] == 0 and register_rows["FIN-1"][5] == FINDINGS[0][0]
    text = " ".join(page.extract_text() for page in PdfReader(paths["pdf"]).pages)
    assert "risks without evidence" in text and "LEG-2" in text and "Emerging risks" in text
    import json

    data = json.loads(paths["json"].read_text())
    assert [r["id"] for r in data["register"]["risks"] if not r["evidence"]] == ["LEG-2"]


def test_registers_from_xlsx_and_the_sample_and_bad_registers_refused(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["ID", "Title", "Description", "Owner"])
    book.active.append(["R1", "placeholder", "Formula-looking title is just text here", "CFO"])
    book.active["B2"].value, book.active["B2"].data_type = "=HYPERLINK(\"http://x\")", "s"  # text, as Excel's '=
    book.save(tmp_path / "register.xlsx")
    [risk] = load_register(tmp_path / "register.xlsx").risks
    assert risk.id == "R1" and risk.title.startswith("=HYPERLINK")
    sample = load_register(REPO_ROOT / "data" / "risk_register.csv")
    assert len(sample.risks) >= 10 and len({r.id for r in sample.risks}) == len(sample.risks)
    with pytest.raises(ConfigurationError, match="lacks column.*description"):
        load_register(_write_csv(tmp_path / "a.csv", [("R1", "t")], header=("id", "title")))
    with pytest.raises(ConfigurationError, match="duplicate id 'R1'"):
        load_register(_write_csv(tmp_path / "b.csv", [("R1", "a", "b"), ("R1", "c", "d")]))
    with pytest.raises(ConfigurationError, match="empty"):
        load_register(_write_csv(tmp_path / "c.csv", [], header=()))
    with pytest.raises(ConfigurationError, match=".csv or .xlsx"):
        load_register(_write_csv(tmp_path / "d.txt", [("R1", "a", "b")]))
