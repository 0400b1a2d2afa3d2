"""Idempotent, crash-safe reruns and concurrent runs, through the real CLI and Prefect engine.

Each run is a real ``docintel run`` process (its own Prefect home, the shared results store); a run is
killed with SIGKILL mid-batch, and two runs race over one inbox. What the store holds afterwards is
compared with a clean run's rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from processes import assert_none_left, descendants

from pipeline.store import DocumentRow, EmbeddingRow, PageRow, ResultStore, RiskLabelRow, SentenceRow, WorkRow

TABLES = (DocumentRow, PageRow, SentenceRow, EmbeddingRow, RiskLabelRow, WorkRow)
EXTRA = [  # more small documents, so a batch of one document commits several times per run
    "Liquidity may tighten if customers delay payment. Lenders could call the revolving facility.",
    "A ransomware attack could halt our plants. Backups are tested quarterly.",
    "We depend on one supplier of wafers. A fire at its plant would stop shipments for months.",
    "The regulator opened an inquiry into our export licences. Penalties could be material.",
]


@pytest.fixture(scope="module")
def inbox(tmp_path_factory, samples):
    folder = tmp_path_factory.mktemp("docs") / "inbox"
    shutil.copytree(samples, folder, ignore=shutil.ignore_patterns("*.py"))
    for i, text in enumerate(EXTRA):
        (folder / f"memo_{i}.txt").write_text(text, encoding="utf-8")
    return folder


def _start(tmp_path, tiny_models_dir, name: str, store: Path, inbox: Path, batch: int = 1) -> subprocess.Popen:
    home = tmp_path / f"prefect-{name}"
    home.mkdir()
    env = {**os.environ, "PREFECT_HOME": str(home), "DOCINTEL_HOME": str(tmp_path / "home"),
           "DOCINTEL_MODELS_DIR": str(tiny_models_dir), "DOCINTEL_STORE_URL": f"sqlite:///{store}",
           "DOCINTEL_DOCUMENTS_PER_BATCH": str(batch), "DOCINTEL_SENTENCIZER": "rule",
           "DOCINTEL_REPORT_FORMATS": '["json"]'}
    docintel = Path(sys.executable).parent / "docintel"
    return subprocess.Popen([str(docintel), "run", str(inbox), "--out", str(tmp_path / f"out-{name}")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def _finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out[out.index("{"):])


def _rows(store: ResultStore) -> dict:
    """Everything a run leaves, comparable across stores: counts and the content of every result row."""
    content = set()
    for document in store.run_documents(store.run("latest").run_id):
        for sentence, label in store.labelled_sentences(document.doc_id, "spacy:rule", None):
            content.add((sentence.doc_id, sentence.page, sentence.start, sentence.end, sentence.text))
    labels = {(r.label, round(r.score, 5)) for r in _all(store, RiskLabelRow)}
    return {"counts": {t.__tablename__: store.count(t) for t in TABLES}, "sentences": content, "labels": labels}


def _all(store: ResultStore, table) -> list:
    from sqlalchemy import select

    with store._sessions() as session:
        return list(session.scalars(select(table)))


def _done_work(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=1) as connection:
            return connection.execute("SELECT count(*) FROM work WHERE status = 'done'").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


@pytest.fixture(scope="module")
def clean(tmp_path_factory, tiny_models_dir, inbox):
    """One uninterrupted run in its own store: the reference (its outputs under ``out-clean``)."""
    base = tmp_path_factory.mktemp("clean")
    store = base / "clean.db"
    summary = _finish(_start(base, tiny_models_dir, "clean", store, inbox))
    return summary, ResultStore(f"sqlite:///{store}"), base / "out-clean" / "sentences.jsonl"


def test_rerun_after_a_clean_run_changes_nothing(tmp_path, tiny_models_dir, inbox, clean):
    summary, store, output = clean
    assert summary["processed"] == summary["documents"] == 8 and summary["reused"] == 0
    before = _rows(store)
    again = _finish(_start(tmp_path, tiny_models_dir, "again", Path(store.url.removeprefix("sqlite:///")), inbox))
    assert again["processed"] == 0 and again["reused"] == 8 and again["sentences"] == summary["sentences"]
    assert _rows(store) == before
    assert (tmp_path / "out-again" / "sentences.jsonl").read_text() == output.read_text()  # the same, reused


def _findings(out: Path) -> list[dict]:
    """The report's findings and per-document totals: what an auditor reads, without run ids and times."""
    report = json.loads((out / "report.json").read_text())
    return [report["totals"], sorted(json.dumps(f, sort_keys=True) for f in report["findings"]),
            sorted(json.dumps(d, sort_keys=True) for d in report["documents"])]


