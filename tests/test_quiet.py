"""A run's console shows docintel's own output: framework start-up noise (TensorFlow's native I0000/E0000
lines, the ONNX export's TracerWarning, onnxruntime's advice, pkg_resources deprecation) goes to the log at
debug level. Checked in fresh processes, where that noise is printed once (TensorFlow's: tests/stages/test_embed_use.py)."""

from __future__ import annotations

import subprocess
import sys

NOISE = ("I0000", "E0000", "TracerWarning", "pkg_resources", "pre-processing", "Warning:")

LOAD = """
import logging, sys
logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, format="LOG %(name)s %(message)s")
from pathlib import Path
{body}
"""


def _run(body: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LOAD.format(body=body)], capture_output=True, text=True,
                          check=True, timeout=600)


def test_onnx_export_of_a_fresh_classifier_prints_nothing(tiny_models_dir, tmp_path):
    result = _run(f"""
from pipeline.models import ModelRegistry
from pipeline.stages.classify import RiskClassifier
location = ModelRegistry(Path({str(tiny_models_dir)!r})).resolve("risk-minilm").location
RiskClassifier(location, precision="int8", cache_dir=Path({str(tmp_path)!r}))
""")
    assert not [line for line in result.stderr.splitlines() if any(n in line for n in NOISE)], result.stderr
    assert "LOG docintel.frameworks onnx export: TracerWarning" in result.stdout  # in the log, at debug



def test_building_use_from_its_shipped_weights_prints_nothing(tmp_path):
    """`make run` builds the USE SavedModel first: TensorFlow's native lines go to the log, not the console."""
    import shutil

    from pipeline.settings import Settings

    shutil.copy(Settings().models_dir / "registry.json", tmp_path / "registry.json")
    result = _run(f"""
from pipeline.models import ModelRegistry
print(ModelRegistry(Path({str(tmp_path)!r})).resolve("use").location)
""")
    assert not [line for line in result.stderr.splitlines() if any(n in line for n in NOISE)], result.stderr
    assert "LOG docintel.frameworks building use: " in result.stdout and "use-multilingual-v3" in result.stdout


def test_a_fresh_classification_head_is_noted_in_the_log_not_on_the_console(tiny_models_dir):
    """Fine-tuning starts from MiniLM with a new head; transformers warns that the head is untrained."""
    result = _run(f"""
from transformers import AutoModelForSequenceClassification
from pipeline.models import ModelRegistry
from pipeline.quiet import framework_noise
base = ModelRegistry(Path({str(tiny_models_dir)!r})).resolve("minilm").location
with framework_noise("loading the base model"):
    AutoModelForSequenceClassification.from_pretrained(base, num_labels=3, use_safetensors=True)
""")
    assert "newly initialized" not in result.stderr, result.stderr
    assert "LOG docintel.frameworks transformers.modeling_utils: Some weights" in result.stdout
