"""The papers of a night's new meetings, built in a second process while the night's write goes on.

Building a meeting's papers (engine/papers/agenda.py `meeting_papers`: its cases, their facts,
leads and 参加支援 proposals) reads the database and writes nothing; writing them (a version,
its document number, its files, its e-mail) must go in meeting order, in the write's one
transaction. When a write has many meetings without papers yet (a first night, a city's backlog),
a worker process builds theirs, in order, while this process writes the ones before: the night
takes about the longer of the two instead of their sum. The worker reads the database read-only:
the write holds the write lock, so nothing it reads can change meanwhile, and the write's own rows
(agendas, outbox, document numbers) are nothing the papers read. A write with few new meetings
builds them itself: a process costs about a second to start.

A worker that cannot start, or stops (the OOM killer, an error in it), costs the night nothing:
this process builds the papers it has not received, and the write goes on. The result is the
same either way (tests/papers/test_ahead.py).
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from engine.config import Config
from engine.papers.agenda import MeetingPapers, environment, meeting_papers, render_coordinator
from engine.participation.place_day import PlaceDays
from engine.rules.model import RuleSet

AHEAD_FROM = 48  # new meetings in one write from which a second process pays for its start
HERE_FIRST, HERE_EVERY = 4, 8  # of those, the ones the writing process builds (see Ahead)

_worker: dict = {}


def _start(database: str, rules: RuleSet, config: Config, on: date) -> None:
    from engine.screening.screen import die_with_parent  # the nightly workers' own guard

    die_with_parent()
    conn = sqlite3.connect(f"file:{quote(database)}?mode=ro", uri=True)
    _worker.update(conn=conn, rules=rules, config=config, on=on, days=PlaceDays(conn, config))


class Built(NamedTuple):
    """A meeting's papers, with its coordinator's copy hashed and rendered (they need no version)."""

    papers: MeetingPapers
    coordinator_digest: str
    coordinator_html: str


def _build(meeting_id: str) -> Built:
    from engine.papers.write import coordinator_digest  # which imports this module

    w = _worker
    papers = meeting_papers(w["conn"], w["rules"], w["config"], meeting_id, w["on"], days=w["days"])
    return Built(papers, coordinator_digest(papers), render_coordinator(environment(w["config"]), papers))


class Ahead:
    """The papers of `meetings` (in the order the write takes them), built by a worker process when
    there are at least `least` (AHEAD_FROM) of them and a second CPU; `take` gives each in turn (None: build it
    here). Use it as a context manager: leaving stops the worker, done or not."""

    def __init__(
        self, database: Path, rules: RuleSet, config: Config, on: date, meetings: list[str], least: int | None = None
    ):
        self._pool: ProcessPoolExecutor | None = None
        self._results: Iterator[Built] = iter(())
        self._order: list[str] = []
        self._next = 0
        self.here: set[str] = set()  # the new meetings this process builds itself
        self.stopped: str | None = None  # why the worker stopped early (its error's class: no data)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if len(meetings) < (AHEAD_FROM if least is None else least) or cpus < 2:
            return
        # this process builds the first few (while the worker starts) and one in HERE_EVERY after:
        # writing is most of its work, and the worker's building alone would take longer
        here = {m for i, m in enumerate(meetings) if i < HERE_FIRST or i % HERE_EVERY == 0}
        order = [m for m in meetings if m not in here]
        try:  # a worker that dies later (the OOM killer) ends its results (BrokenProcessPool), never hangs them
            pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(str(Path(database).resolve()), rules, config, on),
            )
            results = pool.map(_build, order, chunksize=4)
        except (OSError, NotImplementedError):  # no process can be started here (limits, no /dev/shm):
            return  # this process builds them all, as for a few
        self._pool, self._results, self._order, self.here = pool, results, order, here

    @property
    def active(self) -> bool:
        """A worker builds the papers of the new meetings."""
        return self._pool is not None

    def take(self, meeting_id: str) -> Built | None:
        """The worker's papers of `meeting_id` if it builds them (the write asks in its own order);
        None: build them here, as every one after, once the worker has stopped."""
        if self._next >= len(self._order) or self._order[self._next] != meeting_id:
            return None
        self._next += 1
        try:
            return next(self._results)
        except Exception as err:  # noqa: BLE001 — building here again raises what is a bug, with its traceback
            self.stopped = type(err).__name__  # its text may quote what the papers hold
            self._order = []
            self._stop()
            return None

    def _stop(self) -> None:
        if self._pool is not None:  # what is not built yet is not wanted any more
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *exc) -> None:
        self._stop()