@pytest.mark.parametrize("signals", [(signal.SIGKILL,), (signal.SIGTERM, signal.SIGKILL), (signal.SIGINT,)],
                         ids=["sigkill", "sigterm", "sigint"])
def test_killed_mid_batch_then_rerun_equals_a_clean_run(tmp_path, tiny_models_dir, inbox, clean, signals):
    """SIGKILL outright, SIGTERM then SIGKILL after a grace period (how a container is stopped), or Ctrl-C.
    Whichever: no process the run started is left, and the rerun equals a clean run."""
    _, reference, output = clean
    path = tmp_path / "killed.db"
    victim = _start(tmp_path, tiny_models_dir, "victim", path, inbox)
    deadline = time.monotonic() + 300
    children = set()  # every process the run started: its Prefect API server, the parser sandbox, ...
    while _done_work(path) < 2:
        assert victim.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() < deadline
        children |= descendants(victim.pid)
        time.sleep(0.2)
    children |= descendants(victim.pid)
    assert len(children) >= 2, children  # at least the API server and the parser process
    for sent in signals:  # to the process alone, as `kill PID` or a scheduler does, not to its group
        if victim.poll() is None:
            os.kill(victim.pid, sent)
            try:
                victim.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    victim.wait(timeout=60)
    assert_none_left(children)  # orphans get SIGTERM, then SIGKILL after a grace period
    _, err = victim.communicate(timeout=30)  # an orphan would still hold the pipes open
    if signals[0] != signal.SIGKILL:  # stopped cleanly, with a message, not a traceback
        assert victim.returncode == 128 + signals[0], err[-3000:]
        # no traceback through docintel's code (the Prefect API server may log its own while it is stopped)
        assert f"stopped by {signals[0].name}" in err and not re.search(r'File ".*/(pipeline|flows)/', err), err[-3000:]
    killed_at = _done_work(path)
    assert 2 <= killed_at < 8  # mid-batch: some documents committed, the rest not

    summary = _finish(_start(tmp_path, tiny_models_dir, "rerun", path, inbox))
    assert summary["reused"] == killed_at and summary["processed"] == 8 - killed_at
    assert _rows(ResultStore(f"sqlite:///{path}")) == _rows(reference)
    assert (tmp_path / "out-rerun" / "sentences.jsonl").read_text() == output.read_text()
    assert _findings(tmp_path / "out-rerun") == _findings(output.parent)


def test_two_concurrent_runs_on_one_inbox_never_double_process(tmp_path, tiny_models_dir, inbox, clean):
    _, reference, _ = clean
    path = tmp_path / "shared.db"
    ResultStore(f"sqlite:///{path}")  # created before both start
    first, second = (_start(tmp_path, tiny_models_dir, name, path, inbox) for name in ("scheduled", "adhoc"))
    a, b = _finish(first), _finish(second)
    assert a["processed"] + b["processed"] == 8  # each document processed by exactly one of them
    assert a["documents"] == b["documents"] == 8 and a["sentences"] == b["sentences"]
    assert _rows(ResultStore(f"sqlite:///{path}")) == _rows(reference)
