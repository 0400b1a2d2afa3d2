"""Segmentation quality on the hand-checked gold set in ``data/segmentation/gold``.

A gold file lists, for some pages of a document, every segment that starts there as exact text
fragments (see data/segmentation/GUIDELINES.md). Fragments are located in the pages that ingest
extracts, so the gold set keeps working as long as extraction is stable. A predicted segment matches
when it starts and ends exactly where a gold segment does (exact segment match, as in the literature).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigurationError
from pipeline.records import Document, Span
from pipeline.stages.ingest import IngestStage
from pipeline.stages.sentencize import SentencizeStage

Boundary = tuple[int, int, int, int]  # (start page, start offset, end page, end offset)


@dataclass(frozen=True)
class GoldDocument:
    name: str
    document: Document
    pages: frozenset[int]
    segments: tuple[tuple[Span, ...], ...]

    @property
    def boundaries(self) -> set[Boundary]:
        return {boundary(spans) for spans in self.segments}


def boundary(spans: Sequence[Span]) -> Boundary:
    return spans[0].page, spans[0].start, spans[-1].page, spans[-1].end


def load_gold(path: Path, eval_docs: Path, repo_root: Path) -> GoldDocument:
    """Read one gold file and locate its fragments in the document's extracted pages."""
    gold = json.loads(Path(path).read_text(encoding="utf-8"))
    base = eval_docs if gold["location"] == "shared-eval" else repo_root
    document = IngestStage().read(base / gold["document"])
    cursor: dict[int, int] = {}
    segments = []
    for number, fragments in enumerate(gold["segments"]):
        spans = []
        for fragment in fragments:
            page_text = document.page(fragment["page"]).text
            text = fragment["text"].strip()
            start = page_text.find(text, cursor.get(fragment["page"], 0))
            if start < 0:
                raise ConfigurationError(
                    f"{path.name}: segment {number}: {text[:60]!r} not found on page {fragment['page']}; "
                    "did text extraction change?"
                )
            cursor[fragment["page"]] = start + len(text)
            spans.append(Span(fragment["page"], start, start + len(text)))
        segments.append(tuple(spans))
    return GoldDocument(Path(path).stem, document, frozenset(gold["pages"]), tuple(segments))


def load_gold_set(gold_dir: Path, eval_docs: Path, repo_root: Path) -> list[GoldDocument]:
    files = sorted(Path(gold_dir).glob("*.json"))
    if not files:
        raise ConfigurationError(f"no gold files in {gold_dir}")
    missing = [f.name for f in files if json.loads(f.read_text())["location"] == "shared-eval" and not eval_docs.is_dir()]
    if missing:
        raise ConfigurationError(f"{', '.join(missing)} need the shared eval documents in {eval_docs}")
    return [load_gold(f, eval_docs, repo_root) for f in files]


@dataclass(frozen=True)
class ModeScore:
    mode: str
    gold: int
    predicted: int
    correct: int
    words: int
    seconds: float

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "mode": self.mode, "gold": self.gold, "predicted": self.predicted, "correct": self.correct,
            "precision": round(self.precision, 4), "recall": round(self.recall, 4), "f1": round(self.f1, 4),
            "words_per_second": round(self.words_per_second),
        }


def score_mode(mode: str, gold_set: Iterable[GoldDocument]) -> ModeScore:
    """Segment every gold document whole (layout needs all pages) and score the annotated pages."""
    stage = SentencizeStage(mode)
    stage.warm_up()
    gold_total = predicted_total = correct = words = 0
    seconds = 0.0
    for gold in gold_set:
        stage.process([gold.document])  # warm-up pass: the first call pays for lazy initialisation
        started = time.perf_counter()
        sentences = stage.process([gold.document])
        seconds += time.perf_counter() - started
        words += sum(len(page.text.split()) for page in gold.document.pages)
        predicted = {boundary(s.spans) for s in sentences if s.page in gold.pages}
        gold_total += len(gold.boundaries)
        predicted_total += len(predicted)
        correct += len(predicted & gold.boundaries)
    return ModeScore(mode, gold_total, predicted_total, correct, words, seconds)


def markdown_table(scores: Sequence[ModeScore]) -> str:
    rows = ["| mode | precision | recall | F1 | words/s |", "|---|---:|---:|---:|---:|"]
    rows += [
        f"| {s.mode} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.words_per_second:,.0f} |" for s in scores
    ]
    return "\n".join(rows)
