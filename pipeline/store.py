"""Results store (SQLAlchemy): documents, pages, sentences with provenance, embeddings, runs, work.

SQLite file by default; any SQLAlchemy URL (e.g. Postgres) through ``DOCINTEL_STORE_URL``. Rows are
keyed by content (document sha256, page, offsets, model) so storing the same result twice is a no-op.

Work is keyed by document content + pipeline configuration + model versions (``work``): a run claims a
key before processing it and marks it done in the same transaction that stores its results, so a rerun
skips what is done, a run killed mid-batch loses only uncommitted work (its claims die with its process),
and two runs over one inbox never process a document twice.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    insert,
    event,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from pipeline.errors import ConfigurationError
from pipeline.records import Document, DocumentFailure, RiskLabel, Sentence, SentenceEmbedding

SCHEMA_VERSION = "6"
READ_OTHERWISE = ("this file is already stored as read under other OCR settings, and its sentences point into that "
                  "text; analyse it with those settings again, or into a new store (DOCINTEL_STORE_URL)")  # bump when a table changes; an older store is refused with a clear message


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "docintel_meta"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class RunRow(Base):
    __tablename__ = "runs"
    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    triggered_by: Mapped[str | None] = mapped_column(String(200))
    export_errors: Mapped[dict] = mapped_column(JSON, default=dict)  # report format → why it failed


class DocumentRow(Base):
    __tablename__ = "documents"
    doc_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(String(120))
    page_count: Mapped[int] = mapped_column(Integer)


class PageRow(Base):
    __tablename__ = "pages"
    doc_id: Mapped[str] = mapped_column(ForeignKey("documents.doc_id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    ocr_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)  # set: the text was read by OCR
    width: Mapped[float | None] = mapped_column(Float, nullable=True)  # points; PDFs and images only
    height: Mapped[float | None] = mapped_column(Float, nullable=True)


class RunDocumentRow(Base):
    """One input of a run and what happened to it (``done`` or ``failed`` with the error)."""

    __tablename__ = "run_documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), index=True)
    source: Mapped[str] = mapped_column(Text)
    doc_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    reused_from: Mapped[str | None] = mapped_column(String(36))  # the run whose results this one reuses
    note: Mapped[str | None] = mapped_column(Text)  # e.g. content and extension disagreed: which reader read it


class WorkRow(Base):
    """One document under one configuration: claimed by a live process, then done or failed."""

    __tablename__ = "work"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of content hash + configuration
    doc_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))  # claimed | done | failed
    run_id: Mapped[str] = mapped_column(String(36))
    owner: Mapped[str] = mapped_column(String(200))  # host:pid of the process that claimed it
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    stage: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)


class SentenceRow(Base):
    __tablename__ = "sentences"
    __table_args__ = (UniqueConstraint("doc_id", "segmenter", "page", "start", "end_page", "end"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    doc_id: Mapped[str] = mapped_column(ForeignKey("documents.doc_id"), index=True)
    segmenter: Mapped[str] = mapped_column(String(200))
    page: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)
    end_page: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    spans: Mapped[list] = mapped_column(JSON)  # [[page, start, end], ...]: text = "\n".join(slices)
    boxes: Mapped[list] = mapped_column(JSON, default=list)  # [[page, x0, top, x1, bottom], ...] in points, per line
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)


class EmbeddingRow(Base):
    __tablename__ = "embeddings"
    sentence_id: Mapped[int] = mapped_column(ForeignKey("sentences.id"), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    norm: Mapped[float] = mapped_column(Float)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian


class RiskLabelRow(Base):
    """The classifier's label for a sentence, with the model (name@version:precision) that gave it."""

    __tablename__ = "risk_labels"
    sentence_id: Mapped[int] = mapped_column(ForeignKey("sentences.id"), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    label: Mapped[str] = mapped_column(String(40), index=True)
    score: Mapped[float] = mapped_column(Float)
    distribution: Mapped[dict] = mapped_column(JSON)


@dataclass(frozen=True)
class WorkItem:
    """One input to process under one configuration."""

    key: str  # see pipeline.analysis.work_item
    doc_id: str  # sha256 of the file's bytes
    source: str
    location: str | None = None  # where the file is read from when that is not ``source`` (archive members)


@dataclass(frozen=True)
class Claims:
    mine: list[WorkItem]  # claimed for this process: process them
    busy: list[WorkItem]  # held by another live process: ask again later


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(owner: str, updated_at: datetime, lease: timedelta) -> bool:
    """A claim's owner is alive if it is a running process on this host, or (elsewhere) has renewed its
    claims within the lease."""
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if updated_at.tzinfo is None:
        updated_at = updated_at.replace(tzinfo=timezone.utc)
    return _now() - updated_at < lease


def sentence_key(sentence: Sentence) -> tuple[str, int, int, int, int]:
    """Where a sentence starts and ends: unique within a document for one segmenter."""
    return sentence.doc_id, sentence.page, sentence.start, sentence.end_page, sentence.end


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL lets readers and one writer share a SQLite file; foreign keys are off by default there."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


class ResultStore:
    """Writes a run's results and reads them back; one instance per process is enough."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._check_schema()

    def _check_schema(self) -> None:
        """Create the tables in a new store; refuse a store written by another schema version."""
        from sqlalchemy import inspect

        existing = set(inspect(self.engine).get_table_names())
        if existing and "docintel_meta" not in existing:
            found = "an unversioned (older) schema"
        elif existing:
            with self._sessions() as session:
                row = session.get(MetaRow, "schema_version")
                found = None if row and row.value == SCHEMA_VERSION else f"schema {row.value if row else '?'}"
        else:
            found = None
        if found:
            raise ConfigurationError(
                f"the results store {self.url} holds {found}; this docintel writes schema {SCHEMA_VERSION}. "
                "Move the old store aside (or set DOCINTEL_STORE_URL to a new one) and run again."
            )
        Base.metadata.create_all(self.engine)
        with self._sessions.begin() as session:
            if session.get(MetaRow, "schema_version") is None:
                session.add(MetaRow(key="schema_version", value=SCHEMA_VERSION))

    def start_run(self, settings: dict, triggered_by: str | None = None, run_id: str | None = None) -> str:
        run_id = run_id or str(uuid.uuid4())
        with self._sessions.begin() as session:
            session.add(RunRow(run_id=run_id, settings=json.loads(json.dumps(settings, default=str)),
                               triggered_by=triggered_by))
        return run_id

    def finish_run(self, run_id: str, models_used: dict[str, str] | None = None) -> None:
        """Close a run, recording which model versions produced its vectors and labels (role → label)."""
        with self._sessions.begin() as session:
            run = session.get(RunRow, run_id)
            run.finished_at = _now()
            if models_used:
                run.settings = {**run.settings, "models_used": models_used}

    def record_export_errors(self, run_id: str, errors: Mapping[str, str]) -> None:
        """Report formats that failed for a run (format → error); its stored results are untouched."""
        with self._sessions.begin() as session:
            run = session.get(RunRow, run_id)
            run.export_errors = {**(run.export_errors or {}), **errors}

    def record_failures(self, run_id: str, failures: Iterable[DocumentFailure],
                        work_keys: Mapping[str, str] | None = None) -> None:
        """Record failed inputs; with ``work_keys`` (source → key) their work is final: failed."""
        with self._sessions.begin() as session:
            self._record_failures(session, run_id, failures, work_keys or {})

    @staticmethod
    def _record_failures(session: Session, run_id: str, failures: Iterable[DocumentFailure],
                         work_keys: Mapping[str, str]) -> None:
        for failure in failures:
            recorded = select(RunDocumentRow.id).where(RunDocumentRow.run_id == run_id,
                                                       RunDocumentRow.source == failure.source)
            if session.scalar(recorded) is None:  # a retried batch records its failures once
                session.add(RunDocumentRow(run_id=run_id, source=failure.source, doc_id=failure.doc_id,
                                           status="failed", stage=failure.stage, error=failure.error))
            if failure.source in work_keys:
                session.execute(update(WorkRow).where(WorkRow.key == work_keys[failure.source]).values(
                    status="failed", stage=failure.stage, error=failure.error, updated_at=_now()))

    def claim(self, run_id: str, items: Sequence[WorkItem], lease_s: float = 600) -> Claims:
        """Claim ``items`` for this process in one serialised transaction. Work already done or failed is
        recorded in this run as reused and not returned; work a live process holds comes back as busy;
        work whose owner died is taken over. Also renews this process's other claims (the lease)."""
        owner, lease, mine, busy = this_process(), timedelta(seconds=lease_s), [], []
        with self._sessions.begin() as session:
            # a write first: SQLite takes its write lock here and Postgres locks this row, so concurrent
            # claims run one after another instead of both reading "unclaimed"
            session.execute(update(MetaRow).where(MetaRow.key == "schema_version").values(value=MetaRow.value))
            session.execute(update(WorkRow).where(WorkRow.owner == owner, WorkRow.status == "claimed")
                            .values(updated_at=_now()))
            taken: set[str] = set()
            for item in items:
                row = session.get(WorkRow, item.key)
                if item.key in taken or (row is not None and row.status == "claimed" and row.owner != owner
                                         and _alive(row.owner, row.updated_at, lease)):
                    busy.append(item)
                elif row is not None and row.status in ("done", "failed"):
                    note = session.scalar(select(RunDocumentRow.note).where(
                        RunDocumentRow.run_id == row.run_id, RunDocumentRow.doc_id == item.doc_id).limit(1))
                    session.add(RunDocumentRow(run_id=run_id, source=item.source, doc_id=item.doc_id,
                                               status=row.status, stage=row.stage, error=row.error,
                                               reused_from=row.run_id, note=note))
                else:  # new, or its owner died
                    if row is None:
                        session.add(WorkRow(key=item.key, doc_id=item.doc_id, status="claimed", run_id=run_id,
                                            owner=owner))
                    else:
                        row.run_id, row.owner, row.updated_at = run_id, owner, _now()
                    taken.add(item.key)
                    mine.append(item)
        return Claims(mine, busy)

    def save(
        self,
        run_id: str,
        documents: Sequence[Document],
        sentences: Sequence[Sentence],
        embeddings: Sequence[SentenceEmbedding],
        segmenter: str,
        risk_labels: Sequence[RiskLabel] = (),
        failures: Sequence[DocumentFailure] = (),
        work_keys: Mapping[str, str] | None = None,
    ) -> dict[tuple, int]:
        """Store a batch in one transaction — results, failures and, with ``work_keys`` (source → key), the
        work marked done or failed — so a crash leaves either all of it or none. Returns sentence ids keyed
        by ``sentence_key``."""
        work_keys = work_keys or {}
        with self._sessions.begin() as session:
            documents, failures = list(documents), list(failures)
            for document in list(documents):
                if session.get(DocumentRow, document.doc_id) is None:
                    session.add(DocumentRow(doc_id=document.doc_id, source=document.source,
                                            media_type=document.media_type, page_count=len(document.pages)))
                    session.add_all(PageRow(doc_id=document.doc_id, number=p.number, text=p.text,
                                            ocr_confidence=p.ocr_confidence, width=p.size and p.size[0],
                                            height=p.size and p.size[1]) for p in document.pages)
                elif self._read_otherwise(session, document):
                    documents.remove(document)
                    failures.append(DocumentFailure(document.source, "store", READ_OTHERWISE, document.doc_id))
            kept = {d.doc_id for d in documents}
            sentences = [s for s in sentences if s.doc_id in kept]
            embeddings = [e for e in embeddings if e.sentence.doc_id in kept]
            risk_labels = [r for r in risk_labels if r.sentence.doc_id in kept]
            for document in documents:
                done = select(RunDocumentRow.id).where(
                    RunDocumentRow.run_id == run_id, RunDocumentRow.doc_id == document.doc_id
                )
                if session.scalar(done) is None:
                    session.add(RunDocumentRow(run_id=run_id, source=document.source, doc_id=document.doc_id,
                                               status="done", note="; ".join(document.notes) or None))
            session.flush()
            ids, fresh = self._sentence_ids(session, sentences, segmenter)
            self._insert_new(session, EmbeddingRow, fresh, [
                (ids[sentence_key(e.sentence)], e.model, np.asarray(e.vector, dtype="<f4")) for e in embeddings],
                lambda sentence_id, model, vector: {"sentence_id": sentence_id, "model": model, "dim": vector.size,
                                                    "norm": float(np.linalg.norm(vector)), "vector": vector.tobytes()})
            self._insert_new(session, RiskLabelRow, fresh, [
                (ids[sentence_key(r.sentence)], r.model, r) for r in risk_labels],
                lambda sentence_id, model, r: {"sentence_id": sentence_id, "model": model, "label": r.label,
                                               "score": r.score, "distribution": r.distribution})
            done = [work_keys[d.source] for d in documents if d.source in work_keys]
            if done:
                session.execute(update(WorkRow).where(WorkRow.key.in_(done)).values(status="done", updated_at=_now()))
            self._record_failures(session, run_id, failures, work_keys)
        return ids

    @staticmethod
    def _read_otherwise(session: Session, document: Document) -> bool:
        """Whether the stored pages of this file differ from this reading of it (other OCR settings): its
        stored sentences point into the stored text, which must not change under them."""
        stored = session.execute(select(PageRow.number, PageRow.text).where(PageRow.doc_id == document.doc_id))
        return dict(stored.tuples().all()) != {p.number: p.text for p in document.pages}

    @staticmethod
    def _sentence_ids(session: Session, sentences: Sequence[Sentence], segmenter: str) -> tuple[dict, set[int]]:
        """Ids of the sentences' rows by ``sentence_key``, inserting the missing ones (in bulk: the ORM's
        unit of work made storing the slowest step after the models); and the ids inserted now."""
        doc_ids = {s.doc_id for s in sentences}
        existing = {
            (row.doc_id, row.page, row.start, row.end_page, row.end): row.id
            for row in session.scalars(
                select(SentenceRow).where(SentenceRow.doc_id.in_(doc_ids), SentenceRow.segmenter == segmenter)
            )
        }
        new_rows = {}
        for s in sentences:
            key = sentence_key(s)
            if key not in existing and key not in new_rows:
                new_rows[key] = {"doc_id": s.doc_id, "segmenter": segmenter, "page": s.page, "start": s.start,
                                 "end_page": s.end_page, "end": s.end, "position": s.index, "text": s.text,
                                 "spans": [[p.page, p.start, p.end] for p in s.spans],
                                 "boxes": [[b.page, b.x0, b.top, b.x1, b.bottom] for b in s.boxes]}
        fresh: list[int] = []
        if new_rows:
            statement = insert(SentenceRow).returning(SentenceRow.id, sort_by_parameter_order=True)
            fresh = list(session.scalars(statement, list(new_rows.values())))
            existing.update(zip(new_rows, fresh, strict=True))
        return existing, set(fresh)

    @staticmethod
    def _insert_new(session: Session, table, fresh: set[int], records: list[tuple], row) -> None:
        """Insert ``row(sentence_id, model, value)`` for each record whose (sentence_id, model) is not stored
        yet. Only sentences that existed before this batch can have one: only those are looked up."""
        older = sorted({(sentence_id, model) for sentence_id, model, _ in records if sentence_id not in fresh})
        stored = set()
        for start in range(0, len(older), 500):
            chunk = older[start : start + 500]
            stored.update(session.execute(select(table.sentence_id, table.model).where(
                tuple_(table.sentence_id, table.model).in_(chunk))).all())
        rows = []
        for sentence_id, model, value in records:
            if (sentence_id, model) not in stored:
                stored.add((sentence_id, model))
                rows.append(row(sentence_id, model, value))
        if rows:
            session.execute(insert(table), rows)

    # --- reading -----------------------------------------------------------------------------

    def run(self, run_id: str) -> RunRow:
        """One run; ``latest`` is the most recently started. A clear error for an unknown id."""
        with self._sessions() as session:
            if run_id == "latest":
                row = session.scalars(select(RunRow).order_by(RunRow.started_at.desc()).limit(1)).first()
            else:
                row = session.get(RunRow, run_id)
            if row is None:
                raise ConfigurationError(f"no run {run_id!r} in the store")
            return row

    def runs(self, limit: int = 200) -> list[RunRow]:
        """The most recently started runs first."""
        with self._sessions() as session:
            return list(session.scalars(select(RunRow).order_by(RunRow.started_at.desc()).limit(limit)))

    def pages(self, doc_id: str) -> dict[int, str]:
        with self._sessions() as session:
            return {p.number: p.text for p in session.scalars(select(PageRow).where(PageRow.doc_id == doc_id))}

    def labelled_sentences(self, doc_id: str, segmenter: str,
                           classifier: str | None) -> list[tuple[SentenceRow, RiskLabelRow | None]]:
        """A document's sentences in order, each with its label from ``classifier`` (model label)."""
        with self._sessions() as session:
            join = (RiskLabelRow.sentence_id == SentenceRow.id) & (RiskLabelRow.model == classifier)
            query = (select(SentenceRow, RiskLabelRow).outerjoin(RiskLabelRow, join)
                     .where(SentenceRow.doc_id == doc_id, SentenceRow.segmenter == segmenter)
                     .order_by(SentenceRow.position))
            return [(sentence, label) for sentence, label in session.execute(query)]

    def vectors(self, model: str, doc_ids: list[str],
                classifier: str | None = None) -> tuple[list[SentenceRow], np.ndarray, list[str | None]]:
        """The sentences of ``doc_ids`` that ``model`` embedded, their vectors, and ``classifier``'s labels."""
        with self._sessions() as session:
            query = (select(SentenceRow, EmbeddingRow.vector, RiskLabelRow.label)
                     .join(EmbeddingRow, (EmbeddingRow.sentence_id == SentenceRow.id) & (EmbeddingRow.model == model))
                     .outerjoin(RiskLabelRow, (RiskLabelRow.sentence_id == SentenceRow.id)
                                & (RiskLabelRow.model == classifier))
                     .where(SentenceRow.doc_id.in_(doc_ids)).order_by(SentenceRow.doc_id, SentenceRow.position))
            found = list(session.execute(query))
        matrix = np.stack([np.frombuffer(v, dtype="<f4") for _, v, _ in found]) if found else np.zeros((0, 0), "<f4")
        return [s for s, _, _ in found], matrix, [label for _, _, label in found]

    def run_settings(self, run_id: str) -> dict:
        """The settings a run used, its placement plan included."""
        with self._sessions() as session:
            return dict(session.get(RunRow, run_id).settings)

    def run_documents(self, run_id: str) -> list[RunDocumentRow]:
        with self._sessions() as session:
            return list(session.scalars(select(RunDocumentRow).where(RunDocumentRow.run_id == run_id)))

    def sentences(self, doc_id: str, segmenter: str) -> list[SentenceRow]:
        with self._sessions() as session:
            query = select(SentenceRow).where(SentenceRow.doc_id == doc_id, SentenceRow.segmenter == segmenter)
            return list(session.scalars(query.order_by(SentenceRow.position)))

    def ocr_pages(self, doc_id: str) -> dict[int, float]:
        """The pages of a document that were read by OCR, with their mean OCR confidence."""
        with self._sessions() as session:
            query = select(PageRow.number, PageRow.ocr_confidence).where(PageRow.doc_id == doc_id,
                                                                          PageRow.ocr_confidence.is_not(None))
            return dict(session.execute(query.order_by(PageRow.number)).tuples().all())

    def document_file(self, doc_id: str) -> tuple[str, str]:
        """Where a document was first read from, and as what media type."""
        with self._sessions() as session:
            row = session.get(DocumentRow, doc_id)
            return row.source, row.media_type

    def page(self, doc_id: str, number: int) -> PageRow | None:
        with self._sessions() as session:
            return session.get(PageRow, (doc_id, number))

    def page_text(self, doc_id: str, number: int) -> str:
        with self._sessions() as session:
            return session.get(PageRow, (doc_id, number)).text

    def vector(self, sentence_id: int, model: str) -> np.ndarray:
        with self._sessions() as session:
            row = session.get(EmbeddingRow, (sentence_id, model))
            return np.frombuffer(row.vector, dtype="<f4")

    def embedding_models(self) -> dict[str, tuple[int, int]]:
        """Which embedder versions produced the stored vectors: model label → (dimension, vectors)."""
        from sqlalchemy import func

        with self._sessions() as session:
            query = select(EmbeddingRow.model, EmbeddingRow.dim, func.count()).group_by(EmbeddingRow.model,
                                                                                      EmbeddingRow.dim)
            return {model: (dim, n) for model, dim, n in session.execute(query)}

    def count(self, table: type[Base]) -> int:
        from sqlalchemy import func

        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(table))
