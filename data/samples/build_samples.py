"""Regenerate the binary sample documents (DOCX and PDF) in this folder.

Binary files cannot be reviewed in a diff, so their text lives here and the
files are rebuilt from it deterministically: the same script gives the same
bytes. The HTML and TXT samples are plain text and are edited by hand.

Usage (from the repository root):  python data/samples/build_samples.py
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

from docx import Document
from docx.enum.text import WD_BREAK
from docx.shared import Cm, Pt
from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

HERE = Path(__file__).resolve().parent
FIXED_TIME = dt.datetime(2025, 12, 1, 9, 0, 0)

# --------------------------------------------------------------------------
# Internal audit report (DOCX)
# --------------------------------------------------------------------------

IA_TITLE = "Internal Audit Report IA-2025-07: Procurement and IT Access Controls"
IA_META = (
    "Northwind Components plc. Issued 28 November 2025 by Group Internal Audit "
    "to the Chief Financial Officer, the Chief Information Officer and the "
    "Audit and Risk Committee. Classification: Confidential."
)
IA_SUMMARY = [
    "Internal Audit reviewed the design and operation of key controls over "
    "procurement and over user access to the Group ERP system during the "
    "period 1 January to 30 September 2025. Overall, we rate the control "
    "environment as Needs Improvement. Purchase approvals are generally "
    "well designed, but we found weaknesses in the maintenance of supplier "
    "master data and in the removal of access for leavers and contractors.",
    "We raised five findings: two rated High, two rated Medium and one rated "
    "Low. The High findings relate to unreviewed changes to supplier bank "
    "details and to accounts that remained active after staff and "
    "contractors had left. Management has accepted all findings and agreed "
    "action plans, which are summarised below with owners and due dates.",
]
IA_SCOPE = [
    "The review covered the Leeds, Brno and Penang sites and the shared "
    "service centre in Leeds. We assessed supplier onboarding and master "
    "data changes, purchase order approval, three-way matching of invoices, "
    "user provisioning and removal, privileged access, and segregation of "
    "duties within the ERP system. We did not review payroll, treasury or "
    "the manufacturing execution system, which will be covered in the 2026 "
    "audit plan.",
    "Our work consisted of interviews, walkthroughs, data analytics over "
    "the full population of 48,210 purchase orders and 1,964 supplier "
    "master data changes, and sample testing of 60 user accounts.",
]
IA_TABLE = [
    ("Rating", "Number of findings", "Findings"),
    ("High", "2", "1, 3"),
    ("Medium", "2", "2, 4"),
    ("Low", "1", "5"),
    ("Total", "5", ""),
]
# Each finding: (heading, rating, observation, risk, recommendation, response, owner, due)
IA_FINDINGS = [
    (
        "Finding 1: Supplier bank detail changes are not independently verified",
        "High",
        "Of 1,964 supplier master data changes, 212 altered bank account "
        "details. For 37 of these, there was no evidence of a call-back to "
        "the supplier using contact details already on file, and in 9 cases "
        "the same user requested and approved the change.",
        "Fraudulent requests to change bank details could divert supplier "
        "payments to accounts controlled by third parties.",
        "Enforce a system control so that bank detail changes need a second "
        "approver, and require documented call-back verification before "
        "approval.",
        "Agreed. A two-person approval workflow will be configured in the "
        "ERP system and the call-back procedure will be reissued.",
        "Group Financial Controller",
        "31 January 2026",
    ),
    (
        "Finding 2: Purchase orders raised after the invoice",
        "Medium",
        "Analysis showed that 14% of purchase orders by value were created "
        "on or after the date of the related supplier invoice. The share was "
        "highest for maintenance services at the Brno site.",
        "Spending is committed before budget holders approve it, which "
        "weakens budget control and the value of three-way matching.",
        "Report retrospective purchase orders monthly to site finance "
        "managers and require written justification above EUR 5,000.",
        "Agreed. Monthly reporting will start in January 2026, supported by "
        "refresher training for Brno maintenance staff.",
        "Head of Procurement",
        "31 March 2026",
    ),
    (
        "Finding 3: Access for leavers and contractors is not removed promptly",
        "High",
        "In a sample of 60 leavers, 11 ERP or network accounts remained "
        "active for more than five working days after the leaving date, "
        "including 3 contractor accounts active for over 60 days. HR leaver "
        "notifications are sent to IT by e-mail and are not reconciled.",
        "Dormant accounts can be misused by former staff or by attackers "
        "who obtain their credentials, as shown by the Brno incident in "
        "November 2025.",
        "Automate account disabling from the HR system and run a weekly "
        "reconciliation of active accounts against current staff and "
        "contractor lists.",
        "Agreed. Contractor accounts will be given expiry dates immediately, "
        "and the HR integration will be delivered in the first quarter.",
        "Chief Information Officer",
        "31 March 2026",
    ),
    (
        "Finding 4: Privileged access reviews are not evidenced",
        "Medium",
        "The policy requires monthly review of privileged ERP accounts. "
        "Evidence of review was available for only four of the nine months "
        "tested, and two generic administrator accounts were in use.",
        "Excessive or unauthorised privileged access may go undetected.",
        "Retain signed review evidence each month and replace generic "
        "administrator accounts with named accounts.",
        "Agreed. Generic accounts will be removed and review evidence will "
        "be stored in the IT controls register.",
        "Head of IT Security",
        "28 February 2026",
    ),
    (
        "Finding 5: Contingency plans for single-source suppliers are incomplete",
        "Low",
        "Of 23 suppliers classed as single source, 8 had no documented "
        "contingency plan and 5 had no financial health review in the last "
        "twelve months.",
        "A supplier failure could interrupt production, as occurred when a "
        "circuit board supplier entered insolvency in the third quarter.",
        "Complete contingency plans and annual financial reviews for all "
        "single-source suppliers.",
        "Agreed. Plans for the remaining suppliers will be completed and "
        "reviewed by the Operations Committee.",
        "Chief Operating Officer",
        "30 June 2026",
    ),
]
IA_CLOSING = (
    "Internal Audit will follow up each action after its due date and report "
    "progress to the Audit and Risk Committee. Actions will be closed only "
    "when evidence shows that the revised controls have operated for at "
    "least one full quarter. We thank management and staff for their "
    "cooperation during this review."
)
IA_RATINGS_INTRO = (
    "Ratings reflect the likely impact on the Group if a weakness is not addressed:"
)
IA_RATINGS = [
    ("High", "could cause material loss, misstatement or regulatory breach; "
     "act within three months."),
    ("Medium", "reduces the effectiveness of the control environment; "
     "act within six months."),
    ("Low", "an opportunity to improve efficiency or good practice; "
     "act within twelve months."),
]
# Findings before the hard page break; the rest go on page 2. With the
# compact styles below, each side fits on one A4 page (checked in LibreOffice).
IA_FINDINGS_ON_PAGE_1 = 1


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite a ZIP archive with fixed timestamps so the bytes are stable."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(
        out, "w", zipfile.ZIP_DEFLATED
    ) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def build_docx(path: Path) -> None:
    doc = Document()
    section = doc.sections[0]
    section.page_height, section.page_width = Cm(29.7), Cm(21.0)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Cm(2.0))
    # Compact spacing so the text fits on exactly two A4 pages.
    styles = doc.styles
    styles["Normal"].font.size = Pt(10)
    styles["Normal"].paragraph_format.space_after = Pt(3)
    styles["Normal"].paragraph_format.line_spacing = 1.0
    styles["Title"].font.size = Pt(20)
    styles["Heading 1"].paragraph_format.space_before = Pt(10)
    styles["Heading 2"].paragraph_format.space_before = Pt(6)

    props = doc.core_properties
    props.title = IA_TITLE
    props.author = props.last_modified_by = "Group Internal Audit"
    props.created = props.modified = FIXED_TIME
    props.last_printed = FIXED_TIME
    props.revision = 1

    doc.add_heading(IA_TITLE, level=0)
    doc.add_paragraph(IA_META)
    doc.add_heading("1. Executive summary", level=1)
    for text in IA_SUMMARY:
        doc.add_paragraph(text)
    doc.add_heading("2. Scope and approach", level=1)
    for text in IA_SCOPE:
        doc.add_paragraph(text)

    doc.add_heading("3. Findings by rating", level=1)
    table = doc.add_table(rows=len(IA_TABLE), cols=len(IA_TABLE[0]))
    table.style = "Table Grid"
    for r, row in enumerate(IA_TABLE):
        for c, value in enumerate(row):
            cell = table.cell(r, c)
            cell.text = value
            if r == 0:
                cell.paragraphs[0].runs[0].bold = True
    doc.add_paragraph(IA_RATINGS_INTRO)
    for rating, meaning in IA_RATINGS:
        para = doc.add_paragraph()
        para.add_run(f"{rating}: ").bold = True
        para.add_run(meaning)

    doc.add_heading("4. Detailed findings", level=1)
    for i, (head, rating, obs, risk, rec, resp, owner, due) in enumerate(IA_FINDINGS):
        doc.add_heading(f"{head} (rated {rating})", level=2)
        for label, text in (
            ("Observation", obs),
            ("Risk", risk),
            ("Recommendation", rec),
            ("Management response", f"{resp} Owner: {owner}. Due date: {due}."),
        ):
            para = doc.add_paragraph()
            para.add_run(f"{label}: ").bold = True
            last = para.add_run(text)
        if i + 1 == IA_FINDINGS_ON_PAGE_1:
            last.add_break(WD_BREAK.PAGE)

    doc.add_heading("5. Follow-up", level=1)
    doc.add_paragraph(IA_CLOSING)

    buf = io.BytesIO()
    doc.save(buf)
    path.write_bytes(_normalise_zip(buf.getvalue()))


# --------------------------------------------------------------------------
# Board / audit committee minutes (PDF)
# --------------------------------------------------------------------------

MIN_TITLE = "Minutes of a Meeting of the Audit and Risk Committee"
MIN_HEADER = [
    "Northwind Components plc (the Company). Meeting held at the Company's "
    "offices in Leeds on Wednesday 4 February 2026 at 10:00.",
    "Present: Helen Marsh (Chair), Rajiv Menon and Claire Dubois, "
    "independent non-executive directors.",
    "In attendance: Owen Pritchard (Chief Financial Officer), Sofia Lindqvist "
    "(Chief Information Officer), Daniel Achebe (General Counsel), Mei Tan "
    "(Head of Internal Audit), and Laura Kerr and James Holt of Barrow and "
    "Finch LLP, the external auditor. Peter Quinn, Company Secretary, "
    "acted as secretary to the meeting.",
]
# (heading, paragraphs)
MIN_ITEMS = [
    (
        "1. Apologies, quorum and declarations of interest",
        [
            "Apologies were received from the Chief Executive Officer, who "
            "was travelling to Penang. The Chair confirmed that a quorum was "
            "present. No member declared an interest in any item of business.",
        ],
    ),
    (
        "2. Minutes of the previous meeting and matters arising",
        [
            "The minutes of the meeting held on 19 November 2025 were "
            "approved as a true record. The Company Secretary reported that "
            "all actions from that meeting were complete, except the review "
            "of the treasury policy, which is covered under item 3.",
        ],
    ),
    (
        "3. Liquidity and covenant headroom",
        [
            "The CFO presented the year-end liquidity report. Net debt at 31 "
            "December 2025 was $389 million and the leverage ratio was 2.91 "
            "times, against a covenant limit of 3.25 times. Interest cover "
            "was 5.2 times against a minimum of 4.0 times. Undrawn facilities "
            "and cash gave available liquidity of $85 million.",
            "The CFO explained that headroom had narrowed because of lower "
            "volumes in the second half and the inventory build that followed "
            "the supplier failure. Under the downside case, which assumes a "
            "further 8% fall in revenue, the leverage ratio would reach 3.18 "
            "times at the June 2026 test date. Mr Menon asked what mitigating "
            "actions were available. The CFO listed deferral of non-essential "
            "capital expenditure, tighter collection of overdue receivables "
            "and a possible sale of the surplus Brno warehouse.",
            "The Committee noted that the revolving credit facility matures in "
            "June 2027 and asked management to begin refinancing discussions "
            "with the lending banks before the half-year results.",
        ],
    ),
    (
        "4. Cyber incident at the Brno site",
        [
            "The CIO reported on the incident detected on 12 November 2025, "
            "in which an attacker used the credentials of a former contractor "
            "to access a file server at Brno. The account was disabled and "
            "the server isolated within two days. A forensic firm found no "
            "evidence that customer or personal data had been taken, but some "
            "engineering drawings may have been viewed. The DPO concluded "
            "that the incident was not notifiable to the data protection "
            "authority.",
            "The Committee discussed the root cause, which was linked to the "
            "late removal of contractor access identified by Internal Audit. "
            "Ms Dubois asked whether multi-factor authentication now applied "
            "to all remote connections. The CIO confirmed it would be in "
            "place for all users by 31 March 2026.",
        ],
    ),
    (
        "5. Supplier failure",
        [
            "The CFO summarised the impact of the insolvency of the Company's "
            "main circuit board supplier in August 2025. Replacement supply "
            "had been qualified, but shipments of some motor control products "
            "were delayed by up to six weeks and additional costs of $3.1 "
            "million were incurred. No customer had claimed penalties to date. "
            "The Committee asked management to report on progress with "
            "contingency plans for all single-source suppliers.",
        ],
    ),
    (
        "6. Regulatory inquiry on export controls",
        [
            "The General Counsel updated the Committee on the request for "
            "information received in October 2025 from the UK export control "
            "authority about shipments made through a distributor in 2023 "
            "and 2024. Outside counsel had completed the collection of "
            "documents, and a response would be submitted by the end of "
            "February. It was too early to judge whether a penalty was "
            "likely, and no provision had been recorded. The external auditor "
            "agreed that a contingent liability disclosure was appropriate.",
        ],
    ),
    (
        "7. External auditor's management letter",
        [
            "Ms Kerr presented the management letter arising from the 2025 "
            "audit. The auditor had no significant deficiencies to report and "
            "confirmed that the inventory costing material weakness reported "
            "last year had been remediated. The letter contained six other "
            "recommendations, chiefly on manual journal review, user access "
            "to the ERP system and documentation of impairment assumptions. "
            "Management had accepted all recommendations.",
            "The Chair asked the auditor whether it had received all the "
            "information and explanations it required. Ms Kerr confirmed that "
            "it had, and that there were no unadjusted misstatements above "
            "the reporting threshold.",
        ],
    ),
    (
        "8. Internal audit report on procurement and IT access",
        [
            "The Head of Internal Audit presented report IA-2025-07, which "
            "rated the area as Needs Improvement and contained two High "
            "findings. The Committee welcomed the agreed actions and asked "
            "that the two High findings be tracked at each meeting until "
            "closed.",
        ],
    ),
    (
        "9. Resolutions",
        [
            "It was resolved that the Committee recommend to the Board that "
            "the financial statements for the year ended 31 December 2025 be "
            "prepared on the going concern basis.",
            "It was resolved that the Committee recommend to the Board the "
            "reappointment of Barrow and Finch LLP as external auditor for "
            "2026, subject to shareholder approval.",
            "It was resolved that the revised treasury policy be approved.",
        ],
    ),
    (
        "10. Actions",
        [
            "CFO to present a refinancing plan for the revolving credit "
            "facility by 30 April 2026.",
            "CIO to confirm that multi-factor authentication covers all "
            "remote access by 31 March 2026.",
            "General Counsel to circulate the response to the regulatory "
            "inquiry before submission.",
            "Head of Internal Audit to report on the status of the High "
            "findings at the next meeting.",
        ],
    ),
]
MIN_CLOSE = (
    "There being no other business, the Chair closed the meeting at 12:40. "
    "The next meeting will be held on 22 April 2026."
)


def _footer(canvas, doc) -> None:
    canvas.saveState()
    canvas.setFont("Helvetica", 8)
    canvas.drawString(2 * cm, 1.2 * cm, "Northwind Components plc - Audit and Risk Committee - Confidential")
    canvas.drawRightString(A4[0] - 2 * cm, 1.2 * cm, f"Page {doc.page}")
    canvas.restoreState()


def build_pdf(path: Path) -> None:
    rl_config.invariant = 1  # fixed creation date and document ID
    styles = getSampleStyleSheet()
    body, h1, h2 = styles["BodyText"], styles["Title"], styles["Heading2"]
    body.fontSize, body.leading = 10.5, 14

    story = [Paragraph(MIN_TITLE, h1)]
    story += [Paragraph(text, body) for text in MIN_HEADER]
    for heading, paragraphs in MIN_ITEMS:
        story.append(Paragraph(heading, h2))
        story += [Paragraph(text, body) for text in paragraphs]
    story += [Spacer(1, 0.4 * cm), Paragraph(MIN_CLOSE, body)]
    story.append(Spacer(1, 1.0 * cm))
    story.append(Paragraph("Signed: Helen Marsh, Chair. Date: 22 April 2026", body))

    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=2 * cm,
        bottomMargin=2 * cm,
        title=MIN_TITLE,
        author="Company Secretary, Northwind Components plc",
        subject="Audit and Risk Committee minutes, 4 February 2026",
        creator="build_samples.py",
        invariant=1,
    )
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)


def main() -> None:
    build_docx(HERE / "internal_audit_report.docx")
    build_pdf(HERE / "board_minutes.pdf")


if __name__ == "__main__":
    main()
