"""Framework start-up noise goes to docintel's log at debug level, not to the console.

TensorFlow's native logging (the ``I0000``/``E0000`` lines, written by C++ to file descriptor 2 before any
Python logging exists), Python warnings raised while a framework loads or exports a model (``TracerWarning``,
the ``pkg_resources`` deprecation), onnxruntime's advice printed through the root logger ("consider
pre-processing") and transformers' note that a classification head starts untrained (it is about to be
fine-tuned) help whoever debugs a model; none of them is about the user's documents. Used only around
loading and exporting, which run once per process before any document is processed.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

log = logging.getLogger("docintel.frameworks")


class _Demote(logging.Filter):
    """Records of the root logger from these packages go to our log at debug level instead."""

    def __init__(self, packages: tuple[str, ...]) -> None:
        super().__init__()
        self.packages = packages

    def filter(self, record: logging.LogRecord) -> bool:
        if any(f"{os.sep}{p}{os.sep}" in record.pathname for p in self.packages):
            log.debug("%s: %s", record.name, record.getMessage())
            return False
        return True


@contextmanager
def _native_stderr() -> Iterator[list[str]]:
    """File descriptor 2 into a temporary file; its lines are in the yielded list once the block ends."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", errors="replace").splitlines())


@contextmanager
def framework_noise(what: str, *, native: bool = False) -> Iterator[None]:
    """Inside the block, warnings and onnxruntime's root-logger messages (and with ``native``, everything
    written to file descriptor 2) are logged at debug level under ``what``."""
    demote = _Demote(("onnxruntime", "onnx", "torch", "transformers"))
    root = logging.getLogger()
    root.addFilter(demote)
    own = logging.getLogger("transformers").handlers  # transformers logs through its own handler, not the root
    for handler in own:
        handler.addFilter(demote)
    try:
        with warnings.catch_warnings(record=True) as caught, (_native_stderr() if native else nullcontext([])) as lines:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                for warning in caught:
                    log.debug("%s: %s: %s", what, warning.category.__name__, warning.message)
        for line in lines:
            if line.strip():
                log.debug("%s: %s", what, line)
    finally:
        root.removeFilter(demote)
        for handler in own:
            handler.removeFilter(demote)
