"""Model registry: where each named model's weights come from, and their sha256.

Offline sources are packages on the index that ship weights (repackagings by third parties, so
every file listed in ``models/registry.json`` is verified against its sha256 before use). Names not
in the registry are passed through as hub ids or local paths, for users with a network.
Only safetensors weights are ever loaded.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.digests import sha256_file
from pipeline.errors import ConfigurationError, ModelIntegrityError
from pipeline.quiet import framework_noise

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def assert_safe_model_dir(path: Path) -> None:
    """Refuse directories whose weights are pickles (arbitrary code on load) rather than safetensors
    (PyTorch models) or a TensorFlow SavedModel (a graph and a variables checkpoint, no Python objects)."""
    pickles = [p.name for p in path.rglob("*") if p.suffix in PICKLE_SUFFIXES and p.is_file()]
    savedmodel = (path / "saved_model.pb").is_file()
    if pickles or not (savedmodel or any(path.rglob("*.safetensors"))):
        raise ModelIntegrityError(
            f"{path}: weights must be safetensors; found {', '.join(pickles) or 'no *.safetensors file'}. "
            "Convert the checkpoint to safetensors before using it with docintel."
        )
    custom = [str(config.relative_to(path)) for config in path.rglob("config.json")
              if "auto_map" in json.loads(config.read_text(encoding="utf-8") or "{}")]
    if custom:
        raise ModelIntegrityError(
            f"{path}: the model brings its own Python code ({', '.join(custom)} has an auto_map) and would need "
            "trust_remote_code; docintel never runs code shipped with a model. Use a model of a built-in "
            "transformers architecture."
        )


@dataclass(frozen=True)
class ModelEntry:
    name: str
    framework: str
    kind: str
    description: str
    source: dict
    files: dict[str, str]
    hub_id: str | None = None
    dim: int | None = None
    gpu_memory_mb: int = 1024
    metrics: dict = field(default_factory=dict)
    base: str | None = None

    @property
    def version(self) -> str:
        """A short, content-derived version: the weights' sha256 prefix."""
        weights = next((sha for name, sha in self.files.items()
                        if name.endswith(".safetensors") or "variables.data" in name), None)
        return (weights or "unversioned")[:12]


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: a local directory (verified) or a hub id, with the label stored on results."""

    location: str
    label: str
    entry: ModelEntry | None


class ModelRegistry:
    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)

    @property
    def cache_dir(self) -> Path:
        return self.models_dir / "cache"

    @property
    def local_registry(self) -> Path:
        """Models built on this machine (fine-tuned classifiers, the converted USE): build outputs, so they
        are recorded beside the weights, with the sha256 of what was built, and never in git."""
        return self.models_dir / "local-registry.json"

    def _shipped(self) -> dict[str, dict]:
        registry = self.models_dir / "registry.json"
        if not registry.is_file():
            raise ConfigurationError(f"model registry {registry} is missing; set DOCINTEL_MODELS_DIR")
        return json.loads(registry.read_text(encoding="utf-8"))

    def buildable(self) -> list[str]:
        """Registered models built here from weights shipped in a package."""
        return [name for name, spec in self._shipped().items() if spec["source"]["type"] == "build"]

    def entries(self) -> dict[str, ModelEntry]:
        raw = self._shipped()
        shipped = {name: ModelEntry(name=name, **spec) for name, spec in raw.items()}
        if self.local_registry.is_file():
            raw.update(json.loads(self.local_registry.read_text(encoding="utf-8")))
        entries = {name: ModelEntry(name=name, **spec) for name, spec in raw.items()}
        for name, entry in entries.items():  # a local build whose directory was removed is built again
            if entry.source["type"] == "local" and not (self.models_dir / entry.source["path"]).is_dir() \
                    and name in shipped and shipped[name].source["type"] == "build":
                entries[name] = shipped[name]
        return entries

    def register_local(self, name: str, spec: dict) -> None:
        """Record (or replace) a model built here under ``name``; it takes precedence over the shipped entry."""
        raw = json.loads(self.local_registry.read_text(encoding="utf-8")) if self.local_registry.is_file() else {}
        raw[name] = spec
        self.local_registry.parent.mkdir(parents=True, exist_ok=True)
        self.local_registry.write_text(json.dumps(raw, indent=2), encoding="utf-8")

    def forget_local(self, name: str) -> None:
        """Drop a local entry so the shipped one (a build) applies again."""
        if self.local_registry.is_file():
            raw = json.loads(self.local_registry.read_text(encoding="utf-8"))
            if raw.pop(name, None) is not None:
                self.local_registry.write_text(json.dumps(raw, indent=2), encoding="utf-8")

    def resolve(self, name: str, verify: bool = True) -> ResolvedModel:
        """Local verified directory for a registry name; else a local path; else a hub id or TF-Hub handle.
        ``verify=False`` skips hashing the weights, for a caller that reads other files of the version only."""
        entry = self.entries().get(name)
        if entry is None:
            path = Path(name)
            if path.exists():
                assert_safe_model_dir(path)
                return ResolvedModel(str(path.resolve()), f"{path.name}@local", None)
            if path.is_absolute() or name.startswith((".", "~")):  # a path, not a hub id ("org/name")
                raise ConfigurationError(f"model {name!r}: no such directory, and not a registered model")
            return ResolvedModel(name, f"{name}@hub", None)
        local = self._offline_dir(entry)
        if local is None:
            if entry.hub_id is None:
                raise ModelIntegrityError(f"model {name!r}: offline source missing; {entry.source.get('install', '')}")
            return ResolvedModel(entry.hub_id, f"{name}@hub", entry)
        if entry.source["type"] == "build":  # just built: the local entry now holds the output's hashes
            entry = self.entries()[name]
        if verify:
            self.verify(entry, local)
        assert_safe_model_dir(local)
        return ResolvedModel(str(local), f"{name}@{entry.version}", entry)

    def verify(self, entry: ModelEntry, directory: Path) -> None:
        for relpath, expected in entry.files.items():
            path = directory / relpath
            if not path.is_file():
                raise ModelIntegrityError(f"model {entry.name!r}: {path} is missing")
            actual = sha256_file(path)
            if actual != expected:
                raise ModelIntegrityError(
                    f"model {entry.name!r}: sha256 of {path} is {actual}, registry says {expected}; "
                    "the weights were altered or are a different release. Reinstall the source package."
                )

    def _offline_dir(self, entry: ModelEntry) -> Path | None:
        kind = entry.source["type"]
        if kind == "package_dir":
            spec = importlib.util.find_spec(entry.source["package"])
            if spec is None or not spec.submodule_search_locations:
                return None
            return Path(next(iter(spec.submodule_search_locations))) / entry.source["path"]
        if kind == "split_zip":
            return self._assemble_split_zip(entry)
        if kind == "local":
            path = self.models_dir / entry.source["path"]
            return path if path.is_dir() else None
        if kind == "build":
            return self._build(entry)
        raise ConfigurationError(f"model {entry.name!r}: unknown source type {kind!r}")

    def _build(self, entry: ModelEntry) -> Path | None:
        """Build a model from weights shipped in a package (once), verifying the inputs' sha256 first;
        None when the package is not installed (the hub handle is the fallback)."""
        from pipeline.builders import BUILDERS

        builder = BUILDERS[entry.source["builder"]]
        sources = builder.source_files()
        if sources is None:
            return None
        for relpath, path in sources.items():
            expected = entry.source["inputs"][relpath]
            if sha256_file(path) != expected:
                raise ModelIntegrityError(f"model {entry.name!r}: {path} does not match the registry's sha256 "
                                          f"{expected}; reinstall {entry.source['distribution']}")
        target = self.models_dir / entry.source["path"]
        with framework_noise(f"building {entry.name}", native=True):  # TensorFlow's I0000/E0000 lines
            built = builder.build(target)
        self.register_local(entry.name, {
            "framework": entry.framework, "kind": entry.kind, "description": entry.description,
            "hub_id": entry.hub_id, "dim": entry.dim, "gpu_memory_mb": entry.gpu_memory_mb,
            "source": {"type": "local", "path": entry.source["path"], "provenance": built["provenance"]},
            "files": built["files"],
        })
        return target

    def _assemble_split_zip(self, entry: ModelEntry) -> Path | None:
        """Join the parts shipped in several wheels into one zip and unpack it once into the cache."""
        target = self.cache_dir / entry.name
        if (target / ".complete").is_file():
            return target
        parts = [_distribution_file(dist, ".zip.") for dist in entry.source["parts"]]
        if any(part is None for part in parts):
            return None
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir) as scratch:
            joined = Path(scratch) / "joined.zip"
            with joined.open("wb") as out:
                for part in sorted(parts):
                    with part.open("rb") as src:
                        shutil.copyfileobj(src, out, 1 << 22)
            unpacked = Path(scratch) / "unpacked"
            _safe_extract(joined, unpacked)
            root = unpacked / entry.source["root"]
            self.verify(entry, root)
            shutil.rmtree(target, ignore_errors=True)
            root.rename(target)
        (target / ".complete").write_text(entry.version)
        return target


def _distribution_file(distribution: str, marker: str) -> Path | None:
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if marker in file.name:
            return Path(file.locate())
    return None


def _safe_extract(archive: Path, destination: Path) -> None:
    """Extract only regular members whose paths stay inside ``destination`` (no zip-slip)."""
    destination.mkdir(parents=True)
    root = destination.resolve()
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            target = (destination / member.filename).resolve()
            if not target.is_relative_to(root):
                raise ModelIntegrityError(f"{archive.name}: member {member.filename!r} escapes the target directory")
            if member.filename.endswith("desktop.ini"):
                continue
            bundle.extract(member, destination)
