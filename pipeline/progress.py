"""Progress events from long runs, for whoever shows them (the CLI's bar); orchestration-agnostic."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Iterator

Listener = Callable[[int, int], None]  # (documents done, documents total)
_listeners: list[Listener] = []


def report(done: int, total: int | None) -> None:
    """``total`` is None while an inbox is still being walked."""
    for listener in list(_listeners):
        listener(done, total)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
