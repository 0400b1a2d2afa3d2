"""The ``docintel run`` command as a user types it (a real subprocess, real Prefect engine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_docintel_run_writes_sentences(tmp_path, samples, tiny_models_dir):
    out = tmp_path / "out"
    (tmp_path / "prefect").mkdir()
    env = {**os.environ, "DOCINTEL_HOME": str(tmp_path / "home"), "PREFECT_HOME": str(tmp_path / "prefect"),
           "DOCINTEL_MODELS_DIR": str(tiny_models_dir)}
    docintel = Path(sys.executable).parent / "docintel"
    result = subprocess.run(
        [str(docintel), "run", str(samples / "risk_factors_10k.txt"), "--out", str(out), "--sentencizer", "rule"],
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
