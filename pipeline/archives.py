"""ZIP inputs: a container of documents, expanded into a staging folder before the run reads them.

An archive nobody vetted is checked whole before one byte is written: member count, total declared
size, per-member compression ratio, overlapping entries (one compressed stream read as many members),
unsafe paths (absolute, ``..``, drive letters), symbolic links and archives inside the archive. Any of
these refuses the archive with the reason. Extraction then counts the bytes it actually inflates (sizes
in a ZIP are declarations), writes only under the staging folder, and only the document types docintel
reads.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.errors import DocumentReadError

ARCHIVE_SUFFIXES = frozenset({".zip"})
_CHUNK = 1 << 20
_SMALL = 1 << 20  # members under 1 MiB inflated are never ratio bombs: their ratio is not checked


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on one archive (a DOCX is one too); settings ``DOCINTEL_ARCHIVE_MAX_MB`` and so on."""

    archive_max_mb: float = 500.0
    archive_max_members: int = 1_000
    archive_max_ratio: float = 100.0


def check_members(bundle: zipfile.ZipFile, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """The archive's members if its declarations are within the caps; else DocumentReadError."""
    members = bundle.infolist()
    if len(members) > limits.archive_max_members:
        raise DocumentReadError(f"archive has {len(members)} members; the limit is {limits.archive_max_members} "
                                "(DOCINTEL_ARCHIVE_MAX_MEMBERS)")
    total = sum(info.file_size for info in members)
    if total > limits.archive_max_mb * 2**20:
        raise DocumentReadError(f"archive expands to {total / 2**20:,.0f} MiB; the limit is "
                                f"{limits.archive_max_mb:g} MiB (DOCINTEL_ARCHIVE_MAX_MB)")
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _SMALL and ratio > limits.archive_max_ratio:
            raise DocumentReadError(f"member {info.filename!r} expands {ratio:,.0f}×; the limit is "
                                    f"{limits.archive_max_ratio:g}× (a zip bomb?; DOCINTEL_ARCHIVE_MAX_RATIO)")
    ordered = sorted(members, key=lambda info: info.header_offset)
    for first, second in zip(ordered, ordered[1:]):
        if first.header_offset + first.compress_size > second.header_offset:
            raise DocumentReadError(f"members {first.filename!r} and {second.filename!r} overlap "
                                    "(one compressed stream read as many members: a zip bomb?)")
    return members


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath:
    """The member's relative path, or DocumentReadError if it could land outside the staging folder."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DocumentReadError(f"member {info.filename!r} has an unsafe path (it would be written outside the "
                                "archive's folder); refused")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise DocumentReadError(f"member {info.filename!r} is a symbolic link; refused")
    return path


def expand(archive: Path, staging: Path, limits: ArchiveLimits, readable: frozenset[str]) -> list[tuple[Path, str]]:
    """Extract the members whose suffix is in ``readable`` into ``staging`` (created; removed again if the
    archive is refused half way). Returns (file, member name) pairs in archive order."""
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DocumentReadError(f"{archive.name}: not a readable ZIP archive: {exc}") from exc
    try:
        with bundle:
            members = check_members(bundle, limits)
            paths = {info.filename: _member_path(info) for info in members}
            nested = [info.filename for info in members if paths[info.filename].suffix.lower() in ARCHIVE_SUFFIXES]
            if nested:
                raise DocumentReadError(f"archive inside the archive ({nested[0]!r}); nested archives are refused")
            wanted = [info for info in members if not info.is_dir()
                      and paths[info.filename].suffix.lower() in readable]
            return _extract(bundle, wanted, paths, staging, limits)
    except DocumentReadError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DocumentReadError(f"{archive.name}: {exc}") from exc
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as exc:  # corrupt, encrypted, odd method
        shutil.rmtree(staging, ignore_errors=True)
        raise DocumentReadError(f"{archive.name}: cannot extract: {type(exc).__name__}: {exc}") from exc


def _extract(bundle: zipfile.ZipFile, members: list[zipfile.ZipInfo], paths: dict[str, PurePosixPath],
             staging: Path, limits: ArchiveLimits) -> list[tuple[Path, str]]:
    root = staging.resolve()
    budget = int(limits.archive_max_mb * 2**20)
    extracted = []
    for info in members:
        target = (root / paths[info.filename]).resolve()
        if not target.is_relative_to(root):  # belt and braces after _member_path
            raise DocumentReadError(f"member {info.filename!r} resolves outside the staging folder; refused")
        target.parent.mkdir(parents=True, exist_ok=True)
        with bundle.open(info) as source, target.open("wb") as sink:
            while chunk := source.read(_CHUNK):
                budget -= len(chunk)
                if budget < 0:
                    raise DocumentReadError(f"archive inflates past its {limits.archive_max_mb:g} MiB limit "
                                            "(its declared sizes are false: a zip bomb?)")
                sink.write(chunk)
        extracted.append((target, info.filename))
    return extracted
