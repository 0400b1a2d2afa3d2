"""A large document reports how far each stage has got inside it; an ordinary one stays quiet."""

from __future__ import annotations

from pipeline import progress
from pipeline.records import Document, Page


def _document(pages: int) -> Document:
    return Document(f"{pages:064d}", f"/inbox/filing-{pages}.txt", "text/plain",
                    tuple(Page(i, f"Revenue fell on page {i}. Lenders may call the loan.") for i in range(1, pages + 1)))


def test_large_document_reports_pages_and_sentences(sentencizers, minilm):
    events: list[progress.StageProgress] = []
    with progress.listening_to_stages(events.append):
        small = sentencizers["rule"].process([_document(3)])
        minilm.process(small)
        assert events == []  # an ordinary document: no per-stage chatter
        sentences = sentencizers["rule"].process([_document(progress.LARGE_PAGES + 200)])
        vectors = minilm.process(sentences)
    assert len(vectors) == len(sentences) == 2 * (progress.LARGE_PAGES + 200)
    by_stage = {stage: [e for e in events if e.stage == stage] for stage in ("sentencize", "embed")}
    assert by_stage["sentencize"][-1].done == by_stage["sentencize"][-1].total == progress.LARGE_PAGES + 200
    assert by_stage["sentencize"][-1].unit == "pages"
    assert (by_stage["embed"][-1].done, by_stage["embed"][-1].total) == (len(sentences), len(sentences))
    for stage_events in by_stage.values():
        done = [e.done for e in stage_events]
        assert done == sorted(done) and len(set(done)) == len(done)
    assert str(by_stage["embed"][-1]) == f"embed: /inbox/filing-1200.txt: {len(sentences):,} of {len(sentences):,} sentences"
