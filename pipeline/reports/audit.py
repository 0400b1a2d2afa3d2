"""The audit report of one run, read back from the store: what reviewers sign off and file.

``build_report`` gathers everything the exports show — run metadata (who/what triggered it, inputs with
content hashes, settings, placement plan, models with versions and sha256), a summary, every finding with
its evidence (document, page, offsets, surrounding context) sorted by score, and the documents that failed —
so each export format is only a rendering of one typed record.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


from pipeline.models import ModelRegistry
from pipeline.calibration import review_below_for
from pipeline.reports.register import RegisterMatch, RegisterRisk, RiskRegister
from pipeline.reports.sentences import ocr_provenance
from pipeline.store import ResultStore
from pipeline.taxonomy import labels as taxonomy_labels

CONTEXT_CHARS = 160  # of page text shown either side of a finding


@dataclass(frozen=True)
class Finding:
    label: str
    score: float
    text: str
    document: str
    doc_id: str
    page: int
    start: int
    end: int
    context_before: str
    context_after: str
    register: tuple[RegisterMatch, ...] = ()  # nearest risk-register entries, when a register is given
    needs_review: bool = False  # its score is in the classifier's review band (real dev precision < 0.9)
    sentence_id: int | None = None  # the stored sentence: what reviewers' decisions name
    distribution: tuple[tuple[str, float], ...] = ()  # every label's calibrated probability, highest first
    ocr_confidence: float | None = None  # set: read by OCR from a scanned page (lowest mean confidence, 0-1)
    boxes: tuple[tuple[float, ...], ...] = ()  # (page, x0, top, x1, bottom) in points, one per line on the page


@dataclass(frozen=True)
class ReviewedFinding:
    """A reviewer's latest decision on a finding (status ``pending`` and no reviewer while there is none)."""

    status: str
    final_label: str
    reviewer: str | None = None
    at: str | None = None
    comment: str = ""


@dataclass(frozen=True)
class ReviewSummary:
    """What reviewers did with a run (``pipeline.review``): one entry per finding by sentence id, the missed
    risks they added, counts per status, and the sign-off (reviewer, time, digest) or None."""

    decisions: dict[int, ReviewedFinding]
    added: list[tuple[Finding, ReviewedFinding]]
    counts: dict[str, int]
    signoff: dict | None
    trail_rows: int = 0

    @property
    def started(self) -> bool:
        """Whether anyone has reviewed the run yet: until then the exports carry only the review's summary
        ("not signed off"), not a column of "pending" per finding (it cost a quarter of the export time)."""
        return self.trail_rows > 0

    def of(self, finding: Finding) -> ReviewedFinding:
        return self.decisions.get(finding.sentence_id) or ReviewedFinding("pending", finding.label)


@dataclass(frozen=True)
class DocumentSummary:
    source: str
    doc_id: str | None
    status: str
    pages: int
    sentences: int
    findings: int
    error: str | None = None
    stage: str | None = None
    note: str | None = None  # e.g. read by its content's reader, not its extension's
    ocr_pages: tuple[int, ...] = ()  # pages read by OCR (scans), not from a text layer


@dataclass(frozen=True)
class PageImage:
    """A rendered page a report shows findings on: a JPEG data URI and the page's size in points."""

    uri: str
    width: float
    height: float


@dataclass(frozen=True)
class AuditReport:
    run_id: str
    started_at: datetime | None
    finished_at: datetime | None
    triggered_by: str | None
    settings: dict
    models: dict[str, dict]  # role → {"label": name@version[:precision], "sha256": {...}}
    threshold: float
    documents: list[DocumentSummary]
    findings: list[Finding]  # label != none and score >= threshold, highest score first
    categories: list[str] = field(default_factory=list)
    register: RiskRegister | None = None
    register_min_similarity: float | None = None
    review_below: float | None = None  # the classifier's review band: scores below it; None = unknown
    review: ReviewSummary | None = None  # reviewers' decisions and sign-off, when read with them
    page_images: dict[tuple[str, int], PageImage] = field(default_factory=dict)  # (doc_id, page) → its image
    page_images_note: str | None = None  # why some findings are shown without their page

    @property
    def to_review(self) -> list[Finding]:
        return [f for f in self.findings if f.needs_review]

    @property
    def failed(self) -> list[DocumentSummary]:
        return [d for d in self.documents if d.status == "failed"]

    @property
    def by_category(self) -> dict[str, int]:
        counts = Counter(f.label for f in self.findings)
        return {label: counts.get(label, 0) for label in self.categories}

    def heat_map(self) -> dict[str, dict[str, int]]:
        """document → category → findings."""
        cells: dict[str, Counter] = {d.source: Counter() for d in self.documents if d.status == "done"}
        for f in self.findings:
            cells.setdefault(f.document, Counter())[f.label] += 1
        return {doc: {label: counts.get(label, 0) for label in self.categories} for doc, counts in cells.items()}

    def score_histogram(self, bins: int = 10) -> list[int]:
        counts = [0] * bins
        for f in self.findings:
            counts[min(bins - 1, int(f.score * bins))] += 1
        return counts

    def register_evidence(self) -> list[tuple[RegisterRisk, list[tuple[Finding, float]]]]:
        """Each register risk with the findings that map to it (most similar first); empty if none do."""
        if self.register is None:
            return []
        evidence: dict[str, list[tuple[Finding, float]]] = {r.id: [] for r in self.register.risks}
        for finding in self.findings:
            for m in finding.register:
                evidence[m.risk_id].append((finding, m.similarity))
        return [(risk, sorted(evidence[risk.id], key=lambda pair: -pair[1])) for risk in self.register.risks]

    @property
    def emerging(self) -> list[Finding]:
        """Findings that match no register entry: risks the register does not yet hold."""
        return [f for f in self.findings if not f.register] if self.register is not None else []

    @property
    def totals(self) -> dict[str, int]:
        done = [d for d in self.documents if d.status == "done"]
        return {"documents": len(self.documents), "failed": len(self.failed), "pages": sum(d.pages for d in done),
                "sentences": sum(d.sentences for d in done), "findings": len(self.findings),
                "needs_review": len(self.to_review)}


