"""Embed sentences: sentence-transformers (PyTorch: MiniLM by default, MPNet, any hub id) or the Universal
Sentence Encoder in TensorFlow, loaded the TF-Hub way (``tensorflow_hub.load``).

The framework follows from the chosen model, so the stage declares ``torch`` or ``tensorflow`` before it
loads anything. TensorFlow is imported here only, inside ``warm_up``, and its device and memory settings
are applied before its first op: TensorFlow otherwise maps nearly all GPU memory at first touch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from pipeline import progress
from pipeline.errors import ConfigurationError
from pipeline.models import ModelRegistry, ResolvedModel
from pipeline.quiet import framework_noise
from pipeline.records import Sentence, SentenceEmbedding
from pipeline.stages.base import DeviceWish, Stage, StageSpec, length_batches

EmbedPrecision = Literal["auto", "fp32", "int8"]
INT8_SUFFIX = ":int8-onnxruntime"  # on the label of vectors a quantized encoder made


def torch_device(wish: DeviceWish) -> str:
    """``auto`` means CUDA when torch sees one, else CPU."""
    if wish == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return wish


def by_document(doc_ids: Sequence[str]) -> list[list[int]]:
    """Positions of a batch grouped per document. The models see one document's sentences at a time: int8
    kernels scale activations per forward pass, so a sentence's numbers would otherwise depend on which
    other documents shared its batch (and a resumed run would not reproduce a clean one)."""
    groups: dict[str, list[int]] = {}
    for i, doc_id in enumerate(doc_ids):
        groups.setdefault(doc_id, []).append(i)
    return list(groups.values())


def is_tfhub_handle(name: str) -> bool:
    """TF-Hub / Kaggle model URLs, and local TensorFlow SavedModel directories."""
    return name.startswith(("https://", "http://", "gs://")) or (Path(name) / "saved_model.pb").is_file()


def configure_tensorflow(device: DeviceWish, memory_limit_mb: int | None) -> str:
    """Apply TensorFlow's device settings before it initialises a GPU; returns the device it will use.

    On a GPU: a hard logical-device memory limit when one is given, else memory growth; either way TF
    no longer maps the whole card. ``cpu`` hides GPUs from TF. Raises if TF already touched the GPU,
    because the settings would silently not apply.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    try:
        if device == "cuda" and not gpus:
            raise ConfigurationError("embed stage asked for a GPU but TensorFlow sees none")
        if device == "cpu" or not gpus:
            tf.config.set_visible_devices([], "GPU")
            return "cpu"
        tf.config.set_visible_devices(gpus[:1], "GPU")
        if memory_limit_mb:
            tf.config.set_logical_device_configuration(
                gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=memory_limit_mb)])
        else:
            tf.config.experimental.set_memory_growth(gpus[0], True)
    except RuntimeError as exc:
        if "cannot be modified after" in str(exc) or "initialized" in str(exc):
            raise ConfigurationError(
                "TensorFlow was initialised before the embed stage applied its GPU settings; "
                "load the TensorFlow stage first in this process or run it in its own worker") from exc
        raise
    return "cuda"


class _SentenceTransformerEncoder:
    """A sentence-transformers model; with ``int8`` its transformer runs quantized in ONNX Runtime and the
    pooling is done here — for the common layout (transformer → mean pooling → normalise) only. From a graph
    already built, that path loads without torch or transformers (``pipeline.int8.OnnxText``)."""

    def __init__(self, location: str, device: str, int8: bool, cache_dir: Path) -> None:
        from pipeline.int8 import OnnxText, cached_int8, onnx_int8

        self._onnx = None
        if int8 and _mean_pooled(location):
            max_length = json.loads((Path(location) / "sentence_bert_config.json").read_text())["max_seq_length"]
            graph = cached_int8(location, cache_dir, "last_hidden_state")
            if graph is None:
                transformer = self._load(location, device)[0]
                graph = onnx_int8(location, transformer.auto_model, transformer.tokenizer, cache_dir,
                                  "last_hidden_state")
            self._onnx = OnnxText(graph, location, max_length)
        else:
            self._model = self._load(location, device)
        self.precision = "int8" if self._onnx is not None else "fp32"

    @staticmethod
    def _load(location: str, device: str):
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(location, device=device, trust_remote_code=False,
                                   model_kwargs={"use_safetensors": True})

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        if self._onnx is None:
            return self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        out = None
        for index in length_batches(texts, batch_size):
            hidden, mask = self._onnx.run([texts[i] for i in index])
            mask = mask[..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / mask.sum(axis=1).clip(1e-9)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[index] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)
        return out


