"""Embed sentences with sentence-transformers (PyTorch): MiniLM by default, MPNet, or a hub id."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from pipeline.models import ModelRegistry, ResolvedModel
from pipeline.records import Sentence, SentenceEmbedding
from pipeline.stages.base import DeviceWish, Stage


def torch_device(wish: DeviceWish) -> str:
    """``auto`` means CUDA when torch sees one, else CPU."""
    import torch

    if wish == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wish


class EmbedStage(Stage[Sentence, SentenceEmbedding]):
    """Sentence → L2-normalised vector, labelled with the model name and weights version."""

    name: ClassVar[str] = "embed"
    framework = "torch"
    takes = Sentence
    returns = SentenceEmbedding

    def __init__(self, model: str = "minilm", *, models_dir: Path, device: DeviceWish = "auto", batch_size: int = 16):
        super().__init__(device=device, batch_size=batch_size)
        self.model = model
        self.models_dir = Path(models_dir)
        self._encoder = None
        self._resolved: ResolvedModel | None = None

    @property
    def gpu_memory_mb(self) -> int:  # type: ignore[override]
        entry = ModelRegistry(self.models_dir).entries().get(self.model)
        return entry.gpu_memory_mb if entry else 2048

    @property
    def model_label(self) -> str:
        """``name@version`` stored with every vector; known once warm."""
        self.warm_up()
        return self._resolved.label

    def _load(self) -> None:
        from sentence_transformers import SentenceTransformer

        self._resolved = ModelRegistry(self.models_dir).resolve(self.model)
        self._encoder = SentenceTransformer(
            self._resolved.location,
            device=torch_device(self.device),
            trust_remote_code=False,
            model_kwargs={"use_safetensors": True},
        )

    def _process(self, batch: Sequence[Sentence]) -> list[SentenceEmbedding]:
        if not batch:
            return []
        vectors = self._encoder.encode(
            [sentence.text for sentence in batch],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        label = self._resolved.label
        return [SentenceEmbedding(sentence, vector, label) for sentence, vector in zip(batch, vectors, strict=True)]
