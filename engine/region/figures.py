"""地域づくり: the area view's figures — where needs outrun resources, per area (households.area), by
month (YYYY-MM) over the last N months up to a day. docs/community.md defines each figure.

Per area and month:
- households: the area's households in the workspace now (the import format has no move-in date);
- flagged households per pattern (flag rule): households with a flag of that rule open on some day
  of the month — first_detected on or before the month's last day (or the day, in its month), and
  not resolved on or before the month's first day (a flag is open from first_detected to the day
  before resolved_on); also per 1,000 households, and any pattern (a household counted once);
- cases opened (cases.opened_on in the month), and for them the median business days from the
  case's first flag (the earliest first_detected of its flags) to its first conference (the
  earliest held_on of its meetings, held by the day); cases without a conference yet are not in it;
- needs recorded (participation_needs.recorded_on in the month) that have no place: `unmatched`
  (the conference said no place in town can take the person), or still `open` past the
  coordinator's grace (resources.yaml settings.escalation_business_days after it was recorded or
  its last referral closed, as the gap audit counts need_without_referral);
- referrals declined (closed_on in the month), by reason.
Places (now): configs/resources.yaml by area and category, free capacity as matching counts it.
Pseudonymous throughout: households and persons are counted, never named. The DV patterns
(conference.yaml locked_flags) are never counted by area (docs/community.md).
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import Counter, defaultdict
from datetime import date, timedelta

from pydantic import BaseModel

from engine.config import Config
from engine.participation.audit import NEED_SINCE, past_grace
from engine.participation.directory import ALL_AREAS
from engine.participation.place_day import capacity_now
from engine.rules.model import RuleSet
from engine.support.business_days import Calendar, add_months
from engine.support.vocabulary import DECLINE_REASON_LABELS, PLACE_CATEGORY_LABELS

DEFAULT_MONTHS = 12


class Month(BaseModel):
    key: str  # YYYY-MM
    first: date
    last: date  # the month's last day, or the view's day in its month


class MonthFigures(BaseModel):
    area: str
    month: str  # YYYY-MM
    households: int
    flagged: dict[str, int] = {}  # flag rule id → households with such a flag open in the month
    flagged_any: int = 0  # households with any flag open in the month
    cases_opened: int = 0
    conferenced: int = 0  # of the cases opened: those whose first conference was held by the day
    median_days_to_conference: float | None = None  # business days, flag → first conference
    needs_recorded: int = 0
    needs_unmatched: int = 0  # recorded in the month, status unmatched
    needs_open_past_grace: int = 0  # recorded in the month, still open past the grace on the day
    declines: dict[str, int] = {}  # decline reason code → referrals declined in the month

    @property
    def needs_without_place(self) -> int:
        return self.needs_unmatched + self.needs_open_past_grace

    def per_1000(self, count: int) -> float | None:
        return round(count * 1000 / self.households, 1) if self.households else None


class PlaceFigures(BaseModel):
    area: str  # the place's area, or 全域
    category: str
    category_label: str
    places: int  # listed and not inactive
    closed: int  # of them: temporarily closed
    with_free: int  # active places with a free place now
    free: int  # free places now, over the active places
    stale: int  # listings (not inactive) not verified for settings.stale_months


class Unmet(BaseModel):
    """One area's count of one need without a place, over the view's months."""

    area: str
    need: str  # a code of NEED_LABELS (or of a category, for a referral made without a need)
    unmatched: int = 0
    open_past_grace: int = 0
    declined_capacity: int = 0
    declined_eligibility: int = 0

    @property
    def total(self) -> int:
        return self.unmatched + self.open_past_grace + self.declined_capacity + self.declined_eligibility


class Figures(BaseModel):
    on: date
    months: list[Month]
    areas: list[str]  # the households' areas, in order
    households: dict[str, int]
    flag_titles: dict[str, str]  # rule id → title (the rule's id when the rule is gone)
    monthly: list[MonthFigures]  # per area, then month
    places: list[PlaceFigures]
    unmet: list[Unmet]  # per area and need, total > 0

    def of(self, area: str, month: str) -> MonthFigures:
        return next(m for m in self.monthly if m.area == area and m.month == month)

    def patterns(self) -> list[str]:
        """The flag rules with a flagged household in the view, in the rules' order, then by id."""
        seen = {r for m in self.monthly for r, n in m.flagged.items() if n}
        order = list(self.flag_titles)
        return sorted(seen, key=lambda r: (order.index(r) if r in order else len(order), r))


def months_up_to(on: date, n: int) -> list[Month]:
    """The `n` calendar months ending with `on`'s (the last one up to `on`), oldest first."""
    out = []
    for back in range(n - 1, -1, -1):
        first = add_months(on.replace(day=1), -back)
        last = min(add_months(first, 1) - timedelta(days=1), on)
        out.append(Month(key=f"{first:%Y-%m}", first=first, last=last))
    return out


