"""Classify sentences into the risk taxonomy with a fine-tuned BERT-family model (transformers).

On CPU the model runs int8 (torch dynamic quantization of the Linear layers, x86/fbgemm engine);
on GPU fp32 (bf16 where supported). Weights are safetensors only and verified against the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from pipeline.models import ModelRegistry
from pipeline.records import RiskLabel, SentenceEmbedding
from pipeline.stages.base import DeviceWish, Stage
from pipeline.stages.embed import torch_device

Precision = Literal["auto", "fp32", "int8", "bf16"]
QUANTIZED_ENGINES = ("x86", "fbgemm", "onednn")  # measured fastest here; qnnpack is for ARM


def quantize_int8(model):
    """Dynamic int8 quantization of every Linear layer, on the best engine this CPU supports."""
    import torch

    supported = torch.backends.quantized.supported_engines
    torch.backends.quantized.engine = next(e for e in QUANTIZED_ENGINES + ("qnnpack",) if e in supported)
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class RiskClassifier:
    """A loaded sequence classifier: texts → probability per taxonomy label."""

    def __init__(self, location: str, *, device: str = "cpu", precision: Precision = "auto", max_length: int = 128):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModelForSequenceClassification.from_pretrained(
            location, use_safetensors=True, trust_remote_code=False
        ).eval()
        if precision == "auto":
            precision = "int8" if device == "cpu" else "fp32"
        if precision == "int8":
            model = quantize_int8(model)
        elif precision == "bf16":
            model = model.to(torch.bfloat16)
        self.model = model.to(device) if precision != "int8" else model
        self.device, self.precision, self.max_length = device, precision, max_length
        self.labels = [model.config.id2label[i] for i in range(model.config.num_labels)]

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        order = np.argsort([len(t) for t in texts])  # similar lengths batch together: less padding
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                index = order[start : start + batch_size]
                encoded = self.tokenizer([texts[i] for i in index], padding=True, truncation=True,
                                         max_length=self.max_length, return_tensors="pt").to(self.device)
                logits = self.model(**encoded).logits.float()
                out[index] = torch.softmax(logits, dim=-1).cpu().numpy()
        return out


class ClassifyStage(Stage[SentenceEmbedding, RiskLabel]):
    """SentenceEmbedding → RiskLabel (label, probability, distribution, model version)."""

    name: ClassVar[str] = "classify"
    framework = "torch"
    takes = SentenceEmbedding
    returns = RiskLabel
    gpu_memory_mb = 1024

    def __init__(self, model: str = "risk-minilm", *, models_dir: Path, device: DeviceWish = "auto",
                 precision: Precision = "auto", batch_size: int = 32):
        super().__init__(device=device, batch_size=batch_size)
        self.model = model
        self.models_dir = Path(models_dir)
        self.precision: Precision = precision
        self._classifier: RiskClassifier | None = None
        self._label = ""

    @property
    def model_label(self) -> str:
        self.warm_up()
        return self._label

    def _load(self) -> None:
        resolved = ModelRegistry(self.models_dir).resolve(self.model)
        self._classifier = RiskClassifier(resolved.location, device=torch_device(self.device), precision=self.precision)
        self._label = f"{resolved.label}:{self._classifier.precision}"
        self._classifier.predict_proba(["Warm-up sentence for the quantized kernels."])  # first batch is slow

    def _process(self, batch: Sequence[SentenceEmbedding]) -> list[RiskLabel]:
        probabilities = self._classifier.predict_proba([e.sentence.text for e in batch], self.batch_size)
        labels = self._classifier.labels
        result = []
        for embedding, row in zip(batch, probabilities, strict=True):
            best = int(row.argmax())
            result.append(RiskLabel(embedding.sentence, labels[best], float(row[best]),
                                    {label: round(float(p), 6) for label, p in zip(labels, row)}, self._label))
        return result
