"""``docintel run`` and ``docintel diff`` as a user types them (real subprocesses, real Prefect engine)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from pipeline.settings import REPO_ROOT


def test_docintel_run_writes_sentences(tmp_path, samples, tiny_models_dir):
    out = tmp_path / "out"
    (tmp_path / "prefect").mkdir()
    env = {**os.environ, "DOCINTEL_HOME": str(tmp_path / "home"), "PREFECT_HOME": str(tmp_path / "prefect"),
           "DOCINTEL_MODELS_DIR": str(tiny_models_dir),
           "DOCINTEL_REPORT_THRESHOLD": "0"}  # the tiny test classifier is unsure: report every risk label
    docintel = Path(sys.executable).parent / "docintel"
    result = subprocess.run(
        [str(docintel), "run", str(samples / "risk_factors_10k.txt"), "--out", str(out), "--sentencizer", "rule",
         "--register", str(REPO_ROOT / "data" / "risk_register.csv")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["failed"] == [] and summary["sentences"] > 20
    lines = (out / "sentences.jsonl").read_text().splitlines()
    assert len(lines) == summary["sentences"]
    first = json.loads(lines[0])
    assert first["embedding_model"].startswith("minilm@")
    assert first["classifier_model"].startswith("risk-minilm@") and first["risk_label"]
    report = json.loads((out / "report.json").read_text())
    assert report["run_id"] == summary["run_id"] and len(report["register"]["risks"]) == 14
    assert report["findings"] and sum(len(r["evidence"]) for r in report["register"]["risks"]) > 0

    # the run against itself: every risk sentence unchanged
    diff = subprocess.run([str(docintel), "diff", summary["run_id"], "latest", "--out", str(tmp_path / "diff"),
                           "--format", "json,html"], capture_output=True, text=True, env=env, timeout=300)
    assert diff.returncode == 0, diff.stderr[-3000:]
    counts = json.loads(diff.stdout.splitlines()[0])
    assert counts == {"new": 0, "removed": 0, "reworded": 0, "unchanged": len(report["findings"])}
    assert (tmp_path / "diff" / "diff.html").is_file()


def test_a_report_format_that_fails_exits_3_and_keeps_the_rest(tmp_path, samples, tiny_models_dir):
    """A real failure (the PDF's name is taken by a folder): the run still ends, its results are stored, the
    other formats are written, the failure is kept with the run, and the exit status says so."""
    from pipeline.store import ResultStore

    out = tmp_path / "out"
    (out / "report.pdf").mkdir(parents=True)
    (tmp_path / "prefect").mkdir()
    env = {**os.environ, "DOCINTEL_HOME": str(tmp_path / "home"), "PREFECT_HOME": str(tmp_path / "prefect"),
           "DOCINTEL_MODELS_DIR": str(tiny_models_dir), "DOCINTEL_SENTENCIZER": "rule"}
    docintel = str(Path(sys.executable).parent / "docintel")
    result = subprocess.run([docintel, "run", str(samples / "board_minutes.pdf"), "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "error: the pdf report could not be written: IsADirectoryError" in result.stderr
    # no traceback through docintel's code (the Prefect API server may log its own while it is stopped)
    assert not re.search(r'File ".*/(pipeline|flows)/', result.stderr), result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert list(summary["export_errors"]) == ["pdf"] and summary["sentences"] > 0
    assert sorted(Path(p).name for p in summary["reports"]) == ["report.csv", "report.html", "report.json",
                                                                "report.xlsx"]
    store = ResultStore(f"sqlite:///{tmp_path / 'home' / 'store.db'}")
    assert list(store.run(summary["run_id"]).export_errors) == ["pdf"]

    again = subprocess.run([docintel, "report", summary["run_id"], "--out", str(out), "--format", "pdf,json"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 3 and "the pdf report could not be written" in again.stderr
    assert again.stdout.split() == [str(out / "report.json")]


def test_commands_end_a_docintel_error_with_its_message_and_exit_2(tmp_path):
    """No traceback for a user's mistake: an unknown model to build, a classifier that is not there, a broken
    settings value reached through a command."""
    docintel = str(Path(sys.executable).parent / "docintel")
    env = {**os.environ, "DOCINTEL_HOME": str(tmp_path / "home"), "PREFECT_HOME": str(tmp_path / "prefect")}
    for command, message in (
        (["models", "build", "no-such-model"], "'no-such-model' is not a model docintel builds"),
        (["evaluate", "--model", str(tmp_path / "missing-model")], "missing-model"),
        (["evaluate", "--split", "nowhere"], "no rows in split 'nowhere'"),
    ):
        result = subprocess.run([docintel, *command], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 2, (command, result.stderr[-2000:])
        assert message in result.stderr and "Traceback" not in result.stderr, (command, result.stderr[-2000:])
