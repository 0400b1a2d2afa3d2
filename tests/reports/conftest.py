"""A store holding one run over a document full of hostile text, shared by the report tests."""

from __future__ import annotations

import pytest
from stores import labelled_store

from pipeline.records import DocumentFailure

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
    store, run_id = labelled_store(tmp_path, HOSTILE, "risk-minilm@test:fp32")
    store.record_failures(run_id, [DocumentFailure("/inbox/broken.pdf", "ingest", "PDF is encrypted", None)])
    store.finish_run(run_id, {"embedder": "minilm@test", "classifier": "risk-minilm@test:fp32"})
    return store, run_id
