"""OCR of scanned pages, on pages of a real 10-K rendered at 200 dpi (the text layer is the reference), through
the real parser process and Debian's Tesseract; then through a whole run into sentences.jsonl and the reports."""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest
from hostile import png, png_bomb
from pypdf import PdfReader
from scans import image_pdf, mixed_pdf, photocopy, reference, render, word_accuracy

from pipeline import runs
from pipeline.errors import DocumentReadError
from pipeline.ocr import OcrOptions
from pipeline.settings import Settings
from pipeline.stages.ingest import IngestStage, InputLimits
from pipeline.store import ResultStore

if shutil.which("tesseract") is None and not os.environ.get("DOCINTEL_REQUIRE_TESSERACT"):  # .ci/run installs it
    pytest.skip("Tesseract is not installed (make install installs Debian's tesseract-ocr)", allow_module_level=True)

TEN_K = "2022_FY_MSFT_10-K.pdf"
PROSE = (21, 31)  # two prose pages of risk factors


@pytest.fixture(scope="module")
def ten_k(eval_docs):
    return eval_docs / TEN_K


def test_a_pdf_mixing_text_and_scanned_pages_is_read_whole(tmp_path, ingest, ten_k):
    path = tmp_path / "mixed.pdf"
    path.write_bytes(mixed_pdf(ten_k, text_pages=[21], scanned_pages=[31], order=[21, 31]))
    document = ingest.read(path)
    text_page, scanned_page = document.pages
    assert not text_page.ocr  # read from its text layer, untouched
    assert text_page.text == ingest.read(ten_k).page(21).text
    assert scanned_page.ocr and 0.8 < scanned_page.ocr_confidence <= 1
    assert word_accuracy(reference(ten_k, 31), scanned_page.text) >= 0.97


def test_a_scanned_only_pdf_is_read_even_photocopied(tmp_path, ingest, ten_k):
    path = tmp_path / "photocopy.pdf"
    path.write_bytes(image_pdf(photocopy(render(ten_k, 21))))
    document = ingest.read(path)
    assert [p.ocr for p in document.pages] == [True]
    assert word_accuracy(reference(ten_k, 21), document.pages[0].text) >= 0.94


def test_ocr_force_reads_even_a_good_text_layer(tmp_path, ten_k):
    path = tmp_path / "page.pdf"
    path.write_bytes(mixed_pdf(ten_k, text_pages=[21], scanned_pages=[], order=[21]))
    forced = IngestStage(ocr=OcrOptions(mode="force")).read(path)
    assert forced.pages[0].ocr and word_accuracy(reference(ten_k, 21), forced.pages[0].text) >= 0.97


def test_with_ocr_off_a_scan_fails_saying_so(tmp_path, ten_k):
    path = tmp_path / "scan.pdf"
    path.write_bytes(image_pdf(render(ten_k, 31)))
    with pytest.raises(DocumentReadError, match=r"no extractable text \(OCR is off \(DOCINTEL_OCR=off\)"):
        IngestStage(ocr=OcrOptions(mode="off")).read(path)


def test_without_tesseract_the_text_pages_are_read_and_the_others_named(tmp_path, ten_k, monkeypatch):
    path = tmp_path / "mixed.pdf"
    path.write_bytes(mixed_pdf(ten_k, text_pages=[21], scanned_pages=[31], order=[21, 31]))
    monkeypatch.setenv("PATH", str(tmp_path))  # the parser process it starts finds no tesseract
    stage = IngestStage(limits=InputLimits(max_pages=4_999))  # other limits: a parser process of its own
    try:
        document = stage.read(path)
    finally:
        stage.parser.close()
    assert [p.ocr for p in document.pages] == [False, False] and not document.pages[1].text
    assert "page 2 has no usable text layer and could not be read: OCR needs Tesseract" in document.notes[0]


@pytest.mark.parametrize(("suffix", "media_type"), [(".png", "image/png"), (".tiff", "image/tiff"),
                                                    (".jpg", "image/jpeg")])
def test_an_image_file_is_a_document(tmp_path, ingest, ten_k, suffix, media_type):
    path = tmp_path / f"scan{suffix}"
    render(ten_k, 31).save(path)
    document = ingest.read(path)
    assert document.media_type == media_type and document.pages[0].ocr
    assert word_accuracy(reference(ten_k, 31), document.pages[0].text) >= 0.97


def test_a_scan_saved_as_txt_is_read_by_its_content_with_a_note(tmp_path, ingest, ten_k):
    path = tmp_path / "minutes.txt"
    render(ten_k, 31).save(path, "PNG")
    document = ingest.read(path)
    assert document.media_type == "image/png" and "read as PNG image (OCR)" in document.notes[0]


@pytest.mark.parametrize(("data", "words"), [
    (png(30_000, 30_000), "30,000 x 30,000 pixels (900 megapixels), over the 100-megapixel limit"),
    (png_bomb(), "12,000 x 12,000 pixels (144 megapixels), over the 100-megapixel limit"),
], ids=["30000x30000", "decompression-bomb"])
def test_oversized_images_are_refused_before_decoding(tmp_path, ingest, data, words):
    path = tmp_path / "scan.png"
    path.write_bytes(data)
    with pytest.raises(DocumentReadError, match="DOCINTEL_MAX_IMAGE_MEGAPIXELS") as error:
        ingest.read(path)
    assert words in str(error.value)


