"""``sentences.jsonl``: one JSON object per sentence with its provenance and later stages' fields."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.records import RiskLabel, SentenceEmbedding


def sentence_record(embedding: SentenceEmbedding, risk: RiskLabel | None = None) -> dict[str, Any]:
    s = embedding.sentence
    record = {
        "doc_id": s.doc_id,
        "source": s.source,
        "page": s.page,
        "start": s.start,
        "end_page": s.end_page,
        "end": s.end,
        "spans": [[span.page, span.start, span.end] for span in s.spans],
        "index": s.index,
        "text": s.text,
        "embedding_model": embedding.model,
    }
    if risk is not None:
        record |= {"risk_label": risk.label, "risk_score": round(risk.score, 6),
                   "risk_distribution": risk.distribution, "classifier_model": risk.model}
    return record


class SentencesWriter:
    """Appends batches to ``DIR/sentences.jsonl.partial`` and renames it when the run completes,
    so a reader never sees a half-written file under the final name."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.final = self.out_dir / "sentences.jsonl"
        self.partial = self.out_dir / "sentences.jsonl.partial"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.partial.write_text("", encoding="utf-8")
        self.count = 0

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        with self.partial.open("a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                self.count += 1

    def close(self) -> Path:
        self.partial.replace(self.final)
        return self.final
