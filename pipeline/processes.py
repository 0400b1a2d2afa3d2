"""A command owns the processes it starts: none outlives it, however it ends (exit, SIGTERM, SIGINT, SIGKILL).

A run starts children it does not fully control (Prefect's temporary API server, the parser sandbox, a
TensorFlow worker, the flow-run processes of ``docintel serve``). A process killed with SIGKILL cannot clean
up, so ``supervise`` splits the command in two: the process the user started stays a small supervisor, and
the command's work goes on in a forked child that leads a process group of its own, holding every process
it starts. The supervisor forwards SIGINT/SIGTERM/SIGHUP to the child and, once the child has exited, kills
whatever is left in the child's group. If the supervisor itself is killed, the kernel sends the child
SIGTERM (``PR_SET_PDEATHSIG``): it stops as it would on SIGTERM and kills the rest of its group on exit.
On SIGTERM the work stops where Python next runs (an open transaction is rolled back; a commit already
under way completes), then the command exits with status 143. Linux only; elsewhere commands run as before.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1
STOPPED_BY_SIGNAL = 128  # + the signal's number: the shell's convention for "ended by a signal"


class Stopped(SystemExit):
    """The command was asked to stop by a signal; its exit status is 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(STOPPED_BY_SIGNAL + signum)
        self.signum = signum


def supervise() -> None:
    """Return in a forked child that owns its process group; the calling process becomes its supervisor and
    never returns (it exits with the child's status). A no-op where there is no ``/proc`` or ``fork``."""
    if not (hasattr(os, "fork") and Path("/proc/self/stat").exists()):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    supervisor = os.getpid()
    child = os.fork()
    if child == 0:
        _become_owner(supervisor)
        return
    try:
        os.setpgid(child, child)  # also done in the child: whichever runs first
    except OSError:
        pass  # the child already did it, or already exited
    sys.exit(_wait(child))


def _become_owner(supervisor: int) -> None:
    os.setpgid(0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    atexit.register(end_group)  # registered first, so it runs after every other exit handler
    if os.getppid() != supervisor:  # the supervisor died before PDEATHSIG was armed
        os.kill(os.getpid(), signal.SIGTERM)


def _stop(signum, _frame) -> None:
    """SIGTERM/SIGHUP in the working process: unwind (``finally`` blocks, rollbacks, exit handlers)."""
    raise Stopped(signum)


def _wait(child: int) -> int:
    def forward(signum, _frame) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    _, status = os.waitpid(child, 0)  # retried after each forwarded signal (PEP 475)
    kill_group(child)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else STOPPED_BY_SIGNAL + os.WTERMSIG(status)


def group_members(group: int) -> list[int]:
    """Live processes of a process group, read from ``/proc`` (zombies left out)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(entry.name))
    return members


def kill_group(group: int, grace_s: float = 5.0, exclude: int | None = None) -> None:
    """SIGTERM every member of ``group`` (but ``exclude``), SIGKILL those still there after ``grace_s``."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 0.0)):
        members = [pid for pid in group_members(group) if pid != exclude]
        for pid in members:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while members and time.monotonic() < deadline:
            time.sleep(0.05)
            members = [pid for pid in group_members(group) if pid != exclude]
        if not members:
            return


def end_group() -> None:
    """Stop every other member of this process's group when it owns one (``supervise``). It is the working
    process's last act, so nothing it started outlives it. ``docintel serve`` also calls it on its way out:
    Prefect's runner waits for its flow runs in non-daemon threads, which exit joins before exit handlers run."""
    if os.getpgrp() == os.getpid():
        kill_group(os.getpgrp(), exclude=os.getpid())
