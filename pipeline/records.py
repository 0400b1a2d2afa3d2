"""Typed, immutable records passed between stages.

Provenance is the point: every Sentence names its document, page and the character offsets such
that ``page.text[start:end] == sentence.text``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is light, but records stay importable without touching it
    import numpy as np


@dataclass(frozen=True, slots=True)
class Page:
    """One page of extracted text; ``number`` is 1-based as printed on a viewer's page counter."""

    number: int
    text: str


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed document; ``doc_id`` is the sha256 of the file's bytes, so re-reading is idempotent."""

    doc_id: str
    source: str
    media_type: str
    pages: tuple[Page, ...]

    def page(self, number: int) -> Page:
        return self.pages[number - 1]


@dataclass(frozen=True, slots=True)
class DocumentFailure:
    """A document that could not be processed, with the reason; the rest of the batch carries on."""

    source: str
    stage: str
    error: str
    doc_id: str | None = None


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence with its evidence trail back to the document, page and offsets."""

    doc_id: str
    source: str
    page: int
    start: int
    end: int
    text: str
    index: int  # position of the sentence within its document


@dataclass(frozen=True, slots=True, eq=False)
class SentenceEmbedding:
    """A sentence with its L2-normalised float32 vector and the model (name@version) that made it."""

    sentence: Sentence
    vector: np.ndarray
    model: str


def source_name(path: Path | str) -> str:
    """The string a record keeps as its source: the path as the user gave it, resolved."""
    return str(Path(path).resolve())
