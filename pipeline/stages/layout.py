"""Layout analysis for segmentation: page furniture, headings, list items and paragraph blocks.

Real filings are not clean prose. Before spaCy sees any text, this module reads the lines of every page
and decides which are furniture (page numbers, running headers/footers, "Table of Contents"), which are
headings or list items (each its own segment), and which lines form a paragraph block. A block may run
across a page break, so a sentence split by a page keeps both halves. Blocks keep exact character spans
into the pages, so every segment can be rebuilt from the page text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.records import Page, Span

_TERMINAL = re.compile(r"""[.!?:;]["'”’)\]]*$""")
# \x7f and \uf0b7 are how bullets often come out of PDF text layers (symbol fonts).
_BULLET_GLYPHS = "•●◦▪‣·○■□➢►\x7f\uf0b7\uf0a7–—-*"
_LEADING_BULLET = re.compile(rf"^[{re.escape(_BULLET_GLYPHS)}]\s+|^[{re.escape(_BULLET_GLYPHS[:-4])}](?=\S)")
_TRAILING_BULLET = re.compile(rf"\s*[{re.escape(_BULLET_GLYPHS[:-4])}]\s*$")
_ENUMERATOR = re.compile(r"^(\((\d{1,2}|[a-z]|[ivx]{1,4})\)|(\d{1,2}|[a-z])[.)])\s+(?=\S)")
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_PAGE_NUMBER = re.compile(r"^(page\s+)?([ivxlcdm]{1,6}|\d{1,4})(\s+of\s+\d{1,4})?$|^[-–—]\s*\d{1,4}\s*[-–—]$", re.I)
_TRAILING_NUMBER = re.compile(r"(\d{1,4})\s*$")
_TOC = re.compile(r"^table\s+of\s+contents$", re.I)
_DIGITS = re.compile(r"\d+")
_WS = re.compile(r"[\s\u00a0]+")
ZONE_LINES = 3  # lines at the top and bottom of a page where headers and footers live


@dataclass(frozen=True, slots=True)
class Line:
    page: int
    start: int
    end: int
    text: str  # the page text [start:end], never altered

    @property
    def stripped(self) -> str:
        return self.text.strip()


@dataclass(frozen=True, slots=True)
class Block:
    """Lines read as one unit: a heading or list item (``single``: never split) or a paragraph."""

    spans: tuple[Span, ...]
    single: bool


def page_lines(page: Page) -> list[Line]:
    lines, offset = [], 0
    for raw in page.text.split("\n"):
        lines.append(Line(page.number, offset, offset + len(raw), raw))
        offset += len(raw) + 1
    return lines


def _key(text: str) -> str:
    return _WS.sub(" ", _DIGITS.sub("#", text.lower())).strip()


def _short(text: str) -> bool:
    """Running headers and footers are short; a long repeated line is content (boilerplate) instead."""
    return 0 < len(text.split()) <= 12


def _zones(lines: list[Line]) -> list[Line]:
    content = [line for line in lines if line.stripped]
    return content[:ZONE_LINES] + content[-ZONE_LINES:]


def find_furniture(pages: Sequence[Page]) -> dict[int, list[tuple[int, int]]]:
    """Character ranges per page that are furniture: repeated header/footer lines, page numbers
    (standalone, or glued to the last word when they follow the page sequence), "Table of Contents"."""
    per_page = {page.number: page_lines(page) for page in pages}
    furniture: dict[int, list[tuple[int, int]]] = {page.number: [] for page in pages}
    repeated: Counter[str] = Counter()
    for lines in per_page.values():
        repeated.update({_key(line.text) for line in _zones(lines)})
    threshold = max(2, math.ceil(0.3 * len(pages)))
    for number, lines in per_page.items():
        zone = {id(line) for line in _zones(lines)}
        for i, line in enumerate(lines):
            text = _WS.sub(" ", line.text).strip()
            if not text:
                continue
            in_zone = id(line) in zone
            # a text export of a whole filing is one page with its printed page numbers inside it
            isolated = (i == 0 or not lines[i - 1].stripped) and (i + 1 == len(lines) or not lines[i + 1].stripped)
            if (
                _TOC.match(text)
                or ((in_zone or isolated) and _PAGE_NUMBER.match(text))
                or (in_zone and len(pages) >= 2 and repeated[_key(text)] >= threshold and _short(text))
            ):
                furniture[number].append((line.start, line.end))
    for number, (start, end) in _page_number_suffixes(pages).items():
        furniture[number].append((start, end))
    return furniture


