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


def run(fn, *args):
    """Run one phase in a fresh process (not a daemon: the full screen starts workers)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()
