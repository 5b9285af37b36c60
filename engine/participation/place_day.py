"""What a place is on a day, whoever it is proposed for: its free places, its record of referrals,
its next opening, whether its entry is fresh, and the Japanese lines that say so.

A night's papers propose places for every case of every meeting; these facts are the same for each
of them, so `PlaceDays` works them out once per place. It lives for one run of proposals (one
write of the papers, one page): nothing in such a run answers a referral, so the counts it keeps
cannot go stale within it. Whom a place suits (age, needs, area, consent) is the member's part and
stays in engine/participation/matching.py.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import NamedTuple

from pydantic import BaseModel

from engine.config import Config
from engine.participation import matching_explain as words
from engine.participation.directory import Place

ACCEPTED_EVER = ("accepted", "attending", "ended")  # the place took the person at some point


class Record(BaseModel):
    """The place's referrals so far (all cases): how often it took a person, how many still attend."""

    referred: int = 0
    answered: int = 0
    accepted: int = 0  # accepted, attending or ended: taken at some point
    attending: int = 0

    @property
    def rate(self) -> float | None:
        return self.accepted / self.answered if self.answered else None


def place_record(conn: sqlite3.Connection, place_id: str) -> Record:
    marks = ",".join("?" * len(ACCEPTED_EVER))
    row = conn.execute(
        "SELECT COUNT(*), COUNT(answered_on), "
        f"COALESCE(SUM(status IN ({marks})), 0), COALESCE(SUM(status = 'attending'), 0) "
        "FROM referrals WHERE place_id = ?",
        (*ACCEPTED_EVER, place_id),
    ).fetchone()
    return Record(referred=row[0], answered=row[1], accepted=row[2], attending=row[3])


def capacity_now(conn: sqlite3.Connection, place: Place) -> int:
    """The directory's free places less those taken since they were counted."""
    (taken,) = conn.execute(
        "SELECT COUNT(*) FROM referrals WHERE place_id = ? AND status IN ('accepted', 'attending') "
        "AND answered_on >= ?",
        (place.id, place.capacity.updated_on.isoformat()),
    ).fetchone()
    return max(0, place.capacity.available - taken)


class PlaceDay(NamedTuple):
    free: int
    fresh: bool
    record: Record
    next_open: date | None
    schedule: str  # 毎週火・木 13:00〜16:00
    schedule_line: str
    capacity_line: str
    fresh_line: str
    record_line: str


class PlaceDays:
    """Each place's PlaceDay on a day, worked out on first use (see the module docstring): what
    does not depend on the day (free places, record) once per place, the rest once per day."""

    def __init__(self, conn: sqlite3.Connection, config: Config):
        self.conn = conn
        self.stale_months = config.participation.settings.stale_months
        self._seen: dict[tuple[str, date], PlaceDay] = {}
        self._counts: dict[str, tuple[int, Record, str, str, str]] = {}

    def _counted(self, place: Place) -> tuple[int, Record, str, str, str]:
        found = self._counts.get(place.id)
        if found is None:
            free, record = capacity_now(self.conn, place), place_record(self.conn, place.id)
            found = self._counts[place.id] = (
                free,
                record,
                place.schedule.text(),
                words.capacity(place, free),
                words.record(record),
            )
        return found

    def of(self, place: Place, on: date) -> PlaceDay:
        found = self._seen.get((place.id, on))
        if found is None:
            free, record, schedule, capacity_line, record_line = self._counted(place)
            fresh = not place.stale(on, self.stale_months)
            next_open = place.schedule.next_on(on)
            found = self._seen[place.id, on] = PlaceDay(
                free=free,
                fresh=fresh,
                record=record,
                next_open=next_open,
                schedule=schedule,
                schedule_line=words.schedule(place, next_open),
                capacity_line=capacity_line,
                fresh_line=words.freshness(place, fresh),
                record_line=record_line,
            )
        return found
