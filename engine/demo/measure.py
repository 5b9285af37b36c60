"""The triage figures of issue 17 from a workspace's database (reads only): each case's first
pathway, business days from its first flag to its first owner action (an assessment answered, a
check-back answered, a meeting held) and to its first conference, the pathway mix, the audit at
the end. Used by `bench/triage.py` and by the simulated year (engine/demo/year.py)."""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
from collections import Counter, defaultdict
from datetime import date, timedelta

GOAL_OWNER_DAYS = 10  # issue 17: median business days from flag to first owner action
GOAL_CONFERENCE_DAYS = 20  # issue 17: flag to conference, for cases routed to a conference
CONFERENCES = ("urgent_conference", "conference")


class BusinessDays:
    """Business days between two dates, from a cumulative index (the Calendar asked once per day)."""

    def __init__(self, calendar, first: date, last: date):
        self.first = first
        self.cumulative: list[int] = []
        n, d = 0, first
        while d <= last:
            n += calendar.is_business_day(d)
            self.cumulative.append(n)
            d += timedelta(days=1)

    def between(self, start: date, end: date) -> int:
        """Business days after `start` up to and including `end` (0 when end <= start)."""
        if end <= start:
            return 0
        return self.cumulative[(end - self.first).days] - self.cumulative[(start - self.first).days]


