"""Hostile inputs, built byte by byte: each is what an attacker or a broken producer would hand docintel.

``build_inbox`` writes them (and a few good documents) into one folder and returns, per file, the words
its error must contain (``None``: it must be read).
"""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
PAGE = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
        b"/Resources << /Font << /F1 %d 0 R >> >> >>")  # % (content object, font object)


def pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF of ``objects`` (numbered from 1, object 1 the catalog) with an exact cross-reference table;
    ``{xref}`` in ``trailer`` is replaced by the table's own offset."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    extra = trailer.replace(b"{xref}", str(xref).encode())
    out += b"trailer\n<< /Size %d /Root 1 0 R %s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, extra, xref)
    return bytes(out)


def flate_stream(compressed: bytes) -> bytes:
    return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(compressed) + compressed + b"\nendstream"


def one_page_pdf(compressed_content: bytes, pages: bytes = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                 trailer: bytes = b"") -> bytes:
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>", pages, PAGE % (4, 5), flate_stream(compressed_content), FONT],
               trailer)


TEXT = b"BT /F1 12 Tf 72 700 Td (Covenant breach may trigger acceleration of the loan.) Tj ET"


def zeros_deflated(size: int) -> bytes:
    """``size`` zero bytes, deflated (about 1,000 to 1): built in 1 MiB steps, never held whole."""
    packer, chunk, out = zlib.compressobj(9), bytes(1 << 20), []
    for _ in range(size // len(chunk)):
        out.append(packer.compress(chunk))
    out.append(packer.flush())
    return b"".join(out)


def spinning_pdf(pages: int = 3_000) -> bytes:
    """Small on disk, minutes of work for a text extractor: thousands of pages sharing one stream of a
    thousand tiny text operators (each stream stays under pypdf's per-stream token budget)."""
    content = flate_stream(zlib.compress(b"BT /F1 1 Tf " + b"(a) Tj 0.01 0 Td " * 1_000 + b"ET"))
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
                content, FONT] + [PAGE % (3, 4)] * pages)


def encrypted_pdf() -> bytes:
    from pypdf import PdfWriter

    writer, buffer = PdfWriter(), io.BytesIO()
    writer.add_blank_page(300, 300)
    writer.encrypt(user_password="secret", owner_password="owner")
    writer.write(buffer)
    return buffer.getvalue()


def image_only_pdf() -> bytes:
    """A scan: one page holding one picture and no text layer."""
    from PIL import Image
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    picture = Image.new("RGB", (200, 100), "white")
    for x in range(20, 180):
        picture.putpixel((x, 50), (0, 0, 0))
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawImage(ImageReader(picture), 72, 600, width=400, height=200)
    page.save()
    return buffer.getvalue()


def png(width: int, height: int, rows: bytes = b"") -> bytes:
    """A grayscale PNG whose header declares ``width`` x ``height``, with ``rows`` (filtered scanlines) deflated."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack("!I", len(body)) + kind + body + struct.pack("!I", zlib.crc32(kind + body))

    header = struct.pack("!IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


def png_bomb(side: int = 12_000) -> bytes:
    """A real decompression bomb: ``side``² white pixels (144 megapixels, 144 MB decoded) in ≈ 150 KB."""
    return png(side, side, (b"\x00" + b"\xff" * side) * side)


def docx_with_entities(good_docx: bytes) -> bytes:
    """A real DOCX whose document part declares "billion laughs" entities and uses the last one."""
    levels = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    source, out = zipfile.ZipFile(io.BytesIO(good_docx)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "word/document.xml":
                head, _, body = data.decode().partition("?>")
                data = (head + '?>\n<!DOCTYPE w:document [' + "".join(levels) + "]>" +
                        body.replace("Internal audit report", "&lol9;", 1)).encode()
            target.writestr(info, data)
    return out.getvalue()


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def zip_with_symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        link = zipfile.ZipInfo("notes.txt")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
    return buffer.getvalue()


def overlapping_zip() -> bytes:
    """Two directory entries, one compressed stream: the second entry's header offset moved onto the first
    (the trick behind non-recursive zip bombs)."""
    data = bytearray(zip_of({"a.txt": b"Liquidity risk. " * 200, "b.txt": b"Credit risk. " * 200}))
    second = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    struct.pack_into("<I", data, second + 42, 0)
    return bytes(data)


GOOD = {
    "good.txt": "The company may breach its debt covenants if liquidity deteriorates. Lenders could call the loan.",
    "latin1.txt": "Société Générale's exposure to créances douteuses may rise. Provisions could be insufficient.",
    "utf16.txt": "Our sole supplier of wafers — in Taiwan — could fail. Shipments would stop for months.",
}


def build_inbox(folder: Path, good_docx: bytes) -> dict[str, str | None]:
    """Write every hostile input plus good ones into ``folder``; return name → expected error words."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[bytes, str | None]] = {
        "encrypted.pdf": (encrypted_pdf(), "encrypted and needs a password"),
        "xref_loop.pdf": (one_page_pdf(zlib.compress(TEXT), trailer=b"/Prev {xref}"), None),
        "circular_pages.pdf": (one_page_pdf(zlib.compress(TEXT), pages=b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"),
                               "cyclic page references"),
        "spinning.pdf": (spinning_pdf(), "parsing was stopped after"),
        "flate_bomb.pdf": (one_page_pdf(zeros_deflated(200 << 20)), "Limit reached while decompressing"),
        "ratio_bomb.zip": (zip_of({"zeros.txt": bytes(4 << 20)}), "a zip bomb?"),
        "nested.zip": (zip_of({"inner.zip": zip_of({"a.txt": b"text"})}), "nested archives are refused"),
        "overlapping.zip": (overlapping_zip(), "overlap"),
        "oversized.zip": (zip_of({"a.txt": os.urandom(3 << 20), "b.txt": os.urandom(3 << 20)}, zipfile.ZIP_STORED),
                          "the limit is 5 MiB"),
        "slip_parent.zip": (zip_of({"../../escaped.txt": b"Risk outside."}), "unsafe path"),
        "slip_absolute.zip": (zip_of({"/tmp/docintel-escaped.txt": b"Risk outside."}), "unsafe path"),
        "slip_symlink.zip": (zip_with_symlink(), "symbolic link"),
        "laughs.docx": (docx_with_entities(good_docx), "declares a DTD"),
        "garbage.pdf": (os.urandom(4096), "cannot parse as application/pdf"),
        "garbage.docx": (os.urandom(4096), "File is not a zip file"),
        "empty.txt": (b"", "the file is empty"),
        "scanned.pdf": (image_only_pdf(), "no extractable text"),  # OCR reads its one line as nothing
        "bomb.png": (png_bomb(), "144 megapixels), over the 100-megapixel limit"),
        "huge.png": (png(30_000, 30_000), "30,000 x 30,000 pixels"),
        "good.txt": (GOOD["good.txt"].encode(), None),
        "latin1.txt": (GOOD["latin1.txt"].encode("latin-1"), None),
        "utf16.txt": (GOOD["utf16.txt"].encode("utf-16"), None),
        "bundle.zip": (zip_of({"memo/a.txt": GOOD["good.txt"].encode(), "board.docx": good_docx,
                               "readme.bin": b"\x00\x01"}), None),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: expected for name, (_, expected) in files.items()}


LIMITS_ENV = {"DOCINTEL_PARSE_TIMEOUT_S": "6", "DOCINTEL_ARCHIVE_MAX_MB": "5"}  # short, for the tests; 6 s: the
# flate bomb reaches its decompression limit first even on a loaded machine (at 3 s it once hit the timeout)
