"""Results store on a real SQLite file: provenance round-trips, storing twice adds nothing."""

from __future__ import annotations

import numpy as np

from pipeline.records import Document, DocumentFailure, Page, Sentence, SentenceEmbedding, Span
from pipeline.store import EmbeddingRow, ResultStore, SentenceRow


def batch():
    page_text = "Liquidity is tight. Covenants may be breached."
    document = Document(doc_id="a" * 64, source="/docs/a.txt", media_type="text/plain", pages=(Page(1, page_text),))
    sentences = [
        Sentence(document.doc_id, document.source, (Span(1, 0, 19),), "Liquidity is tight.", 0),
        Sentence(document.doc_id, document.source, (Span(1, 20, 46),), "Covenants may be breached.", 1),
    ]
    vectors = np.eye(2, 4, dtype=np.float32)
    embeddings = [SentenceEmbedding(s, v, "minilm@abc") for s, v in zip(sentences, vectors)]
    return document, sentences, embeddings


def test_round_trip_and_idempotent_save(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'store.db'}")
    document, sentences, embeddings = batch()
    run_id = store.start_run({"embedder": "minilm"})
    ids = store.save(run_id, [document], sentences, embeddings, "spacy:senter")
    store.save(run_id, [document], sentences, embeddings, "spacy:senter")
    store.record_failures(run_id, [DocumentFailure("/docs/bad.pdf", "ingest", "encrypted")])
    store.finish_run(run_id)

    assert store.count(SentenceRow) == 2 and store.count(EmbeddingRow) == 2
    rows = store.sentences(document.doc_id, "spacy:senter")
    for row in rows:
        assert store.page_text(row.doc_id, row.page)[row.start:row.end] == row.text
    key = (document.doc_id, 1, 20, 1, 46)
    np.testing.assert_array_equal(store.vector(ids[key], "minilm@abc"), embeddings[1].vector)
    statuses = sorted((r.status, r.error) for r in store.run_documents(run_id))
    assert statuses == [("done", None), ("failed", "encrypted")]


def test_a_store_from_another_schema_is_refused_clearly(tmp_path):
    import sqlite3

    import pytest

    from pipeline.errors import ConfigurationError

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE sentences (id INTEGER PRIMARY KEY, doc_id TEXT, page INT)")
    with pytest.raises(ConfigurationError, match="Move the old store aside"):
        ResultStore(f"sqlite:///{path}")
    fresh = ResultStore(f"sqlite:///{tmp_path / 'new.db'}")
    ResultStore(fresh.url)  # reopening a current store is fine
