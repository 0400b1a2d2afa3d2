"""Classify sentences into the risk taxonomy with a fine-tuned BERT-family model (transformers).

On CPU the model runs int8 by default: dynamic quantization of the Linear layers with per-channel weight
scales, executed by ONNX Runtime (measured fastest here: 1.7x the torch fp32 model at equal macro-F1,
against 1.45x for torch's own dynamic quantization) or by torch (``int8_engine="torch"``). On GPU it runs
fp32 (bf16 on request). Weights are safetensors only and verified against the registry; the ONNX graph is
derived from them once and cached under the models cache, keyed by the weights' sha256. Probabilities are
temperature-scaled by the model's ``calibration.json`` (fitted on real dev sentences when it was trained).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from pipeline import progress
from pipeline.calibration import Calibration, softmax
from pipeline.int8 import Int8Engine, OnnxText, cached_int8, onnx_int8, quantize_int8
from pipeline.models import ModelRegistry
from pipeline.records import RiskLabel, Sentence
from pipeline.stages.base import DeviceWish, Stage, length_batches
from pipeline.stages.embed import by_document, torch_device

Precision = Literal["auto", "fp32", "int8", "bf16"]


class RiskClassifier:
    """A loaded sequence classifier: texts → probability per taxonomy label. The default on CPU, int8 in ONNX
    Runtime from a graph already built, loads without torch or transformers (``pipeline.int8.OnnxText``)."""

    def __init__(self, location: str, *, device: str = "cpu", precision: Precision = "auto", max_length: int = 128,
                 int8_engine: Int8Engine = "onnxruntime", cache_dir: Path | None = None):
        if precision == "auto":
            precision = "int8" if device == "cpu" else "fp32"
        self.device, self.precision, self.max_length = device, precision, max_length
        # the ONNX graph is derived from local weights; a hub model is quantized by torch
        self.engine = int8_engine if precision == "int8" and Path(location).is_dir() else "torch"
        self.calibration = Calibration.load(location)
        self._onnx: OnnxText | None = None
        cache = cache_dir or Path(location) / ".cache"
        if self.engine == "onnxruntime":
            config = json.loads((Path(location) / "config.json").read_text(encoding="utf-8"))
            self.labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
            graph = cached_int8(location, cache, "logits") or onnx_int8(location, *self._load_torch(location),
                                                                         cache, "logits")
            self._onnx = OnnxText(graph, location, max_length)
            return
        import torch

        model, self.tokenizer = self._load_torch(location)
        if precision == "int8":
            model = quantize_int8(model)
        elif precision == "bf16":
            model = model.to(torch.bfloat16)
        self.model = model.to(device) if precision != "int8" else model
        self.labels = [model.config.id2label[i] for i in range(model.config.num_labels)]

    @staticmethod
    def _load_torch(location: str):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(location, use_safetensors=True,
                                                                   trust_remote_code=False).eval()
        return model, AutoTokenizer.from_pretrained(location)

    def _logits(self, texts: list[str]) -> np.ndarray:
        if self._onnx is not None:
            return self._onnx.run(texts)[0]
        import torch

        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt").to(self.device)
        with torch.inference_mode():
            return self.model(**encoded).logits.float().cpu().numpy()

    def logits(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Raw logits, in the order of ``texts`` (what calibration is fitted on)."""
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for index in length_batches(texts, batch_size):
            out[index] = self._logits([texts[i] for i in index])
        return out

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Calibrated probabilities: the score of the top label reads as the chance it is right."""
        return softmax(self.logits(texts, batch_size), self.calibration.temperature).astype(np.float32)


class ClassifyStage(Stage[Sentence, RiskLabel]):
    """Sentence → RiskLabel (label, probability, distribution, model version). It reads only the text, so it
    runs beside embed on the sentencizer's output."""

    name: ClassVar[str] = "classify"
    framework = "torch"
    takes = Sentence
    returns = RiskLabel
    gpu_memory_mb = 1024
    gpu_benefit = 4  # a BERT forward pass per sentence: the stage that gains most from a GPU

    def __init__(self, model: str = "risk-minilm", *, models_dir: Path, device: DeviceWish = "auto",
                 precision: Precision = "auto", int8_engine: Int8Engine = "onnxruntime", batch_size: int = 32):
        super().__init__(device=device, batch_size=batch_size)
        self.model = model
        self.models_dir = Path(models_dir)
        self.precision: Precision = precision
        self.int8_engine: Int8Engine = int8_engine
        self._classifier: RiskClassifier | None = None
        self._label = ""

    @property
    def model_label(self) -> str:
        self.warm_up()
        return self._label

    def _load(self) -> None:
        resolved = ModelRegistry(self.models_dir).resolve(self.model)
        self._classifier = RiskClassifier(resolved.location, device=torch_device(self.device), precision=self.precision,
                                          int8_engine=self.int8_engine, cache_dir=self.models_dir / "cache")
        engine = f"-{self._classifier.engine}" if self._classifier.precision == "int8" else ""
        self._label = f"{resolved.label}:{self._classifier.precision}{engine}"
        self._classifier.predict_proba(["Warm-up sentence for the quantized kernels."])  # first batch is slow

    def _process(self, batch: Sequence[Sentence]) -> list[RiskLabel]:
        probabilities = np.zeros((len(batch), len(self._classifier.labels)), dtype=np.float32)
        for index in by_document([s.doc_id for s in batch]):
            texts = [batch[i].text for i in index]
            pages, source = max(batch[i].end_page for i in index), batch[index[0]].source
            for part in progress.sentence_slices(self.name, texts, pages, source):
                probabilities[index[part]] = self._classifier.predict_proba(texts[part], self.batch_size)
        labels = self._classifier.labels
        result = []
        for sentence, row in zip(batch, probabilities, strict=True):
            best = int(row.argmax())
            result.append(RiskLabel(sentence, labels[best], float(row[best]),
                                    {label: round(float(p), 6) for label, p in zip(labels, row)}, self._label))
        return result