def business_days_between(cal: Calendar, start: date, end: date) -> int:
    """The business days after `start` up to and including `end` (Calendar.between)."""
    return cal.between(start, end)


def _month_of(months: list[Month], day: str | None) -> str | None:
    if not day:
        return None
    d = date.fromisoformat(day[:10])
    return next((m.key for m in months if m.first <= d <= m.last), None)


def _flags(conn, months, rows: dict[tuple[str, str], MonthFigures], locked: tuple[str, ...]) -> None:
    """The flagged households per area, month and pattern; never a `locked` (DV) pattern, which in a
    small area would say where a DV victim lives, nor a household flagged by such patterns only."""
    first, last = months[0].first.isoformat(), months[-1].last.isoformat()
    by_rule: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    anyone: dict[tuple[str, str], set[str]] = defaultdict(set)
    for hid, area, rule_id, detected, resolved in conn.execute(
        "SELECT f.household_id, h.area, f.rule_id, f.first_detected, f.resolved_on FROM flags f "
        "JOIN households h ON h.household_id = f.household_id "
        "WHERE f.first_detected <= ? AND (f.resolved_on IS NULL OR f.resolved_on > ?) "
        f"AND f.rule_id NOT IN ({','.join('?' * len(locked))})",
        (last, first, *locked),
    ):
        for m in months:
            if detected <= m.last.isoformat() and (resolved is None or resolved > m.first.isoformat()):
                by_rule[(area, m.key, rule_id)].add(hid)
                anyone[(area, m.key)].add(hid)
    for (area, key, rule_id), hids in by_rule.items():
        rows[(area, key)].flagged[rule_id] = len(hids)
    for (area, key), hids in anyone.items():
        rows[(area, key)].flagged_any = len(hids)


def _shown(locked: tuple[str, ...]) -> tuple[str, list]:
    """SQL over cases c: the case is not one opened for `locked` (DV) patterns only, which counted by
    area would say where a DV victim lives as surely as the pattern's own count."""
    marks = ",".join("?" * len(locked))
    return (
        "(NOT EXISTS (SELECT 1 FROM case_flags cf JOIN flags f ON f.flag_id = cf.flag_id WHERE cf.case_id = c.case_id "
        f"AND f.rule_id IN ({marks})) OR EXISTS (SELECT 1 FROM case_flags cf JOIN flags f ON f.flag_id = cf.flag_id "
        f"WHERE cf.case_id = c.case_id AND f.rule_id NOT IN ({marks})))",
        [*locked, *locked],
    )


def _cases(conn, cal: Calendar, on: date, months, rows, locked: tuple[str, ...]) -> None:
    first, day = months[0].first.isoformat(), on.isoformat()
    shown, hidden = _shown(locked)
    waits: dict[tuple[str, str], list[int]] = defaultdict(list)
    for area, opened, flagged, held in conn.execute(
        "SELECT h.area, c.opened_on, "
        "(SELECT MIN(f.first_detected) FROM case_flags cf JOIN flags f ON f.flag_id = cf.flag_id WHERE cf.case_id = c.case_id), "
        "(SELECT MIN(m.held_on) FROM meetings m WHERE m.held_on <= ? AND m.meeting_id IN "
        " (SELECT meeting_id FROM case_meetings WHERE case_id = c.case_id UNION SELECT c.meeting_id)) "
        "FROM cases c JOIN households h ON h.household_id = c.household_id WHERE c.opened_on >= ? AND c.opened_on <= ? "
        f"AND {shown}",
        (day, first, day, *hidden),
    ):
        key = _month_of(months, opened)
        if key is None:
            continue
        row = rows[(area, key)]
        row.cases_opened += 1
        if held:
            row.conferenced += 1
            since = date.fromisoformat((flagged or opened)[:10])
            waits[(area, key)].append(business_days_between(cal, since, date.fromisoformat(held)))
    for k, days in waits.items():
        rows[k].median_days_to_conference = float(statistics.median(days))


