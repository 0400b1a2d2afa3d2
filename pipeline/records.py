"""Typed, immutable records passed between stages.

Provenance is the point: every Sentence names its document and the spans (page, start, end) it was
read from, such that ``sentence.text == SPAN_JOINER.join(page.text[start:end] for each span)``. Most
sentences have one span (``page.text[start:end] == sentence.text``); one that runs across a page break,
or around a running header, has one span per piece.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is light, but records stay importable without touching it
    import numpy as np


@dataclass(frozen=True, slots=True)
class Page:
    """One page of extracted text; ``number`` is 1-based as printed on a viewer's page counter.
    ``ocr_confidence``: set when the text was read by OCR (Tesseract's mean word confidence, 0-1).
    ``size`` (width, height in points) and ``runs`` (``pipeline.geometry``: where each word or character
    of the text sits) for pages with a layout: PDF pages and images."""

    number: int
    text: str
    ocr_confidence: float | None = None
    size: tuple[float, float] | None = None
    runs: bytes | None = None

    @property
    def ocr(self) -> bool:
        return self.ocr_confidence is not None


@dataclass(frozen=True, slots=True)
class PageRead:
    """A page as the sandboxed parser returns it (pickled: so defined here, not in the parser's ``__main__``);
    its text is already tidy wherever ``runs`` point into it."""

    text: str
    ocr_confidence: float | None = None
    size: tuple[float, float] | None = None
    runs: bytes | None = None


SPAN_JOINER = "\n"


@dataclass(frozen=True, slots=True)
class Box:
    """Where a line of a sentence sits on its page: points from the page's top-left corner."""

    page: int
    x0: float
    top: float
    x1: float
    bottom: float


@dataclass(frozen=True, slots=True)
class Span:
    """A character range [start, end) of one page's text."""

    page: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed document; ``doc_id`` is the sha256 of the file's bytes, so re-reading is idempotent.
    ``media_type`` names the reader actually used; ``notes`` say why when it is not the extension's."""

    doc_id: str
    source: str
    media_type: str
    pages: tuple[Page, ...]
    notes: tuple[str, ...] = ()

    def page(self, number: int) -> Page:
        return self.pages[number - 1]

    def text_of(self, spans: tuple[Span, ...]) -> str:
        """Rebuild the text of spans from the pages: the provenance invariant in one place."""
        return SPAN_JOINER.join(self.page(s.page).text[s.start : s.end] for s in spans)


@dataclass(frozen=True, slots=True)
class DocumentFailure:
    """A document that could not be processed, with the reason; the rest of the batch carries on."""

    source: str
    stage: str
    error: str
    doc_id: str | None = None


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file to ingest and the provenance to record for it (an archive member is read from where it was
    extracted, but recorded as ``<archive>!/<member>``)."""

    path: Path
    source: str


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence (or heading, or list item) with its evidence trail back to document, pages, offsets."""

    doc_id: str
    source: str
    spans: tuple[Span, ...]
    text: str
    index: int  # position of the sentence within its document
    boxes: tuple[Box, ...] = ()  # one per line on the page (PDFs and images); none for text without a layout

    @property
    def page(self) -> int:
        return self.spans[0].page

    @property
    def start(self) -> int:
        return self.spans[0].start

    @property
    def end_page(self) -> int:
        return self.spans[-1].page

    @property
    def end(self) -> int:
        """Offset where the sentence ends, in the text of ``end_page``."""
        return self.spans[-1].end


@dataclass(frozen=True, slots=True, eq=False)
class SentenceEmbedding:
    """A sentence with its L2-normalised float32 vector and the model (name@version) that made it."""

    sentence: Sentence
    vector: np.ndarray
    model: str


def source_name(path: Path | str) -> str:
    """The string a record keeps as its source: the path as the user gave it, resolved."""
    return str(Path(path).resolve())


@dataclass(frozen=True, slots=True, eq=False)
class RiskLabel:
    """The classifier's judgement on one sentence: label, its probability, the full distribution."""

    sentence: Sentence
    label: str
    score: float
    distribution: dict[str, float]
    model: str
