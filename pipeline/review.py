"""Reviewers' decisions on a run's findings: an append-only, hash-chained trail in the results store.

Model output is never overwritten. Every decision (accept, reject, relabel, follow up, a missed risk added),
every sign-off and every reopening is one row holding its reviewer, time, finding, before → after, comment,
the hash of the run's previous row and its own hash over all of that: editing or deleting a row breaks the
chain at that row, and ``verify`` says which. A decision names the decision it replaces; a stale one (another
reviewer decided since) is refused with that reviewer's decision, so two reviewers never lose an update. A
run is signed off once every finding has a decision: the sign-off row carries a digest over the run's
findings and its chain so far, and decisions are refused until a reopening (itself a row).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from datetime import datetime, timezone

from sqlalchemy import Float, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.errors import ConfigurationError, DocintelError
from pipeline.reports.audit import AuditReport, Finding, ReviewedFinding, ReviewSummary
from pipeline.store import Base, ResultStore
from pipeline.training.corpus import Example

DECISIONS = ("accept", "reject", "relabel", "follow_up")
STATUS = {"accept": "accepted", "reject": "rejected", "relabel": "relabelled", "follow_up": "follow_up",
          "add": "added"}
STATUSES = ("pending", "accepted", "rejected", "relabelled", "follow_up", "added")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # 16 MiB, ≈50 ms a check: cheap for a login, dear for a guesser


class ReviewRow(Base):
    """One row of a run's trail; ``seq`` numbers a run's rows from 1 (unique: concurrent writers cannot fork
    the chain, the loser retries on the new head)."""

    __tablename__ = "review_trail"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))  # accept reject relabel follow_up add signoff reopen
    sentence_id: Mapped[int | None] = mapped_column(Integer)
    reviewer: Mapped[str] = mapped_column(String(80))
    at: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC, hashed as written
    label_before: Mapped[str | None] = mapped_column(String(40))
    label_after: Mapped[str | None] = mapped_column(String(40))
    status_before: Mapped[str | None] = mapped_column(String(20))
    status_after: Mapped[str | None] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
    replaces: Mapped[int | None] = mapped_column(Integer)  # seq of the finding's decision this one replaces
    digest: Mapped[str | None] = mapped_column(String(64))  # sign-off: over the findings and the chain
    threshold: Mapped[float | None] = mapped_column(Float)  # sign-off: the report threshold its findings used
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ReviewerRow(Base):
    __tablename__ = "reviewers"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    salt: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(128))  # scrypt
    created_at: Mapped[str] = mapped_column(String(40))


HASHED = ("run_id", "seq", "action", "sentence_id", "reviewer", "at", "label_before", "label_after",
          "status_before", "status_after", "comment", "replaces", "digest", "threshold", "prev_hash")


def row_hash(row: ReviewRow) -> str:
    payload = json.dumps({name: getattr(row, name) for name in HASHED}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def genesis(run_id: str) -> str:
    return hashlib.sha256(f"docintel-review:{run_id}".encode()).hexdigest()


def findings_digest(findings: list[Finding], chain_head: str) -> str:
    """What a sign-off signs: every finding (which sentence, the model's label and score) and the trail."""
    items = sorted((f.sentence_id, f.label, f.score) for f in findings)
    return hashlib.sha256(json.dumps([items, chain_head]).encode()).hexdigest()


class ReviewError(DocintelError):
    """A decision that cannot be taken as asked (unknown finding or label, run signed off)."""


class StaleDecision(ReviewError):
    """Another reviewer decided on this finding since the decision this one names: theirs is ``current``."""

    def __init__(self, current: ReviewRow) -> None:
        super().__init__(f"{current.reviewer} decided {current.action} at {current.at}")
        self.current = current


class FindingReview:
    """Where one finding stands: its latest decision (None while pending). A plain slotted class: a run's
    queue builds 20,000 of these per request."""

    __slots__ = ("finding", "decision")

    def __init__(self, finding: Finding, decision: ReviewRow | None = None) -> None:
        self.finding, self.decision = finding, decision

    @property
    def status(self) -> str:
        return self.decision.status_after if self.decision else "pending"

    @property
    def final_label(self) -> str:
        return self.decision.label_after if self.decision else self.finding.label

    @property
    def seq(self) -> int:
        return self.decision.seq if self.decision else 0


class RunReview:
    """A run's findings with their decisions, the missed risks reviewers added, and the sign-off. The
    per-finding view is built when first asked for: a decision needs only the latest rows."""

    def __init__(self, report: AuditReport, latest: dict[int, ReviewRow], signoff: ReviewRow | None,
                 trail: list[ReviewRow], added: list[FindingReview]) -> None:
        self.run_id, self.report, self.latest = report.run_id, report, latest
        self.signoff, self.trail, self.added = signoff, trail, added

    @cached_property
    def findings(self) -> list[FindingReview]:
        return [FindingReview(f, self.latest.get(f.sentence_id)) for f in self.report.findings]

    @cached_property
    def counts(self) -> dict[str, int]:
        """Per status, from the latest rows alone: every finding without one is pending."""
        counts = dict.fromkeys(STATUSES, 0)
        for row in self.latest.values():
            counts[row.status_after] += 1
        counts["pending"] = len(self.report.findings) - (len(self.latest) - len(self.added))
        return counts

    @property
    def complete(self) -> bool:
        return self.counts["pending"] == 0

    def item(self, sentence_id: int) -> FindingReview | None:
        finding = next((f for f in self.report.findings if f.sentence_id == sentence_id), None)
        if finding is not None:
            return FindingReview(finding, self.latest.get(sentence_id))
        return next((i for i in self.added if i.finding.sentence_id == sentence_id), None)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Reviews:
    """The review trail of the runs in one results store."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self._sessions = store._sessions

    def trail(self, run_id: str) -> list[ReviewRow]:
        with self._sessions() as session:
            return list(session.scalars(select(ReviewRow).where(ReviewRow.run_id == run_id).order_by(ReviewRow.seq)))

    def review(self, report: AuditReport) -> RunReview:
        """``report``'s findings with their latest decisions, and the missed risks reviewers added."""
        trail = self.trail(report.run_id)
        latest: dict[int, ReviewRow] = {}
        signoff = None
        for row in trail:
            if row.action == "signoff":
                signoff = row
            elif row.action == "reopen":
                signoff = None
            elif row.sentence_id is not None:
                latest[row.sentence_id] = row
        known = {f.sentence_id for f in report.findings}
        added = [FindingReview(self._sentence_finding(sentence_id, row), row) for sentence_id, row in latest.items()
                 if sentence_id not in known]
        return RunReview(report, latest, signoff, trail, added)

    def _sentence_finding(self, sentence_id: int, row: ReviewRow) -> Finding:
        from pipeline.store import DocumentRow, SentenceRow

        with self._sessions() as session:
            sentence = session.get(SentenceRow, sentence_id)
            document = session.get(DocumentRow, sentence.doc_id)
        return Finding(row.label_before or "none", 0.0, sentence.text, document.source, sentence.doc_id,
                       sentence.page, sentence.start, sentence.end, "", "", sentence_id=sentence_id)

    def decide(self, report: AuditReport, reviewer: str, sentence_id: int, action: str, *, label: str | None = None,
               comment: str = "", replaces: int = 0, model_label: str | None = None) -> ReviewRow:
        """Record ``action`` on a finding (or, with ``add``, mark the run's sentence ``sentence_id``, whose
        model label is ``model_label``, as a missed risk labelled ``label``). ``replaces``: the seq of the
        finding's decision the reviewer saw (0: none); a stale one raises StaleDecision."""
        if not reviewer:
            raise ReviewError("no decision without a reviewer")
        if action not in (*DECISIONS, "add"):
            raise ReviewError(f"unknown decision {action!r}: use one of {', '.join(DECISIONS)} or add")
        if action in ("relabel", "add") and label not in report.categories:
            raise ReviewError(f"{label!r} is not a risk label: use one of {', '.join(report.categories)}")
        finding = next((f for f in report.findings if f.sentence_id == sentence_id), None)
        if finding is None and action != "add":
            raise ReviewError(f"sentence {sentence_id} is not a finding of run {report.run_id}")
        if finding is not None and action == "add":
            raise ReviewError(f"sentence {sentence_id} is already a finding of run {report.run_id}")
        label_after = {"reject": "none", "relabel": label, "add": label}.get(action, finding and finding.label)

        def row(current: FindingReview | None, seq: int, prev_hash: str) -> ReviewRow:
            if (current.seq if current else 0) != replaces:
                if current is None or current.decision is None:
                    raise ReviewError(f"decision {replaces} on sentence {sentence_id} does not exist")
                raise StaleDecision(current.decision)
            return ReviewRow(run_id=report.run_id, seq=seq, action=action, sentence_id=sentence_id,
                             reviewer=reviewer, at=_now(),
                             label_before=current.final_label if current else (finding.label if finding else model_label),
                             label_after=label_after, status_before=current.status if current else "pending",
                             status_after=STATUS[action], comment=comment, replaces=replaces or None,
                             prev_hash=prev_hash)

        return self._append(report, lambda review, seq, prev: row(review.item(sentence_id), seq, prev))

    def sign_off(self, report: AuditReport, reviewer: str, comment: str = "") -> ReviewRow:
        if not reviewer:
            raise ReviewError("no sign-off without a reviewer")

        def row(review: RunReview, seq: int, prev_hash: str) -> ReviewRow:
            if not review.complete:
                pending = sum(1 for i in review.findings if i.status == "pending")
                raise ReviewError(f"{pending} finding(s) still pending: every finding needs a decision first")
            return ReviewRow(run_id=report.run_id, seq=seq, action="signoff", reviewer=reviewer, at=_now(),
                             comment=comment, digest=findings_digest(report.findings, prev_hash),
                             threshold=report.threshold, prev_hash=prev_hash)

        return self._append(report, row, signed_ok=False)

    def reopen(self, report: AuditReport, reviewer: str, comment: str) -> ReviewRow:
        if not reviewer or not comment.strip():
            raise ReviewError("a reopening needs a reviewer and a reason")

        def row(review: RunReview, seq: int, prev_hash: str) -> ReviewRow:
            if review.signoff is None:
                raise ReviewError("the run is not signed off")
            return ReviewRow(run_id=report.run_id, seq=seq, action="reopen", reviewer=reviewer, at=_now(),
                             comment=comment, prev_hash=prev_hash)

        return self._append(report, row, signed_ok=True)

    def _append(self, report: AuditReport, make, signed_ok: bool = False) -> ReviewRow:
        for _ in range(5):  # a concurrent writer took our seq: read the new head and decide again
            review = self.review(report)
            if review.signoff is not None and not signed_ok:
                raise ReviewError(f"run {report.run_id} was signed off by {review.signoff.reviewer} at "
                                  f"{review.signoff.at}: reopen it first (the reopening is recorded)")
            head = review.trail[-1] if review.trail else None
            row = make(review, (head.seq if head else 0) + 1, head.hash if head else genesis(report.run_id))
            row.hash = row_hash(row)
            try:
                with self._sessions.begin() as session:
                    session.add(row)
                return row
            except IntegrityError:
                continue
        raise ReviewError("the review trail is too busy: try again")

    def verify(self, run_id: str, findings_at: Callable[[float], list[Finding]]) -> list[str]:
        """Problems with the run's trail, each naming its row; empty when the chain and the sign-off digests
        recompute. ``findings_at(threshold)``: the run's findings at the report threshold a sign-off used."""
        problems, prev = [], genesis(run_id)
        for expected_seq, row in enumerate(self.trail(run_id), start=1):
            where = f"row {row.seq} ({row.action} by {row.reviewer} at {row.at})"
            if row.seq != expected_seq:
                problems.append(f"row {expected_seq} is missing (the next row is {row.seq})")
            if row.prev_hash != prev:
                problems.append(f"{where}: its previous-row hash does not match row {row.seq - 1}")
            if row_hash(row) != row.hash:
                problems.append(f"{where}: its content does not match its hash (edited after it was written)")
            if row.action == "signoff" and row.digest != findings_digest(findings_at(row.threshold or 0.0),
                                                                         row.prev_hash):
                problems.append(f"{where}: the sign-off digest does not match the run's findings and trail")
            prev = row.hash
        return problems


def reviewed_report(store: ResultStore, report: AuditReport) -> AuditReport:
    """``report`` carrying its review: each finding's status, final label, reviewer and comment, the counts,
    the missed risks reviewers added, and the sign-off (or none)."""
    review = Reviews(store).review(report)

    def entry(item: FindingReview) -> ReviewedFinding:
        row = item.decision
        return ReviewedFinding(item.status, item.final_label, row.reviewer if row else None, row.at if row else None,
                               row.comment if row else "")

    signoff = review.signoff
    return replace(report, review=ReviewSummary(
        decisions={i.finding.sentence_id: entry(i) for i in review.findings},
        added=[(i.finding, entry(i)) for i in review.added], counts=review.counts,
        signoff={"reviewer": signoff.reviewer, "at": signoff.at, "digest": signoff.digest} if signoff else None,
        trail_rows=len(review.trail)))


# --- feedback to the model -------------------------------------------------------------------------------

REVIEW_SPLITS = (("train", 70), ("dev", 15), ("test", 15))  # of each reviewed document, by its hash


def review_split(doc_id: str) -> str:
    """A reviewed document's split, fixed by its content hash: no document is in two splits."""
    bucket = int(hashlib.sha256(f"docintel-review-split:{doc_id}".encode()).hexdigest(), 16) % 100
    for name, share in REVIEW_SPLITS:
        if bucket < share:
            return name
        bucket -= share
    return "test"


def reviewed_examples(store: ResultStore, run: str = "all") -> list[Example]:
    """Every sentence reviewers decided on (in ``run``, or in all runs), with its final label: a rejected
    finding is ``none``, a relabelled one its new label, an added one the reviewer's label; where several runs
    decided on the same sentence, the latest decision counts. Sorted, so the file it makes is stable."""
    from pipeline.store import SentenceRow

    query = select(ReviewRow).where(ReviewRow.sentence_id.is_not(None)).order_by(ReviewRow.at, ReviewRow.id)
    if run != "all":
        query = query.where(ReviewRow.run_id == store.run(run).run_id)
    with store._sessions() as session:
        latest = {row.sentence_id: row for row in session.scalars(query)}
        sentences = {s.id: s for s in session.scalars(select(SentenceRow).where(SentenceRow.id.in_(list(latest))))}
    examples = [Example(sentences[sid].text, row.label_after, review_split(sentences[sid].doc_id),
                        group=sentences[sid].doc_id, origin="review")
                for sid, row in latest.items() if sid in sentences and row.label_after]
    return sorted(examples, key=lambda e: (e.group, e.text))


def write_examples(examples: list[Example], path: Path) -> Path:
    """The corpus JSONL format ``read_examples`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": e.text, "label": e.label, "split": e.split, "group": e.group,
                                        "origin": e.origin}, ensure_ascii=False) + "\n" for e in examples),
                    encoding="utf-8")
    return path


# --- reviewers -------------------------------------------------------------------------------------------

def _scrypt(password: str, salt: str) -> str:
    return hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **SCRYPT).hex()


def add_reviewer(store: ResultStore, name: str) -> str:
    """Create reviewer ``name`` (or give them a new password); returns the one-time password, stored only
    as a salted scrypt hash."""
    name = name.strip()
    if not name or len(name) > 80:
        raise ConfigurationError("a reviewer name is 1 to 80 characters")
    password, salt = secrets.token_urlsafe(15), os.urandom(16).hex()
    with store._sessions.begin() as session:
        row = session.get(ReviewerRow, name)
        if row is None:
            session.add(ReviewerRow(name=name, salt=salt, password_hash=_scrypt(password, salt), created_at=_now()))
        else:
            row.salt, row.password_hash = salt, _scrypt(password, salt)
    return password


def check_password(store: ResultStore, name: str, password: str) -> bool:
    with store._sessions() as session:
        row = session.get(ReviewerRow, name)
    if row is None:
        _scrypt(password, os.urandom(16).hex())  # the same cost for an unknown name
        return False
    return hmac.compare_digest(_scrypt(password, row.salt), row.password_hash)


def has_reviewers(store: ResultStore) -> bool:
    with store._sessions() as session:
        return session.scalars(select(ReviewerRow.name).limit(1)).first() is not None
