"""Fine-tuning writes a complete, registered, safetensors model; evaluation reports fp32 and int8."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.models import ModelRegistry, sha256_file
from pipeline.taxonomy import labels


def test_trained_model_directory_is_complete_and_registered(tiny_models_dir):
    entry = ModelRegistry(tiny_models_dir).entries()["risk-minilm"]
    model_dir = tiny_models_dir / entry.source["path"]
    for name in ("model.safetensors", "config.json", "tokenizer.json", "label_map.json", "training_config.json",
                 "metrics.json", "MODEL_CARD.md"):
        assert (model_dir / name).is_file(), name
    assert not list(model_dir.glob("*.bin"))
    assert entry.files["model.safetensors"] == sha256_file(model_dir / "model.safetensors")
    assert json.loads((model_dir / "label_map.json").read_text()) == {label: i for i, label in enumerate(labels())}
    config = json.loads((model_dir / "training_config.json").read_text())
    assert config["seed"] == 13 and config["train_examples"] == 6 * len(labels())
    assert "Confusion matrix" in (model_dir / "MODEL_CARD.md").read_text()


def test_metrics_cover_fp32_and_int8(tiny_models_dir):
    entry = ModelRegistry(tiny_models_dir).entries()["risk-minilm"]
    metrics = json.loads((tiny_models_dir / entry.source["path"] / "metrics.json").read_text())
    for precision in ("fp32", "int8"):
        block = metrics[precision]
        assert set(block["per_class"]) == set(labels())
        assert 0.0 <= block["macro_f1"] <= 1.0 and block["sentences_per_second"] > 0
        assert sum(map(sum, block["confusion"]["matrix"])) == metrics["n"]


def test_evaluate_cli_prints_one_json_object(tiny_models_dir, tmp_path):
    data = tmp_path / "spot.csv"
    data.write_text("text,label\nOur lenders may accelerate the term loan after a covenant breach.,financial\n"
                    "The committee approved the minutes.,none\n", encoding="utf-8")
    env = {**os.environ, "DOCINTEL_MODELS_DIR": str(tiny_models_dir)}
    docintel = Path(sys.executable).parent / "docintel"
    result = subprocess.run([str(docintel), "evaluate", "--data", str(data)], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["n"] == 2 and {"fp32", "int8", "int8_speedup"} <= set(report)

    data.write_text("text,label\nCash is short.,liquidity\n", encoding="utf-8")
    result = subprocess.run([str(docintel), "evaluate", "--data", str(data)], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 2 and "unknown label 'liquidity'" in result.stderr
