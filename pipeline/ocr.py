"""OCR of page images: Tesseract (Debian's ``tesseract-ocr``) through ``pytesseract``, offline.

Chosen by measurement on rendered 10-K pages (README, "OCR"): Tesseract 5 read them at word accuracy 0.99
where RapidOCR ran words together (0.08). Tesseract runs one thread per page (``OMP_THREAD_LIMIT=1``: its
OpenMP threads made a page 4x slower on 2 cores) and pages are read side by side instead.
Runs inside the parser's sandboxed process, so its time and memory caps apply to OCR too.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pipeline.errors import DocumentReadError

if TYPE_CHECKING:
    from PIL import Image

OcrMode = Literal["off", "auto", "force"]
MIN_LETTERS = 32  # a page with fewer letters in its text layer, but an image, is read as a scan
MAX_GARBAGE = 0.10  # share of undecodable glyphs above which a text layer is unusable


@dataclass(frozen=True)
class OcrOptions:
    """``auto``: OCR a page whose text layer is missing or unusable; ``force``: every page; ``off``: none."""

    mode: OcrMode = "auto"
    language: str = "eng"
    dpi: int = 200


@dataclass(frozen=True)
class OcrText:
    """A page read by OCR: its text (lines joined by "\\n", paragraphs by "\\n\\n"), the mean confidence
    of its words (0-1), and each word's box (``pipeline.geometry`` runs, in points)."""

    text: str
    confidence: float
    runs: bytes


def _garbage(char: str) -> bool:
    return char == "\ufffd" or unicodedata.category(char) in ("Co", "Cc", "Cn")  # whitespace is never asked


def text_layer_usable(text: str, has_image: Callable[[], bool]) -> bool:
    """False for a scan (few letters, but an image on the page) and for a layer of undecodable glyphs (a
    font without a usable encoding maps to private-use or replacement characters)."""
    visible = [c for c in text if not c.isspace()]
    if sum(c.isalpha() for c in visible) < MIN_LETTERS and has_image():
        return False
    return not visible or sum(map(_garbage, visible)) / len(visible) <= MAX_GARBAGE


def available() -> str | None:
    """None when Tesseract can run, else why not (what to install)."""
    if shutil.which("tesseract") is None:
        return "OCR needs Tesseract: install Debian's tesseract-ocr (make install does) or set DOCINTEL_OCR=off"
    return None


def recognise(image: Image.Image, options: OcrOptions, timeout_s: float, pixels_per_point: float) -> OcrText:
    """Tesseract's words of ``image``, laid out as lines and paragraphs; DocumentReadError when it fails."""
    import pytesseract

    from pipeline.geometry import pack

    os.environ["OMP_THREAD_LIMIT"] = "1"  # inherited by the tesseract process
    try:
        data = pytesseract.image_to_data(image.convert("L"), lang=options.language, config="--psm 3",
                                         output_type=pytesseract.Output.DICT, timeout=timeout_s)
    except RuntimeError as exc:  # pytesseract's timeout
        raise DocumentReadError(f"OCR of a page took longer than {timeout_s:g} s") from exc
    except pytesseract.TesseractError as exc:
        raise DocumentReadError(f"Tesseract failed: {exc.message.strip() or exc.status}") from exc
    parts: list[str] = []
    runs, confidences, length, previous = [], [], 0, None
    for i, word in enumerate(data["text"]):
        word = " ".join(word.split())
        if not word:
            continue
        line = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        if previous is not None:
            gap = " " if line == previous else "\n" if line[:2] == previous[:2] else "\n\n"
            parts.append(gap)
            length += len(gap)
        left, top = data["left"][i] / pixels_per_point, data["top"][i] / pixels_per_point
        runs.append((length, length + len(word), left, top, left + data["width"][i] / pixels_per_point,
                     top + data["height"][i] / pixels_per_point))
        parts.append(word)
        length += len(word)
        previous = line
        if float(data["conf"][i]) >= 0:
            confidences.append(float(data["conf"][i]) / 100)
    return OcrText("".join(parts), sum(confidences) / len(confidences) if confidences else 0.0, pack(runs))