def _page_number_suffixes(pages: Sequence[Page]) -> dict[int, tuple[int, int]]:
    """Digits ending a page that equal its printed page number (a constant offset from its index)."""
    candidates = {}
    for index, page in enumerate(pages):
        match = _TRAILING_NUMBER.search(page.text)
        if match:
            candidates[page.number] = (match.start(1), match.end(1), int(match.group(1)) - index)
    offsets = Counter(offset for _, _, offset in candidates.values())
    if not offsets:
        return {}
    offset, count = offsets.most_common(1)[0]
    if count < max(3, len(pages) // 2):
        return {}
    return {number: (start, end) for number, (start, end, o) in candidates.items() if o == offset}


def _without(line: Line, ranges: list[tuple[int, int]]) -> list[Line]:
    """The parts of a line outside furniture ranges."""
    pieces = [(line.start, line.end)]
    for f_start, f_end in ranges:
        next_pieces = []
        for start, end in pieces:
            if f_end <= start or f_start >= end:
                next_pieces.append((start, end))
                continue
            if start < f_start:
                next_pieces.append((start, f_start))
            if f_end < end:
                next_pieces.append((f_end, end))
        pieces = next_pieces
    base = line.start
    return [Line(line.page, s, e, line.text[s - base : e - base]) for s, e in pieces if line.text[s - base : e - base].strip()]


def _trim(line: Line) -> Line | None:
    """Drop bullet glyphs (and the spaces around them) from a line's span; None if nothing is left."""
    text, start = line.text, line.start
    left = len(text) - len(text.lstrip())
    lead = _LEADING_BULLET.match(text[left:]) or _ENUMERATOR.match(text[left:])
    if lead:
        text, start = text[left + lead.end() :], start + left + lead.end()
    trail = _TRAILING_BULLET.search(text)
    if trail and trail.start() > 0:
        text = text[: trail.start()]
    if not text.strip():
        return None
    return Line(line.page, start, start + len(text), text)


def _is_bullet(line: Line) -> bool:
    text = line.text.lstrip()
    return bool(_LEADING_BULLET.match(text) or _ENUMERATOR.match(text)) or text in _BULLET_GLYPHS


def _ends_sentence(text: str) -> bool:
    return bool(_TERMINAL.search(text.rstrip()))


def _title_case(text: str) -> bool:
    """Most longer words capitalised, as in "We Face Risks Related to Adequately Protecting Our IP"."""
    words = [w for w in _WORD.findall(text) if len(w) > 3]
    return bool(words) and sum(w[0].isupper() for w in words) >= 0.8 * len(words)


def _looks_like_heading(line: Line, previous_ended: bool, next_line: Line | None, short: int) -> bool:
    text = line.stripped
    if not previous_ended or _ends_sentence(text) or text.endswith((",", "-")):
        return False
    if len(text) > short or len(text.split()) > 16 or not (text[0].isupper() or text[0].isdigit()):
        return False
    if next_line is None:
        return True
    first = next_line.stripped[:1]
    return first.isupper() or first.isdigit() or first in _BULLET_GLYPHS or first in "“\"("


def blocks(pages: Sequence[Page]) -> list[Block]:
    """Split a document into blocks in reading order, skipping furniture."""
    furniture = find_furniture(pages)
    stream: list[Line | None] = []  # None marks a paragraph break
    bullet_next = False
    for page in pages:
        # Blank lines around a page break (before a footer, after a header) are not paragraph breaks:
        # the break ends a block only if the page's last line ended a sentence.
        while stream and stream[-1] is None:
            stream.pop()
        if stream and _ends_sentence(stream[-1].text):
            stream.append(None)
        page_start = len(stream)
        for line in page_lines(page):
            if not line.stripped:
                if len(stream) > page_start:
                    stream.append(None)
                continue
            for piece in _without(line, furniture[page.number]):
                starts_item = _is_bullet(piece) or bullet_next
                bullet_next = bool(_TRAILING_BULLET.search(piece.text)) and piece.text.strip() not in _BULLET_GLYPHS
                if piece.text.strip() in _BULLET_GLYPHS:  # a glyph alone: the item starts on the next line
                    bullet_next = True
                    stream.append(None)
                    continue
                if starts_item:
                    stream.append(None)
                trimmed = _trim(piece)
                if trimmed:
                    stream.append(trimmed)
    lengths = sorted(len(line.stripped) for line in stream if line)
    typical = lengths[int(0.75 * (len(lengths) - 1))] if lengths else 0
    short = max(40, min(120, int(0.8 * typical)))

    result: list[Block] = []
    current: list[Line] = []

    def close(single: bool = False) -> None:
        if current:
            result.append(Block(_merge_spans(current), single or _single_line_heading(current)))
            current.clear()

    previous_ended = True
    content = [i for i, line in enumerate(stream) if line]
    next_of = {a: b for a, b in zip(content, content[1:])}
    for i, line in enumerate(stream):
        if line is None:
            close()
            previous_ended = True
            continue
        following = stream[next_of[i]] if i in next_of else None
        if _looks_like_heading(line, previous_ended or not current, following, short):
            close()
            current.append(line)
            close(single=True)
            previous_ended = True
            continue
        if previous_ended and current and _title_case(line.text) and not _ends_sentence(line.text):
            close()  # a heading that wraps starts here; the previous line ended its sentence anyway
        if current and _title_run(current) and _title_case(line.text) and _looks_like_heading(
            line, True, following, short
        ):
            current.append(line)  # the last line of a heading that wraps over several lines
            close(single=True)
            previous_ended = True
            continue
        current.append(line)
        previous_ended = _ends_sentence(line.text)
    close()
    return result


def _title_run(lines: list[Line]) -> bool:
    return all(_title_case(line.text) and not _ends_sentence(line.text) for line in lines)


def _single_line_heading(lines: list[Line]) -> bool:
    return len(lines) == 1 and not _ends_sentence(lines[0].text)


def _merge_spans(lines: list[Line]) -> tuple[Span, ...]:
    """Adjacent lines of one page joined by their newline become one span."""
    spans: list[Span] = []
    for line in lines:
        if spans and spans[-1].page == line.page and line.start - spans[-1].end <= 1:
            spans[-1] = Span(line.page, spans[-1].start, line.end)
        else:
            spans.append(Span(line.page, line.start, line.end))
    return tuple(spans)
