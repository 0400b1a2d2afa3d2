"""Period over period: which risk sentences are new, removed or reworded between two runs.

Both runs' findings (risk label, score at or above the threshold) are compared: identical text (whitespace
aside) is unchanged; the remaining pairs are matched greedily, most similar first, one to one, by the cosine
of their stored vectors — a pair at or above ``reworded_min`` is the same risk reworded; what is left in the
later run is new, what is left in the earlier one removed. Both runs must have been embedded by the same
embedder version, or their vectors are not comparable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import ConfigurationError
from pipeline.reports.audit import AuditReport, Finding, build_report
from pipeline.search import finding_vectors
from pipeline.store import ResultStore

STATUSES = ("new", "removed", "reworded", "unchanged")


@dataclass(frozen=True)
class Change:
    status: str  # one of STATUSES
    before: Finding | None  # in the earlier run
    after: Finding | None  # in the later run
    similarity: float | None  # cosine of before and after, when both exist

    @property
    def label(self) -> str:
        return (self.after or self.before).label

    @property
    def score(self) -> float:
        return (self.after or self.before).score


@dataclass(frozen=True)
class RunDiff:
    before: AuditReport
    after: AuditReport
    reworded_min: float
    changes: list[Change]  # new, removed, reworded, unchanged; highest score first within each

    def of(self, status: str) -> list[Change]:
        return [c for c in self.changes if c.status == status]

    @property
    def counts(self) -> dict[str, int]:
        return {status: len(self.of(status)) for status in STATUSES}


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def compare(before: list[Finding], after: list[Finding], similarity: np.ndarray, reworded_min: float) -> list[Change]:
    """Classify findings given ``similarity[i, j]`` = cosine(after[i], before[j])."""
    free_before, free_after, changes = set(range(len(before))), set(range(len(after))), []
    by_text: dict[str, list[int]] = {}
    for j, finding in enumerate(before):
        by_text.setdefault(_normal(finding.text), []).append(j)
    for i, finding in enumerate(after):
        same = by_text.get(_normal(finding.text))
        if same:
            j = same.pop(0)
            free_before.discard(j), free_after.discard(i)
            changes.append(Change("unchanged", before[j], finding, 1.0))
    pairs = sorted(((float(similarity[i, j]), i, j) for i in free_after for j in free_before
                    if similarity[i, j] >= reworded_min), reverse=True)
    for value, i, j in pairs:
        if i in free_after and j in free_before:
            free_after.discard(i), free_before.discard(j)
            changes.append(Change("reworded", before[j], after[i], round(value, 4)))
    changes += [Change("new", None, after[i], None) for i in sorted(free_after)]
    changes += [Change("removed", before[j], None, None) for j in sorted(free_before)]
    order = {status: n for n, status in enumerate(STATUSES)}
    return sorted(changes, key=lambda c: (order[c.status], -c.score))


def diff_runs(store: ResultStore, run_before: str, run_after: str, *, threshold: float = 0.5,
              models_dir: Path | None = None, reworded_min: float = 0.8) -> RunDiff:
    """The findings of ``run_after`` against those of ``run_before`` (ids, or latest)."""
    before = build_report(store, run_before, threshold=threshold, models_dir=models_dir)
    after = build_report(store, run_after, threshold=threshold, models_dir=models_dir)
    models = [report.models.get("embedder", {}).get("label") for report in (before, after)]
    if None in models or models[0] != models[1]:
        raise ConfigurationError(f"runs {before.run_id} and {after.run_id} were embedded by {models[0]} and "
                                 f"{models[1]}: their sentences cannot be compared; rerun one with the other's embedder")
    a, b = finding_vectors(store, after), finding_vectors(store, before)
    similarity = a @ b.T if len(a) and len(b) else np.zeros((len(a), len(b)), "float32")
    return RunDiff(before, after, reworded_min, compare(before.findings, after.findings, similarity, reworded_min))
