from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.settings import Settings


def test_defaults(isolated_settings):
    settings = Settings()
    assert settings.sentencizer == "layout"
    assert settings.embedder == "minilm"
    assert settings.resolved_store_url == f"sqlite:///{(isolated_settings / 'home' / 'store.db').resolve()}"


def test_file_then_env_then_arguments(isolated_settings, monkeypatch):
    settings_file = isolated_settings / "docintel.toml"
    settings_file.write_text('embedder = "mpnet"\nsentencizer = "rule"\nembed_batch_size = 8\n')
    monkeypatch.setenv("DOCINTEL_SETTINGS_FILE", str(settings_file))
    monkeypatch.setenv("DOCINTEL_SENTENCIZER", "parser")
    monkeypatch.setenv("DOCINTEL_STORE_URL", "sqlite:////tmp/elsewhere.db")
    settings = Settings(embed_batch_size=16)
    assert settings.embedder == "mpnet"  # file
    assert settings.sentencizer == "parser"  # env beats file
    assert settings.resolved_store_url == "sqlite:////tmp/elsewhere.db"
    assert settings.embed_batch_size == 16  # argument beats file


def test_unknown_or_invalid_settings_are_refused(isolated_settings):
    with pytest.raises(ValidationError):
        Settings(embed_batch_size=0)
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)


def test_models_dir_points_at_the_registry(isolated_settings):
    assert (Path(Settings().models_dir) / "registry.json").is_file()
