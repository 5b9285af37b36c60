"""Meeting capacity against demand (`engine config check --workspace`): does the town's stream of
cases fit the regular meeting slots of conference.yaml?

Demand, per conference type (支援会議 / 重層的支援会議), per month over the last DEMAND_MONTHS months:
the cases the workspace opened in that period, plus the older cases still waiting for a meeting
(status detected, no meeting booked), which the same period would have to absorb. Routed cases
(no conference type) are not counted. Supply: the slots of each type that fall on business days in
the same period (engine/support/business_days.py Calendar) × cases_per_meeting, per month.
When demand exceeds supply, a warning says how many slots per week (of cases_per_meeting cases
each) would meet it. Reads only; a workspace without any such case gives no warning.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import date, timedelta

from pydantic import BaseModel

from engine.config.models import WEEKDAYS, Conference
from engine.support.business_days import Calendar, add_months

DEMAND_MONTHS = 3


class Capacity(BaseModel):
    conference_type: str  # support | multi
    name: str  # the local name (支援会議, 重層的支援会議)
    since: date  # the period: after `since`, up to and including `until`
    until: date
    months: int
    opened: int  # cases of this type opened in the period
    waiting_before: int  # older cases of this type still waiting for a meeting
    demand_per_month: float
    slots_per_week: int
    cases_per_meeting: int
    meetings_in_period: int  # slot occurrences on business days
    supply_per_month: float
    slots_per_week_needed: int  # of cases_per_meeting cases each

    @property
    def exceeded(self) -> bool:
        return self.demand_per_month > self.supply_per_month

    def warning(self) -> str:
        """The Japanese warning line (coordinator-facing, figures only)."""
        demand = f"{self.opened:,} 件の事案を開始" + (
            f"（ほかに期間前から会議の予約待ちが {self.waiting_before:,} 件）" if self.waiting_before else ""
        )
        return (
            f"{self.name}の枠が需要に足りません: 直近{self.months}か月（{self.since + timedelta(days=1)}〜{self.until}）に"
            f"{demand}、月平均 {self.demand_per_month:,.1f} 件に対し、枠は週 {self.slots_per_week} 枠 × "
            f"{self.cases_per_meeting} 件で月平均 {self.supply_per_month:,.1f} 件です。"
            f"需要に見合うには週 {self.slots_per_week_needed} 枠（1 枠 {self.cases_per_meeting} 件）が必要です"
            f"（conference.yaml の slots、または cases_per_meeting を見直してください）"
        )


def _business_days(calendar: Calendar, since: date, until: date) -> list[date]:
    days, d = [], since + timedelta(days=1)
    while d <= until:
        if calendar.is_business_day(d):
            days.append(d)
        d += timedelta(days=1)
    return days


def capacity(conn: sqlite3.Connection, conference: Conference, on: date, months: int = DEMAND_MONTHS) -> list[Capacity]:
    """Demand and supply of each conference type over the `months` months up to `on`; empty when the
    workspace opened no conference case in the period and none waits for a meeting."""
    since = add_months(on, -months)
    rows = conn.execute(
        "SELECT conference_type, "
        "SUM(opened_on > ? AND opened_on <= ?), "
        "SUM(opened_on <= ? AND status = 'detected' AND meeting_id IS NULL) "
        "FROM cases WHERE conference_type IS NOT NULL GROUP BY conference_type",
        (since.isoformat(), on.isoformat(), since.isoformat()),
    ).fetchall()
    counts = {t: (opened or 0, waiting or 0) for t, opened, waiting in rows}
    if not any(opened + waiting for opened, waiting in counts.values()):
        return []
    business = _business_days(Calendar.of(conference), since, on)
    weeks_per_month = len(business) / 5 / months  # weeks of five business days
    out = []
    for kind, slots in conference.slots.items():
        opened, waiting = counts.get(kind, (0, 0))
        if not opened + waiting:
            continue
        weekdays = [WEEKDAYS[s.weekday] for s in slots]
        meetings = sum(weekdays.count(d.weekday()) for d in business)
        demand = (opened + waiting) / months
        per_slot_month = conference.cases_per_meeting * weeks_per_month
        out.append(
            Capacity(
                conference_type=kind,
                name=conference.names[kind],
                since=since,
                until=on,
                months=months,
                opened=opened,
                waiting_before=waiting,
                demand_per_month=round(demand, 1),
                slots_per_week=len(slots),
                cases_per_meeting=conference.cases_per_meeting,
                meetings_in_period=meetings,
                supply_per_month=round(meetings * conference.cases_per_meeting / months, 1),
                slots_per_week_needed=math.ceil(demand / per_slot_month) if per_slot_month else 0,
            )
        )
    return out


def capacity_warnings(
    conn: sqlite3.Connection, conference: Conference, on: date, months: int = DEMAND_MONTHS
) -> list[str]:
    """The warning lines of the conference types whose demand exceeds their slots."""
    return [c.warning() for c in capacity(conn, conference, on, months) if c.exceeded]
