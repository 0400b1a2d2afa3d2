"""The pipeline as plain batch steps (no orchestration here): flows wire these into tasks.

Each step isolates failures per document, so one broken file is recorded and the batch goes on.
Warmed stages are cached per configuration, so a long-lived process keeps models loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property, lru_cache
from itertools import islice
from pathlib import Path

from pipeline.archives import ARCHIVE_SUFFIXES, ArchiveLimits, expand
from pipeline.errors import DocintelError, DocumentReadError
from pipeline.models import sha256_file
from pipeline.placement import Plan, discover_gpus, plan
from pipeline.records import Document, DocumentFailure, RiskLabel, Sentence, SentenceEmbedding, source_name
from pipeline.settings import Settings
from pipeline.stages.classify import ClassifyStage
from pipeline.stages.embed import EmbedStage
from pipeline.stages.ingest import MEDIA_TYPES, IngestStage, InputLimits
from pipeline.stages.sentencize import SentencizeStage
from pipeline.store import WorkItem

log = logging.getLogger(__name__)


def iter_inputs(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files as given plus supported files and archives found under given directories, in a stable order;
    lazily, so an inbox of any size is walked one directory at a time."""
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders.sort()
            for name in sorted(files):
                if Path(name).suffix.lower() in MEDIA_TYPES or Path(name).suffix.lower() in ARCHIVE_SUFFIXES:
                    yield Path(folder) / name


def batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


LIMIT_SETTINGS = ("max_file_mb", "max_pages", "parse_timeout_s", "parse_memory_mb", "archive_max_mb",
                  "archive_max_members", "archive_max_ratio")
# Settings that change what a run stores for a document (with the model versions): its work key.
OUTPUT_SETTINGS = ("sentencizer", "spacy_chunk_chars", "classifier_precision", "int8_engine", *LIMIT_SETTINGS)


def input_limits(settings: Settings) -> InputLimits:
    return InputLimits(settings.max_file_mb, settings.max_pages, settings.parse_timeout_s, settings.parse_memory_mb,
                       ArchiveLimits(settings.archive_max_mb, settings.archive_max_members, settings.archive_max_ratio))


def config_fingerprint(settings: Settings, model_versions: dict[str, str]) -> str:
    data = {name: getattr(settings, name) for name in OUTPUT_SETTINGS} | {"models": model_versions}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def work_item(path: Path, config: str, source: str | None = None) -> WorkItem:
    """The unit of idempotent work: this file's content under this configuration."""
    doc_id = sha256_file(path)
    key = hashlib.sha256(f"{doc_id}:{config}".encode()).hexdigest()
    return WorkItem(key, doc_id, source or source_name(path), None if source is None else str(path))


def work_items(paths: Iterable[Path], config: str, staging: Path,
               limits: InputLimits) -> tuple[list[WorkItem], list[DocumentFailure]]:
    """Each input hashed into its work item; an archive's documents become items of their own (extracted
    under ``staging``, source ``<archive>!/<member>``). A file that cannot be read, or an archive its caps
    refuse, is a failure."""
    items, failures = [], []
    for path in paths:
        try:
            if path.suffix.lower() not in ARCHIVE_SUFFIXES:
                items.append(work_item(path, config))
                continue
            folder = staging / sha256_file(path)[:16]
            for member, name in expand(path, folder, limits.archive, frozenset(MEDIA_TYPES)):
                items.append(work_item(member, config, f"{source_name(path)}!/{name}"))
        except OSError as exc:
            failures.append(_failure(source_name(path), "ingest", DocumentReadError(f"cannot read: {exc}")))
        except DocintelError as exc:
            failures.append(_failure(source_name(path), "ingest", exc))
    return items, failures


def _failure(source: str, stage: str, exc: BaseException, doc_id: str | None = None) -> DocumentFailure:
    message = str(exc) if isinstance(exc, DocintelError) else f"{type(exc).__name__}: {exc}"
    return DocumentFailure(source=source, stage=stage, error=message, doc_id=doc_id)


