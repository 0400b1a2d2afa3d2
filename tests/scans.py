"""Scans made from real PDF pages: a page rendered to an image (as a scanner would), a photocopy treatment,
and PDFs that mix text pages with scanned ones. Shared by the OCR tests and ``bench/ocr.py``.
"""

from __future__ import annotations

import io
import re
import unicodedata
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
from PIL import Image
from pypdf import PdfReader, PdfWriter

DPI = 200


def render(pdf: Path, page: int, dpi: int = DPI) -> Image.Image:
    """Page ``page`` (1-based) of ``pdf`` as a grayscale image at ``dpi``."""
    document = pdfium.PdfDocument(pdf)
    try:
        return document[page - 1].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    finally:
        document.close()


def photocopy(image: Image.Image, seed: int = 0) -> Image.Image:
    """A photocopy of ``image``: rotated 1.5°, Gaussian noise (σ 12), then JPEG at quality 60."""
    rotated = image.rotate(1.5, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    noisy = np.asarray(rotated, dtype=np.float32) + np.random.default_rng(seed).normal(0, 12, rotated.size[::-1])
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=60)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def image_pdf(image: Image.Image, dpi: int = DPI) -> bytes:
    """A one-page PDF holding only ``image``: a scan without a text layer."""
    buffer = io.BytesIO()
    image.save(buffer, "PDF", resolution=dpi)
    return buffer.getvalue()


def mixed_pdf(pdf: Path, text_pages: list[int], scanned_pages: list[int], order: list[int]) -> bytes:
    """A PDF of the pages in ``order``, each copied with its text layer if in ``text_pages``, or replaced by
    its rendering (no text layer) if in ``scanned_pages``."""
    reader, writer = PdfReader(pdf), PdfWriter()
    for number in order:
        if number in text_pages:
            writer.add_page(reader.pages[number - 1])
        else:
            assert number in scanned_pages
            writer.add_page(PdfReader(io.BytesIO(image_pdf(render(pdf, number)))).pages[0])
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def reference(pdf: Path, page: int) -> str:
    """The page's text layer as the OCR reference: pypdf's reading or PDFium's, whichever keeps more words
    apart (each reader glues the words of some filings: pypdf those of the NVIDIA 10-K, PDFium's CFF-font
    filings), so a reader's lost spaces are not counted against the OCR."""
    document = pdfium.PdfDocument(pdf)
    try:
        readings = [PdfReader(pdf).pages[page - 1].extract_text(), document[page - 1].get_textpage().get_text_range()]
    finally:
        document.close()
    return max(readings, key=lambda text: len(words(text)))


def words(text: str) -> list[str]:
    """Words for comparing OCR with a text layer: NFKC, dashes and quotes unified, punctuation kept."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub("[\u2010-\u2015\u2212]", "-", text)
    text = re.sub("[\u2018\u2019\u201b]", "'", re.sub("[\u201c\u201d\u201f]", '"', text))
    return text.split()


def word_accuracy(reference: str, read: str) -> float:
    """1 - word-level edit distance / reference words (the OCR literature's word accuracy)."""
    ref, hyp = words(reference), words(read)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return max(0.0, 1 - previous[-1] / max(len(ref), 1))
