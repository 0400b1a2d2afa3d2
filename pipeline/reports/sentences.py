"""``sentences.jsonl``: one JSON object per sentence of a run, with its provenance, vector model and label.

Written from the store, not from the records in flight: a run that reused earlier results, or finished
what a killed run left, writes exactly what an uninterrupted run would. Streams one document at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.calibration import review_below_for
from pipeline.reports.safe_text import json_line
from pipeline.store import ResultStore


def ocr_provenance(ocr_pages: dict[int, float], pages: list[int]) -> dict[str, Any]:
    """``ocr``: some of the text was read by OCR; ``ocr_confidence``: the lowest mean confidence of its OCRed
    pages (null for a text layer)."""
    read = [ocr_pages[p] for p in pages if p in ocr_pages]
    return {"ocr": bool(read), "ocr_confidence": min(read) if read else None}


def run_records(store: ResultStore, run_id: str, models_dir: Path | None = None) -> Iterator[dict[str, Any]]:
    """``needs_review``: the label's score is in its classifier's review band (null if that band is unknown)."""
    from pipeline.settings import Settings

    run = store.run(run_id)
    used = run.settings.get("models_used", {})
    segmenter = f"spacy:{run.settings.get('sentencizer', 'layout')}"
    review_below = review_below_for(used.get("classifier"), models_dir or Settings().models_dir)
    for entry in store.run_documents(run.run_id):
        if entry.status != "done":
            continue
        ocr_pages = store.ocr_pages(entry.doc_id)
        for s, label in store.labelled_sentences(entry.doc_id, segmenter, used.get("classifier")):
            record = {"doc_id": s.doc_id, "source": entry.source, "page": s.page, "start": s.start,
                      "end_page": s.end_page, "end": s.end, "spans": s.spans, "index": s.position, "text": s.text,
                      "boxes": s.boxes, **ocr_provenance(ocr_pages, [page for page, _, _ in s.spans]),
                      "embedding_model": used.get("embedder")}
            if label is not None:
                record |= {"risk_label": label.label, "risk_score": round(label.score, 6),
                           "risk_distribution": label.distribution, "classifier_model": label.model,
                           "needs_review": None if review_below is None else label.score < review_below}
            yield record


def write_sentences(store: ResultStore, run_id: str, out_dir: Path,
                    models_dir: Path | None = None) -> tuple[Path, int]:
    """Write ``out_dir/sentences.jsonl`` (through a ``.partial`` file renamed at the end, so a reader never
    sees half a file under the final name); returns the path and the number of sentences."""
    out_dir.mkdir(parents=True, exist_ok=True)
    final, partial = out_dir / "sentences.jsonl", out_dir / "sentences.jsonl.partial"
    count = 0
    with partial.open("w", encoding="utf-8", errors="backslashreplace") as handle:  # a lone surrogate: \\udXXX
        for record in run_records(store, run_id, models_dir):
            handle.write(json_line(record) + "\n")
            count += 1
    partial.replace(final)
    return final, count
