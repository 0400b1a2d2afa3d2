"""Semantic search over the store with the real MiniLM that made the vectors."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigurationError
from pipeline.records import Document, Page, Sentence, Span
from pipeline.search import search
from pipeline.settings import Settings
from pipeline.store import ResultStore

TEXTS = [("Lenders may accelerate the loan if we breach the leverage covenant.", "financial"),
         ("A phishing attack compromised two finance mailboxes.", "technology"),
         ("The Committee approved the minutes of the last meeting.", "none"),
         ("Our sole supplier of wafers had a fire at its plant.", "operational")]


@pytest.fixture()
def searchable(tmp_path, labelled_run):
    store = ResultStore(f"sqlite:///{tmp_path / 'store.db'}")
    return store, labelled_run(store, "/inbox/memo.txt", [(t, label, 0.9) for t, label in TEXTS])


def test_most_similar_sentences_with_provenance(searchable):
    store, run_id = searchable
    hits = search(store, "covenant default on our debt", models_dir=Settings().models_dir, run_id=run_id, top=2,
                  device="cpu")
    assert hits[0].text == TEXTS[0][0] and hits[0].score > hits[1].score
    page = store.pages(store.run_documents(run_id)[0].doc_id)[1]
    assert page[hits[0].start:hits[0].end] == hits[0].text and hits[0].source == "/inbox/memo.txt"
    [cyber] = search(store, "email account takeover", models_dir=Settings().models_dir, label="technology",
                     device="cpu")
    assert cyber.label == "technology" and "phishing" in cyber.text


def test_vectors_from_another_model_version_are_refused(tmp_path, minilm):
    from pipeline.records import SentenceEmbedding

    text = TEXTS[0][0]
    document = Document("c" * 64, "/inbox/old.txt", "text/plain", (Page(1, text),))
    sentence = Sentence(document.doc_id, document.source, (Span(1, 0, len(text)),), text, 0)
    [current] = minilm.process([sentence])
    older = SentenceEmbedding(sentence, current.vector, "minilm@000000000000")  # as an older release stored it
    store = ResultStore(f"sqlite:///{tmp_path / 'store.db'}")
    run_id = store.start_run({}, triggered_by="test")
    store.save(run_id, [document], [sentence], [older], "spacy:layout")
    store.finish_run(run_id, {"embedder": older.model})
    with pytest.raises(ConfigurationError, match="not comparable"):
        search(store, "anything", models_dir=Settings().models_dir, run_id=run_id, device="cpu")
