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


def search(store: ResultStore, query: str, *, models_dir: Path, run_id: str = "latest", label: str | None = None,
           top: int = 10, device: str = "auto") -> list[Hit]:
    from pipeline.stages.embed import EmbedStage

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
    stage = EmbedStage(used["embedder"].split("@", 1)[0], models_dir=models_dir, device=device)
    [embedded] = stage.process([Sentence("query", "query", (Span(1, 0, len(query)),), query, 0)])
    if embedded.model != used["embedder"]:
        raise ConfigurationError(f"the run's vectors were made by {used['embedder']}, but {embedded.model} is "
                                 "installed now; their vectors are not comparable")
    scores = vectors @ embedded.vector / np.clip(np.linalg.norm(vectors, axis=1), 1e-12, None)
    best = np.argsort(-scores, kind="stable")[:top]
    return [Hit(round(float(scores[i]), 4), rows[i].text, documents[rows[i].doc_id], rows[i].page, rows[i].start,
                rows[i].end, labels[i]) for i in best]