def test_ocred_pages_are_marked_in_sentences_jsonl_and_every_report(tmp_path, ten_k, isolated_settings,
                                                                     tiny_models_dir, monkeypatch):
    monkeypatch.setenv("DOCINTEL_MODELS_DIR", str(tiny_models_dir))
    path = tmp_path / "mixed.pdf"
    path.write_bytes(mixed_pdf(ten_k, text_pages=[21], scanned_pages=[31], order=[21, 31]))
    settings = Settings(store_url=f"sqlite:///{tmp_path / 'store.db'}", report_threshold=0.0)
    store = ResultStore(settings.resolved_store_url)
    result = runs.execute(runs.Executor(settings, store, logging.getLogger("test")), [str(path)],
                          str(tmp_path / "out"), placement={}, triggered_by="test")
    assert not result.summary["failed"]
    out = tmp_path / "out"
    records = [json.loads(line) for line in (out / "sentences.jsonl").read_text().splitlines()]
    by_page = {page: {(r["ocr"], r["ocr_confidence"] is None) for r in records if r["page"] == page} for page in (1, 2)}
    assert by_page == {1: {(False, True)}, 2: {(True, False)}}
    report = json.loads((out / "report.json").read_text())
    assert report["documents"][0]["ocr_pages"] == [2]
    assert {f["page"]: f["ocr_confidence"] is not None for f in report["findings"]} == {1: False, 2: True}
    assert "OCR: pages 2" in (out / "report.html").read_text() and ">OCR 0." in (out / "report.html").read_text()
    csv_header = (out / "report.csv").read_text().splitlines()[0]
    assert csv_header.endswith("ocr_confidence")
    from openpyxl import load_workbook

    documents = load_workbook(out / "report.xlsx")["Documents"]
    assert [c.value for c in documents[1]][-1] == "ocr_pages" and documents[2][9].value == "2"
    assert "OCR: pages 2" in "".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)

    # read again without OCR, the same file is other text: refused, never mixed into the stored reading
    unread = runs.execute(runs.Executor(settings.model_copy(update={"ocr": "off"}), store, logging.getLogger("test")),
                          [str(path)], None, placement={}, triggered_by="test")
    assert "already stored as read under other OCR settings" in unread.summary["failed"][0]["error"]

    # every sentence has its boxes, text layer and OCR alike; the HTML report shows each finding on its page
    assert all(r["boxes"] and {b[0] for b in r["boxes"]} <= {r["page"], r["end_page"]} for r in records)
    html = (out / "report.html").read_text()
    assert html.count("data:image/jpeg;base64,") == 2 and html.count('class="onpage"') == len(report["findings"])

    # the review app serves a finding's page with the sentence highlighted (drawn in amber on the rendering)
    import io
    import re

    import numpy as np
    from PIL import Image
    from starlette.testclient import TestClient

    from pipeline.review_app import create_app

    client = TestClient(create_app(settings))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"name": "ana", "csrf": csrf})
    scanned = next(f for f in report["findings"] if f["page"] == 2)
    page = client.get(f"/runs/{result.summary['run_id']}/findings/{scanned['sentence_id']}")
    assert "read by OCR from a scan" in page.text and "/page/2.jpg" in page.text
    image = client.get(f"/runs/{result.summary['run_id']}/findings/{scanned['sentence_id']}/page/2.jpg")
    assert image.headers["content-type"] == "image/jpeg"
    pixels = np.asarray(Image.open(io.BytesIO(image.content)).convert("RGB")).astype(int)
    amber = (pixels[..., 0] > 200) & (pixels[..., 1] > 150) & (pixels[..., 2] < 120)
    x0, top, x1, bottom = (v * 100 / 72 for v in scanned["boxes"][0][1:])
    assert amber[int(top):int(bottom) + 2, int(x0):int(x1)].mean() > 0.05 and amber.mean() < 0.1


def test_text_layer_boxes_hold_their_sentences_on_a_real_10k(ten_k, sentencizers):
    """PDFium's text inside each sentence's boxes is the sentence, whitespace aside (PDFium drops the hyphen
    that ends a line, so "mission-\ncritical" compares as "missioncritical")."""
    import re
    import unicodedata

    import pypdfium2 as pdfium

    document = IngestStage().read(ten_k)
    sentences = sentencizers["layout"].process([document])
    pdf = pdfium.PdfDocument(ten_k)
    pages = {}

    def inside(box) -> str:
        if box.page not in pages:
            pages[box.page] = (pdf[box.page - 1].get_textpage(), pdf[box.page - 1].get_size()[1])
        textpage, height = pages[box.page]
        return textpage.get_text_bounded(box.x0, height - box.bottom, box.x1, height - box.top)

    def same(text: str) -> str:
        return re.sub(r"-\s*\n|\s+", "", unicodedata.normalize("NFKC", text))

    held = [same("".join(map(inside, s.boxes))) == same(s.text) for s in sentences]
    assert len(sentences) > 3000 and sum(held) / len(held) >= 0.98
