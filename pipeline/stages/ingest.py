"""Ingest: files (TXT, HTML, PDF, DOCX) → Documents of pages holding each page's exact text.

Maintained parsers do the reading (pypdf with fontTools, python-docx, BeautifulSoup/lxml); this
module only decides what a page is and keeps paragraph breaks ("\\n\\n") so later stages see layout.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

from pipeline.errors import DocumentReadError, UnsupportedFormatError
from pipeline.records import Document, Page, source_name
from pipeline.stages.base import Stage

MEDIA_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/plain",
    ".htm": "text/html",
    ".html": "text/html",
    ".xhtml": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}

_BLANK_RUNS = re.compile(r"\n[ \t\r\f\v]*\n(?:[ \t\r\f\v]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_PAGE_BREAK_STYLE = re.compile(r"page-break-(before|after)\s*:\s*always|break-(before|after)\s*:\s*page", re.I)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", re.I)


def tidy(text: str) -> str:
    """Normalise line ends and blank runs so a paragraph break is exactly one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _TRAILING_SPACE.sub("\n", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class IngestStage(Stage[Path, Document]):
    """Read files into Documents; unsupported or unreadable files raise a DocintelError."""

    name: ClassVar[str] = "ingest"
    framework = "python"
    takes = Path
    returns = Document

    def __init__(self, *, max_file_mb: float = 200.0, batch_size: int = 8) -> None:
        super().__init__(device="cpu", batch_size=batch_size)
        self.max_file_mb = max_file_mb

    def _load(self) -> None:
        """Nothing to load: parsers are imported per format on first use."""

    def _process(self, batch: Sequence[Path]) -> list[Document]:
        return [self.read(Path(path)) for path in batch]

    def read(self, path: Path) -> Document:
        """Parse one file; raises UnsupportedFormatError or DocumentReadError with the reason."""
        media_type = MEDIA_TYPES.get(path.suffix.lower())
        if media_type is None:
            raise UnsupportedFormatError(
                f"{path.name}: unsupported file type {path.suffix or '(none)'!r}; "
                f"docintel reads {', '.join(sorted(MEDIA_TYPES))}"
            )
        if not path.is_file():
            raise DocumentReadError(f"{path}: no such file")
        size = path.stat().st_size
        if size > self.max_file_mb * 1024 * 1024:
            raise DocumentReadError(
                f"{path.name}: {size / 2**20:.1f} MiB exceeds the {self.max_file_mb:g} MiB limit "
                "(raise DOCINTEL_MAX_FILE_MB to accept it)"
            )
        data = path.read_bytes()
        if not data.strip():
            raise DocumentReadError(f"{path.name}: the file is empty")
        reader = _READERS[media_type]
        try:
            texts = reader(data)
        except DocumentReadError as exc:
            raise DocumentReadError(f"{path.name}: {exc}") from exc
        except Exception as exc:  # parsers raise many types on corrupt input; report them as one
            raise DocumentReadError(f"{path.name}: cannot parse as {media_type}: {type(exc).__name__}: {exc}") from exc
        pages = tuple(Page(number=i, text=tidy(text)) for i, text in enumerate(texts, start=1))
        if not any(page.text for page in pages):
            hint = " (image-only PDF? OCR is not enabled)" if media_type == "application/pdf" else ""
            raise DocumentReadError(f"{path.name}: no extractable text{hint}")
        return Document(doc_id=content_hash(data), source=source_name(path), media_type=media_type, pages=pages)


# --- plain text -----------------------------------------------------------------------------------

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode_text(data: bytes) -> str:
    """Decode by BOM, else UTF-8, else Windows-1252 (the usual legacy encoding of filings)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def read_txt(data: bytes) -> list[str]:
    """Form feeds separate pages in text dumps; otherwise the file is one page."""
    text = decode_text(data)
    if "\x00" in text:
        raise DocumentReadError("binary content (NUL bytes) in a text file")
    return text.split("\f")


# --- HTML -----------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "address article aside blockquote caption center dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hr legend li main nav ol p pre section summary table tbody tfoot "
    "thead tr ul".split()
)
_CELL_TAGS = frozenset({"td", "th"})
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title", "meta", "link", "object"})


def _drop_partial_tag(html: str) -> str:
    """A fragment cut mid-tag starts with the tail of that tag (``ont-size:2">``): drop the tail."""
    head = html.lstrip()
    if head.startswith("<"):
        return html
    gt, lt = html.find(">"), html.find("<")
    if gt != -1 and (lt == -1 or gt < lt):
        return html[gt + 1 :]
    return html


def read_html(data: bytes) -> list[str]:
    """Block-aware text with pages split at CSS page breaks (as EDGAR filings mark them)."""
    import warnings

    from bs4 import BeautifulSoup, Comment, NavigableString, Tag, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():  # EDGAR's inline XBRL is XHTML; the HTML parser reads it well
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(_drop_partial_tag(decode_text(data)), "lxml")
    pages: list[list[str]] = [[]]

    def emit(piece: str) -> None:
        pages[-1].append(piece)

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                emit(_SPACES.sub(" ", child.replace("\n", " ")))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            style = child.get("style") or ""
            if name in _SKIP_TAGS or _HIDDEN_STYLE.search(style) or child.has_attr("hidden"):
                continue
            breaks = {m.group(1) or m.group(2) for m in _PAGE_BREAK_STYLE.finditer(style)}
            if "before" in breaks and any(p.strip() for p in pages[-1]):
                pages.append([])
            if name == "br":
                emit("\n")
            elif name in _CELL_TAGS:
                walk(child)
                emit("\t")
            elif name in _BLOCK_TAGS:
                emit("\n\n")
                walk(child)
                emit("\n\n")
            else:
                walk(child)
            if "after" in breaks:
                pages.append([])

    walk(soup)
    texts = ["".join(parts) for parts in pages]
    return [re.sub(r"[ \t]*\n[ \t]*", "\n", t) for t in texts if t.strip()] or [""]


# --- PDF ------------------------------------------------------------------------------------------


def read_pdf(data: bytes) -> list[str]:
    """pypdf per page (with fontTools it decodes the CFF fonts that make other readers drop spaces)."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception:
            pass
    texts: list[str] = []
    try:
        for page in reader.pages:
            text = page.extract_text() or ""
            texts.append(_SPACES.sub(" ", text))  # layout padding between words carries no meaning
    except FileNotDecryptedError as exc:
        raise DocumentReadError("the PDF is encrypted and needs a password") from exc
    return texts


# --- DOCX -----------------------------------------------------------------------------------------


def _docx_blocks(document) -> Iterator[tuple[str, bool, bool]]:
    """Yield (text, page_break_before, page_break_after) for body paragraphs and tables in order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            before = bool(block.paragraph_format.page_break_before)
            hard_break = bool(block._p.xpath('.//w:br[@w:type="page"]'))
            yield block.text, before, hard_break
        elif isinstance(block, Table):
            rows = ["\t".join(cell.text.strip() for cell in row.cells) for row in block.rows]
            yield "\n".join(rows), False, False


def read_docx(data: bytes) -> list[str]:
    """Paragraphs separated by blank lines; pages split at explicit page breaks."""
    import docx

    document = docx.Document(io.BytesIO(data))
    pages: list[list[str]] = [[]]
    for text, before, after in _docx_blocks(document):
        if before and pages[-1]:
            pages.append([])
        if text.strip():
            pages[-1].append(text)
        if after:
            pages.append([])
    return ["\n\n".join(paragraphs) for paragraphs in pages if paragraphs] or [""]


_READERS: dict[str, Callable[[bytes], list[str]]] = {
    "text/plain": read_txt,
    "text/html": read_html,
    "application/pdf": read_pdf,
    MEDIA_TYPES[".docx"]: read_docx,
}
