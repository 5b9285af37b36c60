"""Triage benchmark (issue 17): how long a flagged household waits for an owner in a big demo town.

    python -m bench.triage [--households 50000] [--days 120] [--seed 7] [--config DIR] [--out FILE]

Runs `engine demo --households N --seed 7` in-process (generate, import, screen, first night and the
simulated span) with the configuration in DIR (default ./configs: another folder measures, say, more
meeting slots or a faster assessment pace), then reads its workspace on the span's last day:
- the pathway mix: each case's initial pathway (its first `pathway_chosen` in the audit log, else
  cases.pathway), how many of those were a conference overflowing to an assessment, and the mix now;
- flag → first owner action (goal: median ≤ 10 business days) for every case not only watched: the
  first assessment answer (any result: an attempt is an action), the serving agency's check-back
  answer, or the first meeting held for the case. A case with none by the end is waiting: the median
  counts it as not yet reached (so it is an upper bound, None when half are waiting), and a lower
  bound counts it at the end;
- flag → conference (goal: ≤ 20 business days, every case) for the cases first sent to a conference,
  in business and calendar days, with the latest booking; and, apart, from an assessment's
  "needs a conference" to the meeting after it;
- urgent cases: flag → conference; the gap audit's violations by kind on the last day.
Writes JSON (default bench/results/triage-<N>.json) and prints a table with the goals and the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

if __package__ in (None, ""):  # `python bench/triage.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchlib import ON, ROOT, peak_mb  # noqa: E402  (importing benchlib pins the clock to ON)

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


def _config_arg(config_dir: Path) -> str:
    path = config_dir.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def run(
    households: int, seed: int = 7, days: int = 120, work: Path | None = None, config_dir: Path | None = None
) -> dict:
    """Run the demo on a fresh workspace under `work` (a temporary folder, removed, when None) with the
    configuration in `config_dir` (default ./configs; its rules/ folder if it has one) and measure it."""
    from engine.config import load_config
    from engine.demo.run import run_demo
    from engine.rules.loader import load_rules
    from engine.store.db import connect

    config_dir = Path(config_dir or ROOT / "configs")
    rules = load_rules(config_dir / "rules" if (config_dir / "rules").is_dir() else ROOT / "configs" / "rules")
    config = load_config(config_dir, rules)
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
    result = {
        "households": households,
        "seed": seed,
        "days": days,
        "config_dir": _config_arg(config_dir),
        "first_night": ON.isoformat(),
        "end": (ON + timedelta(days=days)).isoformat(),
        "cases_opened_first_night": out["cases_opened"],
        **figures,
        "goals": {"flag_to_owner_median_business_days": GOAL_OWNER_DAYS, "flag_to_conference": GOAL_CONFERENCE_DAYS},
        "seconds_demo": round(demo_s, 1),
        "peak_rss_mb": round(peak_mb(), 1),
        "command": f"python -m bench.triage --households {households} --seed {seed} --days {days} "
        f"--config {_config_arg(config_dir)}",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    result["meets_goals"] = meets_goals(result)
    return result


def _fmt(s: dict) -> str:
    if not s["count"]:
        return "—"
    return f"median {s['median']:g} / p90 {s['p90']} / max {s['max']} (n={s['count']:,})"


def _mix(counts: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "—"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _median(m: float | None) -> str:
    return "not reached" if m is None else f"{m:g}"


def table(r: dict) -> str:
    conf, owner, goals = r["flag_to_conference"], r["flag_to_owner_business_days"], r["meets_goals"]
    after = r["assessment_to_conference_business_days"]
    mix = r["pathways"]
    w = 46
    lines = [
        f"triage bench: {r['households']:,} households, seed {r['seed']}, {r['days']} days "
        f"({r['first_night']} → {r['end']}), config {r['config_dir']}; {r['machine']}",
        f"command: {r['command']}  ({r['seconds_demo']} s, peak RSS {r['peak_rss_mb']} MB)",
        f"{'cases (all, at the end)':{w}} {r['cases']:,} (first night opened {r['cases_opened_first_night']:,})",
        f"{'initial pathway mix':{w}} {_mix(mix['initial'])} (overflow to assessment {mix['initial_overflow']:,})",
        f"{'pathway mix at the end':{w}} {_mix(mix['current'])}",
        f"{'flag → first owner action, business days':{w}} median {_median(owner['median_all'])} "
        f"(waiting counted as not reached; ≥ {_median(owner['median_all_lower_bound'])} counting them at the end)"
        f"  goal median ≤ {GOAL_OWNER_DAYS}: {_met(goals['flag_to_owner_median_business_days'])}",
        f"{'  acted by the end / still waiting':{w}} {_fmt(owner)} / {owner['waiting']:,}",
    ]
    for pathway, f in r["flag_to_owner_by_initial_pathway"].items():
        lines.append(
            f"{'  initial ' + pathway:{w}} median {_median(f['median_all'])} "
            f"(acted {f['count']:,}, waiting {f['waiting']:,})"
        )
    lines += [
        f"{'flag → conference, business days':{w}} {_fmt(conf['business_days'])}"
        f"  goal ≤ {GOAL_CONFERENCE_DAYS}: {_met(goals['flag_to_conference'])}",
        f"{'flag → conference, calendar days':{w}} {_fmt(conf['calendar_days'])}",
        f"{'conference cases without a meeting (> goal)':{w}} {conf['without_meeting']:,} "
        f"({conf['without_meeting_over_goal']:,})",
        f"{'first meeting held by the end / booked later':{w}} {conf['first_meeting_held_by_end']:,} / "
        f"{conf['first_meeting_booked_after_end']:,}",
        f"{'latest first meeting / latest meeting booked':{w}} {conf['latest_first_meeting']} / "
        f"{conf['latest_meeting_booked']}",
        f"{'assessment → conference, business days':{w}} {_fmt(after)} (without a meeting {after['without_meeting']:,})",
        f"{'urgent: flag → conference, business days':{w}} {_fmt(r['urgent_flag_to_conference_business_days'])}",
        f"{'states':{w}} {_mix(r['states'])}",
        f"{'audit violations at the end':{w}} {_mix(r['audit_violations']) if r['audit_violations'] else '0'}"
        f" (conference_too_far {r['conference_too_far']:,})",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--households", type=int, default=50000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--config", type=Path, help="folder of the configuration to measure (default ./configs)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    result = run(args.households, args.seed, args.days, config_dir=args.config)
    suffix = "" if result["config_dir"] == "configs" else "-" + Path(result["config_dir"]).name
    path = args.out or ROOT / "bench" / "results" / f"triage-{args.households}{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
