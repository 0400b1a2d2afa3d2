"""Ingest: files (TXT, HTML, PDF, DOCX, PNG/JPEG/TIFF) → Documents of pages holding each page's exact text.

Maintained parsers do the reading (pypdf with fontTools, python-docx, BeautifulSoup/lxml); this
module only decides what a page is and keeps paragraph breaks ("\\n\\n") so later stages see layout.
The reader is chosen by content, the extension being a hint (``sniff``, ``reader_for``): files get renamed.
Documents nobody vetted are parsed in a child process under a wall-clock timeout and a memory cap
(``InputLimits``): a parser that spins or a decompression bomb costs that document, not the run.
A PDF page without a usable text layer, and an image, is read by OCR (``pipeline.ocr``) in that same process;
its page is marked (``Page.ocr_confidence``).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import os
import pickle
import re
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipeline import progress
from pipeline.archives import ArchiveLimits, check_members
from pipeline.errors import DocumentReadError, UnsupportedFormatError
from pipeline.ocr import OcrOptions, OcrText
from pipeline.records import Document, InputFile, Page, PageRead, source_name
from pipeline.stages.base import Stage

log = logging.getLogger(__name__)

MEDIA_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/plain",
    ".htm": "text/html",
    ".html": "text/html",
    ".xhtml": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}

_BLANK_RUNS = re.compile(r"\n[ \t\r\f\v]*\n(?:[ \t\r\f\v]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_PAGE_BREAK_STYLE = re.compile(r"page-break-(before|after)\s*:\s*always|break-(before|after)\s*:\s*page", re.I)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", re.I)


_SURROGATES = re.compile("[\ud800-\udfff]")


def tidy(text: str) -> str:
    """Normalise line ends and blank runs so a paragraph break is exactly one blank line. A lone surrogate
    (a parser's decoding slip; no UTF-8 store can hold it) becomes U+FFFD, as a UTF-8 decoder's would."""
    text = _SURROGATES.sub("\ufffd", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _TRAILING_SPACE.sub("\n", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class InputLimits:
    """What one input may cost; each is a setting of the same name (``DOCINTEL_<NAME>``)."""

    max_file_mb: float = 200.0
    max_pages: int = 5_000
    parse_timeout_s: float = 60.0
    parse_memory_mb: int = 2_048
    archive: ArchiveLimits = ArchiveLimits()
    max_image_megapixels: float = 100.0


class IngestStage(Stage[InputFile, Document]):
    """Read files into Documents; unsupported or unreadable files raise a DocintelError."""

    name: ClassVar[str] = "ingest"
    framework = "python"
    takes = InputFile
    returns = Document

    def __init__(self, *, limits: InputLimits = InputLimits(), ocr: OcrOptions = OcrOptions(),
                 batch_size: int = 8) -> None:
        super().__init__(device="cpu", batch_size=batch_size)
        self.limits = limits
        self.ocr = ocr

    @property
    def parser(self) -> ParserProcess:
        return ParserProcess.for_limits(self.limits)

    def _load(self) -> None:
        """The sandboxed parser process starts now (it takes a second or two), not at the first document."""
        self.parser.start()

    def _process(self, batch: Sequence[InputFile | Path]) -> list[Document]:
        """A plain path is read as its own source."""
        return [self.read(file.path, file.source) if isinstance(file, InputFile) else self.read(Path(file))
                for file in batch]

    def read(self, path: Path, source: str | None = None) -> Document:
        """Parse one file; raises UnsupportedFormatError or DocumentReadError with the reason. ``source``:
        the provenance to record when it is not the path (a member of an archive)."""
        if not path.is_file():
            raise DocumentReadError(f"{path}: no such file")
        size = path.stat().st_size
        if size > self.limits.max_file_mb * 1024 * 1024:
            raise DocumentReadError(
                f"{path.name}: {size / 2**20:.1f} MiB exceeds the {self.limits.max_file_mb:g} MiB limit "
                "(raise DOCINTEL_MAX_FILE_MB to accept it)"
            )
        data = path.read_bytes()
        media_type, note = reader_for(path, data)
        if not data.strip():
            raise DocumentReadError(f"{path.name}: the file is empty")
        if note:
            log.warning("%s: %s", path.name, note)
        try:
            texts, notes = self.parser.parse(media_type, data, self.ocr)
        except DocumentReadError as exc:
            raise DocumentReadError(f"{path.name}: {exc}") from exc
        pages = tuple(Page(i, tidy(read.text), None if read.ocr_confidence is None else round(read.ocr_confidence, 4),
                           read.size, read.runs) for i, read in enumerate(texts, start=1))
        if progress.is_large(len(pages), sum(len(page.text) for page in pages)):
            progress.StageMeter(self.name, source or source_name(path), len(pages), "pages").update(len(pages))
        if not any(page.text for page in pages):
            hint = f" ({'; '.join(notes)})" if notes else ""
            raise DocumentReadError(f"{path.name}: no extractable text{hint}")
        return Document(doc_id=content_hash(data), source=source or source_name(path), media_type=media_type,
                        pages=pages, notes=tuple(n for n in (note, *notes) if n))


# --- what the content is --------------------------------------------------------------------------

SNIFF_BYTES = 1024  # the PDF header may follow junk, but within the first KiB (as Acrobat requires)

_TEXT, _HTML, _PDF, _DOCX = "text/plain", "text/html", "application/pdf", MEDIA_TYPES[".docx"]
_IMAGES = {"image/png": "a PNG image", "image/jpeg": "a JPEG image", "image/tiff": "a TIFF image"}
_READER_NAMES = {_TEXT: "plain text", _HTML: "HTML", _PDF: "PDF", _DOCX: "DOCX"} | {
    media_type: f"{name[2:]} (OCR)" for media_type, name in _IMAGES.items()}


@dataclass(frozen=True)
class Sniffed:
    """What a file's content is: ``media_type`` when docintel reads it (``None``: a format it does not),
    ``name`` for messages, and ``strong``: False for HTML that a plain text file may also start with."""

    media_type: str | None
    name: str
    strong: bool = True


_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))
_UNREADABLE = (  # magic numbers of formats docintel does not read, so the refusal can say what the file is
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Microsoft Office (OLE2) file such as .doc or .xls"),
    (b"{\\rtf", "an RTF document"),
    (b"\x1f\x8b\x08", "a gzip archive"),  # with its deflate byte: two bytes alone turn up in random data
    (b"\x7fELF", "an ELF executable"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
)
_ZIP_MAGIC = b"PK\x03\x04"
_PDF_HEADER = re.compile(rb"%PDF-\d")  # with its version digit: a text may quote "%PDF-" in passing
_ZIP_ARCHIVE = Sniffed(None, "a ZIP archive")
_WIDE_ENCODINGS = frozenset({"utf-16", "utf-32"})  # their text is full of NUL bytes
_HTML_SPACE = " \t\n\f\r"  # what the WHATWG sniffing rules skip before the first tag
_STRONG_HTML = re.compile(r"(?:<!doctype\s+html|<html|<\?xml.*?<html)[\s>]", re.I | re.S)
_WEAK_HTML = re.compile(r"<(?:head|body|script|iframe|h1|div|font|table|a|style|title|b|br|p|!--)[\s>]", re.I)


def sniff(data: bytes) -> Sniffed | None:
    """What the first KiB of ``data`` says it is (a ZIP's central directory too, to tell a DOCX); ``None``
    for binary of no known kind, left to the extension's reader to report its own error."""
    head = data[:SNIFF_BYTES]
    if head.startswith(_ZIP_MAGIC):
        return _sniff_zip(data)
    for magic, media_type in _IMAGE_MAGIC:
        if head.startswith(magic):
            return Sniffed(media_type, _IMAGES[media_type])
    for magic, name in _UNREADABLE:
        if head.startswith(magic):
            return Sniffed(None, name)
    encoding = next((encoding for bom, encoding in _BOMS if head.startswith(bom)), None)
    # Latin-1 decodes any byte: the tags are ASCII whatever the legacy encoding of the rest
    markup = head.decode(encoding or "latin-1", errors="replace").lstrip(_HTML_SPACE)
    if _STRONG_HTML.match(markup):
        return Sniffed(_HTML, "HTML")
    if _PDF_HEADER.search(head):
        return Sniffed(_PDF, "PDF")
    if _WEAK_HTML.match(markup):
        return Sniffed(_HTML, "HTML", strong=False)
    if b"\x00" in head and encoding not in _WIDE_ENCODINGS:
        return None
    try:  # not final unless this is the whole file: a character cut at the end of the KiB is no error
        codecs.getincrementaldecoder(encoding or "utf-8")().decode(head, final=len(data) <= SNIFF_BYTES)
    except UnicodeDecodeError:
        return None
    return Sniffed(_TEXT, "plain text")


def _sniff_zip(data: bytes) -> Sniffed | None:
    """A DOCX is a ZIP holding word/document.xml; listing the central directory inflates nothing. A ZIP
    too broken to list is ``None``: the extension's reader says what is wrong with it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            names = package.namelist()
    except (zipfile.BadZipFile, NotImplementedError, UnicodeDecodeError):  # what a mangled directory raises
        return None
    return Sniffed(_DOCX, "DOCX") if "word/document.xml" in names else _ZIP_ARCHIVE


def reader_for(path: Path, data: bytes) -> tuple[str, str | None]:
    """The media type to parse ``data`` as, and a note when that is not the one the extension says: the
    content decides where it is unambiguous, the extension otherwise. UnsupportedFormatError when neither
    names a format docintel reads."""
    claimed = MEDIA_TYPES.get(path.suffix.lower())
    content = sniff(data)
    if content is None:
        chosen = claimed
    elif content.media_type in (_PDF, _DOCX, *_IMAGES) or (content.media_type == _HTML and content.strong):
        chosen = content.media_type
    elif content.media_type == _HTML:
        # a text file may begin "<p>" or "<b>" and mean it literally: only a PDF, DOCX or HTML name yields
        chosen = _HTML if claimed in (_PDF, _DOCX, _HTML) else claimed
    elif content.media_type == _TEXT:
        chosen = _TEXT if claimed in (_PDF, _DOCX) else claimed
    elif claimed is None:
        chosen = None
    elif claimed == _DOCX and content == _ZIP_ARCHIVE:
        chosen = claimed  # python-docx finds the main part by the package's relationships, not by its name
    else:
        raise UnsupportedFormatError(f"{path.name}: the extension says {claimed} but the content is "
                                     f"{content.name}; docintel reads PDF, DOCX, HTML, plain text and "
                                     "PNG/JPEG/TIFF images")
    if chosen is None:
        raise UnsupportedFormatError(f"{path.name}: unsupported file type {path.suffix or '(none)'!r}; "
                                     f"docintel reads {', '.join(sorted(MEDIA_TYPES))}")
    if chosen == claimed:
        return chosen, None
    said = (f"not {claimed} as the extension {path.suffix} says" if claimed else
            f"and the extension {path.suffix or '(none)'!r} names no format docintel reads")
    return chosen, f"content is {chosen}, {said}: read as {_READER_NAMES[chosen]}"


# --- the parser process ---------------------------------------------------------------------------


class ParserProcess:
    """A long-lived child process (``python -m pipeline.stages.ingest``) that parses one document at a time
    under an address-space cap; past the timeout it is killed, and the next document starts a fresh one.
    A plain subprocess, not multiprocessing: nothing of the caller (its main module, its threads) is copied
    or re-imported into it."""

    _shared: ClassVar[dict[InputLimits, ParserProcess]] = {}
    _shared_lock = threading.Lock()

    def __init__(self, limits: InputLimits) -> None:
        self.limits = limits
        self._child: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_limits(cls, limits: InputLimits) -> ParserProcess:
        """One parser process per set of limits in this process, shared by every ingest stage."""
        with cls._shared_lock:
            return cls._shared.setdefault(limits, cls(limits))

    def parse(self, media_type: str, data: bytes, ocr: OcrOptions = OcrOptions()) -> tuple[list[PageRead],
                                                                                         list[str]]:
        """The pages of ``data`` and notes on pages that could not be read;
        DocumentReadError saying which limit was hit, or the parser's error. The timeout runs per OCRed page
        (the child reports each), so a long scan is not cut off while a spinning parser still is."""
        return self._request(("parse", media_type, data, ocr))

    def render(self, media_type: str, data: bytes, pages: Sequence[int], dpi: int) -> dict[int, bytes]:
        """JPEG images of ``pages`` (1-based) of a PDF or image file at ``dpi``, made in the sandbox too:
        rendering is parsing."""
        return self._request(("render", media_type, data, tuple(pages), dpi))

    def _request(self, request: tuple):
        with self._lock:
            child = self._child if self._child is not None and self._child.poll() is None else self._start()
            try:
                _send(child.stdin, request)
                while True:
                    status, payload = _receive(child.stdout.fileno(), time.monotonic() + self.limits.parse_timeout_s)
                    if status != "progress":
                        break
            except TimeoutError:
                self.close()
                raise DocumentReadError(
                    f"parsing was stopped after {self.limits.parse_timeout_s:g} s (a malformed or hostile "
                    "document?); raise DOCINTEL_PARSE_TIMEOUT_S to allow longer") from None
            except (EOFError, BrokenPipeError):
                code = child.wait()
                self._child = None
                if code == _OUT_OF_MEMORY:
                    raise DocumentReadError(_memory_message(self.limits)) from None
                raise DocumentReadError(f"the parser process died (exit code {code}) reading this document") from None
        if status != "ok":
            raise DocumentReadError(payload)
        return payload

    def start(self) -> None:
        """Start the child if it is not running."""
        with self._lock:
            if self._child is None or self._child.poll() is not None:
                self._start()

    def _start(self) -> subprocess.Popen:
        self._child = subprocess.Popen(  # its own process group: a Tesseract it started dies with it
            [sys.executable, "-m", "pipeline.stages.ingest", pickle.dumps(self.limits).hex()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2],
            start_new_session=True)
        return self._child

    def close(self) -> None:
        if self._child is not None:
            try:
                os.killpg(self._child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # already gone, group and all
            self._child.wait()
            self._child = None


_HEADER = struct.Struct("!Q")


def _send(stream, message) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, left = [], size
    while left:
        if deadline is not None and not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int, deadline: float | None = None):
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return pickle.loads(_read_exact(fd, size, deadline))  # noqa: S301 — our own child process, over its pipe


_OUT_OF_MEMORY = 3  # the parser process's exit code when a request alone does not fit under its cap


def _memory_message(limits: InputLimits) -> str:
    return (f"parsing needed more than {limits.parse_memory_mb} MiB (a decompression bomb?); "
            "raise DOCINTEL_PARSE_MEMORY_MB to allow more")


def _parse(media_type: str, data: bytes, limits: InputLimits, ocr: OcrOptions,
           on_page: Callable[[], None]) -> tuple[str, object]:
    try:
        if media_type in _OCR_READERS:
            return "ok", _OCR_READERS[media_type](data, limits, ocr, on_page)
        return "ok", ([PageRead(text) for text in _READERS[media_type](data, limits)], [])
    except DocumentReadError as exc:
        return "error", str(exc)
    except MemoryError:
        return "error", _memory_message(limits)
    except RecursionError:
        return "error", "the document's objects nest without end (circular references?)"
    except Exception as exc:  # parsers raise many types on corrupt input; report them as one
        return "error", f"cannot parse as {media_type}: {type(exc).__name__}: {exc}"


def _render(media_type: str, data: bytes, limits: InputLimits, pages: tuple[int, ...], dpi: int
            ) -> tuple[str, object]:
    from PIL import Image, ImageSequence

    def jpeg(image) -> bytes:
        buffer = io.BytesIO()
        image.convert("L").save(buffer, "JPEG", quality=70)
        return buffer.getvalue()

    try:
        if media_type == _PDF:
            import pypdfium2 as pdfium

            document = pdfium.PdfDocument(data)
            try:
                return "ok", {n: jpeg(document[n - 1].render(scale=_render_scale(document[n - 1], dpi, limits),
                                                             grayscale=True).to_pil())
                              for n in pages if 0 < n <= len(document)}
            finally:
                document.close()
        Image.MAX_IMAGE_PIXELS = int(limits.max_image_megapixels * 1e6)
        frames = ImageSequence.Iterator(Image.open(io.BytesIO(data)))
        images = {}
        for number, frame in enumerate(frames, start=1):
            if number in pages:
                scale = dpi / _dpi(frame, dpi)
                images[number] = jpeg(frame.resize((max(1, round(frame.width * scale)),
                                                    max(1, round(frame.height * scale)))))
        return "ok", images
    except Exception as exc:  # a file that parsed once may still fail to render: say so, keep the report
        return "error", f"cannot render pages of {media_type}: {type(exc).__name__}: {exc}"


OWNER_POLL_S = 0.5  # how soon a parser process notices that the process it parses for has gone


def _end_with_owner(owner: int) -> None:
    """End this parser process, and any Tesseract it started, once ``owner`` has gone. In a process group of
    its own, it is not stopped with its owner's: a parse that never writes again (a spinning document, a
    long scan) would go on for minutes after a ``docintel serve`` was stopped, or for ever."""
    while os.getppid() == owner:
        time.sleep(OWNER_POLL_S)
    _end_group()


def _end_group() -> None:
    os.killpg(0, signal.SIGKILL)


def _serve(limits: InputLimits) -> None:
    """The child's loop: a request on stdin, its answer on stdout, until stdin closes or its owner is gone."""
    import logging
    import resource

    import bs4, docx, lxml.etree, PIL.Image, pypdf, pypdfium2, pytesseract  # noqa: E401, F401 — before the cap

    logging.basicConfig(level=logging.ERROR)  # pypdf warns about every repaired oddity
    cap = limits.parse_memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a parser that prints must not corrupt the answers
    threading.Thread(target=_end_with_owner, args=(os.getppid(),), daemon=True).start()
    while True:
        try:
            kind, media_type, data, *args = _receive(requests.fileno())
        except EOFError:
            return
        except MemoryError:
            sys.exit(_OUT_OF_MEMORY)
        try:
            if kind == "render":
                _send(answers, _render(media_type, data, limits, *args))
            else:
                _send(answers, _parse(media_type, data, limits, *args, lambda: _send(answers, ("progress", None))))
        except BrokenPipeError:  # the owner went while this parsed: nobody to answer
            _end_group()
        del data


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


def read_txt(data: bytes, limits: InputLimits = InputLimits()) -> list[str]:
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


def read_html(data: bytes, limits: InputLimits = InputLimits()) -> list[str]:
    """Block-aware text with pages split at CSS page breaks (as EDGAR filings mark them)."""
    import warnings

    from bs4 import BeautifulSoup, Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag
    from bs4 import XMLParsedAsHTMLWarning

    with warnings.catch_warnings():  # EDGAR's inline XBRL is XHTML; the HTML parser reads it well
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(_drop_partial_tag(decode_text(data)), "lxml")
    pages: list[list[str]] = [[]]

    def emit(piece: str) -> None:
        pages[-1].append(piece)

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, (Comment, Doctype, Declaration, ProcessingInstruction)):  # markup, not text
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


