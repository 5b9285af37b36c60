"""Ctrl-C always ends `engine serve`, within a bounded time.

On Ctrl-C, Prefect's runner cancels its loops, stops the flow runs it started and pauses the
schedules. It waits for each flow-run process to close, shielded from cancellation, and a process
that never closes (seen in full test runs: a flow run that had just finished, hit by the same
Ctrl-C) kept `engine serve`, and the Prefect server it started, running for good.

So the first Ctrl-C also arms a watchdog. After GRACE_S it kills (SIGKILL) every process
`engine serve` started that is still running, except the Prefect server, which serve stops
itself; it names them on standard error. A flow run killed this way is a crash the engine
recovers from (docs/reliability.md). If serve has still not finished FORCE_S later, the
watchdog calls `on_force` (stop the server, exit). A second Ctrl-C keeps its meaning (stop now).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

GRACE_S = 15.0  # the runner's own shutdown: flow runs told to stop, schedules paused (a few seconds)
FORCE_S = 10.0  # after the stuck processes were killed


def _parents() -> dict[int, int]:
    """pid → parent pid of every process this user can see (from /proc)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'
        out[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return out


def descendants(root: int, spare: set[int] = frozenset()) -> list[int]:
    """The processes below `root` (children, theirs, …), without `spare` and what runs below it."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            if pid not in spare:
                found.append(pid)
                todo.append(pid)
    return sorted(found)


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

    def chain_sigint(self) -> None:
        """Arm on SIGINT, then do what the current handler does (asyncio's: cancel the main task).
        Call it in the main thread, once the handler to keep is in place."""
        previous = signal.getsignal(signal.SIGINT)

        def on_sigint(signum, frame):
            self.arm()
            if callable(previous):
                previous(signum, frame)
            else:
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_sigint)

    def arm(self) -> None:
        if not self._armed:
            self._armed = True
            threading.Thread(target=self._watch, name="serve-shutdown", daemon=True).start()

    def done(self) -> None:
        self._done.set()

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _watch(self) -> None:
        if self._done.wait(self.grace):
            return
        stuck = descendants(os.getpid(), set(self.spare()))
        for pid in stuck:
            self._say(
                f"engine serve: still running {self.grace:.0f} s after Ctrl-C, stopped: pid {pid} ({_cmdline(pid)})"
            )
            try:
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
            except ProcessLookupError:
                pass
        if self._done.wait(self.force):
            return
        self._say(f"engine serve: not finished {self.grace + self.force:.0f} s after Ctrl-C; stopping now")
        self.on_force()
