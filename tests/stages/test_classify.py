"""The classify stage with a real (small, freshly trained) BERT classifier, int8 on CPU."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.records import Sentence, Span
from pipeline.stages.classify import ClassifyStage
from pipeline.taxonomy import labels

TEXTS = ["Our lenders could accelerate repayment if we breach the leverage covenant.",
         "The meeting was called to order at 10:00."]


@pytest.fixture(scope="module")
def batch():
    return [Sentence("d" * 64, "/x", (Span(1, 0, len(t)),), t, i) for i, t in enumerate(TEXTS)]


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_labels_scores_and_distribution(tiny_models_dir, batch, precision):
    stage = ClassifyStage(models_dir=tiny_models_dir, device="cpu", precision=precision)
    results = stage.process(batch)
    assert [r.sentence for r in results] == batch
    for r in results:
        assert set(r.distribution) == set(labels())
        assert sum(r.distribution.values()) == pytest.approx(1.0, abs=1e-4)
        assert r.label == max(r.distribution, key=r.distribution.get)
        assert r.score == pytest.approx(r.distribution[r.label], abs=1e-5)
        assert r.model.startswith("risk-minilm@") and f":{precision}" in r.model


def test_cpu_default_is_int8(tiny_models_dir):
    stage = ClassifyStage(models_dir=tiny_models_dir, device="cpu")
    assert stage.model_label.endswith(":int8-onnxruntime")
    assert stage.spec().framework == "torch"


@pytest.mark.parametrize("engine", ["onnxruntime", "torch"])
def test_int8_engines_agree_with_fp32(tiny_models_dir, tmp_path, engine):
    """Quantization may move scores a little, never the model's behaviour: int8 logits track fp32 closely
    across varied sentences (a wiring error, such as inputs bound to the wrong ONNX names, breaks this)."""
    import json

    from pipeline.models import ModelRegistry
    from pipeline.stages.classify import RiskClassifier
    from pipeline.training.corpus import CORPUS_FILE

    texts = [json.loads(line)["text"] for line in CORPUS_FILE.read_text().splitlines()[::50]]
    location = ModelRegistry(tiny_models_dir).resolve("risk-minilm").location
    fp32 = RiskClassifier(location, precision="fp32")
    int8 = RiskClassifier(location, precision="int8", int8_engine=engine, cache_dir=tmp_path)
    assert int8.engine == engine
    reference, quantized = fp32.predict_proba(texts), int8.predict_proba(texts)
    centred = [np.log(p) - np.log(p).mean(axis=1, keepdims=True) for p in (reference, quantized)]
    correlation = np.corrcoef(centred[0].ravel(), centred[1].ravel())[0, 1]
    assert correlation > 0.98 and np.abs(reference - quantized).max() < 0.05
