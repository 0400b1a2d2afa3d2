"""Importing the library must not import TensorFlow or torch (TF's GPU settings come first)."""

import subprocess
import sys

import pytest

MODULES = [
    "pipeline",
    "pipeline.records",
    "pipeline.settings",
    "pipeline.store",
    "pipeline.models",
    "pipeline.builders",
    "pipeline.builders.use_savedmodel",
    "pipeline.analysis",
    "pipeline.stages.base",
    "pipeline.stages.ingest",
    "pipeline.stages.sentencize",
    "pipeline.stages.layout",
    "pipeline.evaluation.segmentation",
    "pipeline.stages.embed",
    "pipeline.stages.classify",
    "pipeline.training.finetune",
    "pipeline.training.evaluate",
    "pipeline.cli",
]


@pytest.mark.parametrize("module", MODULES)
def test_import_loads_no_deep_learning_framework(module):
    code = (
        f"import sys, {module}; "
        "bad = [m for m in ('tensorflow', 'torch', 'spacy', 'prefect') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_declaring_stages_loads_no_framework():
    """The planner reads declarations before anything initialises a framework."""
    code = (
        "import sys\n"
        "from pipeline.analysis import Analyzer\n"
        "from pipeline.settings import Settings\n"
        "specs = [s.spec() for s in Analyzer(Settings()).stages()]\n"
        "assert [s.framework for s in specs] == ['python', 'spacy', 'torch', 'torch'], specs\n"
        "print(','.join(m for m in ('tensorflow', 'torch', 'spacy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
