"""Labelled sentences (CSV or JSONL with ``text`` and ``label``), checked against the taxonomy.

Two corpora: the real one (``data/corpus/real.jsonl``: sentences of ../shared/real documents as docintel cut
them, double-annotated and adjudicated, split by document group) judges and trains the model; the written
one (``data/risk_corpus.jsonl``, sentences written for this project) adds clean examples of every label.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigurationError
from pipeline.settings import REPO_ROOT
from pipeline.taxonomy import labels

CORPUS_FILE = REPO_ROOT / "data" / "risk_corpus.jsonl"
REAL_CORPUS_FILE = REPO_ROOT / "data" / "corpus" / "real.jsonl"
CORPORA = ("real+written", "real", "written")  # what a model trains on (the ablation's three arms)


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str
    split: str = "test"
    register: str = ""
    group: str = ""  # document group (real corpus): no group is in two splits
    origin: str = "written"  # "real" or "written"
    natural: bool = False  # drawn at random from its document (the natural mix), not picked for its label


def read_examples(path: Path) -> list[Example]:
    """Read CSV or JSONL; unknown labels and malformed rows are errors that name the line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such file")
    known = set(labels())
    rows: list[tuple[int, dict]] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
                raise ConfigurationError(f"{path}: a CSV header with 'text' and 'label' columns is required")
            rows = [(number, row) for number, row in enumerate(reader, start=2)]
    elif path.suffix.lower() in {".jsonl", ".json"}:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise ConfigurationError(f"{path}:{number}: each line must be a JSON object")
            rows.append((number, row))
    else:
        raise ConfigurationError(f"{path}: use a .csv or .jsonl file with text,label")
    examples = []
    for number, row in rows:
        text, label = (row.get("text") or "").strip(), (row.get("label") or "").strip()
        if not text or not label:
            raise ConfigurationError(f"{path}:{number}: both 'text' and 'label' are required")
        if label not in known:
            raise ConfigurationError(f"{path}:{number}: unknown label {label!r}; known: {', '.join(sorted(known))}")
        examples.append(Example(text, label, row.get("split") or "test", row.get("register") or "",
                                row.get("group") or "", row.get("origin") or "written",
                                row.get("sampled_by") == "random"))
    if not examples:
        raise ConfigurationError(f"{path}: no examples")
    return examples


def split(examples: list[Example], name: str) -> list[Example]:
    return [e for e in examples if e.split == name]


def training_sets(corpora: str, real: Path = REAL_CORPUS_FILE, written: Path = CORPUS_FILE,
                  reviewed: Path | None = None) -> tuple[list[Example], list[Example], list[Example]]:
    """train, dev, test for one arm of ``CORPORA``. Dev and test are always the real splits (what the model
    is judged on); the arm only says which train split(s) it learns from. ``reviewed``: reviewers' final
    labels (``docintel train --with-reviews``), split by document like the real corpus, each split joining
    its own."""
    if corpora not in CORPORA:
        raise ConfigurationError(f"corpora must be one of {', '.join(CORPORA)}, not {corpora!r}")
    real_examples = read_examples(real)
    if reviewed is not None:
        real_examples += read_examples(reviewed)
    train = split(real_examples, "train") if "real" in corpora else []
    if "written" in corpora:
        train += split(read_examples(written), "train")
    return train, split(real_examples, "dev"), split(real_examples, "test")
