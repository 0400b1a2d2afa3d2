"""Map findings onto the client's risk register by embedding similarity.

A register is a CSV or XLSX with at least ``id``, ``title`` and ``description`` columns (header names are
case-insensitive; other columns are kept). Each entry is embedded as "title. description" by the embedder
version that made the run's vectors, each finding is compared with every entry by cosine, and keeps its
nearest entries at or above ``min_similarity`` (at most ``top``). Reviewers then see which register risks
have evidence in the documents, which have none, and which findings match no entry (emerging risks).
Similarities are on the embedder's own scale: a threshold tuned for MiniLM does not carry over to USE.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pipeline.errors import ConfigurationError

REQUIRED = ("id", "title", "description")
MAX_ENTRIES = 5_000


@dataclass(frozen=True)
class RegisterRisk:
    id: str
    title: str
    description: str


@dataclass(frozen=True)
class RegisterMatch:
    risk_id: str
    similarity: float


@dataclass(frozen=True)
class RiskRegister:
    source: str
    risks: tuple[RegisterRisk, ...]


def _rows(path: Path) -> list[list[str]]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)  # cached values, never formulas
        try:
            sheet = book.worksheets[0]
            return [["" if v is None else str(v) for v in row]
                    for row in sheet.iter_rows(max_row=MAX_ENTRIES + 2, values_only=True)]
        finally:
            book.close()
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [row for _, row in zip(range(MAX_ENTRIES + 2), csv.reader(handle))]
    raise ConfigurationError(f"risk register {path}: use a .csv or .xlsx file")


def load_register(path: Path) -> RiskRegister:
    """Read and check a register: required columns present, ids unique and non-empty, at most MAX_ENTRIES."""
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"risk register {path} does not exist")
    rows = [row for row in _rows(path) if any(cell.strip() for cell in row)]
    if not rows:
        raise ConfigurationError(f"risk register {path} is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise ConfigurationError(f"risk register {path} lacks column(s) {', '.join(missing)}; "
                                 f"it needs {', '.join(REQUIRED)}")
    if len(rows) - 1 > MAX_ENTRIES:
        raise ConfigurationError(f"risk register {path} has more than {MAX_ENTRIES} entries")
    at = {name: header.index(name) for name in REQUIRED}
    risks, seen = [], set()
    for number, row in enumerate(rows[1:], start=2):
        cells = {name: (row[i].strip() if i < len(row) else "") for name, i in at.items()}
        if not cells["id"]:
            raise ConfigurationError(f"risk register {path}, row {number}: empty id")
        if cells["id"] in seen:
            raise ConfigurationError(f"risk register {path}, row {number}: duplicate id {cells['id']!r}")
        seen.add(cells["id"])
        risks.append(RegisterRisk(cells["id"], cells["title"], cells["description"]))
    return RiskRegister(str(path), tuple(risks))


def match(finding_vectors: np.ndarray, register_vectors: np.ndarray, risks: tuple[RegisterRisk, ...], *,
          min_similarity: float, top: int = 3) -> list[tuple[RegisterMatch, ...]]:
    """For each finding (unit row), its nearest register entries at or above ``min_similarity``, best first."""
    if not len(finding_vectors) or not risks:
        return [() for _ in range(len(finding_vectors))]
    similarity = finding_vectors @ register_vectors.T
    out = []
    for row in similarity:
        best = [i for i in np.argsort(-row, kind="stable")[:top] if row[i] >= min_similarity]
        out.append(tuple(RegisterMatch(risks[i].id, round(float(row[i]), 4)) for i in best))
    return out


def with_register(report, store, register: RiskRegister, *, models_dir: Path, min_similarity: float,
                  device: str = "auto"):
    """``report`` with each finding's register matches and the register attached."""
    from pipeline.search import embed_texts, finding_vectors

    model = report.models.get("embedder", {}).get("label")
    if model is None:
        raise ConfigurationError(f"run {report.run_id} stored no vectors: cannot map it onto a register")
    entries = embed_texts([f"{r.title}. {r.description}" for r in register.risks], model,
                          models_dir=models_dir, device=device)
    matches = match(finding_vectors(store, report), entries, register.risks, min_similarity=min_similarity)
    findings = [replace(f, register=m) for f, m in zip(report.findings, matches)]
    return replace(report, findings=findings, register=register, register_min_similarity=min_similarity)