def read_pdf(data: bytes, limits: InputLimits, ocr: OcrOptions, on_page: Callable[[], None]
             ) -> tuple[list[PageRead], list[str]]:
    """pypdf per page (with fontTools it decodes the CFF fonts that make other readers drop spaces); a page
    whose text layer is missing or unusable is rendered by PDFium and OCRed. pypdf bounds each decompressed
    stream (75 MB); the child's memory cap bounds the rest."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:  # "encrypted" with an empty user password is readable; a real password shows at the first page
            reader.decrypt("")
        except DependencyError as exc:
            raise DocumentReadError(f"the PDF's encryption needs a package that is not installed: {exc}") from exc
    texts: list[str] = []
    try:
        if (count := len(reader.pages)) > limits.max_pages:
            raise DocumentReadError(f"{count} pages exceed the {limits.max_pages} page limit "
                                    "(raise DOCINTEL_MAX_PAGES to accept it)")
        for page in reader.pages:
            text = page.extract_text() or ""
            texts.append(_SPACES.sub(" ", text))  # layout padding between words carries no meaning
    except FileNotDecryptedError as exc:
        raise DocumentReadError("the PDF is encrypted and needs a password") from exc
    except LimitReachedError as exc:  # a stream inflating past 75 MB, or with more tokens than any real page
        raise DocumentReadError(f"the PDF breaks one of pypdf's safety limits (a decompression bomb?): {exc}") from exc
    pages, notes = _pdf_pages(data, texts, limits, ocr, on_page)
    if ocr.mode == "off" and not any(p.text for p in pages):
        notes.append("OCR is off (DOCINTEL_OCR=off): a scanned PDF?")
    return pages, notes


def _pdf_pages(data: bytes, texts: list[str], limits: InputLimits, ocr: OcrOptions,
               on_page: Callable[[], None]) -> tuple[list[PageRead], list[str]]:
    """Each page with its size and geometry; a page whose text layer is missing or unusable (or every page,
    with OCR forced) read instead by Tesseract from PDFium's rendering. PDFium renders one page at a time (it
    is not thread-safe); the Tesseract processes read them side by side."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    from pipeline import geometry
    from pipeline import ocr as engine

    document = pdfium.PdfDocument(data)
    try:
        def has_image(page) -> Callable[[], bool]:
            return lambda: any(True for _ in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=2))

        pages: list[PageRead] = []
        wanted: list[int] = []
        for i, text in enumerate(texts):
            page = document[i]
            width, height = page.get_size()
            text = tidy(text)
            if ocr.mode == "force" or ocr.mode == "auto" and not engine.text_layer_usable(text, has_image(page)):
                wanted.append(i)
            pages.append(PageRead(text, size=(width, height),
                                  runs=geometry.text_layer_runs(text, page.get_textpage(), height)))
        if not wanted:
            return pages, []
        if (missing := engine.available()) is not None:
            which = f"page {wanted[0] + 1} has" if len(wanted) == 1 else f"pages {_page_list(wanted)} have"
            return pages, [f"{which} no usable text layer and could not be read: {missing}"]

        def images() -> Iterator[tuple[int, object, float]]:
            for i in wanted:
                scale = _render_scale(document[i], ocr.dpi, limits)
                yield i, document[i].render(scale=scale, grayscale=True).to_pil(), scale

        for i, read in _recognise_all(images(), ocr, limits, on_page):
            pages[i] = PageRead(read.text, read.confidence, pages[i].size, read.runs)
    finally:
        document.close()
    return pages, []


