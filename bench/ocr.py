"""OCR benchmark: word accuracy and pages per second on prose pages of the real 10-K PDFs in ../shared/eval/docs.

Each 10-K's prose pages (the densest pages of running text: few digits, many words) are rendered at 200 dpi
and packed into a scanned PDF without a text layer, once clean and once photocopied (1.5° skew, noise σ 12,
JPEG q=60). docintel reads each through its real ingest stage (parser sandbox, Tesseract side by side on all
cores); the page's own text layer is the reference (``scans.reference``: pypdf's or PDFium's reading,
whichever keeps more words apart). Word accuracy = 1 - word edit distance / reference words,
pooled over the pages. Targets (issue 20): ≥ 0.97 clean, ≥ 0.94 photocopied.

    .venv/bin/python bench/ocr.py [--pages-per-doc 3]    → bench/results/ocr.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from pypdf import PdfReader, PdfWriter

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from scans import image_pdf, photocopy, reference, render, word_accuracy, words  # noqa: E402

from pipeline.stages.ingest import IngestStage  # noqa: E402

EVAL = REPO.parent / "shared" / "eval" / "docs"
TEN_KS = ("2021_FY_NVDA_10-K.pdf", "2022_FY_MSFT_10-K.pdf", "2023_FY_AMZN_10-K.pdf", "2023_FY_APPL_10-K.pdf")


def prose_pages(pdf: Path, count: int) -> list[int]:
    """The ``count`` pages with the most words among those with few digits (running text, not tables)."""
    scored = []
    for number, page in enumerate(PdfReader(pdf).pages, start=1):
        text = page.extract_text() or ""
        digits, letters = sum(c.isdigit() for c in text), sum(c.isalpha() for c in text)
        if letters and digits / letters < 0.02 and not re.search(r"\.{5,}", text):  # no tables, no index
            scored.append((len(words(text)), number))
    return sorted(number for _, number in sorted(scored, reverse=True)[:count])


def scanned_pdf(pdf: Path, pages: list[int], treat) -> bytes:
    writer = PdfWriter()
    for number in pages:
        writer.add_page(PdfReader(io.BytesIO(image_pdf(treat(render(pdf, number))))).pages[0])
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def pooled_accuracy(pairs: list[tuple[str, str]]) -> float:
    total = sum(len(words(ref)) for ref, _ in pairs)
    return 1 - sum((1 - word_accuracy(ref, hyp)) * len(words(ref)) for ref, hyp in pairs) / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages-per-doc", type=int, default=3)
    args = parser.parse_args()
    ingest = IngestStage()
    ingest.warm_up()
    treatments = {"clean": lambda image: image, "photocopy": photocopy}
    rows, pairs = [], {name: [] for name in treatments}
    seconds, pages_read = {name: 0.0 for name in treatments}, 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in TEN_KS:
            pdf = EVAL / name
            pages = prose_pages(pdf, args.pages_per_doc)
            refs = [reference(pdf, n) for n in pages]
            row = {"document": name, "pages": pages}
            for treatment, treat in treatments.items():
                path = Path(tmp) / f"{treatment}-{name}"
                path.write_bytes(scanned_pdf(pdf, pages, treat))
                start = time.perf_counter()
                document = ingest.read(path)
                seconds[treatment] += time.perf_counter() - start
                assert all(p.ocr for p in document.pages)
                doc_pairs = list(zip(refs, (p.text for p in document.pages), strict=True))
                pairs[treatment] += doc_pairs
                row[f"{treatment}_accuracy"] = round(pooled_accuracy(doc_pairs), 4)
                row[f"{treatment}_confidence"] = round(sum(p.ocr_confidence for p in document.pages) / len(pages), 3)
            pages_read += len(pages)
            rows.append(row)
            print(f"{name:24} pages {pages}: clean {row['clean_accuracy']:.3f}, photocopy "
                  f"{row['photocopy_accuracy']:.3f}", flush=True)
    result = {
        "pages": pages_read, "dpi": 200, "cores": os.cpu_count(), "documents": rows,
        **{f"{t}_word_accuracy": round(pooled_accuracy(pairs[t]), 4) for t in treatments},
        **{f"{t}_pages_per_s": round(pages_read / seconds[t], 3) for t in treatments},
    }
    print(f"word accuracy on {pages_read} prose pages: clean {result['clean_word_accuracy']:.3f} (target 0.97), "
          f"photocopy {result['photocopy_word_accuracy']:.3f} (target 0.94); pages/s on {os.cpu_count()} cores: "
          f"clean {result['clean_pages_per_s']:.2f}, photocopy {result['photocopy_pages_per_s']:.2f}")
    out = REPO / "bench" / "results" / "ocr.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
