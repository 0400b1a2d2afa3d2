"""Build hard_cases_annual_report.pdf, a fictional 10-K style risk-factor section for the segmentation gold set.

It exists because real filings put the hard segmentation cases (abbreviations, decimals, quotes, lists,
footnote markers, running furniture, sentences crossing page breaks) on pages we cannot commit; this one is
written from scratch for a fictional company and rebuilt byte-for-byte identically (reportlab invariant=1).
gold/hard_cases_annual_report.json quotes this exact layout: after any edit, rebuild and re-annotate.

Run: .venv/bin/python data/segmentation/docs/build_hard_cases.py
"""

from __future__ import annotations

from pathlib import Path

from reportlab.lib.enums import TA_JUSTIFY
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

OUT = Path(__file__).with_name("hard_cases_annual_report.pdf")
HEADER = "Harbor Point Logistics Inc. | 2025 Annual Report"

ITEM = ParagraphStyle("item", fontName="Helvetica-Bold", fontSize=12, leading=15, spaceBefore=4, spaceAfter=8)
HEAD = ParagraphStyle("head", fontName="Helvetica-Bold", fontSize=10.5, leading=13, spaceBefore=8, spaceAfter=5)
BODY = ParagraphStyle("body", fontName="Times-Roman", fontSize=10, leading=12.5, spaceAfter=6, alignment=TA_JUSTIFY)
LIST = ParagraphStyle("list", parent=BODY, leftIndent=24, bulletIndent=10, spaceAfter=2)
NOTE = ParagraphStyle("note", parent=BODY, fontSize=8.5, leading=10.5)

