"""Triage benchmark (issue 17): how long a flagged household waits for an owner in a big demo town.

    python -m bench.triage [--households 50000] [--days 120] [--seed 7] [--out FILE]

Runs `engine demo --households N --seed 7` in-process (generate, import, screen, first night and the
simulated span), then reads its workspace:
- flag → first owner action: business days from a case's first flag to the first meeting held (or
  booked) for it; when triage pathways exist, an agency's assessment will count too;
- flag → conference for the cases that went to one: business and calendar days, the latest booking;
- the pathway mix (cases.pathway when the column exists, else conference / routed) and the states;
- the gap audit's violations by kind on the span's last day.
Writes JSON (default bench/results/triage-<N>.json) and prints a short table with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

if __package__ in (None, ""):  # `python bench/triage.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchlib import ON, ROOT, peak_mb  # noqa: E402  (importing benchlib pins the clock to ON)

GOAL_OWNER_DAYS = 10  # issue 17: median business days from flag to first owner action
GOAL_CONFERENCE_DAYS = 20  # issue 17: flag to conference, for cases routed to a conference


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


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def measure(conn: sqlite3.Connection, config, end: date) -> dict:
    """The issue's figures from a workspace's database on `end` (the span's last day). Reads only."""
    from engine.casework.audit import run_audit
    from engine.support.business_days import Calendar

    has_pathway = "pathway" in _columns(conn, "cases")
    rows = conn.execute(
        f"""
        SELECT c.case_id, c.status, c.severity, c.routed_to, c.opened_on,
               {"c.pathway" if has_pathway else "NULL"},
               (SELECT MIN(f.first_detected) FROM case_flags cf JOIN flags f ON f.flag_id = cf.flag_id
                 WHERE cf.case_id = c.case_id),
               (SELECT MIN(m.held_on) FROM meetings m WHERE m.meeting_id = c.meeting_id
                   OR m.meeting_id IN (SELECT cm.meeting_id FROM case_meetings cm WHERE cm.case_id = c.case_id))
        FROM cases c ORDER BY c.case_id
        """
    ).fetchall()
    dates = [date.fromisoformat(d) for r in rows for d in (r[4], r[6], r[7]) if d]
    days = BusinessDays(Calendar.of(config.conference), min(dates, default=end), max([*dates, end]))

    owner_bdays: list[int] = []
    conf_bdays: list[int] = []
    conf_cdays: list[int] = []
    urgent_bdays: list[int] = []
    held, booked_ahead, waiting, latest = 0, 0, 0, None
    pathways: Counter = Counter()
    for _case, status, severity, routed_to, opened_on, pathway, first_flag, first_meeting in rows:
        routed = status == "routed" or routed_to is not None
        pathways[pathway or ("routed" if routed else "conference")] += 1
        if routed and not first_meeting:
            continue  # a silo conference owns it: no first owner action the engine can date
        flagged = date.fromisoformat(first_flag or opened_on)
        if not first_meeting:
            waiting += 1
            continue
        met = date.fromisoformat(first_meeting)
        if met <= end:
            held += 1
        else:
            booked_ahead += 1
        latest = max(latest or first_meeting, first_meeting)
        b = days.between(flagged, met)
        owner_bdays.append(b)
        conf_bdays.append(b)
        conf_cdays.append((met - flagged).days)
        if severity == "urgent":
            urgent_bdays.append(b)
    report = run_audit(conn, config, end)
    latest_meeting = conn.execute("SELECT MAX(held_on) FROM meetings").fetchone()[0]
    return {
        "cases": len(rows),
        "flag_to_owner_business_days": spread(owner_bdays),
        "flag_to_conference": {
            "business_days": spread(conf_bdays),
            "calendar_days": spread(conf_cdays),
            "first_meeting_held_by_end": held,
            "first_meeting_booked_after_end": booked_ahead,
            "latest_first_meeting": latest,
            "latest_meeting_booked": latest_meeting,
        },
        "urgent_flag_to_conference_business_days": spread(urgent_bdays),
        "waiting_without_owner_action": waiting,
        "pathways": dict(sorted(pathways.items())),
        "pathway_source": "cases.pathway" if has_pathway else "status/routed_to",
        "states": dict(conn.execute("SELECT status, COUNT(*) FROM cases GROUP BY status ORDER BY status").fetchall()),
        "audit_violations": dict(sorted(Counter(v.kind for v in report.violations).items())),
        "audit_open_cases": report.open_cases,
    }


def run(households: int, seed: int = 7, days: int = 120, work: Path | None = None) -> dict:
    """Run the demo on a fresh workspace under `work` (a temporary folder, removed, when None) and measure it."""
    from engine.config import load_config
    from engine.demo.run import run_demo
    from engine.rules.loader import load_rules
    from engine.store.db import connect

    rules = load_rules(ROOT / "configs" / "rules")
    config = load_config(ROOT / "configs", rules)
    tmp = None if work else Path(tempfile.mkdtemp(prefix="bench-triage-"))
    base = work or tmp
    try:
        started = time.perf_counter()
        out = run_demo(base / "ws", rules, config, households=households, seed=seed, on=ON, bad_rows=0, days=days)
        demo_s = time.perf_counter() - started
        conn = connect(base / "ws")
        try:
            figures = measure(conn, config, ON + timedelta(days=days))
        finally:
            conn.close()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return {
        "households": households,
        "seed": seed,
        "days": days,
        "first_night": ON.isoformat(),
        "end": (ON + timedelta(days=days)).isoformat(),
        "cases_opened_first_night": out["cases_opened"],
        **figures,
        "goals": {"flag_to_owner_median_business_days": GOAL_OWNER_DAYS, "flag_to_conference": GOAL_CONFERENCE_DAYS},
        "seconds_demo": round(demo_s, 1),
        "peak_rss_mb": round(peak_mb(), 1),
        "command": f"python -m bench.triage --households {households} --seed {seed} --days {days}",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def _fmt(s: dict) -> str:
    if not s["count"]:
        return "—"
    return f"median {s['median']:g} / p90 {s['p90']} / max {s['max']} (n={s['count']:,})"


def table(r: dict) -> str:
    conf = r["flag_to_conference"]
    lines = [
        f"triage bench: {r['households']:,} households, seed {r['seed']}, {r['days']} days "
        f"({r['first_night']} → {r['end']}); {r['machine']}",
        f"command: {r['command']}  ({r['seconds_demo']} s, peak RSS {r['peak_rss_mb']} MB)",
        f"{'cases (all, at the end)':44} {r['cases']:,} (first night opened {r['cases_opened_first_night']:,})",
        f"{'flag → first owner action, business days':44} {_fmt(r['flag_to_owner_business_days'])}"
        f"  goal median ≤ {GOAL_OWNER_DAYS}",
        f"{'flag → conference, business days':44} {_fmt(conf['business_days'])}  goal ≤ {GOAL_CONFERENCE_DAYS}",
        f"{'flag → conference, calendar days':44} {_fmt(conf['calendar_days'])}",
        f"{'urgent: flag → conference, business days':44} {_fmt(r['urgent_flag_to_conference_business_days'])}",
        f"{'first meeting held by the end / booked later':44} {conf['first_meeting_held_by_end']:,} / "
        f"{conf['first_meeting_booked_after_end']:,}",
        f"{'latest first meeting / latest meeting booked':44} {conf['latest_first_meeting']} / "
        f"{conf['latest_meeting_booked']}",
        f"{'waiting with no meeting (not routed)':44} {r['waiting_without_owner_action']:,}",
        f"{'pathway mix (' + r['pathway_source'] + ')':44} "
        + ", ".join(f"{k} {v:,}" for k, v in r["pathways"].items()),
        f"{'states':44} " + ", ".join(f"{k} {v:,}" for k, v in r["states"].items()),
        f"{'audit violations at the end':44} "
        + (", ".join(f"{k} {v:,}" for k, v in r["audit_violations"].items()) or "0"),
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--households", type=int, default=50000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    result = run(args.households, args.seed, args.days)
    path = args.out or ROOT / "bench" / "results" / f"triage-{args.households}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
