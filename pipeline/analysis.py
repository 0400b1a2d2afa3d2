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
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property, lru_cache
from itertools import islice
from pathlib import Path

from pipeline.archives import ARCHIVE_SUFFIXES, ArchiveLimits, expand
from pipeline.errors import ConfigurationError, DocintelError, DocumentReadError
from pipeline.digests import sha256_file
from pipeline.placement import Plan, discover_gpus, plan
from pipeline.records import (Document, DocumentFailure, InputFile, RiskLabel, Sentence, SentenceEmbedding,
                              source_name)
from pipeline.settings import ANALYZER_GROUPS, FINGERPRINT_GROUPS, Settings
from pipeline.stages.classify import ClassifyStage
from pipeline.stages.embed import EmbedStage
from pipeline.ocr import OcrOptions
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


def input_limits(settings: Settings) -> InputLimits:
    return InputLimits(settings.max_file_mb, settings.max_pages, settings.parse_timeout_s, settings.parse_memory_mb,
                       ArchiveLimits(settings.archive_max_mb, settings.archive_max_members, settings.archive_max_ratio),
                       settings.max_image_megapixels)


def ocr_options(settings: Settings) -> OcrOptions:
    return OcrOptions(settings.ocr, settings.ocr_language, settings.ocr_dpi)


def config_fingerprint(settings: Settings, model_versions: dict[str, str]) -> str:
    """What a document's stored results depend on besides its content: the settings that change them and
    the exact model versions."""
    data = settings.values_of(*FINGERPRINT_GROUPS) | {"models": model_versions}
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


# Which stage's output each stage reads. Classify reads sentences, beside embed: it needs no vectors.
INPUTS = {"sentencize": "ingest", "embed": "sentencize", "classify": "sentencize"}


def check_chain(stages: dict[str, object]) -> None:
    """Each stage must take what the stage it reads from returns (a swapped-in stage may not)."""
    specs = {name: stage.spec() for name, stage in stages.items()}
    for name, producer in INPUTS.items():
        if specs[name].takes is not specs[producer].returns:
            raise ConfigurationError(f"stage {name!r} takes {specs[name].takes.__name__}, but {producer!r} "
                                     f"returns {specs[producer].returns.__name__}")


class Analyzer:
    """Holds one configuration's stages; light to build, models load on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ingest_stage = IngestStage(limits=input_limits(settings), ocr=ocr_options(settings),
                                        batch_size=settings.documents_per_batch)
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
        check_chain({stage.name: stage for stage in self.stages()})

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

    def warm_up(self) -> dict[str, str]:
        """Every stage loaded (the parser process and spaCy too: each takes seconds), placed first; returns
        the model versions. For processes that should answer their first run at once."""
        versions = self.model_versions()
        self.ingest_stage.warm_up()
        self.sentencize_stage.warm_up()
        return versions

    def ingest(self, inputs: Sequence[Path | WorkItem]) -> tuple[list[Document], list[DocumentFailure]]:
        """Read files, or work items (an archive member is read from where it was extracted)."""
        self.plan  # noqa: B018  placed before any stage loads
        documents, failures = [], []
        for entry in inputs:
            file = (InputFile(Path(entry.location or entry.source), entry.source) if isinstance(entry, WorkItem)
                    else InputFile(Path(entry), source_name(entry)))
            try:
                documents.extend(self.ingest_stage.process([file]))
            except Exception as exc:  # one bad file must not sink the batch
                log.warning("ingest failed for %s: %s", file.source, exc)
                failures.append(_failure(file.source, "ingest", exc))
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

    def classify(self, sentences: Sequence[Sentence]) -> list[RiskLabel]:
        self.plan  # noqa: B018
        return self.classify_stage.process(sentences)


def prewarm(settings: Settings) -> Future:
    """Load this configuration's models, then the report writers, in a background thread, so that a one-off
    run's loading overlaps the orchestrator's start-up. The run's own load waits for this one
    (``Stage.warm_up`` is locked); an error here is raised again, with its message, by the run's own load."""
    def load() -> None:
        from pipeline.reports.exports import warm_up

        analyzer_for(settings).warm_up()
        warm_up()

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docintel-prewarm")
    future = pool.submit(load)
    pool.shutdown(wait=False)  # the thread ends with its load
    return future


def analyzer_for(settings: Settings) -> Analyzer:
    """One Analyzer per stage configuration per process: runs that differ only outside the groups the stages
    are built from (store, reports, register, inbox) share one warm Analyzer and its loaded models."""
    return _analyzer(tuple(settings.values_of(*ANALYZER_GROUPS).items()))


def analyzer_key(settings: Settings) -> str:
    """The stage configuration ``analyzer_for`` keys on, as text another process can compare."""
    return json.dumps(settings.values_of(*ANALYZER_GROUPS), default=str, sort_keys=True)


@lru_cache(maxsize=4)
def _analyzer(stage_settings: tuple) -> Analyzer:
    return Analyzer(Settings(**dict(stage_settings)))
