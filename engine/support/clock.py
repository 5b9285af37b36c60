"""The engine's one clock: every "now" and "today" of engine code comes from here.

- `now()` is an aware UTC instant, `today()` the date in Japan (a UTC server at 23:00 is
  already tomorrow in Tokyo), `stamp()` the ISO text written into the database.
- `monotonic()` measures durations; it never goes backwards when the wall clock is set.
- Tests pin the clock with `pinned(...)` (or `pin`/`unpin`); a process started with
  `ENGINE_NOW=2026-11-27T09:00:00+09:00` runs pinned at that instant (how tests drive the CLI
  and the Prefect flows in subprocesses).

No other engine module reads the wall clock; tests/support/test_clock.py fails if one does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")
ENV = "ENGINE_NOW"

_pinned: datetime | None = None


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"the clock needs a time with its UTC offset, got {at.isoformat()}")
    return at.astimezone(UTC)


def _from_env() -> datetime | None:
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"{ENV}={text!r} is not an ISO time: write e.g. 2026-11-27T09:00:00+09:00") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=TOKYO)
    return _aware(at)


def now() -> datetime:
    """The current instant, aware, in UTC."""
    if _pinned is not None:
        return _pinned
    return _from_env() or datetime.now(UTC)


def local_now() -> datetime:
    """The current instant in Japan."""
    return now().astimezone(TOKYO)


def today() -> date:
    """Today's date in Japan."""
    return local_now().date()


def stamp() -> str:
    """The current instant as ISO text with seconds, as the database keeps it."""
    return now().isoformat(timespec="seconds")


def monotonic() -> float:
    """Seconds on a counter that only moves forward: for durations, never for dates."""
    return time.perf_counter()


def pin(at: datetime | None) -> None:
    """Stop the clock at `at` (None lets it run again)."""
    global _pinned
    _pinned = None if at is None else _aware(at)


def unpin() -> None:
    pin(None)


@contextmanager
def pinned(at: datetime) -> Iterator[None]:
    """Run a block with the clock stopped at `at`."""
    before = _pinned
    pin(at)
    try:
        yield
    finally:
        pin(before)
