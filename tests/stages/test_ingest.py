"""Ingest on real files: the samples, files built here, and (slow) the shared eval documents."""

from __future__ import annotations

import io
import zipfile

import pytest

from pipeline.errors import DocumentReadError, UnsupportedFormatError
from pipeline.stages.ingest import MEDIA_TYPES, IngestStage, InputLimits, Sniffed, content_hash, read_html, sniff


def make_pdf(path, pages: list[list[str]], columns: int = 1) -> None:
    """A real PDF with one paragraph per string, optionally set in two columns."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import BaseDocTemplate, Frame, PageBreak, PageTemplate, Paragraph

    width, height = A4
    margin, gap = 50, 20
    frame_width = (width - 2 * margin - (columns - 1) * gap) / columns
    frames = [Frame(margin + i * (frame_width + gap), margin, frame_width, height - 2 * margin) for i in range(columns)]
    doc = BaseDocTemplate(str(path), pagesize=A4, pageTemplates=[PageTemplate(frames=frames)])
    style = getSampleStyleSheet()["BodyText"]
    story = []
    for number, paragraphs in enumerate(pages):
        if number:
            story.append(PageBreak())
        story.extend(Paragraph(text, style) for text in paragraphs)
    doc.build(story)


def make_docx(path, pages: list[list[str]]) -> None:
    import docx
    from docx.enum.text import WD_BREAK

    document = docx.Document()
    document.add_heading("Internal audit report", level=1)
    for number, paragraphs in enumerate(pages):
        for text in paragraphs:
            document.add_paragraph(text)
        if number < len(pages) - 1:
            document.paragraphs[-1].add_run().add_break(WD_BREAK.PAGE)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Finding", "Rating"
    table.cell(1, 0).text, table.cell(1, 1).text = "Access reviews", "High"
    document.save(str(path))


def test_samples_all_ingest(ingest, samples):
    paths = sorted(p for p in samples.iterdir() if p.suffix in {".txt", ".html", ".pdf", ".docx"})
    assert {p.suffix for p in paths} == {".txt", ".html", ".pdf", ".docx"}
    documents = ingest.process(paths)
    for path, document in zip(paths, documents):
        assert document.doc_id == content_hash(path.read_bytes())
        assert sum(len(page.text) for page in document.pages) > 1000, path.name
        assert all(page.number == i for i, page in enumerate(document.pages, start=1))


def test_pdf_pages_and_text(tmp_path, ingest):
    path = tmp_path / "minutes.pdf"
    make_pdf(path, [["The committee reviewed liquidity headroom."], ["Management noted a covenant breach risk."]])
    document = ingest.read(path)
    assert len(document.pages) == 2
    assert "reviewed liquidity headroom" in document.pages[0].text
    assert "covenant breach risk" in document.pages[1].text


def test_two_column_pdf_reads_each_column_in_order(tmp_path, ingest):
    left = " ".join(f"Left column sentence number {i} about supplier concentration." for i in range(40))
    right = " ".join(f"Right column sentence number {i} about currency exposure." for i in range(40))
    path = tmp_path / "columns.pdf"
    make_pdf(path, [[left, right]], columns=2)
    text = ingest.read(path).pages[0].text.replace("\n", " ")
    assert "sentence number 3 about supplier concentration" in text
    assert "sentence number 3 about currency exposure" in text
    # a column is not interleaved line by line with its neighbour
    assert text.index("number 39 about supplier") < text.index("number 0 about currency")


def test_docx_paragraphs_tables_and_page_breaks(tmp_path, ingest):
    path = tmp_path / "report.docx"
    make_docx(path, [["Scope covered procurement."], ["Three findings were rated high."]])
    document = ingest.read(path)
    assert [p.number for p in document.pages] == [1, 2]
    assert document.pages[0].text.startswith("Internal audit report\n\nScope covered procurement.")
    assert "Three findings were rated high." in document.pages[1].text
    assert "Access reviews\tHigh" in document.pages[1].text


def test_html_blocks_hidden_content_and_page_breaks():
    html = (
        b"<html><head><title>t</title><style>p{color:red}</style></head><body>"
        b"<div style='display:none'><ix:header>hidden XBRL facts</ix:header></div>"
        b"<h2>Risk Factors</h2><p>Our   results\nmay vary.</p><script>alert(1)</script>"
        b"<ul><li>Liquidity</li><li>Credit</li></ul>"
        b"<hr style='page-break-after: always'/><p>Second page text.</p></body></html>"
    )
    first, second = read_html(html)
    assert "hidden XBRL" not in first and "alert" not in first and "color" not in first
    assert "Risk Factors" in first and "Our results may vary." in first
    assert "Liquidity" in first and "Credit" in first
    assert "Second page text." in second


def test_html_fragment_starting_mid_tag(tmp_path, ingest):
    path = tmp_path / "fragment.html"
    path.write_bytes(b'ont-size:10pt;">Item 1A. Risk Factors</font></p><p>We face intense competition.</p>')
    text = ingest.read(path).pages[0].text
    assert text.startswith("Item 1A. Risk Factors")
    assert "font-size" not in text and "10pt" not in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Café revenue fell.".encode("utf-8"), "Café revenue fell."),
        ("Café revenue fell.".encode("utf-8-sig"), "Café revenue fell."),
        ("Café revenue fell.".encode("utf-16"), "Café revenue fell."),
        ("Café revenue fell – sharply.".encode("cp1252"), "Café revenue fell – sharply."),
        ("Café revenue fell.".encode("latin-1"), "Café revenue fell."),
    ],
)
def test_text_encodings(tmp_path, ingest, raw, expected):
    path = tmp_path / "note.txt"
    path.write_bytes(raw)
    assert ingest.read(path).pages[0].text == expected


def test_form_feed_splits_text_pages(tmp_path, ingest):
    path = tmp_path / "dump.txt"
    path.write_text("Page one text.\fPage two text.", encoding="utf-8")
    assert [p.text for p in ingest.read(path).pages] == ["Page one text.", "Page two text."]


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("clip.gif", b"GIF89a\x01\x00", UnsupportedFormatError, "unsupported file type"),
        ("scan.tiff", b"II*\x00", DocumentReadError, "cannot parse as image/tiff"),  # a truncated scan
        ("empty.txt", b"", DocumentReadError, "empty"),
        ("garbage.pdf", b"\x00\x01 this is not a pdf at all" * 20, DocumentReadError, "cannot parse"),
        ("garbage.docx", b"PK\x03\x04 not really a zip" * 20, DocumentReadError, "cannot parse"),
        ("binary.txt", b"abc\x00\x00\x01def", DocumentReadError, "binary content"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, ingest, name, content, error, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error, match=message):
        ingest.read(path)


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"word " * 50_000)
    with pytest.raises(DocumentReadError, match="exceeds"):
        IngestStage(limits=InputLimits(max_file_mb=0.1)).read(path)


def test_encrypted_pdf_needs_password(tmp_path, ingest):
    from pypdf import PdfReader, PdfWriter

    plain = tmp_path / "plain.pdf"
    make_pdf(plain, [["Confidential board paper."]])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="secret", algorithm="AES-256")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as handle:
        writer.write(handle)
    with pytest.raises(DocumentReadError, match="encrypted"):
        ingest.read(locked)


def test_process_returns_new_records_and_keeps_input(tmp_path, ingest):
    path = tmp_path / "a.txt"
    path.write_text("One. Two.", encoding="utf-8")
    batch = [path]
    documents = ingest.process(batch)
    assert batch == [path] and documents is not batch


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "min_pages", "needle"),
    [
        ("2023_FY_APPL_10-K.pdf", 70, "risk"),
        ("2021_FY_NVDA_10-K.pdf", 70, "our business"),
        ("2022_FY_MSFT_10-K.pdf", 50, "risk"),
        ("2023_FY_AMZN_10-K.pdf", 50, "risk"),
        ("gao-06-1046.pdf", 40, "performance accountability"),
    ],
)
def test_eval_pdfs_yield_readable_pages(eval_docs, ingest, name, min_pages, needle):
    document = ingest.read(eval_docs / name)
    assert len(document.pages) >= min_pages
    with_text = [p for p in document.pages if len(p.text.split()) > 20]
    assert len(with_text) >= 0.8 * len(document.pages)
    text = " ".join(p.text for p in document.pages).lower()
    assert needle in text
    words = text.split()
    glued = [w for w in words if len(w) > 25 and w.isalpha()]
    assert len(glued) < 0.002 * len(words), glued[:10]


# --- the reader is chosen by content; the extension is a hint --------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
HTML_PAGE = b"<!DOCTYPE html><html><body><p>Liquidity headroom narrowed.</p><p>Covenants were met.</p></body></html>"


def zipped(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        for name in names:
            package.writestr(name, "<w:document/>")
    return buffer.getvalue()


PDF_TYPE, HTML, WEAK_HTML, TEXT = (Sniffed("application/pdf", "PDF"), Sniffed("text/html", "HTML"),
                                   Sniffed("text/html", "HTML", strong=False), Sniffed("text/plain", "plain text"))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", PDF_TYPE),
        (b"HTTP/1.1 200 OK\r\n\r\n%PDF-1.4\n", PDF_TYPE),  # leading junk
        (b"x" * 1024 + b"%PDF-1.4\n", TEXT),  # past the first KiB
        (zipped("[Content_Types].xml", "word/document.xml"), Sniffed(MEDIA_TYPES[".docx"], "DOCX")),
        (zipped("xl/workbook.xml"), Sniffed(None, "a ZIP archive")),
        (b"PK\x03\x04 not really a zip" * 20, None),  # left to the extension's reader
        (PNG, Sniffed("image/png", "a PNG image")),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", Sniffed("image/jpeg", "a JPEG image")),
        (b"GIF89a\x01\x00", Sniffed(None, "a GIF image")),
        (b"II*\x00", Sniffed("image/tiff", "a TIFF image")),
        (b"MM\x00*", Sniffed("image/tiff", "a TIFF image")),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00",
         Sniffed(None, "a legacy Microsoft Office (OLE2) file such as .doc or .xls")),
        (b"{\\rtf1\\ansi Risk}", Sniffed(None, "an RTF document")),
        (b"\x1f\x8b\x08\x00", Sniffed(None, "a gzip archive")),
        (b"\x7fELF\x02\x01", Sniffed(None, "an ELF executable")),
        (b"\xef\xbb\xbf \r\n<!DOCTYPE HTML>\n<p>x", HTML),
        (b"<HTML lang='en'><body>", HTML),
        (b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">', HTML),
        ('<!doctype html><p>Café</p>'.encode("utf-16"), HTML),
        (b'<?xml version="1.0"?>\n<report><item/></report>', TEXT),  # XML, not XHTML
        (b"<p>Revenue fell.", WEAK_HTML),
        (b"  <B>Item 1A</B>", WEAK_HTML),
        (b"<!-- saved from url --><div>", WEAK_HTML),
        (b"<a href='#risk'>Risks</a>", WEAK_HTML),
        (b"<pre>fixed</pre>", TEXT),
        (b"<abbr>GAAP</abbr>", TEXT),
        (b"Revenue fell.", TEXT),
        ("Café revenue fell.".encode("utf-16"), TEXT),
        (b"a" + "é".encode() * 600, TEXT),  # a two-byte character cut at the end of the first KiB
        (b"abc\x00\x00\x01def", None),
        (bytes(range(256)), None),
        (b"caf\xe9 revenue", None),  # Windows-1252: left to the extension's reader, which decodes it
    ],
)
def test_sniff(data, expected):
    assert sniff(data) == expected


def test_pdf_saved_as_txt_is_read_as_pdf(tmp_path, ingest):
    path = tmp_path / "minutes.txt"
    make_pdf(path, [["The committee reviewed liquidity headroom."]])
    document = ingest.read(path)
    assert "reviewed liquidity headroom" in document.pages[0].text
    assert "%PDF" not in document.pages[0].text
    assert document.media_type == "application/pdf"
    assert document.notes == ("content is application/pdf, not text/plain as the extension .txt says: read as PDF",)


def test_html_saved_as_pdf_is_read_as_html(tmp_path, ingest):
    path = tmp_path / "policy.pdf"
    path.write_bytes(HTML_PAGE)
    document = ingest.read(path)
    assert "Liquidity headroom narrowed.\n\nCovenants were met." in document.pages[0].text
    assert "<p>" not in document.pages[0].text and document.media_type == "text/html"
    assert len(document.notes) == 1 and "read as HTML" in document.notes[0]


def test_docx_saved_as_pdf_is_read_as_docx(tmp_path, ingest):
    path = tmp_path / "report.pdf"
    make_docx(path, [["Scope covered procurement."]])
    document = ingest.read(path)
    assert document.pages[0].text.startswith("Internal audit report\n\nScope covered procurement.")
    assert document.media_type == MEDIA_TYPES[".docx"]
    assert len(document.notes) == 1 and "read as DOCX" in document.notes[0]


def test_gif_saved_as_txt_is_refused_naming_both(tmp_path, ingest):
    path = tmp_path / "report.txt"
    path.write_bytes(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
    with pytest.raises(UnsupportedFormatError, match=r"^report\.txt: .*text/plain.* GIF image"):
        ingest.read(path)


def test_text_starting_with_a_tag_stays_text(tmp_path, ingest):
    path = tmp_path / "note.txt"
    path.write_bytes(b"<p> marks a paragraph in the style guide. Use it sparingly.")
    document = ingest.read(path)
    assert document.pages[0].text == "<p> marks a paragraph in the style guide. Use it sparingly."
    assert document.media_type == "text/plain" and document.notes == ()


def test_pdf_without_extension_is_read_as_pdf(tmp_path, ingest):
    path = tmp_path / "minutes"
    make_pdf(path, [["Management noted a covenant breach risk."]])
    document = ingest.read(path)
    assert "covenant breach risk" in document.pages[0].text
    assert document.media_type == "application/pdf"
    assert len(document.notes) == 1 and "read as PDF" in document.notes[0]


def test_xhtml_saved_as_txt_is_read_as_html(tmp_path, ingest):
    path = tmp_path / "10k.txt"
    path.write_bytes(b'<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
                     b"<body><div>Item 1A.</div><div>Risk Factors</div></body></html>")
    document = ingest.read(path)
    assert document.pages[0].text == "Item 1A.\n\nRisk Factors"
    assert document.media_type == "text/html" and len(document.notes) == 1


@pytest.mark.parametrize("name", ["minutes.pdf", "policy.html", "report.docx", "note.txt"])
def test_correctly_named_file_has_no_notes(tmp_path, ingest, name):
    path = tmp_path / name
    if name.endswith(".pdf"):
        make_pdf(path, [["The committee reviewed liquidity headroom."]])
    elif name.endswith(".docx"):
        make_docx(path, [["Scope covered procurement."]])
    else:
        path.write_bytes(HTML_PAGE if name.endswith(".html") else b"Covenants were met.")
    document = ingest.read(path)
    assert document.notes == () and document.media_type == MEDIA_TYPES[path.suffix]
