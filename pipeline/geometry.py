"""Where text sits on a page: boxes for page offsets, so a finding can be shown on the page a reviewer reads.

A page's geometry is a run table: one row per word (OCR) or character (text layer) — start and end offset in
the page's text, then its box in points from the page's top-left corner (x0, top, x1, bottom). A text-layer
page's runs come from PDFium's character boxes aligned to pypdf's text (the two readers differ in spacing,
ligatures and the odd glyph, so the alignment skips what it cannot match). A sentence's boxes are then one
box per line it covers on each page.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

from pipeline.records import Box, Span

COLUMNS = 6  # start, end, x0, top, x1, bottom
_RESYNC = 48  # characters to look ahead for where two readings of a page agree again
_ANCHOR = 4  # characters that must agree for a resync


def pack(runs: Sequence[tuple[float, ...]]) -> bytes:
    return np.asarray(runs, dtype="<f4").reshape(-1, COLUMNS).tobytes()


def unpack(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").reshape(-1, COLUMNS)


def _fold(char: str) -> str:
    """What a character compares as: its NFKC form (a ligature is its letters), first letter only."""
    if char.isascii():
        return char
    folded = unicodedata.normalize("NFKC", char)
    return folded[0] if folded else char


def align(text: str, chars: Sequence[str]) -> dict[int, int]:
    """Offsets of ``text`` → indexes of ``chars`` (another reader's characters of the same page), matched
    greedily on non-space characters, re-synchronising after a mismatch at the nearest point where the next
    few characters agree."""
    a = [(i, _fold(c)) for i, c in enumerate(text) if not c.isspace()]
    b = [(j, _fold(c)) for j, c in enumerate(chars) if not c.isspace()]
    sa, sb = "".join(c for _, c in a), "".join(c for _, c in b)
    mapping: dict[int, int] = {}
    i = j = 0
    while i < len(a) and j < len(b):
        if sa[i] == sb[j]:
            mapping[a[i][0]] = b[j][0]
            i, j = i + 1, j + 1
            continue
        for k in range(1, _RESYNC):
            if sb.startswith(sa[i:i + _ANCHOR], j + k):
                j += k
                break
            if sa.startswith(sb[j:j + _ANCHOR], i + k):
                i += k
                break
        else:
            i, j = i + 1, j + 1
    return mapping


def text_layer_runs(text: str, textpage, height: float) -> bytes:
    """One run per character of ``text`` that PDFium's ``textpage`` places on the page."""
    count = textpage.count_chars()
    chars = textpage.get_text_range(0, count) if count else ""
    runs = []
    for offset, index in align(text, chars).items():
        left, bottom, right, top = textpage.get_charbox(index)
        if right > left and top > bottom:
            runs.append((offset, offset + 1, left, height - top, right, height - bottom))
    return pack(runs)


def line_boxes(runs: np.ndarray, start: int, end: int) -> list[tuple[float, float, float, float]]:
    """One box per line of the runs that overlap [start, end): a run whose vertical middle falls outside the
    current line's band, or that starts left of where the line has reached, begins a new line."""
    inside = runs[(runs[:, 0] < end) & (runs[:, 1] > start)]
    lines: list[list[float]] = []
    for _, _, x0, top, x1, bottom in inside:
        middle = (top + bottom) / 2
        if lines and lines[-1][1] <= middle <= lines[-1][3] and x0 >= lines[-1][2] - 3:
            line = lines[-1]
            line[0], line[1], line[2], line[3] = min(line[0], x0), min(line[1], top), max(line[2], x1), max(line[3], bottom)
        else:
            lines.append([float(x0), float(top), float(x1), float(bottom)])
    return [(round(float(x0), 1), round(float(top), 1), round(float(x1), 1), round(float(bottom), 1))
            for x0, top, x1, bottom in lines]


def sentence_boxes(spans: Iterable[Span], page_runs: dict[int, np.ndarray]) -> tuple[Box, ...]:
    """The boxes of a sentence's spans on their pages (none on a page without geometry)."""
    return tuple(Box(span.page, *box) for span in spans if span.page in page_runs
                 for box in line_boxes(page_runs[span.page], span.start, span.end))