def spread(values: list[int]) -> dict:
    """count, median, p90 and max (None for an empty list)."""
    if not values:
        return {"count": 0, "median": None, "p90": None, "max": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, max(0, -(-len(ordered) * 9 // 10) - 1))]  # nearest rank
    return {"count": len(ordered), "median": statistics.median(ordered), "p90": p90, "max": ordered[-1]}


def median_reached(values: list[int], waiting: int) -> float | None:
    """The median with `waiting` cases counted as not reached yet (+∞): None when it is one of them."""
    if not values and not waiting:
        return None
    m = statistics.median([*values, *[math.inf] * waiting])
    return None if math.isinf(m) else m


def owner_figures(acted: list[int], waited: list[int]) -> dict:
    """Flag → first owner action: `acted` the cases' business days, `waited` those still waiting at the end."""
    return {
        **spread(acted),
        "waiting": len(waited),
        "median_all": median_reached(acted, len(waited)),  # waiting = not reached: an upper bound
        "median_all_lower_bound": statistics.median([*acted, *waited]) if acted or waited else None,
        "waiting_business_days_so_far": spread(waited),
    }


def _day(s: str | None) -> date | None:
    return date.fromisoformat(s) if s else None


def _events(conn: sqlite3.Connection) -> tuple[dict, dict, dict]:
    """Per case: its pathway_chosen events in order [(on_day, pathway, rule_id)], its first assessment
    answer's day and its first check-back answer's day."""
    chosen: dict[str, list] = defaultdict(list)
    assessed: dict[str, date] = {}
    checked: dict[str, date] = {}
    for case_id, event, on_day, rule_id, detail in conn.execute(
        "SELECT case_id, event, on_day, rule_id, detail FROM audit_log WHERE case_id IS NOT NULL AND event IN "
        "('pathway_chosen', 'assessment_answered', 'checkpoint_answered') ORDER BY seq"
    ):
        d = json.loads(detail) if detail else {}
        day = date.fromisoformat(on_day)
        if event == "pathway_chosen":
            chosen[case_id].append((day, d.get("pathway"), rule_id or d.get("rule_id") or ""))
        elif event == "assessment_answered":
            assessed[case_id] = min(assessed.get(case_id, day), day)
        elif d.get("kind") == "check_back":
            checked[case_id] = min(checked.get(case_id, day), day)
    return chosen, assessed, checked


def _meetings(conn: sqlite3.Connection) -> dict[str, list[date]]:
    """Every meeting (held or booked) each case was on, by day."""
    out: dict[str, set] = defaultdict(set)
    for case_id, held_on in conn.execute(
        "SELECT cm.case_id, m.held_on FROM case_meetings cm JOIN meetings m ON m.meeting_id = cm.meeting_id "
        "UNION SELECT c.case_id, m.held_on FROM cases c JOIN meetings m ON m.meeting_id = c.meeting_id"
    ):
        out[case_id].add(date.fromisoformat(held_on))
    return {k: sorted(v) for k, v in out.items()}


def measure(conn: sqlite3.Connection, config, end: date) -> dict:
    """The issue's figures from a workspace's database on `end` (the span's last day). Reads only."""
    from engine.casework.audit import run_audit
    from engine.support.business_days import Calendar

    rows = conn.execute(
        """
        SELECT c.case_id, c.severity, c.opened_on, c.pathway,
               (SELECT MIN(f.first_detected) FROM case_flags cf JOIN flags f ON f.flag_id = cf.flag_id
                 WHERE cf.case_id = c.case_id)
        FROM cases c ORDER BY c.case_id
        """
    ).fetchall()
    chosen, assessed, checked = _events(conn)
    meetings = _meetings(conn)
    dates = [_day(r[4] or r[2]) for r in rows] + [d for ds in meetings.values() for d in ds]
    dates += [e[0] for es in chosen.values() for e in es]
    days = BusinessDays(Calendar.of(config.conference), min(dates, default=end), max([*dates, end]))

    initial_mix: Counter = Counter()
    current_mix: Counter = Counter()
    overflow = from_cases_table = silo_conference = 0
    owner: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))  # initial pathway → (acted, waiting)
    conf_b, conf_c, urgent_b, conf_waiting = [], [], [], []
    held = booked_ahead = 0
    latest_first = None
    after_b, after_waiting = [], 0
    for case_id, severity, opened_on, pathway, first_flag in rows:
        events = chosen.get(case_id, [])
        initial = events[0][1] if events else pathway
        from_cases_table += not events
        overflow += bool(events) and events[0][2].endswith(":overflow")
        initial_mix[initial or "none"] += 1
        current_mix[pathway or "none"] += 1
        flagged = _day(first_flag or opened_on)
        met = meetings.get(case_id, [])
        first_met = met[0] if met else None
        if events and events[0][2] == "routing":  # a silo conference (要対協) already has it: no date to measure
            silo_conference += 1
        elif initial != "watch":
            actions = [d for d in (assessed.get(case_id), checked.get(case_id)) if d and d <= end]
            actions += [d for d in met[:1] if d <= end]
            acted, waiting = owner[initial or "none"]
            if actions:
                acted.append(days.between(flagged, min(actions)))
            else:
                waiting.append(days.between(flagged, end))
        if initial in CONFERENCES:
            if first_met is None:
                conf_waiting.append(days.between(flagged, end))
            else:
                b = days.between(flagged, first_met)
                conf_b.append(b)
                conf_c.append((first_met - flagged).days)
                held += first_met <= end
                booked_ahead += first_met > end
                latest_first = max(latest_first or first_met, first_met)
        if severity == "urgent" and first_met:
            urgent_b.append(days.between(flagged, first_met))
        sent = next((e[0] for e in events[1:] if e[2] == "assessment" and e[1] in CONFERENCES), None)
        if sent:
            later = [d for d in met if d >= sent]
            if later:
                after_b.append(days.between(sent, later[0]))
            else:
                after_waiting += 1

    report = run_audit(conn, config, end)
    violations = Counter(v.kind for v in report.violations)
    acted_all = [b for a, _ in owner.values() for b in a]
    waited_all = [b for _, w in owner.values() for b in w]
    latest_meeting = conn.execute("SELECT MAX(held_on) FROM meetings").fetchone()[0]
    return {
        "cases": len(rows),
        "pathways": {
            "initial": dict(sorted(initial_mix.items())),
            "initial_overflow": overflow,  # a conference with no slot in time: assessed first
            "initial_from_cases_table": from_cases_table,  # no pathway_chosen in the audit log
            "initial_silo_conference": silo_conference,  # served by a silo conference (要対協): not in the owner figures
            "current": dict(sorted(current_mix.items())),
        },
        "flag_to_owner_business_days": owner_figures(acted_all, waited_all),
        "flag_to_owner_by_initial_pathway": {k: owner_figures(*owner[k]) for k in sorted(owner)},
        "flag_to_conference": {
            "business_days": spread(conf_b),
            "calendar_days": spread(conf_c),
            "without_meeting": len(conf_waiting),
            "without_meeting_over_goal": sum(b > GOAL_CONFERENCE_DAYS for b in conf_waiting),
            "first_meeting_held_by_end": held,
            "first_meeting_booked_after_end": booked_ahead,
            "latest_first_meeting": latest_first and latest_first.isoformat(),
            "latest_meeting_booked": latest_meeting,
        },
        "assessment_to_conference_business_days": {**spread(after_b), "without_meeting": after_waiting},
        "urgent_flag_to_conference_business_days": spread(urgent_b),
        "states": dict(conn.execute("SELECT status, COUNT(*) FROM cases GROUP BY status ORDER BY status").fetchall()),
        "audit_violations": dict(sorted(violations.items())),
        "conference_too_far": violations.get("conference_too_far", 0),
        "audit_open_cases": report.open_cases,
    }


def meets_goals(r: dict) -> dict[str, bool]:
    """Each goal of issue 17 met or not: the owner median (waiting cases count as not reached) and
    every conference case's first meeting within the goal (none still waiting longer)."""
    median = r["flag_to_owner_business_days"]["median_all"]
    conf = r["flag_to_conference"]
    longest = conf["business_days"]["max"]
    return {
        "flag_to_owner_median_business_days": median is not None and median <= GOAL_OWNER_DAYS,
        "flag_to_conference": (longest is None or longest <= GOAL_CONFERENCE_DAYS)
        and conf["without_meeting_over_goal"] == 0,
    }
