"""The state of one chunk of households while it is generated: its random stream, the CSV rows it
collects, and the small helpers every record goes through (dates, ISO or 和暦 cells)."""

from __future__ import annotations

import random
from datetime import date

from engine.demo.town.calendar import TownCalendar
from engine.demo.town.picker import Picker
from engine.demo.town.population import PATTERNS, SCENARIOS


class Member:
    """One person being generated. Class attributes are defaults; planting sets flags."""

    hikikomori = False  # no income or school record in the last 6 months
    no_service = False  # must not use any service (planted 8050 / isolated elder)
    care: str | None = None  # forced active care_level
    dementia: str | None = None  # forced dementia (without care_level if care is None)
    disability: str | None = None  # forced active certificate
    absence = 0  # forced school_absence_days
    unenrolled = False  # school-age child without any enrollment
    check_missed: str | None = None  # forced health_check_missed value
    has_care = False  # set while generating: has an active care_level
    has_disability: str | None = None  # set while generating: certificate kind

    pid: str  # set by `identify`, with birth (ordinal) and school_age (age on 1 April)
    birth: int
    school_age: int

    def __init__(self, rel: str, sex: str, age: int):
        self.rel = rel
        self.sex = sex
        self.age = age


class Household:
    """Household-level state while generating."""

    def __init__(self, hid: str, members: list[Member], kind: str):
        self.hid = hid
        self.members = members
        self.kind = kind
        self.foreign: str | None = None
        self.tenant = False
        self.assistance = False
        self.arrears_planted = False  # the scenario adds its own arrears


class Chunk:
    """One chunk of households with its own random stream, collecting the CSV rows."""

    def __init__(self, seed: int, cal: TownCalendar, wareki_share: float, to_wareki):
        self.rng = random.Random(seed)
        self.r = self.rng.random
        self.cal = cal
        self.wareki_share = wareki_share
        self.to_wareki = to_wareki
        self.iso_cache: dict[int, str] = {}
        self.wareki_cache: dict[tuple[int, str], str] = {}
        self.households: list[list[str]] = []
        self.persons: list[list[str]] = []
        self.records: list[list[str]] = []
        self.planted = dict.fromkeys(PATTERNS, 0)
        self.seen: set[tuple[str, ...]] = set()  # per household, see first_time
        self.scenario_pick = Picker([*SCENARIOS, (None, 1.0 - sum(p for _, p in SCENARIOS))])

    # ---- small helpers

    def between(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return lo + int(self.r() * (hi - lo + 1))

    def fmt(self, ordinal: int) -> str:
        """A date cell: ISO, or 和暦 for a share of cells."""
        if self.wareki_share and self.r() < self.wareki_share:
            style = "kanji" if self.r() < 0.6 else "abbr"
            key = (ordinal, style)
            text = self.wareki_cache.get(key)
            if text is None:
                text = self.wareki_cache[key] = self.to_wareki(date.fromordinal(ordinal), style)
            return text
        text = self.iso_cache.get(ordinal)
        if text is None:
            text = self.iso_cache[ordinal] = date.fromordinal(ordinal).isoformat()
        return text

    def past(self, max_days: int, min_days: int = 1) -> int:
        """An ordinal between `max_days` and `min_days` before today."""
        return self.cal.today - min_days - int(self.r() * max(1, max_days - min_days))

    def record(self, m: Member, source: str, code: str, value: str, start: int, end: int | None = None) -> None:
        self.records.append([m.pid, source, code, value, self.fmt(start), self.fmt(end) if end else ""])

    def first_time(self, *key: str) -> bool:
        """True the first time `key` is seen in the current household (no duplicate arrears etc.)."""
        if key in self.seen:
            return False
        self.seen.add(key)
        return True
