"""Semantic search over what the store holds, with the embedder that made the stored vectors.

A query is embedded by the same model version as the run's vectors (checked: vectors from different
versions are not comparable), compared by cosine with the run's sentences, optionally only those the
classifier gave one label, and returned with provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import ConfigurationError
from pipeline.records import Sentence, Span
from pipeline.store import ResultStore


@dataclass(frozen=True)
class Hit:
    score: float
    text: str
    source: str
    page: int
    start: int
    end: int
    label: str | None
    sentence_id: int | None = None


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, so a dot product is the cosine."""
    return matrix / np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)


def embed_texts(texts: list[str], model: str, *, models_dir: Path, device: str = "auto") -> np.ndarray:
    """Unit vectors of ``texts`` from the embedder version ``model`` (``name@version``) — the one that made
    the stored vectors they will be compared with; a different installed version is refused."""
    from pipeline.stages.embed import INT8_SUFFIX, EmbedStage

    stage = EmbedStage(model.split("@", 1)[0], models_dir=models_dir, device=device,
                       precision="int8" if model.endswith(INT8_SUFFIX) else "fp32")
    embedded = stage.process([Sentence("query", "query", (Span(1, 0, len(t)),), t, i) for i, t in enumerate(texts)])
    if embedded and embedded[0].model != model:
        raise ConfigurationError(f"the run's vectors were made by {model}, but {embedded[0].model} is "
                                 "installed now; their vectors are not comparable")
    return unit_rows(np.stack([e.vector for e in embedded])) if embedded else np.zeros((0, 0), "float32")


def search(store: ResultStore, query: str, *, models_dir: Path, run_id: str = "latest", label: str | None = None,
           top: int = 10, device: str = "auto") -> list[Hit]:
    run = store.run(run_id)
    used = run.settings.get("models_used") or {}
    if "embedder" not in used:
        raise ConfigurationError(f"run {run.run_id} stored no vectors to search")
    documents = {d.doc_id: d.source for d in store.run_documents(run.run_id) if d.status == "done"}
    rows, vectors, labels = store.vectors(used["embedder"], list(documents), used.get("classifier"))
    if label is not None:
        keep = [i for i, found in enumerate(labels) if found == label]
        rows, vectors, labels = [rows[i] for i in keep], vectors[keep], [labels[i] for i in keep]
    if not rows:
        return []
    query_vector = embed_texts([query], used["embedder"], models_dir=models_dir, device=device)[0]
    scores = unit_rows(vectors) @ query_vector
    best = np.argsort(-scores, kind="stable")[:top]
    return [Hit(round(float(scores[i]), 4), rows[i].text, documents[rows[i].doc_id], rows[i].page, rows[i].start,
                rows[i].end, labels[i], rows[i].id) for i in best]


def finding_vectors(store: ResultStore, report) -> np.ndarray:
    """The stored unit vectors of an audit report's findings, in their order."""
    model = report.models.get("embedder", {}).get("label")
    doc_ids = sorted({f.doc_id for f in report.findings})
    rows, vectors, _ = store.vectors(model, doc_ids) if model and doc_ids else ([], None, [])
    at = {(r.doc_id, r.page, r.start, r.end): i for i, r in enumerate(rows)}
    missing = [f for f in report.findings if (f.doc_id, f.page, f.start, f.end) not in at]
    if missing:
        raise ConfigurationError(f"run {report.run_id}: {len(missing)} finding(s) have no vector from {model}")
    if not report.findings:
        return np.zeros((0, 0), "float32")
    return unit_rows(vectors[[at[(f.doc_id, f.page, f.start, f.end)] for f in report.findings]])
