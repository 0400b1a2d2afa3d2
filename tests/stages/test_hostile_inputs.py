"""Hostile documents and archives at the ingest boundary: each is refused with its reason, or read."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile import LIMITS_ENV, build_inbox, spinning_pdf
from processes import assert_none_left, descendants

from pipeline.analysis import input_limits, work_items
from pipeline.archives import ARCHIVE_SUFFIXES
from pipeline.errors import DocumentReadError
from pipeline.settings import Settings
from pipeline.stages.ingest import IngestStage, InputLimits


@pytest.fixture(scope="module")
def limits() -> InputLimits:
    return input_limits(Settings(parse_timeout_s=float(LIMITS_ENV["DOCINTEL_PARSE_TIMEOUT_S"]),
                                 archive_max_mb=float(LIMITS_ENV["DOCINTEL_ARCHIVE_MAX_MB"])))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, good_docx) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("hostile") / "inbox"
    return folder, build_inbox(folder, good_docx)


def documents(hostile):
    folder, expected = hostile
    return [(folder / name, words) for name, words in expected.items() if Path(name).suffix not in ARCHIVE_SUFFIXES]


def archives(hostile):
    folder, expected = hostile
    return [(folder / name, words) for name, words in expected.items() if Path(name).suffix in ARCHIVE_SUFFIXES]


def test_each_hostile_document_is_refused_with_its_reason_and_good_ones_are_read(hostile, limits):
    ingest = IngestStage(limits=limits)
    for path, words in documents(hostile):
        if words is None:
            document = ingest.read(path)
            assert document.pages and any(page.text for page in document.pages), path.name
            continue
        with pytest.raises(DocumentReadError) as caught:
            ingest.read(path)
        assert words in str(caught.value) and str(caught.value).startswith(path.name), (path.name, caught.value)


def test_legacy_and_bom_encodings_decode_exactly(hostile, limits):
    from hostile import GOOD

    folder, _ = hostile
    ingest = IngestStage(limits=limits)
    for name in ("latin1.txt", "utf16.txt"):
        assert ingest.read(folder / name).pages[0].text == GOOD[name]


def test_a_spinning_parser_is_killed_at_the_timeout_and_the_next_document_gets_a_fresh_one(hostile, limits):
    folder, _ = hostile
    ingest = IngestStage(limits=limits)
    ingest.read(folder / "good.txt")
    stuck = ingest.parser._child
    start = time.monotonic()
    with pytest.raises(DocumentReadError, match=f"parsing was stopped after {limits.parse_timeout_s:g} s"):
        ingest.read(folder / "spinning.pdf")
    assert time.monotonic() - start < limits.parse_timeout_s + 2
    assert stuck.poll() is not None  # killed
    assert ingest.read(folder / "good.txt").pages[0].text.startswith("The company")
    assert ingest.parser._child is not stuck


# an owner of a parser process that goes (os._exit, as a stopped docintel serve does) while its parser spins
_OWNER = """
import os, sys, threading, time
from pipeline.stages.ingest import InputLimits, ParserProcess
parser = ParserProcess(InputLimits())
parser.start()
threading.Thread(target=parser.parse, args=("application/pdf", open(sys.argv[1], "rb").read()), daemon=True).start()
time.sleep(2)  # the parse is under way
print("parsing", flush=True)
sys.stdin.readline()
os._exit(0)
"""


def test_a_parser_process_ends_soon_after_its_owner_even_mid_parse(tmp_path):
    """The parser process leads a process group of its own (a Tesseract it starts dies with it), so its
    owner's group ending does not reach it: a spinning parse went on for minutes after its owner had gone."""
    pdf = tmp_path / "spinning.pdf"
    pdf.write_bytes(spinning_pdf())
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(pdf)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).resolve().parents[2])
    assert owner.stdout.readline() == "parsing\n"
    parsers = descendants(owner.pid)
    assert parsers, "the parser process was not started"
    owner.communicate("\n", timeout=30)
    assert_none_left(parsers, within_s=10)


def test_the_parser_memory_cap_stops_a_document_that_inflates(tmp_path):
    """A 120 MiB text file decodes to more than a 256 MiB address space holds: refused, not swapped."""
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        for _ in range(120):
            handle.write(b"Risk \xe9 " * (1 << 17))  # Latin-1: decoding makes a second, wider copy
    ingest = IngestStage(limits=InputLimits(parse_memory_mb=256))
    with pytest.raises(DocumentReadError, match="parsing needed more than 256 MiB"):
        ingest.read(huge)
    small = tmp_path / "small.txt"
    small.write_text("Liquidity may tighten.", encoding="utf-8")
    assert ingest.read(small).pages[0].text == "Liquidity may tighten."  # a new parser process serves the next


def test_each_hostile_archive_is_refused_whole_and_nothing_lands_outside_staging(tmp_path, hostile, limits):
    folder, _ = hostile
    staging = tmp_path / "work" / "staging"
    before = {p for p in tmp_path.parent.rglob("*")}
    for path, words in archives(hostile):
        items, failures = work_items([path], "config", staging, limits)
        if words is None:
            continue
        assert items == [] and len(failures) == 1, path.name
        assert words in failures[0].error and failures[0].source == str(path.resolve()), (path.name, failures[0])
        assert failures[0].stage == "ingest"
    created = {p for p in tmp_path.parent.rglob("*")} - before
    assert all(p == staging or staging in p.parents or tmp_path / "work" == p for p in created), created
    assert not Path("/tmp/docintel-escaped.txt").exists() and not (folder.parent.parent / "escaped.txt").exists()
    assert sorted(p.name for p in staging.rglob("*") if p.is_file()) == ["a.txt", "board.docx"]  # bundle.zip's


def test_an_archive_expands_into_documents_that_name_the_archive(tmp_path, hostile, limits):
    folder, _ = hostile
    items, failures = work_items([folder / "bundle.zip"], "config", tmp_path / "staging", limits)
    assert failures == []
    bundle = str((folder / "bundle.zip").resolve())
    assert [item.source for item in items] == [f"{bundle}!/memo/a.txt", f"{bundle}!/board.docx"]  # readme.bin skipped
    document = IngestStage(limits=limits).read(Path(items[0].location), items[0].source)
    assert document.source == items[0].source and document.doc_id == items[0].doc_id


def test_a_zip_that_lies_about_its_sizes_is_stopped_while_inflating(tmp_path):
    """Declared sizes pass the caps; the bytes actually inflated do not."""
    import struct

    from hostile import zip_of

    from pipeline.archives import ArchiveLimits, expand

    data = bytearray(zip_of({"a.txt": bytes(3 << 20)}))
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 1000)  # the directory now claims 1,000 bytes uncompressed
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, 1000)
    archive = tmp_path / "liar.zip"
    archive.write_bytes(bytes(data))
    with pytest.raises(DocumentReadError, match="inflates past|Bad CRC|cannot extract"):
        expand(archive, tmp_path / "staging", ArchiveLimits(archive_max_mb=1), frozenset({".txt"}))
    assert not (tmp_path / "staging").exists()  # the partial extraction is removed
