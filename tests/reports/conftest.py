"""A store holding one run over a document full of hostile text, shared by the report tests."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.records import Document, DocumentFailure, Page, RiskLabel, Sentence, SentenceEmbedding, Span
from pipeline.store import ResultStore

HOSTILE = [
    ("=HYPERLINK(\"http://evil.example/x\",\"click\") could cost us our licence.", "compliance", 0.91),
    ("@SUM(A1:A9) is how the auditor found the misstatement.", "internal_control", 0.88),
    ("+1 more covenant breach would let lenders accelerate the loan.", "financial", 0.95),
    ("-2% margin pressure from competitors may persist.", "strategic", 0.62),
    ("<script>alert(1)</script> was injected by the attacker into our portal.", "technology", 0.97),
    ("<img src=x onerror=alert(2)> appeared in the vendor file.", "technology", 0.55),
    ("The board met on Tuesday.", "none", 0.99),
    ("Liquidity may tighten slightly.", "financial", 0.30),
]


@pytest.fixture()
def report_store(tmp_path):
    text = "\n".join(t for t, _, _ in HOSTILE)
    document = Document("a" * 64, "/inbox/hostile.txt", "text/plain", (Page(1, text),))
    sentences, offset = [], 0
    for index, (sentence, _, _) in enumerate(HOSTILE):
        sentences.append(Sentence(document.doc_id, document.source, (Span(1, offset, offset + len(sentence)),),
                                  sentence, index))
        offset += len(sentence) + 1
    embeddings = [SentenceEmbedding(s, np.ones(4, "float32") / 2, "minilm@test") for s in sentences]
    labels = [RiskLabel(s, label, score, {label: score}, "risk-minilm@test:fp32")
              for s, (_, label, score) in zip(sentences, HOSTILE)]
    store = ResultStore(f"sqlite:///{tmp_path / 'store.db'}")
    run_id = store.start_run({"sentencizer": "layout", "embedder": "minilm"}, triggered_by="test")
    store.save(run_id, [document], sentences, embeddings, "spacy:layout", labels)
    store.record_failures(run_id, [DocumentFailure("/inbox/broken.pdf", "ingest", "PDF is encrypted", None)])
    store.finish_run(run_id, {"embedder": "minilm@test", "classifier": "risk-minilm@test:fp32"})
    return store, run_id
