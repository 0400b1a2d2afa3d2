"""The classify stage with a real (small, freshly trained) BERT classifier, int8 on CPU."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.records import Sentence, SentenceEmbedding, Span
from pipeline.stages.classify import ClassifyStage
from pipeline.taxonomy import labels

TEXTS = ["Our lenders could accelerate repayment if we breach the leverage covenant.",
         "The meeting was called to order at 10:00."]


@pytest.fixture(scope="module")
def batch():
    return [SentenceEmbedding(Sentence("d" * 64, "/x", (Span(1, 0, len(t)),), t, i), np.zeros(3, "float32"), "m")
            for i, t in enumerate(TEXTS)]


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_labels_scores_and_distribution(tiny_models_dir, batch, precision):
    stage = ClassifyStage(models_dir=tiny_models_dir, device="cpu", precision=precision)
    results = stage.process(batch)
    assert [r.sentence for r in results] == [e.sentence for e in batch]
    for r in results:
        assert set(r.distribution) == set(labels())
        assert sum(r.distribution.values()) == pytest.approx(1.0, abs=1e-4)
        assert r.label == max(r.distribution, key=r.distribution.get)
        assert r.score == pytest.approx(r.distribution[r.label], abs=1e-5)
        assert r.model.startswith("risk-minilm@") and r.model.endswith(f":{precision}")


def test_cpu_default_is_int8(tiny_models_dir):
    stage = ClassifyStage(models_dir=tiny_models_dir, device="cpu")
    assert stage.model_label.endswith(":int8")
    assert stage.spec().framework == "torch"
