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


def test_every_setting_belongs_to_one_known_group():
    """The work fingerprint and the warm-analyzer key are derived from the groups: a new field without a
    group would silently be left out of both."""
    from pipeline.settings import GROUPS

    for name, info in Settings.model_fields.items():
        assert (info.json_schema_extra or {}).get("group") in GROUPS, f"setting {name!r} has no group"


def test_fingerprint_follows_what_changes_the_stored_results(isolated_settings):
    from pipeline.analysis import config_fingerprint

    versions = {"embedder": "minilm@1", "classifier": "risk@1"}
    base = config_fingerprint(Settings(), versions)
    assert config_fingerprint(Settings(report_threshold=0.9, embed_batch_size=4, home="elsewhere"), versions) == base
    for changed in ({"sentencizer": "rule"}, {"max_pages": 10}, {"classifier_precision": "fp32"}):
        assert config_fingerprint(Settings(**changed), versions) != base, changed
    assert config_fingerprint(Settings(), {**versions, "classifier": "risk@2"}) != base
