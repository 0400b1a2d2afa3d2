"""Which Prefect API this process talks to, read without importing Prefect (≈1.8 s here).

Prefect reads ``PREFECT_API_URL`` (and its key or auth string) from the environment, the active profile, or a
``.env``/``prefect.toml``/``pyproject.toml [tool.prefect]`` in the working directory. The first two are read
here; where one of those files exists, Prefect's own settings answer instead.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path


def _active_profile() -> dict[str, str]:
    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml")).expanduser()
    if not path.is_file():
        return {}
    profiles = tomllib.loads(path.read_text())
    name = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    return {key: str(value) for key, value in profiles.get("profiles", {}).get(name, {}).items()}


def _settings_files() -> bool:
    pyproject = Path("pyproject.toml")
    return (Path(".env").is_file() or Path("prefect.toml").is_file()
            or (pyproject.is_file() and "[tool.prefect" in pyproject.read_text(errors="replace")))


def setting(name: str) -> str | None:
    """A Prefect setting given as ``PREFECT_…``, as Prefect would read it."""
    if value := os.environ.get(name) or _active_profile().get(name):
        return value
    if not _settings_files():
        return None
    from prefect.settings import get_current_settings

    return get_current_settings().to_environment_variables(exclude_unset=True).get(name)


def api_url() -> str | None:
    return setting("PREFECT_API_URL")


def auth_headers() -> dict[str, str]:
    if key := setting("PREFECT_API_KEY"):
        return {"Authorization": f"Bearer {key}"}
    if auth := setting("PREFECT_API_AUTH_STRING"):
        import base64

        return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    return {}
