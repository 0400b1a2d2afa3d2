"""Which processes a command started, read from /proc: to prove none is left once it has ended."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _process_table() -> dict[int, tuple[int, str, str]]:
    """pid → (parent pid, start time, state) of every process, read from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else None
        except OSError:
            continue
        if stat:
            fields = stat[stat.rindex(")") + 2:].split()
            table[int(entry.name)] = (int(fields[1]), fields[19], fields[0])
    return table


def descendants(root: int) -> set[tuple[int, str]]:
    """(pid, start time) of every live process below ``root``: the start time tells a reused pid apart."""
    table, found, frontier = _process_table(), set(), [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started, state) in table.items():
            if ppid == parent and state != "Z":
                found.add((pid, started))
                frontier.append(pid)
    return found


def still_running(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    table = _process_table()
    return {(pid, started) for pid, started in processes
            if pid in table and table[pid][1] == started and table[pid][2] != "Z"}


def assert_none_left(processes: set[tuple[int, str]], within_s: float = 30.0) -> None:
    """Wait up to ``within_s`` for ``processes`` to end; any still running is killed (so a failing test leaves
    nothing behind either) and named in the failure."""
    deadline = time.monotonic() + within_s
    while still_running(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = still_running(processes)
    for pid, _ in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"left behind: {sorted(left)}"
