"""The risk taxonomy in ``data/taxonomy.yaml``: the single source of the classifier's labels."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from pipeline.settings import REPO_ROOT

TAXONOMY_FILE = REPO_ROOT / "data" / "taxonomy.yaml"


@lru_cache(maxsize=4)
def load_taxonomy(path: Path = TAXONOMY_FILE) -> dict[str, str]:
    """Label → definition, in the file's order (the order of the classifier's outputs)."""
    return dict(yaml.safe_load(Path(path).read_text(encoding="utf-8"))["labels"])


def labels(path: Path = TAXONOMY_FILE) -> tuple[str, ...]:
    return tuple(load_taxonomy(path))
