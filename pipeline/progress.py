"""Progress events from long runs, for whoever shows them (the CLI's bar, the orchestrator's log);
orchestration-agnostic.

Two kinds: documents done in a run, and — for a large document, which can take minutes in one stage —
how far a stage has got inside it (pages sentencized, sentences embedded or classified).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

LARGE_PAGES = 1_000  # a document this long (in pages) or ...
LARGE_TEXT_CHARS = 5_000_000  # ... of this much text reports its progress inside each stage
STEP_SENTENCES = 1_024  # embed and classify work on a large document in slices this big, reporting after each
EVERY_S = 2.0  # at most one event per stage and document this often (and always the last)

Listener = Callable[[int, int], None]  # (documents done, documents total)
_listeners: list[Listener] = []


@dataclass(frozen=True)
class StageProgress:
    stage: str
    source: str
    done: int
    total: int
    unit: str  # "pages" | "sentences"

    def __str__(self) -> str:
        return f"{self.stage}: {self.source}: {self.done:,} of {self.total:,} {self.unit}"


StageListener = Callable[[StageProgress], None]
_stage_listeners: list[StageListener] = []


def report(done: int, total: int | None) -> None:
    """``total`` is None while an inbox is still being walked."""
    for listener in list(_listeners):
        listener(done, total)


@contextmanager
def _subscribed(listeners: list, listener) -> Iterator[None]:
    listeners.append(listener)
    try:
        yield
    finally:
        listeners.remove(listener)


def listening(listener: Listener):
    """Documents done in a run, while the context lasts."""
    return _subscribed(_listeners, listener)


def listening_to_stages(listener: StageListener):
    """A large document's progress inside each stage, while the context lasts."""
    return _subscribed(_stage_listeners, listener)


def is_large(pages: int, chars: int) -> bool:
    return pages >= LARGE_PAGES or chars >= LARGE_TEXT_CHARS


class StageMeter:
    """Reports one stage's progress through one document, throttled to one event per ``EVERY_S``."""

    def __init__(self, stage: str, source: str, total: int, unit: str) -> None:
        self.stage, self.source, self.total, self.unit = stage, source, total, unit
        self._last, self._done = 0.0, -1

    def update(self, done: int) -> None:
        now = time.monotonic()
        if done == self._done or (done < self.total and now - self._last < EVERY_S):
            return
        self._last, self._done = now, done
        event = StageProgress(self.stage, self.source, done, self.total, self.unit)
        for listener in list(_stage_listeners):
            listener(event)


def sentence_slices(stage: str, texts: Sequence[str], pages: int, source: str) -> Iterator[slice]:
    """One document's sentences as the slices a stage should work through: all at once for an ordinary
    document; ``STEP_SENTENCES`` at a time for a large one, reporting progress after each."""
    if not is_large(pages, sum(map(len, texts))):
        yield slice(0, len(texts))
        return
    meter = StageMeter(stage, source, len(texts), "sentences")
    for start in range(0, len(texts), STEP_SENTENCES):
        yield slice(start, start + STEP_SENTENCES)
        meter.update(min(start + STEP_SENTENCES, len(texts)))
