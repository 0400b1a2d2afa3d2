"""Layout-aware segmentation: each hard case of real filings pinned on a small input."""

from __future__ import annotations

import pytest

from pipeline.records import Document, Page
from pipeline.stages.layout import find_furniture


def doc(*pages: str) -> Document:
    return Document(doc_id="f" * 64, source="/filing.pdf", media_type="application/pdf",
                    pages=tuple(Page(i, t) for i, t in enumerate(pages, start=1)))


@pytest.fixture(scope="module")
def layout(sentencizers):
    return sentencizers["layout"]


def texts(stage, document):
    sentences = stage.process([document])
    for s in sentences:
        assert document.text_of(s.spans) == s.text
    return [s.text for s in sentences]


def test_heading_without_period_is_its_own_segment(layout):
    document = doc("Liquidity and Capital Resources\nOur revenue may decline. We rely on a revolving credit facility.")
    assert texts(layout, document) == [
        "Liquidity and Capital Resources",
        "Our revenue may decline.",
        "We rely on a revolving credit facility.",
    ]


def test_heading_wrapping_over_two_lines(layout):
    document = doc(
        "Cash was tight at year end.\n"
        "We Face Risks Related to Protecting Our Intellectual Property Rights and Being Accused of Infringing Rights of Third\n"
        "Parties\nWe regard our trademarks as critical to our success."
    )
    assert texts(layout, document)[1:] == [
        "We Face Risks Related to Protecting Our Intellectual Property Rights and Being Accused of Infringing "
        "Rights of Third\nParties",
        "We regard our trademarks as critical to our success.",
    ]


def test_bullet_list_introduced_by_a_colon(layout):
    document = doc(
        "Our results could be harmed by the following:\n"
        "• the loss of a key customer;\n"
        "• the failure of a sole-source supplier; and\n"
        "• adverse movements in exchange rates.\n"
        "(1) a covenant breach under our term loan.\n"
        "These risks are described below."
    )
    assert texts(layout, document) == [
        "Our results could be harmed by the following:",
        "the loss of a key customer;",
        "the failure of a sole-source supplier; and",
        "adverse movements in exchange rates.",
        "a covenant breach under our term loan.",
        "These risks are described below.",
    ]


HEADER = "Acme Industrial Corp. | 2025 Annual Report"


def test_page_break_mid_sentence_with_running_header_and_page_numbers(layout):
    document = doc(
        f"{HEADER}\nThe company expects revenue to grow. Lenders under the revolving facility may\n\n1",
        f"Table of Contents\n{HEADER}\naccelerate repayment if we breach a covenant. We monitor headroom monthly.\n2",
        f"{HEADER}\nNo change occurred in our internal control over financial reporting.\n3",
    )
    sentences = layout.process([document])
    crossing = [s for s in sentences if s.page != s.end_page]
    assert len(crossing) == 1
    s = crossing[0]
    assert s.text == ("Lenders under the revolving facility may\n"
                      "accelerate repayment if we breach a covenant.")
    assert (s.page, s.end_page, len(s.spans)) == (1, 2, 2)
    assert document.text_of(s.spans) == s.text
    assert not any("Acme" in x.text or "Table of Contents" in x.text for x in sentences)
    assert [x.text for x in sentences][-1] == "No change occurred in our internal control over financial reporting."


def test_page_number_glued_to_the_last_word_is_furniture(layout):
    endings = ["harm our financial", "reduce our", "delay the", "increase our"]
    pages = [f"Risk {n} is described here and could {end}{n + 9}" for n, end in enumerate(endings, start=1)]
    furniture = find_furniture(doc(*pages).pages)
    for number, page_text in enumerate(pages, start=1):
        ((start, end),) = furniture[number]
        assert page_text[start:end] == str(number + 9)


def test_abbreviations_decimals_quotes_and_parentheses_never_cut(layout):
    document = doc(
        "Sales rose approx. 12.5% to $1.25 billion in the U.S. market, e.g. in Texas, and No. 4 plant ran "
        "at 3.5x capacity (see Note 7. Leases) through Q4. The auditor said \"controls were effective.\" "
        "Costs fell."
    )
    assert texts(layout, document) == [
        "Sales rose approx. 12.5% to $1.25 billion in the U.S. market, e.g. in Texas, and No. 4 plant ran "
        "at 3.5x capacity (see Note 7. Leases) through Q4.",
        "The auditor said \"controls were effective.\"",
        "Costs fell.",
    ]


def test_paragraph_break_always_ends_a_segment(layout):
    document = doc("Scope and approach\n\nWe tested 40 samples\n\nNo exceptions were noted.")
    assert texts(layout, document) == ["Scope and approach", "We tested 40 samples", "No exceptions were noted."]


def test_glued_sentences_are_split(layout):
    document = doc("Our margins could decline.We\n receive most revenue from few customers.")
    assert texts(layout, document) == ["Our margins could decline.", "We\n receive most revenue from few customers."]


def test_page_number_alone_between_blank_lines_in_a_one_page_text_is_furniture(layout):
    document = doc("Our supplier base is concentrated.\n\n14\n\nWe may not refinance our notes.\n\n"
                   "We operated\n3\nplants in Ohio.\n\nOne.\n\nTwo.\n\nThree.")
    sentences = texts(layout, document)
    assert "14" not in sentences
    assert sentences[:2] == ["Our supplier base is concentrated.", "We may not refinance our notes."]
    assert any("3" in s for s in sentences)  # a number inside a paragraph is content