def _needs(conn, config: Config, cal: Calendar, on: date, months, rows) -> dict[tuple[str, str], Unmet]:
    unmet: dict[tuple[str, str], Unmet] = {}

    def of(area: str, need: str) -> Unmet:
        return unmet.setdefault((area, need), Unmet(area=area, need=need))

    grace = config.participation.settings.escalation_business_days
    first, day = months[0].first.isoformat(), on.isoformat()
    shown, hidden = _shown(config.conference.locked_flags)
    for area, need, recorded, status, since, case_open in conn.execute(
        f"SELECT h.area, n.need, n.recorded_on, n.status, {NEED_SINCE}, c.is_open FROM participation_needs n "
        "JOIN cases c ON c.case_id = n.case_id JOIN households h ON h.household_id = c.household_id "
        f"WHERE n.recorded_on >= ? AND n.recorded_on <= ? AND {shown}",
        (first, day, *hidden),
    ):
        key = _month_of(months, recorded)
        if key is None:
            continue
        row = rows[(area, key)]
        row.needs_recorded += 1
        if status == "unmatched":
            row.needs_unmatched += 1
            of(area, need).unmatched += 1
        elif status == "open" and case_open and past_grace(cal, since, grace, on):  # need_without_referral
            row.needs_open_past_grace += 1
            of(area, need).open_past_grace += 1
    for area, reason, closed, need, place_id in conn.execute(
        "SELECT h.area, r.reason, COALESCE(r.closed_on, r.answered_on), n.need, r.place_id FROM referrals r "
        "JOIN cases c ON c.case_id = r.case_id JOIN households h ON h.household_id = c.household_id "
        "LEFT JOIN participation_needs n ON n.need_id = r.need_id "
        f"WHERE r.status = 'declined' AND COALESCE(r.closed_on, r.answered_on) BETWEEN ? AND ? AND {shown}",
        (first, day, *hidden),
    ):
        key = _month_of(months, closed)
        if key is None:
            continue
        code = reason if reason in DECLINE_REASON_LABELS else "other"
        declines = rows[(area, key)].declines
        declines[code] = declines.get(code, 0) + 1
        place = config.participation.places.get(place_id)
        need = need or (place.category if place else None)
        if need and code == "at_capacity":
            of(area, need).declined_capacity += 1
        elif need and code == "not_eligible":
            of(area, need).declined_eligibility += 1
    return unmet


def place_figures(conn: sqlite3.Connection, config: Config, on: date) -> list[PlaceFigures]:
    """The directory now, by the place's own area (全域 apart) and category: listings not inactive,
    temporarily closed, active with a free place (capacity_now, as matching counts it), free places,
    stale listings."""
    months = config.participation.settings.stale_months
    out: dict[tuple[str, str], PlaceFigures] = {}
    for p in config.participation.places.values():
        if p.status == "inactive":
            continue
        row = out.setdefault(
            (p.area, p.category),
            PlaceFigures(
                area=p.area,
                category=p.category,
                category_label=PLACE_CATEGORY_LABELS[p.category],
                places=0,
                closed=0,
                with_free=0,
                free=0,
                stale=0,
            ),
        )
        row.places += 1
        row.stale += p.stale(on, months)
        if p.status != "active":
            row.closed += 1
            continue
        free = capacity_now(conn, p)
        row.free += free
        row.with_free += free > 0
    categories = list(PLACE_CATEGORY_LABELS)
    return sorted(out.values(), key=lambda r: (r.area == ALL_AREAS, r.area, categories.index(r.category)))


def area_figures(
    conn: sqlite3.Connection, config: Config, rules: RuleSet, on: date, months: int = DEFAULT_MONTHS
) -> Figures:
    """The view's figures for the `months` calendar months up to `on` (docs/community.md)."""
    if months < 1:
        raise ValueError("months must be at least 1")
    window = months_up_to(on, months)
    households = dict(conn.execute("SELECT area, COUNT(*) FROM households GROUP BY area ORDER BY area").fetchall())
    areas = list(households)
    rows = {(a, m.key): MonthFigures(area=a, month=m.key, households=households[a]) for a in areas for m in window}
    cal = Calendar.of(config.conference)
    _flags(conn, window, rows, config.conference.locked_flags)
    _cases(conn, cal, on, window, rows, config.conference.locked_flags)
    unmet = _needs(conn, config, cal, on, window, rows)
    titles = {k: f.title for k, f in rules.flags.items() if k not in config.conference.locked_flags}
    for m in rows.values():
        for rule_id in m.flagged:
            titles.setdefault(rule_id, rule_id)
    return Figures(
        on=on,
        months=window,
        areas=areas,
        households=households,
        flag_titles=titles,
        monthly=[rows[(a, m.key)] for a in areas for m in window],
        places=place_figures(conn, config, on),
        unmet=sorted((u for u in unmet.values() if u.total), key=lambda u: (u.area, u.need)),
    )


def totals(f: Figures, area: str) -> Counter:
    """An area's sums over the view's months (cases, needs, declines by reason)."""
    out: Counter = Counter()
    for m in f.monthly:
        if m.area != area:
            continue
        out["cases_opened"] += m.cases_opened
        out["conferenced"] += m.conferenced
        out["needs_recorded"] += m.needs_recorded
        out["needs_without_place"] += m.needs_without_place
        for reason, n in m.declines.items():
            out[f"declined:{reason}"] += n
    return out
