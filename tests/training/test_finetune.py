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
                 "metrics.json", "MODEL_CARD.md", "calibration.json", "reliability.png"):
        assert (model_dir / name).is_file(), name
    assert not list(model_dir.glob("*.bin"))
    assert entry.files["model.safetensors"] == sha256_file(model_dir / "model.safetensors")
    assert json.loads((model_dir / "label_map.json").read_text()) == {label: i for i, label in enumerate(labels())}
    config = json.loads((model_dir / "training_config.json").read_text())
    assert config["seed"] == 13 and config["train_examples"] == 6 * len(labels())
    card = (model_dir / "MODEL_CARD.md").read_text()
    assert "Confusion matrix" in card and "Review band" in card and "Model comparison" in card
    assert (model_dir / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_cover_fp32_and_int8(tiny_models_dir):
    entry = ModelRegistry(tiny_models_dir).entries()["risk-minilm"]
    metrics = json.loads((tiny_models_dir / entry.source["path"] / "metrics.json").read_text())
    for precision in ("fp32", "int8"):
        block = metrics[precision]
        assert set(block["per_class"]) == set(labels())
        assert 0.0 <= block["macro_f1"] <= 1.0 and block["sentences_per_second"] > 0
        assert sum(map(sum, block["confusion"]["matrix"])) == metrics["n"]
        assert 0.0 <= block["ece"] <= 1.0 and sum(b["n"] for b in block["reliability"]) == metrics["n"]
        assert 0.0 <= block["accuracy"] <= 1.0 and block["natural_n"] <= metrics["n"]
    assert metrics["calibration"]["temperature"] > 0


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

    predictions = tmp_path / "predictions.jsonl"
    result = subprocess.run([str(docintel), "evaluate", "--predictions", str(predictions)], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["split"] == "test" and report["int8"]["sentences_per_second"] > 0
    lines = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == report["n"]
    for line in lines:
        assert {"text", "label", "predicted", "score", "distribution", "needs_review"} <= set(line)
        assert line["score"] == line["distribution"][line["predicted"]] == max(line["distribution"].values())
        assert abs(sum(line["distribution"].values()) - 1) < 1e-4

    data.write_text("text,label\nCash is short.,liquidity\n", encoding="utf-8")
    result = subprocess.run([str(docintel), "evaluate", "--data", str(data)], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 2 and "unknown label 'liquidity'" in result.stderr
