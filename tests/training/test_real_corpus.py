"""The real labelled corpus: large enough, split by document group, adjudicated, and free of every sentence of
../shared/eval (how generalisation is judged)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from sklearn.metrics import cohen_kappa_score

from pipeline.settings import REPO_ROOT
from pipeline.taxonomy import labels
from pipeline.training.corpus import CORPUS_FILE, REAL_CORPUS_FILE, read_examples

AGREEMENT = REPO_ROOT / "data" / "corpus" / "agreement.json"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in REAL_CORPUS_FILE.read_text(encoding="utf-8").splitlines()]


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def test_no_sentence_of_shared_eval_is_in_data(eval_docs, ingest):
    """Every labelled text (real and written corpora) checked against the whole text of every eval document as
    docintel reads it, with case, spaces and punctuation removed (one eval PDF's text layer drops spaces)."""
    haystack = "\n".join(_normalise(" ".join(page.text for page in ingest.read(path).pages))
                         for path in sorted(eval_docs.iterdir()))
    assert len(haystack) > 1_000_000  # the eval documents were really read
    texts = [e.text for e in read_examples(REAL_CORPUS_FILE)] + [e.text for e in read_examples(CORPUS_FILE)]
    found = [t for t in texts if _normalise(t) in haystack]
    assert found == []


def test_size_labels_and_test_split(rows):
    counts = Counter(r["label"] for r in rows)
    assert len(rows) >= 4000
    assert set(counts) == set(labels())
    assert sum(r["split"] == "test" for r in rows) >= 800
    for split in ("train", "dev", "test"):
        assert {r["label"] for r in rows if r["split"] == split} == set(labels()), split


def test_splits_share_no_document_or_group(rows):
    for key in ("group", "doc"):
        owners: dict[str, set[str]] = {}
        for r in rows:
            owners.setdefault(r[key], set()).add(r["split"])
        assert {k: v for k, v in owners.items() if len(v) > 1} == {}, key


def test_every_disagreement_and_unsure_unit_was_adjudicated(rows):
    for r in rows:
        if r["label_a"] != r["label_b"] or r["unsure_a"] or r["unsure_b"]:
            assert r["adjudication"], r["id"]
        else:
            assert r["label"] == r["label_a"], r["id"]


def test_agreement_figures_match_the_two_passes(rows):
    recorded = json.loads(AGREEMENT.read_text(encoding="utf-8"))
    a, b = [r["label_a"] for r in rows], [r["label_b"] for r in rows]
    assert recorded["n"] == len(rows)
    assert recorded["kappa"] == pytest.approx(cohen_kappa_score(a, b), abs=1e-4)
    assert recorded["raw"] == pytest.approx(sum(x == y for x, y in zip(a, b)) / len(rows), abs=1e-4)
