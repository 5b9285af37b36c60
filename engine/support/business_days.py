"""Business days: weekdays that are neither national holidays (jpholiday) nor closed days of the
municipality (年末年始 12/29-1/3 by default, configurable in conference.yaml)."""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta
from typing import TYPE_CHECKING

import jpholiday

if TYPE_CHECKING:
    from engine.config import Conference


def parse_closed_day(item: str):
    """'12-29..01-03' -> ((12,29),(1,3)); '05-01' -> ((5,1),(5,1)); '2027-01-04' -> date."""
    text = str(item).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
        first, _, last = text.partition("..")
        ends = []
        for part in (first, last or first):
            m, d = (int(x) for x in part.strip().split("-"))
            date(2024, m, d)  # a leap year accepts every real month-day
            ends.append((m, d))
        return tuple(ends)
    except ValueError:
        raise ValueError(f"closed day '{item}' must be MM-DD, MM-DD..MM-DD (e.g. 12-29..01-03) or YYYY-MM-DD") from None


class Calendar:
    def __init__(self, closed_days: tuple[str, ...] = ("12-29..01-03",)):
        self._dates: set[date] = set()
        self._ranges: list[tuple[tuple[int, int], tuple[int, int]]] = []
        for item in closed_days:
            parsed = parse_closed_day(item)
            if isinstance(parsed, date):
                self._dates.add(parsed)
            else:
                self._ranges.append(parsed)
        self._closed: dict[date, str | None] = {}  # closed_reason by day, as asked

    @classmethod
    def of(cls, conference: Conference) -> Calendar:
        """The calendar of these closed days: one per configuration, so that what it has worked
        out (jpholiday's answer for each day asked) is kept between calls."""
        return _calendar(tuple(str(d) for d in conference.closed_days))

    def closed_reason(self, day: date) -> str | None:
        """Why `day` is not a business day (土曜日, 祝日名, 閉庁日), or None if it is one."""
        try:
            return self._closed[day]
        except KeyError:
            reason = self._closed[day] = self._reason(day)
            return reason

    def _reason(self, day: date) -> str | None:
        if day.weekday() == 5:
            return "土曜日"
        if day.weekday() == 6:
            return "日曜日"
        name = jpholiday.is_holiday_name(day)
        if name:
            return name
        if day in self._dates:
            return "閉庁日"
        md = (day.month, day.day)
        for first, last in self._ranges:
            inside = first <= md <= last if first <= last else (md >= first or md <= last)  # 12-29..01-03 wraps
            if inside:
                return "閉庁日（年末年始等）"
        return None

    def is_business_day(self, day: date) -> bool:
        return self.closed_reason(day) is None

    def between(self, start: date, end: date) -> int:
        """The business days after `start` up to and including `end` (0 when `end` is not after
        `start`): n such that add(start, n) is `end` when `end` is a business day."""
        n, d = 0, start
        while d < end:
            d += timedelta(days=1)
            n += self.is_business_day(d)
        return n

    def add(self, day: date, n: int) -> date:
        """The n-th business day after `day` (n=0: `day` itself if a business day, else the next)."""
        d = day
        if n == 0:
            while not self.is_business_day(d):
                d += timedelta(days=1)
            return d
        while n > 0:
            d += timedelta(days=1)
            if self.is_business_day(d):
                n -= 1
        return d


@functools.lru_cache(maxsize=16)
def _calendar(closed_days: tuple[str, ...]) -> Calendar:
    return Calendar(closed_days)


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it is shorter: 31 Jan + 1 → 28/29 Feb)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, d))
        except ValueError:
            continue
    raise AssertionError("unreachable")