def _mean_pooled(location: str) -> bool:
    """transformer → mean pooling (→ normalise), read from the model's files: the layout the int8 path
    reproduces exactly (and only for local safetensors weights, from which the graph is derived)."""
    folder = Path(location)
    if not (folder / "model.safetensors").is_file() or not (folder / "modules.json").is_file():
        return False
    modules = json.loads((folder / "modules.json").read_text())
    if [m["type"].rsplit(".", 1)[-1] for m in modules] not in (["Transformer", "Pooling"],
                                                               ["Transformer", "Pooling", "Normalize"]):
        return False
    pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
    modes = {key for key, value in pooling.items() if key.startswith("pooling_mode_") and value}
    return modes == {"pooling_mode_mean_tokens"}


class _TFHubEncoder:
    """A TF-Hub text embedding model: ``hub.load(handle)(strings) → [N, dim]``. Handles are local paths or
    tfhub.dev / Kaggle URLs (downloads go to ``TFHUB_CACHE_DIR`` when set)."""

    def __init__(self, handle: str, device: DeviceWish, memory_limit_mb: int | None) -> None:
        with framework_noise("tensorflow", native=True):
            self.device = configure_tensorflow(device, memory_limit_mb)
            import tensorflow as tf
            import tensorflow_hub as hub
            import tensorflow_text  # noqa: F401  registers the SentencePiece ops the multilingual USE graph uses

            self._tf = tf
            with tf.device("/GPU:0" if self.device == "cuda" else "/CPU:0"):
                self._model = hub.load(handle)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        tf = self._tf
        out = None
        with tf.device("/GPU:0" if self.device == "cuda" else "/CPU:0"):
            for index in length_batches(texts, batch_size):
                vectors = self._model(tf.constant([texts[i] for i in index])).numpy()
                if out is None:
                    out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                out[index] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
        return out


class EmbedStage(Stage[Sentence, SentenceEmbedding]):
    """Sentence → L2-normalised vector, labelled with the model name and weights version."""

    name: ClassVar[str] = "embed"
    framework = "torch"  # the default models; spec() says for the chosen one
    gpu_memory_mb = 2048
    takes = Sentence
    returns = SentenceEmbedding

    def __init__(self, model: str = "minilm", *, models_dir: Path, device: DeviceWish = "auto", batch_size: int = 16,
                 precision: EmbedPrecision = "auto"):
        super().__init__(device=device, batch_size=batch_size)
        self.model = model
        self.models_dir = Path(models_dir)
        self.precision: EmbedPrecision = precision
        self._encoder: _SentenceTransformerEncoder | _TFHubEncoder | None = None
        self._resolved: ResolvedModel | None = None

    def spec(self) -> StageSpec:
        """The framework and memory need follow from the model: its registry entry, or the kind of handle.
        USE is a cheap averaging model (first to leave a full GPU); transformer encoders gain more."""
        entry = ModelRegistry(self.models_dir).entries().get(self.model)
        if entry is not None:
            framework = entry.framework
        else:
            framework = "tensorflow" if is_tfhub_handle(self.model) else "torch"
        return replace(super().spec(), framework=framework, gpu_memory_mb=entry.gpu_memory_mb if entry else 2048,
                       gpu_benefit=1 if framework == "tensorflow" else 3)

    @property
    def model_label(self) -> str:
        """``name@version`` (``:int8-onnxruntime`` appended when quantized) stored with every vector; known
        once warm."""
        self.warm_up()
        quantized = isinstance(self._encoder, _SentenceTransformerEncoder) and self._encoder.precision == "int8"
        return self._resolved.label + (INT8_SUFFIX if quantized else "")

    def _load(self) -> None:
        spec = self.spec()
        self._resolved = ModelRegistry(self.models_dir).resolve(self.model)
        if spec.framework == "tensorflow":
            memory = (self.pool_cap_mb or spec.gpu_memory_mb) if self.device != "cpu" else None
            self._encoder = _TFHubEncoder(self._resolved.location, self.device, memory)
        else:
            device = torch_device(self.device)
            int8 = self.precision == "int8" or (self.precision == "auto" and device == "cpu")
            self._encoder = _SentenceTransformerEncoder(self._resolved.location, device, int8,
                                                        self.models_dir / "cache")

    def _process(self, batch: Sequence[Sentence]) -> list[SentenceEmbedding]:
        if not batch:
            return []
        label = self.model_label
        vectors: list = [None] * len(batch)
        for index in by_document([sentence.doc_id for sentence in batch]):
            texts = [batch[i].text for i in index]
            pages, source = max(batch[i].end_page for i in index), batch[index[0]].source
            for part in progress.sentence_slices(self.name, texts, pages, source):
                for i, vector in zip(index[part], self._encoder.encode(texts[part], self.batch_size)):
                    vectors[i] = vector
        return [SentenceEmbedding(sentence, vector, label) for sentence, vector in zip(batch, vectors, strict=True)]