def _render_scale(page, dpi: int, limits: InputLimits) -> float:
    """Pixels per point to render ``page`` at ``dpi``, less if the image would pass the megapixel limit."""
    width, height = page.get_size()
    return min(dpi / 72, (limits.max_image_megapixels * 1e6 / max(width * height, 1)) ** 0.5)


def _recognise_all(images: Iterator[tuple[int, object, float]], ocr: OcrOptions, limits: InputLimits,
                   on_page: Callable[[], None]) -> Iterator[tuple[int, OcrText]]:
    """OCR of ``(key, image, pixels per point)``, one Tesseract per core, in order; ``on_page`` after each
    page. Only a few pages are decoded ahead, so a long scan's memory stays that of a few page images."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from pipeline import ocr as engine

    workers = os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for key, image, scale in images:
            pending.append((key, pool.submit(engine.recognise, image, ocr, limits.parse_timeout_s, scale)))
            if len(pending) > workers:
                key, future = pending.popleft()
                yield key, future.result()
                on_page()
        while pending:
            key, future = pending.popleft()
            yield key, future.result()
            on_page()


def _page_list(indexes: list[int]) -> str:
    return ", ".join(str(i + 1) for i in indexes)


def read_image(data: bytes, limits: InputLimits, ocr: OcrOptions, on_page: Callable[[], None]
               ) -> tuple[list[PageRead], list[str]]:
    """An image file as a document, one page per frame (a multi-page TIFF). Its pixel count is checked
    against ``max_image_megapixels`` from the header, before anything is decoded."""
    from PIL import Image, ImageSequence

    from pipeline import ocr as engine

    if ocr.mode == "off":
        raise DocumentReadError("an image is read only by OCR, and OCR is off (DOCINTEL_OCR=off)")
    if (missing := engine.available()) is not None:
        raise DocumentReadError(missing)
    cap = int(limits.max_image_megapixels * 1e6)
    Image.MAX_IMAGE_PIXELS = None  # ours below, per frame, says which setting to raise
    image = Image.open(io.BytesIO(data))  # reads the header only
    frames = getattr(image, "n_frames", 1)
    if frames > limits.max_pages:
        raise DocumentReadError(f"{frames} pages exceed the {limits.max_pages} page limit "
                                "(raise DOCINTEL_MAX_PAGES to accept it)")

    sizes: dict[int, tuple[float, float]] = {}

    def pages() -> Iterator[tuple[int, object, float]]:
        for number, frame in enumerate(ImageSequence.Iterator(image)):
            width, height = frame.size
            if width * height > cap:
                raise DocumentReadError(
                    f"the image is {width:,} x {height:,} pixels ({width * height / 1e6:,.0f} megapixels), over the "
                    f"{limits.max_image_megapixels:g}-megapixel limit (a decompression bomb?); raise "
                    "DOCINTEL_MAX_IMAGE_MEGAPIXELS to accept it")
            scale = _dpi(frame, ocr.dpi) / 72  # pixels per point
            sizes[number] = (width / scale, height / scale)
            yield number, frame.convert("L"), scale

    return [PageRead(read.text, read.confidence, sizes[number], read.runs)
            for number, read in _recognise_all(pages(), ocr, limits, on_page)], []


def _dpi(image, default: int) -> float:
    """The resolution an image declares (a scanner writes it), else ``default``."""
    try:
        dpi = float(image.info.get("dpi", (default,))[0])
    except (TypeError, ValueError, IndexError):
        return default
    return dpi if 36 <= dpi <= 2400 else default


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


def _check_docx_package(data: bytes, limits: InputLimits) -> None:
    """A DOCX is a ZIP of XML parts: the archive caps apply, and no part may declare a DTD (OOXML never
    does; a DTD's entities are how "billion laughs" expansion works)."""
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        for info in check_members(package, limits.archive):
            if info.filename.endswith((".xml", ".rels")):
                with package.open(info) as part:
                    head = part.read(4096)
                if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                    raise DocumentReadError(f"part {info.filename} declares a DTD or XML entities "
                                            "(entity expansion attack?); refused")


def read_docx(data: bytes, limits: InputLimits = InputLimits()) -> list[str]:
    """Paragraphs separated by blank lines; pages split at explicit page breaks."""
    import docx

    _check_docx_package(data, limits)
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


_READERS: dict[str, Callable[[bytes, InputLimits], list[str]]] = {
    "text/plain": read_txt,
    "text/html": read_html,
    MEDIA_TYPES[".docx"]: read_docx,
}
_OCR_READERS: dict[str, Callable[[bytes, InputLimits, OcrOptions, Callable[[], None]],
                                 tuple[list[PageRead], list[str]]]] = {
    "application/pdf": read_pdf, **dict.fromkeys(_IMAGES, read_image)}


if __name__ == "__main__":  # the parser process (ParserProcess)
    _serve(pickle.loads(bytes.fromhex(sys.argv[1])))  # noqa: S301 — written by ParserProcess