# (kind, text): "item" section title, "head" heading, "cap" bold risk caption, "p" paragraph,
# "b" bullet item, "n" numbered item (text starts with its marker), "note" footnote.
CONTENT: list[tuple[str, str]] = [
    ("item", "Item 1A. Risk Factors"),
    ("p", "Investing in the common stock of Harbor Point Logistics Inc. (“Harbor Point,” the “Company,” “we” or "
          "“us”) involves risk. You should consider carefully the risks described below, together with the other "
          "information in this Annual Report on Form 10-K (the “Report”), before you decide to invest. If any of "
          "these risks occurs, our business, financial condition and results of operations could suffer, and the "
          "trading price of our common stock could decline. The risks below are not the only ones we face; risks "
          "that are not known to us today, or that we now consider immaterial, may also harm us."),
    ("head", "Summary of Risk Factors"),
    ("p", "The following is a summary of the principal risks that could adversely affect our business:"),
    ("b", "declines in freight volumes tied to U.S. retail, industrial and e-commerce demand;"),
    ("b", "volatile diesel fuel prices, which averaged approx. $3.85 per gallon in fiscal 2025;"),
    ("b", "our reliance on a limited number of third-party carriers, railroads and port operators;"),
    ("b", "the loss of, or a reduction in business from, our largest customers;"),
    ("b", "cybersecurity incidents affecting our transportation management systems; and"),
    ("b", "changes in trade policy, tariffs or customs procedures."),
    ("head", "Macroeconomic and Industry Risks"),
    ("cap", "Our results depend on freight demand, which is cyclical and sensitive to economic conditions."),
    ("p", "Demand for our services is closely tied to the volume of goods moving through North American ports and "
          "distribution centers. In fiscal 2025, approx. 62.4% of our revenue came from customers in the retail, "
          "e-commerce and consumer goods sectors, i.e., sectors whose shipping needs change quickly with consumer "
          "spending. When spending weakens, customers reduce inventory, defer shipments and press for lower rates. "
          "For example, volumes at our Gulf Coast terminals fell 8.7% in the second quarter of fiscal 2025 vs. the "
          "same quarter of fiscal 2024. A prolonged downturn in the U.S. economy, or in the economies of our "
          "customers’ principal trading partners, could reduce our revenue and margins."),
    ("p", "Adjusted revenue(1) grew 4.2% to $3.68 billion in fiscal 2025, but this growth came mainly from pricing "
          "rather than volume. We may not be able to sustain price increases if spot market rates fall further, "
          "and a shift of customers from contract to spot pricing would make our results less predictable."),
    ("note", "(1) Adjusted revenue is a non-GAAP measure that excludes fuel surcharge revenue. See “Non-GAAP "
             "Financial Measures” in Item 7 for a reconciliation to total revenue."),
    ("cap", "Fuel price volatility could reduce our margins."),
    ("p", "Fuel is one of our largest operating costs. We spent $412.6 million on diesel fuel in fiscal 2025, or "
          "11.3% of operating expenses. Most of our customer contracts include fuel surcharge provisions, but these "
          "provisions lag changes in market prices and do not always recover the full increase. Our surcharge "
          "program recovered approx. 87.5% of incremental fuel cost in fiscal 2025, vs. 91.0% in fiscal 2024. "
          "Sharp increases in fuel prices, e.g., increases caused by refinery outages or conflicts in producing "
          "regions, could therefore reduce our operating income before surcharges adjust. The fuel hedges we held "
          "at year end are described in the notes to our consolidated financial statements (see Note 7.)"),
    ("cap", "We rely on third-party carriers, and their failure to perform could harm our reputation."),
    ("p", "Approximately 40% of our linehaul miles are driven by independent contractors and third-party carriers. "
          "We depend on these carriers to (1) provide enough capacity during the peak season, (2) comply with "
          "safety and hours-of-service rules and (3) maintain adequate insurance. Our master carrier agreement "
          "states that each carrier “is solely responsible for the safe operation of its equipment.” Courts have "
          "not always honored such provisions, however, and plaintiffs in accident cases increasingly name the "
          "shipper or broker as a defendant. A single serious accident involving a carrier we engaged could "
          "result in claims well above our insurance limits."),
    ("p", "We also lease most of our chassis from Meridian Equipment Leasing Inc. Those leases expire in 2027, and "
          "replacement equipment may cost more. In addition, two Class I railroads carry approx. 70% of our "
          "intermodal containers. A strike, service meltdown or change in pricing at either railroad would be "
          "difficult to offset in the short term."),
    ("head", "Operational Risks"),
    ("cap", "A cybersecurity incident could disrupt our operations and expose us to liability."),
    ("p", "Our operations depend on information systems that plan loads, dispatch drivers, track containers and "
          "bill customers. In March 2025, a ransomware attack on a vendor that hosts the yard management software "
          "at Terminal No. 4 in Port Calder, Texas, delayed container releases for approx. 36 hours. We did not pay "
          "a ransom, and the incident did not have a material effect on our results. Future incidents could be "
          "more severe, e.g., an attack that encrypts our dispatch platform during the holiday peak. Data "
          "protection laws in the U.S. and Canada also require us to notify regulators and affected persons of "
          "certain breaches, which can lead to fines and litigation. (See “Item 1C. Cybersecurity” for a "
          "description of our program.)"),
    ("cap", "Labor shortages and rising wages could increase our costs."),
    ("p", "We compete with other carriers, warehouse operators and retailers for drivers, mechanics and warehouse "
          "staff. Average driver pay per mile rose 5.8% in fiscal 2025. Approximately 1,150 of our employees, "
          "i.e., about 14% of our workforce, are covered by collective bargaining agreements, and the agreement "
          "covering our Port Calder terminals expires on June 30, 2026. A work stoppage there could divert "
          "volume to competitors for an extended period. The union has said that it will seek “significant "
          "improvements in wages and long-term retirement benefits.” We cannot predict the outcome of these "
          "negotiations."),
    ("cap", "Severe weather and climate change could disrupt our network."),
    ("p", "Hurricanes, floods and winter storms regularly close ports, rail lines and highways in the regions we "
          "serve. In fiscal 2025, Hurricane Delphine closed our Port Calder and Lake Charles terminals for a combined "
          "11 days and reduced fourth-quarter operating income by approx. $14 million. Longer-term changes in "
          "weather patterns, e.g., more frequent flooding along the Gulf Coast, may require us to raise or relocate "
          "facilities. Our property insurance covers physical damage but not all lost revenue, and premiums for "
          "our coastal properties rose 18.5% at the last renewal."),
    ("head", "Financial Risks"),
    ("cap", "Our indebtedness could limit our flexibility and divert cash from our business."),
    ("p", "As of December 31, 2025, we had $1.25 billion of total debt outstanding, including $750.0 million of "
          "5.125% senior notes due 2031 and $500.0 million drawn under our term loan facility. Our credit "
          "agreement requires a maximum net leverage ratio of 3.50 to 1.00 and contains covenants that restrict "
          "our ability to:"),
    ("n", "(1) incur additional debt or grant liens on our assets;"),
    ("n", "(2) pay dividends or repurchase shares above specified amounts;"),
    ("n", "(3) sell, lease or transfer significant assets; and"),
    ("n", "(4) merge or consolidate with another company."),
    ("p", "A breach of any of these covenants could result in an event of default. If the lenders accelerated the "
          "debt, we might not have enough liquidity to repay it. Our senior notes are rated BB+ by one rating "
          "agency, which describes our outlook as “stable.” A downgrade would raise our cost of new borrowings."),
    ("cap", "Changes in interest rates could increase our borrowing costs."),
    ("p", "Borrowings under the term loan bear interest at a floating rate, i.e., the Secured Overnight Financing "
          "Rate plus 1.75%. Each 100 basis point increase in that rate would increase our annual interest expense "
          "by approx. $5.0 million. We had no interest rate swaps in place at year end. (See Note 9.)"),
    ("head", "Legal, Regulatory and Trade Risks"),
    ("cap", "Changes in U.S. trade policy could reduce cross-border and port volumes."),
    ("p", "About 23% of the containers we handled in fiscal 2025 carried goods imported from Asia. New tariffs, "
          "quotas or customs procedures could shift import volumes to ports where we have no terminals. Our "
          "largest customer, Calloway Home Goods Inc., accounted for 9.8% of revenue in fiscal 2025 and sources "
          "most of its products overseas. In 2025 it moved part of its sourcing from Vietnam to Mexico, which "
          "moved approx. $38 million of annual revenue from our port drayage business to our cross-border "
          "trucking business at lower margins. Further shifts of this kind could reduce our "
          "revenue."),
    ("cap", "Changes in motor carrier safety rules could reduce our productivity."),
    ("p", "The Federal Motor Carrier Safety Administration (“FMCSA”) regulates driver hours, drug and alcohol "
          "testing and vehicle maintenance. Proposed rules on speed limiters, i.e., devices that cap the top speed "
          "of heavy trucks, could reduce the number of loads each driver can haul per week. The FMCSA’s safety "
          "rating system may also change, and a rating below “Satisfactory” could cause some customers to stop "
          "using us."),
    ("cap", "We are subject to environmental rules, and the cost of compliance may rise."),
    ("p", "Our trucks, yard tractors and forklifts are subject to federal, state and local emission standards. In "
          "2025 a state air quality regulator proposed rules that would require drayage fleets serving its ports "
          "to become “zero-emission by 2035.” If adopted, the rules could require us to replace approx. 600 "
          "tractors years earlier than planned, at an estimated cost of $180 million to $240 million. We also "
          "own or lease facilities where fuel has been stored for decades, and we could be liable for "
          "contamination there even if we did not cause it."),
    ("cap", "Claims and litigation could result in significant costs."),
    ("p", "We are a defendant in lawsuits arising in the ordinary course of business, including personal injury "
          "and property damage claims involving our trucks. We retain the first $2.5 million of each auto "
          "liability claim and buy excess coverage above that amount. Jury verdicts in trucking accident cases "
          "have grown sharply in recent years; some have exceeded $100 million. In addition, a putative class "
          "action filed in 2025 alleges that we misclassified certain owner-operators in California as independent "
          "contractors rather than employees. We believe the claims are without merit and intend to defend them "
          "vigorously. (See Note 14, “Commitments and Contingencies.”)"),
    ("head", "Strategic Risks"),
    ("cap", "We may not realize the expected benefits of acquisitions."),
    ("p", "In July 2025 we acquired Tidewater Cold Chain Inc. for $310.0 million in cash, and we continue to look for "
          "acquisitions that add terminals, warehouses or customer relationships. We recorded $142.3 million of goodwill in the "
          "Tidewater acquisition. If the business does not perform as planned, we may have to record an impairment "
          "charge, as we did in fiscal 2023 for our former St. Louis brokerage unit. Acquisitions also carry risks "
          "that due diligence may not reveal, such as undisclosed liabilities, weak internal controls or disputes "
          "with key employees."),
    ("head", "Risks Related to Our Common Stock"),
    ("cap", "The market price of our common stock may be volatile."),
    ("p", "The price of our common stock ranged from $41.20 to $67.85 per share in fiscal 2025. Quarterly results "
          "that differ from analysts’ expectations, changes in freight rates and announcements by competitors "
          "could each cause the price to move sharply. We have never paid a cash dividend and have no plans "
          "to pay one."),
    ("cap", "Provisions in our charter documents could delay or prevent a change of control."),
    ("p", "Our certificate of incorporation and bylaws (1) divide our board into three classes, (2) allow the "
          "board to issue preferred stock without a stockholder vote and (3) require advance notice of stockholder "
          "proposals. These provisions could discourage a takeover that some stockholders consider favorable. "
          "Delaware law, i.e., Section 203 of the Delaware General Corporation Law, may have a similar effect."),
    ("item", "Item 1B. Unresolved Staff Comments"),
    ("p", "None."),
    ("item", "Item 1C. Cybersecurity"),
    ("p", "Our Chief Information Security Officer (“CISO”) reports to the Chief Financial Officer and briefs the "
          "Audit Committee each quarter. Our program is based on the NIST Cybersecurity Framework, v2.0, and an "
          "independent firm assesses it every year. The fiscal 2025 assessment identified no significant "
          "deficiencies."),
    ("item", "Item 2. Properties"),
    ("p", "As of December 31, 2025, we operated 46 terminals, 19 warehouses and 3 cold storage facilities in the "
          "U.S. and Canada, with approx. 11.4 million square feet of space in total. We own 21 of these facilities "
          "and lease the rest under leases that expire between 2026 and 2041. Our principal facilities are:"),
    ("b", "Terminal No. 4, Port Calder, Texas (owned; 212 acres), our largest container yard;"),
    ("b", "the Lake Charles, Louisiana cross-dock (leased; approx. 410,000 sq. ft.);"),
    ("b", "the Tidewater cold storage campus in Norfolk, Virginia (owned); and"),
    ("b", "our headquarters at 1200 Harbor Point Blvd., Houston, Texas (leased)."),
    ("p", "We believe our facilities are adequate for our current needs. We review our network each year and may "
          "open, expand or close facilities as demand changes."),
    ("item", "Item 3. Legal Proceedings"),
    ("p", "Information about legal proceedings is included in Note 14, “Commitments and Contingencies,” to the "
          "consolidated financial statements and is incorporated here by reference. Approx. 30 personal injury "
          "suits were pending at year end; we do not expect any of them to be material on its own."),
    ("item", "Item 4. Mine Safety Disclosures"),
    ("p", "Not applicable."),
]


