"""Shared fixtures: real small models loaded once per session, real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flows.cli import PREFECT_DEFAULTS

from pipeline.settings import REPO_ROOT, Settings
from pipeline.stages.embed import EmbedStage
from pipeline.stages.ingest import IngestStage
from pipeline.stages.sentencize import SentencizeStage

for _name, _value in PREFECT_DEFAULTS.items():  # same offline Prefect defaults as the CLI
    os.environ.setdefault(_name, _value)

SAMPLES = REPO_ROOT / "data" / "samples"
EVAL_DOCS = REPO_ROOT.parent / "shared" / "eval" / "docs"


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def eval_docs() -> Path:
    if not EVAL_DOCS.is_dir():
        pytest.skip("../shared/eval/docs is not beside this checkout")
    return EVAL_DOCS


@pytest.fixture(scope="session")
def ingest() -> IngestStage:
    return IngestStage()


@pytest.fixture(scope="session")
def sentencizers() -> dict[str, SentencizeStage]:
    """One warm stage per built-in mode, shared by every test."""
    modes = ("rule", "senter", "parser", "layout", "layout-rule", "layout-parser")
    stages = {mode: SentencizeStage(mode) for mode in modes}
    for stage in stages.values():
        stage.warm_up()
    return stages


@pytest.fixture(scope="session")
def minilm() -> EmbedStage:
    stage = EmbedStage("minilm", models_dir=Settings().models_dir, device="cpu")
    stage.warm_up()
    return stage


@pytest.fixture()
def isolated_settings(tmp_path, monkeypatch) -> Path:
    """Keep each test's store and settings file out of the working tree."""
    monkeypatch.setenv("DOCINTEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCINTEL_SETTINGS_FILE", str(tmp_path / "absent.toml"))
    return tmp_path


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    """A models dir holding the real registry plus a small classifier trained here on corpus subsets (6
    sentences per label, 1 epoch; calibrated and scored on 60 real dev / 60 real test sentences): real weights,
    real tokenizer, the whole training path, cheap enough for every test run."""
    import json
    import shutil

    from pipeline.training.config import TrainConfig
    from pipeline.training.corpus import REAL_CORPUS_FILE
    from pipeline.training.finetune import train

    models_dir = tmp_path_factory.mktemp("models")
    shutil.copy(Settings().models_dir / "registry.json", models_dir / "registry.json")
    rows = [json.loads(line) for line in REAL_CORPUS_FILE.read_text(encoding="utf-8").splitlines()]
    real = models_dir / "real-subset.jsonl"
    real.write_text("".join(json.dumps(r) + "\n" for split in ("train", "dev", "test")
                            for r in [r for r in rows if r["split"] == split][::37][:60]), encoding="utf-8")
    train(TrainConfig(epochs=1, limit_per_label=6), models_dir, progress=lambda _: None, real=real)
    return models_dir


@pytest.fixture()
def labelled_run(minilm):
    """``labelled_run(store, source, rows)`` stores one run over one text document whose lines are ``rows``
    (text, label, score), embedded by the real MiniLM; the labels stand in for the classifier, which other
    tests exercise. Returns the run id."""
    return lambda store, source, rows: _store_labelled_run(store, minilm, source, rows)


def _store_labelled_run(store, minilm: EmbedStage, source: str, rows: list[tuple[str, str, float]]) -> str:
    import hashlib

    from pipeline.records import Document, Page, RiskLabel, Sentence, Span

    text = "\n".join(t for t, _, _ in rows)
    document = Document(hashlib.sha256(text.encode()).hexdigest(), source, "text/plain", (Page(1, text),))
    sentences, offset = [], 0
    for index, (line, _, _) in enumerate(rows):
        sentences.append(Sentence(document.doc_id, source, (Span(1, offset, offset + len(line)),), line, index))
        offset += len(line) + 1
    embeddings = minilm.process(sentences)
    labels = [RiskLabel(s, label, score, {label: score}, "risk-minilm@test:fp32")
              for s, (_, label, score) in zip(sentences, rows)]
    run_id = store.start_run({}, triggered_by="test")
    store.save(run_id, [document], sentences, embeddings, "spacy:layout", labels)
    store.finish_run(run_id, {"embedder": embeddings[0].model, "classifier": "risk-minilm@test:fp32"})
    return run_id


@pytest.fixture(scope="session")
def good_docx() -> bytes:
    """A real DOCX (python-docx): a heading and two paragraphs."""
    import io

    import docx

    document = docx.Document()
    document.add_heading("Internal audit report", level=1)
    document.add_paragraph("Access reviews were not performed for privileged accounts.")
    document.add_paragraph("Management agreed to remediate the gaps by year end.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
