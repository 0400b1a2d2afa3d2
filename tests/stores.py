"""Shared builder: a real result store holding one labelled run (the report tests)."""

from __future__ import annotations

import numpy as np

from pipeline.records import Document, Page, RiskLabel, Sentence, SentenceEmbedding, Span
from pipeline.store import ResultStore


def labelled_store(tmp_path, rows: list[tuple[str, str, float]], classifier: str,
                   source: str = "/inbox/hostile.txt") -> tuple[ResultStore, str]:
    """A store holding one finished run over one text document whose sentences are ``rows`` (text, label,
    score), labelled by ``classifier`` (a model label as runs record it)."""
    text = "\n".join(t for t, _, _ in rows)
    document = Document("a" * 64, source, "text/plain", (Page(1, text),))
    sentences, offset = [], 0
    for index, (sentence, _, _) in enumerate(rows):
        sentences.append(Sentence(document.doc_id, document.source, (Span(1, offset, offset + len(sentence)),),
                                  sentence, index))
        offset += len(sentence) + 1
    embeddings = [SentenceEmbedding(s, np.ones(4, "float32") / 2, "minilm@test") for s in sentences]
    labels = [RiskLabel(s, label, score, {label: score}, classifier) for s, (_, label, score) in zip(sentences, rows)]
    store = ResultStore(f"sqlite:///{tmp_path / 'store.db'}")
    run_id = store.start_run({"sentencizer": "layout", "embedder": "minilm"}, triggered_by="test")
    store.save(run_id, [document], sentences, embeddings, "spacy:layout", labels)
    return store, run_id