class Analyzer:
    """Holds one configuration's stages; light to build, models load on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ingest_stage = IngestStage(limits=input_limits(settings), batch_size=settings.documents_per_batch)
        self.sentencize_stage = SentencizeStage(
            settings.sentencizer,
            device=settings.device,
            batch_size=settings.sentencize_batch_size,
            chunk_chars=settings.spacy_chunk_chars,
        )
        self.embed_stage = EmbedStage(
            settings.embedder,
            models_dir=settings.models_dir,
            device=settings.device,
            batch_size=settings.embed_batch_size,
            precision=settings.embedder_precision,
        )
        self.classify_stage = ClassifyStage(
            settings.classifier,
            models_dir=settings.models_dir,
            device=settings.device,
            precision=settings.classifier_precision,
            int8_engine=settings.int8_engine,
        )

    @property
    def segmenter_label(self) -> str:
        return f"spacy:{self.settings.sentencizer}"

    def stages(self) -> list:
        return [self.ingest_stage, self.sentencize_stage, self.embed_stage, self.classify_stage]

    @cached_property
    def plan(self) -> Plan:
        """Where each stage runs, decided once from the stages' declarations and the visible GPUs, and
        applied to the stages before any of them loads (TensorFlow on a GPU moves to its own worker)."""
        from pipeline.workers import IsolatedStage

        gpus = [] if self.settings.device == "cpu" else discover_gpus()
        result = plan([stage.spec() for stage in self.stages()], gpus)
        for placement in result.placements:
            attribute = f"{placement.stage}_stage"
            stage = getattr(self, attribute)
            gpu = next((g for g in gpus if g.index == placement.gpu_index), None)
            stage.place(placement.device,
                        pool_cap_mb=result.framework_cap_mb(gpu.index, placement.framework) if gpu else None,
                        gpu_total_mb=gpu.memory_mb if gpu else None)
            if placement.isolated:
                setattr(self, attribute, IsolatedStage(stage, placement.gpu_index))
        return result

    def model_versions(self) -> dict[str, str]:
        """The exact models this configuration runs (loads them: versions come from verified weights)."""
        self.plan  # noqa: B018
        return {"embedder": self.embed_stage.model_label, "classifier": self.classify_stage.model_label}

    def ingest(self, inputs: Sequence[Path | WorkItem]) -> tuple[list[Document], list[DocumentFailure]]:
        """Read files, or work items (an archive member is read from where it was extracted)."""
        self.plan  # noqa: B018  placed before any stage loads
        documents, failures = [], []
        for entry in inputs:
            path, source = ((Path(entry.location or entry.source), entry.source) if isinstance(entry, WorkItem)
                            else (Path(entry), source_name(entry)))
            try:
                documents.append(self.ingest_stage.read(path, source))
            except Exception as exc:  # one bad file must not sink the batch
                log.warning("ingest failed for %s: %s", source, exc)
                failures.append(_failure(source, "ingest", exc))
        return documents, failures

    def sentencize(self, documents: Sequence[Document]) -> tuple[list[Document], list[Sentence], list[DocumentFailure]]:
        self.plan  # noqa: B018
        kept, sentences, failures = [], [], []
        for document in documents:
            try:
                found = self.sentencize_stage.process([document])
            except Exception as exc:
                log.warning("sentencize failed for %s: %s", document.source, exc)
                failures.append(_failure(document.source, "sentencize", exc, document.doc_id))
                continue
            kept.append(document)
            sentences.extend(found)
        return kept, sentences, failures

    def embed(self, sentences: Sequence[Sentence]) -> list[SentenceEmbedding]:
        self.plan  # noqa: B018
        return self.embed_stage.process(sentences)

    def classify(self, embeddings: Sequence[SentenceEmbedding]) -> list[RiskLabel]:
        self.plan  # noqa: B018
        return self.classify_stage.process(embeddings)


# What an Analyzer's stages are built from: runs that differ only elsewhere (store, reports, register, inbox)
# share one warm Analyzer instead of loading every model again.
STAGE_SETTINGS = ("models_dir", "sentencizer", "embedder", "embedder_precision", "classifier", "classifier_precision",
                  "int8_engine", "device", "documents_per_batch", "embed_batch_size", "sentencize_batch_size",
                  "spacy_chunk_chars", *LIMIT_SETTINGS)


def analyzer_for(settings: Settings) -> Analyzer:
    """One Analyzer per stage configuration per process, so repeated runs reuse warm models."""
    return _analyzer(tuple((name, getattr(settings, name)) for name in STAGE_SETTINGS))


@lru_cache(maxsize=4)
def _analyzer(stage_settings: tuple) -> Analyzer:
    return Analyzer(Settings(**dict(stage_settings)))
