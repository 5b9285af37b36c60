"""Ctrl-C always ends `engine serve`, within a bounded time.

On Ctrl-C, Prefect's runner cancels its loops, stops the flow runs it started and pauses the
schedules. Full test runs twice saw it never get that far: Ctrl-C came as a flow run ended, the
log never said "Pausing all deployments", and `engine serve`, with the Prefect server it started,
kept running. The cause was not found (it never happened alone).

So the first Ctrl-C also arms a watchdog. After GRACE_S it writes every thread's and task's stack to
standard error (what the next occurrence needs to find the cause), and kills (SIGKILL) every process
`engine serve` started that is still running, except the Prefect server, which serve stops
itself; it names them. A flow run killed this way is a crash the engine recovers from
(docs/reliability.md). If serve has still not finished FORCE_S later, the watchdog calls
`on_force` (stop the server, exit 130). A second Ctrl-C keeps its meaning (stop now). An ignored
Ctrl-C (SIGINT set to be ignored, as for a job started in the background) stays ignored.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from engine.support import clock

GRACE_S = 15.0  # the runner's own shutdown: flow runs told to stop, schedules paused (a few seconds)
FORCE_S = 10.0  # after the stuck processes were killed


class Proc(NamedTuple):
    pid: int
    parent: int
    started: int  # clock ticks after boot: with the pid, names one process for good
    zombie: bool


def _read(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # "pid (comm) state ppid … starttime(22nd) …": comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        return Proc(pid, int(fields[1]), int(fields[19]), fields[0] == "Z")
    except (OSError, ValueError, IndexError):
        return None  # gone meanwhile, or not readable


def descendants(root: int, spare: set[int] = frozenset()) -> list[Proc]:
    """The live processes below `root` (children, theirs, …), without `spare` and what runs below it."""
    children: dict[int, list[Proc]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (proc := _read(int(entry.name))):
            children.setdefault(proc.parent, []).append(proc)
    found, todo = [], [root]
    while todo:
        for proc in children.get(todo.pop(), []):
            if proc.pid not in spare:
                todo.append(proc.pid)
                if not proc.zombie:
                    found.append(proc)
    return sorted(found)


def kill(proc: Proc) -> bool:
    """SIGKILL the process `proc` names, and no other: through a pidfd taken while its parent and
    start time still match (a pid freed and reused meanwhile is left alone)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:
        return False
    try:
        now = _read(proc.pid)
        if now is None or (now.parent, now.started) != (proc.parent, proc.started):
            return False
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def sweep(root: int, spare: set[int], say: Callable[[str], None] | None = None) -> list[int]:
    """Kill what runs below `root` but `spare`; the pids killed."""
    killed = []
    for proc in descendants(root, spare):
        command = _cmdline(proc.pid)
        if kill(proc):
            killed.append(proc.pid)
            if say:
                say(f"stopped: pid {proc.pid} ({command})")
    return killed


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


class Watchdog:
    """Armed by the first Ctrl-C (`chain_sigint`) or by `arm`; `done` once serve has finished."""

    def __init__(
        self,
        on_force: Callable[[], None],
        spare: Callable[[], set[int]] = set,
        *,
        grace: float = GRACE_S,
        force: float = FORCE_S,
        out=None,
    ):
        self.on_force = on_force
        self.spare = spare  # pids never killed, with what runs below them (the Prefect server)
        self.grace, self.force = grace, force
        self.out = out or sys.stderr
        self.killed: list[int] = []
        self._armed = False
        self._done = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def chain_sigint(self) -> None:
        """Arm on SIGINT, then do what the current handler does (asyncio's: cancel the main task).
        Call it in the main thread, once the handler to keep is in place; an ignored or default
        SIGINT is left as it is."""
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):
            return
        try:
            self._loop = asyncio.get_running_loop()  # its tasks' stacks are written with the threads'
        except RuntimeError:
            pass

        def on_sigint(signum, frame):
            self.arm()
            previous(signum, frame)

        signal.signal(signal.SIGINT, on_sigint)

    def arm(self) -> None:
        if not self._armed:
            self._armed = True
            threading.Thread(target=self._watch, name="serve-shutdown", daemon=True).start()

    def done(self) -> None:
        self._done.set()

    def _finished_within(self, seconds: float) -> bool:
        """Whether `done` comes within `seconds`. Polled with short sleeps: a timed Event.wait never
        returns under libfaketime (the suite's moved-clock runs), a sleep does."""
        deadline = clock.monotonic() + seconds
        while not self._done.is_set():
            if clock.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _say(self, text: str) -> None:
        try:
            print(f"engine serve: {text}", file=self.out, flush=True)
        except (OSError, ValueError):
            pass  # nobody reads standard error any more (a pipe closed by the same Ctrl-C)

    def _watch(self) -> None:
        if self._finished_within(self.grace):
            return
        try:
            self._say(f"still running {self.grace:.0f} s after Ctrl-C; the threads' stacks follow")
            faulthandler.dump_traceback(file=self.out, all_threads=True)
            for task in asyncio.all_tasks(self._loop) if self._loop else ():  # read from outside the loop:
                task.print_stack(limit=8, file=self.out)  # a diagnosis only, never relied on
        except Exception:
            pass
        try:
            self.killed += sweep(os.getpid(), set(self.spare()), self._say)
        except Exception as err:  # the last step must come whatever happens here
            self._say(f"could not stop its processes: {err}")
        if self._finished_within(self.force):
            return
        self._say(f"not finished {self.grace + self.force:.0f} s after Ctrl-C; stopping now")
        self.on_force()