def _header(canvas, doc) -> None:
    canvas.saveState()
    top = LETTER[1] - 0.5 * inch
    if doc.page > 1:
        canvas.setFont("Helvetica", 8)
        canvas.drawString(inch, top, "Table of Contents")
        top -= 14
    canvas.setFont("Helvetica-Oblique", 8.5)
    canvas.drawRightString(LETTER[0] - inch, top, HEADER)
    canvas.restoreState()


def _footer(canvas, doc) -> None:
    canvas.saveState()
    canvas.setFont("Helvetica", 9)
    canvas.drawCentredString(LETTER[0] / 2, 0.6 * inch, str(doc.page))
    canvas.restoreState()


class _Doc(SimpleDocTemplate):
    def afterPage(self) -> None:  # the footer goes last, where page numbers sit in real filings
        _footer(self.canv, self)


def flowables() -> list:
    out: list = []
    for kind, text in CONTENT:
        if kind == "item":
            out.append(Paragraph(text, ITEM))
        elif kind == "head":
            out.append(Paragraph(text, HEAD))
        elif kind == "cap":
            out.append(Paragraph(f"<b>{text}</b>", BODY))
        elif kind == "p":
            out.append(Paragraph(text, BODY))
        elif kind == "b":
            out.append(Paragraph(text, LIST, bulletText="•"))
        elif kind == "n":
            marker, rest = text.split(" ", 1)
            out.append(Paragraph(rest, LIST, bulletText=marker))
        elif kind == "note":
            out.append(Spacer(1, 4))
            out.append(Paragraph(text, NOTE))
    return out


def build(path: Path = OUT) -> Path:
    doc = _Doc(str(path), pagesize=LETTER, invariant=1, leftMargin=inch, rightMargin=inch,
               topMargin=0.95 * inch, bottomMargin=0.95 * inch,
               title="Harbor Point Logistics Inc. 2025 Annual Report (excerpt)", author="docintel", subject="",
               creator="docintel build_hard_cases.py")
    doc.build(flowables(), onFirstPage=_header, onLaterPages=_header)
    return path


def check_page_breaks(path: Path = OUT) -> None:
    """The gold set needs 4 pages and a sentence running across every page break; pypdf confirms both."""
    from pypdf import PdfReader

    pages = [page.extract_text().rstrip().splitlines() for page in PdfReader(str(path)).pages]
    assert len(pages) == 4, f"{len(pages)} pages, expected 4"
    for number, lines in enumerate(pages[:-1], start=1):
        last = lines[-2].rstrip()  # lines[-1] is the page number
        assert not last.endswith((".", ":", ";", "”", ")")), f"page {number} ends a sentence: {last!r}"


if __name__ == "__main__":
    print(build())
    check_page_breaks()
