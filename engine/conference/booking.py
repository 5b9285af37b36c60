"""Book a case into a meeting: the first slot on a business day far enough ahead (normal), or the
nearest slot within the urgent window, adding a meeting when none is free (urgent)."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta

from pydantic import BaseModel

from engine.config import ConferenceType, Config
from engine.support.business_days import Calendar
from engine.support.errors import EngineError

TYPE_LETTER = {"support": "S", "multi": "J"}
HORIZON_DAYS = 3 * 366  # a normal case that finds no free slot within three years is refused


class Meeting(BaseModel):
    meeting_id: str
    conference_type: ConferenceType
    held_on: date
    start_time: str
    place: str
    capacity: int
    added_for_urgent: bool = False


class NoSlot(EngineError):
    pass


def meeting_id(kind: ConferenceType, day: date, hhmm: str) -> str:
    return f"M-{day:%Y%m%d}-{hhmm.replace(':', '')}-{TYPE_LETTER[kind]}"


class Booker:
    """Books within one database transaction; keeps counts in memory so 1,000 cases stay fast."""

    def __init__(self, conn: sqlite3.Connection, config: Config, on: date):
        self.conn, self.config, self.on = conn, config, on
        self.calendar = Calendar.of(config.conference)
        self.capacity = config.conference.cases_per_meeting
        self.booked: dict[str, int] = dict(
            conn.execute(
                "SELECT meeting_id, COUNT(*) FROM cases WHERE meeting_id IS NOT NULL AND is_open = 1 GROUP BY meeting_id"
            ).fetchall()
        )
        self.known: dict[str, Meeting] = {}
        self.by_day: dict[tuple[str, date], list[Meeting]] = {}
        self.full_before: dict[str, date] = {}  # per type: every meeting before this day is full
        for row in conn.execute(
            "SELECT meeting_id, conference_type, held_on, start_time, place, capacity, added_for_urgent FROM meetings WHERE held_on >= ?",
            (on.isoformat(),),
        ):
            m = Meeting(
                meeting_id=row[0],
                conference_type=row[1],
                held_on=date.fromisoformat(row[2]),
                start_time=row[3],
                place=row[4],
                capacity=row[5],
                added_for_urgent=bool(row[6]),
            )
            self._remember(m)

    def _remember(self, m: Meeting) -> None:
        self.known[m.meeting_id] = m
        self.by_day.setdefault((m.conference_type, m.held_on), []).append(m)

    def _slots_on(self, kind: ConferenceType, day: date) -> list[Meeting]:
        """Regular slots of that day plus meetings added earlier (urgent), in time order."""
        out = {}
        if self.calendar.is_business_day(day):
            for s in self.config.conference.slots[kind]:
                if s.weekday_number == day.weekday():
                    hhmm = s.time.strftime("%H:%M")
                    mid = meeting_id(kind, day, hhmm)
                    out[mid] = self.known.get(mid) or Meeting(
                        meeting_id=mid,
                        conference_type=kind,
                        held_on=day,
                        start_time=hhmm,
                        place=s.place,
                        capacity=self.capacity,
                    )
        for m in self.by_day.get((kind, day), ()):
            out.setdefault(m.meeting_id, m)
        return sorted(out.values(), key=lambda m: m.start_time)

    def _free(self, m: Meeting) -> bool:
        return self.booked.get(m.meeting_id, 0) < m.capacity

    def _take(self, m: Meeting) -> Meeting:
        if m.meeting_id not in self.known:
            self.conn.execute(
                "INSERT OR IGNORE INTO meetings (meeting_id, conference_type, held_on, start_time, place, capacity, added_for_urgent) VALUES (?,?,?,?,?,?,?)",
                (
                    m.meeting_id,
                    m.conference_type,
                    m.held_on.isoformat(),
                    m.start_time,
                    m.place,
                    m.capacity,
                    int(m.added_for_urgent),
                ),
            )
            self._remember(m)
        self.booked[m.meeting_id] = self.booked.get(m.meeting_id, 0) + 1
        return m

    def _extra_time(self, kind: ConferenceType, day: date, at) -> str:
        """The extra meeting's time, moved 90 minutes later while the room is taken that day by
        the other conference type's extra meeting (same place)."""
        t = datetime.combine(day, at)
        while any(
            m.added_for_urgent and m.conference_type != kind and m.start_time == t.strftime("%H:%M")
            for m in self.known.values()
            if m.held_on == day
        ):
            t += timedelta(minutes=90)
        return t.strftime("%H:%M")

    def release(self, meeting_id: str | None) -> None:
        """A case leaves a meeting (it is moved elsewhere): its place is free again."""
        if meeting_id and self.booked.get(meeting_id, 0) > 0:
            self.booked[meeting_id] -= 1
            m = self.known.get(meeting_id)
            if m is not None and m.held_on < self.full_before.get(m.conference_type, m.held_on):
                self.full_before[m.conference_type] = m.held_on

    def free_by(self, kind: ConferenceType, latest: date) -> bool:
        """A normal case booked now would find a free meeting no later than `latest` (nothing is taken)."""
        first = self.calendar.add(self.on, self.config.conference.lead_business_days)
        day = max(first, self.full_before.get(kind, first))
        while day <= latest:
            if any(self._free(m) for m in self._slots_on(kind, day)):
                return True
            day += timedelta(days=1)
        return False

    def book(self, kind: ConferenceType, urgent: bool) -> Meeting:
        if urgent:
            return self._book_urgent(kind)
        first = self.calendar.add(self.on, self.config.conference.lead_business_days)
        day = max(first, self.full_before.get(kind, first))  # skip days already found full (fast for 1,000s of cases)
        while day <= self.on + timedelta(days=HORIZON_DAYS):
            for m in self._slots_on(kind, day):
                if self._free(m):
                    self.full_before[kind] = day
                    return self._take(m)
            day += timedelta(days=1)
        self.full_before[kind] = day
        raise NoSlot(
            f"no free {kind} meeting slot within {HORIZON_DAYS} days: add slots or raise cases_per_meeting in conference.yaml"
        )

    def _book_urgent(self, kind: ConferenceType) -> Meeting:
        """Nearest free slot in the next `urgent_business_days` business days (not today: the
        agenda must reach the agencies first); else a meeting added at the extra time on the
        first of those days that has room; else the extra meeting of the first day, overbooked."""
        window = [self.calendar.add(self.on, i) for i in range(1, self.config.conference.urgent_business_days + 1)]
        for day in window:
            for m in self._slots_on(kind, day):
                if self._free(m):
                    return self._take(m)
        extra = self.config.conference.extra_meeting
        added = []
        for day in window:
            hhmm = self._extra_time(kind, day, extra.time)
            mid = meeting_id(kind, day, hhmm)
            m = self.known.get(mid) or Meeting(
                meeting_id=mid,
                conference_type=kind,
                held_on=day,
                start_time=hhmm,
                place=extra.place,
                capacity=self.capacity,
                added_for_urgent=True,
            )
            if self._free(m):
                return self._take(m)
            added.append(m)
        return self._take(added[0])  # urgent cases are never pushed out of the window
