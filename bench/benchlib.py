"""What the benchmarks share: the repository root on sys.path, the day, peak RSS, one phase per process.

Every benchmark runs on ON, whatever the calendar says: importing this module pins the engine's
clock at 09:00 in Japan on that day, in this process and (through ENGINE_NOW) in every process it
starts, so that nothing the engine decides by "now" (a meeting already held, a reminder due)
moves a figure as the calendar moves. Benchmarks time their steps with time.perf_counter().
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.support import clock  # noqa: E402

ON = date(2026, 11, 27)  # a Friday
AT = datetime.combine(ON, time(9, 0), tzinfo=clock.TOKYO)

os.environ[clock.ENV] = AT.isoformat()
clock.pin(AT)


def peak_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def cpu_seconds() -> tuple[float, float]:
    """(this process's CPU seconds so far, those of its children that have ended and been waited for):
    the difference over a phase says how far it used both cores."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def cpu_used(before: tuple[float, float]) -> dict:
    """CPU seconds since `before` (cpu_seconds()): this process's and its children's."""
    now = cpu_seconds()
    return {"self": round(now[0] - before[0], 2), "children": round(now[1] - before[1], 2)}


def run(fn, *args):
    """Run one phase in a fresh process (not a daemon: the full screen starts workers)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _tree_rss_kb(pid: int) -> int:
    """VmRSS of `pid` and every process below it, in kB (Linux /proc; 0 where unreadable)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status", encoding="ascii", errors="replace") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{p}/task/{p}/children", encoding="ascii") as f:
                todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


class TreePeak:
    """The peak, over time, of the RSS summed over this process and its children (the screen's
    workers), sampled every `every` seconds on a thread: `with TreePeak() as peak: ...; peak.mb`.
    ru_maxrss of RUSAGE_CHILDREN is the largest child's, not the sum."""

    def __init__(self, every: float = 0.05):
        import threading

        self.every, self.kb = every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.kb = max(self.kb, _tree_rss_kb(os.getpid()))
            self._stop.wait(self.every)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.kb = max(self.kb, _tree_rss_kb(os.getpid()))

    @property
    def mb(self) -> float:
        return round(self.kb / 1024, 1)