def distribution(probabilities: dict | None) -> tuple[tuple[str, float], ...]:
    return tuple(sorted(((k, round(float(v), 4)) for k, v in (probabilities or {}).items()), key=lambda kv: -kv[1]))


def _context(page_text: str, start: int, end: int) -> tuple[str, str]:
    return page_text[max(0, start - CONTEXT_CHARS):start], page_text[end:end + CONTEXT_CHARS]


def _models(settings: dict, used: dict, models_dir: Path) -> dict[str, dict]:
    entries = ModelRegistry(models_dir).entries() if (models_dir / "registry.json").is_file() else {}
    out = {}
    for role, label in used.items():
        entry = entries.get(label.split("@", 1)[0])
        out[role] = {"label": label, "sha256": dict(entry.files) if entry else {},
                     "source": (entry.source.get("distribution") or entry.source.get("type")) if entry else "hub"}
    return out


def build_report(store: ResultStore, run_id: str, *, threshold: float = 0.5, models_dir: Path | None = None,
                 register: Path | None = None, register_min_similarity: float = 0.35,
                 device: str = "auto") -> AuditReport:
    """Everything the exports need about ``run_id`` (``latest`` for the newest run), its findings mapped
    onto the risk register at ``register`` when one is given."""
    from pipeline.settings import Settings

    run = store.run(run_id)
    settings = dict(run.settings)
    used = settings.get("models_used", {})
    segmenter = f"spacy:{settings.get('sentencizer', 'layout')}"
    models_dir = models_dir or Settings().models_dir
    review_below = review_below_for(used.get("classifier"), models_dir)
    documents, findings = [], []
    for entry in store.run_documents(run.run_id):
        if entry.status != "done" or entry.doc_id is None:
            documents.append(DocumentSummary(entry.source, entry.doc_id, entry.status, 0, 0, 0, entry.error,
                                             entry.stage, entry.note))
            continue
        rows = store.labelled_sentences(entry.doc_id, segmenter, used.get("classifier"))
        pages = store.pages(entry.doc_id)
        ocr_pages = store.ocr_pages(entry.doc_id)
        found = 0
        for sentence, label in rows:
            if label is None or label.label == "none" or label.score < threshold:
                continue
            before, after = _context(pages.get(sentence.page, ""), sentence.start, sentence.end)
            findings.append(Finding(label.label, round(label.score, 4), sentence.text, entry.source, entry.doc_id,
                                    sentence.page, sentence.start, sentence.end, before, after,
                                    needs_review=review_below is not None and label.score < review_below,
                                    sentence_id=sentence.id, distribution=distribution(label.distribution),
                                    ocr_confidence=ocr_provenance(ocr_pages, [p for p, _, _ in sentence.spans])[
                                        "ocr_confidence"], boxes=tuple(map(tuple, sentence.boxes or ()))))
            found += 1
        documents.append(DocumentSummary(entry.source, entry.doc_id, "done", len(pages), len(rows), found,
                                         note=entry.note, ocr_pages=tuple(ocr_pages)))
    findings.sort(key=lambda f: (-f.score, f.document, f.page, f.start))
    report = AuditReport(
        run_id=run.run_id, started_at=run.started_at, finished_at=run.finished_at, triggered_by=run.triggered_by,
        settings=settings, models=_models(settings, used, models_dir),
        threshold=threshold, documents=documents, findings=findings,
        categories=[label for label in taxonomy_labels() if label != "none"], review_below=review_below,
    )
    if register is None:
        return report
    from pipeline.reports.register import load_register, with_register

    return with_register(report, store, load_register(register), models_dir=models_dir,
                         min_similarity=register_min_similarity, device=device)


def report_for(store: ResultStore, run_id: str, settings) -> AuditReport:
    """``build_report`` with the threshold, register and models the settings name."""
    return build_report(store, run_id, threshold=settings.report_threshold, models_dir=settings.models_dir,
                        register=settings.risk_register, register_min_similarity=settings.register_min_similarity,
                        device=settings.device)
