"""`engine simulate`: a year on the fake clock, measured against the no-gap promise (issue 18).

A synthetic town goes through `days` (365) simulated days with the nightly cycle, the daily sweep
and the dispatch as scheduled; agencies and places answer through the same paths as the links,
some late and some never (engine/demo/simulate.py); the coordinator records outcomes, some late,
and follows escalations up; households relapse (a new extract every 90 days) and new households
move in (one extract a month, `movers` in all). At the end it writes and returns the figures:

- gap households: households the day's audit found with an open flag and no owner or no dated next
  step (unhandled_flag, no_lead, no_next_step, no_pathway) for more than 1 business day — goal 0;
- relapses re-linked: reopened (もどし) or re-linked (つなぎ直し) cases proposed to their previous
  lead within 5 business days — goal 100%;
- flag → conference, business days (goal median ≤ 10; urgent ≤ 2), and the triage figures of
  engine/demo/measure.py;
- escalations per 100 cases, referrals answered, follow-ups made;
- the audit's violations by kind at the end of each month.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from pydantic import BaseModel

from engine.casework.audit import KINDS, run_audit
from engine.config import Config
from engine.demo.measure import BusinessDays, measure, spread
from engine.demo.simulate import Simulation, relapse
from engine.demo.town import generate_town
from engine.intake.importer import import_dir
from engine.outbox import FileTransport
from engine.rules.model import RuleSet
from engine.screening.screen import screen
from engine.store.db import connect
from engine.support import clock
from engine.support.business_days import Calendar
from engine.support.private_files import open_private, write_private
from engine.support.progress import Progress
from engine.workflows.cycle import dispatch, nightly_cycle

RELAPSE_EVERY = 90  # days between relapse extracts
RELINK_BUSINESS_DAYS = 5  # goal: a relapse is proposed to its previous lead within this


def split_town(town: Path, keep: int, batches: int, out: Path) -> list[Path]:
    """Leave the first `keep` households in `town` and write the others, with their persons and
    records, to `batches` extract folders under `out` (households moving in, in order)."""
    rows = {}
    for name in ("households.csv", "persons.csv", "records.csv"):
        with open(town / name, newline="", encoding="utf-8") as f:
            rows[name] = list(csv.reader(f))
    ids = [r[0] for r in rows["households.csv"][1:]]
    chunk = max(1, -(-(len(ids) - keep) // batches)) if len(ids) > keep else 1
    group = {h: (0 if i < keep else 1 + (i - keep) // chunk) for i, h in enumerate(ids)}
    person_group = {r[0]: group.get(r[1], 0) for r in rows["persons.csv"][1:]}
    folders = [town] + [out / f"movein-{k:02d}" for k in range(1, batches + 1)]
    for name, key in (("households.csv", group), ("persons.csv", None), ("records.csv", person_group)):
        header, *body = rows[name]
        parts: dict[int, list] = {}
        for r in body:
            g = group.get(r[1], 0) if name == "persons.csv" else key.get(r[0], 0)
            parts.setdefault(g, []).append(r)
        for g, folder in enumerate(folders):
            if g and g not in parts and name == "households.csv":
                continue
            with open_private(folder / name, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(parts.get(g, []))
    return [f for f in folders[1:] if (f / "households.csv").exists()]


def relinked(conn, calendar: Calendar, end: date) -> dict:
    """Reopened and re-linked cases, and how many were proposed to their previous lead in time."""
    done = other = 0
    late: list[dict] = []  # each late relapse: case, since, decided (ids and dates only)
    accepted: dict[str, str] = {}  # the lead that took the case on (or resolved it by assessment)
    proposed: dict[str, str] = {}  # else the lead last proposed
    pending: list[tuple[str, str | None, date]] = []  # (case, previous lead, since)
    for case_id, event, on_day, to_status, detail in conn.execute(
        "SELECT case_id, event, on_day, to_status, detail FROM audit_log WHERE case_id IS NOT NULL AND "
        "(event IN ('conference_decided', 'outcome', 'relinked', 'assessment_answered', 'lead_accepted') "
        "OR (event = 'transition' AND to_status = 'reopened')) "
        "ORDER BY seq"
    ):
        d = json.loads(detail or "{}")
        day = date.fromisoformat(on_day)
        if event == "relinked":
            pending.append((case_id, d.get("previous_lead"), day))
        elif event == "transition":
            pending.append((case_id, accepted.get(case_id) or proposed.get(case_id), day))
        elif event == "lead_accepted" or (event == "assessment_answered" and d.get("result") == "resolved"):
            accepted[case_id] = d.get("agency")
        elif event == "outcome" and (not d.get("lead") or d.get("history_only")):
            continue  # a meeting that decided no lead (continue, suspend) or a record for history only
        elif event in ("conference_decided", "outcome"):  # proposed by the engine, or decided at a meeting
            for item in [p for p in pending if p[0] == case_id]:
                pending.remove(item)
                _, previous, since = item
                if previous is None or d.get("lead") != previous:
                    other += 1
                elif calendar.add(since, RELINK_BUSINESS_DAYS) >= day:
                    done += 1
                else:
                    late.append({"case": case_id, "since": since.isoformat(), "decided": day.isoformat()})
            if d.get("lead"):
                proposed[case_id] = d["lead"]
    total = done + len(late) + other + len(pending)
    return {
        "relapses": total,
        "to_previous_lead_in_time": done,
        "to_previous_lead_late": len(late),
        "late": late[:20],  # the first few, to look up with `engine history CASE` (bench/year.py --keep)
        "to_another_lead": other,  # the previous lead could not take part (e.g. no 支援会議 member)
        "not_yet_decided": len(pending),
        "share_in_time": round(done / total, 3) if total else None,
    }


def sent_to_conference(conn, calendar: Calendar) -> dict:
    """Business days from each time a case was sent to a conference (it became `convened`: booked
    by triage, sent on by an assessment, reopened, brought back) to the first meeting from that
    day on; by what the case was before. The wait the audit's conference_too_far measures."""
    held: dict[str, list[str]] = {}
    for case_id, day in conn.execute(
        "SELECT cm.case_id, m.held_on FROM case_meetings cm JOIN meetings m ON m.meeting_id = cm.meeting_id"
    ):
        held.setdefault(case_id, []).append(day)
    waits: dict[str, list[int]] = {}
    waiting = 0
    for case_id, day, before in conn.execute(
        "SELECT case_id, on_day, from_status FROM audit_log WHERE event = 'transition' AND to_status = 'convened' "
        "ORDER BY seq"
    ):
        meeting = min((h for h in held.get(case_id, ()) if h >= day), default=None)
        if meeting is None:
            waiting += 1
            continue
        waits.setdefault(before, []).append(calendar.between(date.fromisoformat(day), date.fromisoformat(meeting)))
    every = [w for ws in waits.values() for w in ws]
    return {**spread(every), "not_yet_held": waiting, "by_before": {k: spread(v) for k, v in sorted(waits.items())}}


def run_year(
    workspace: Path,
    rules: RuleSet,
    config: Config,
    *,
    households: int,
    seed: int,
    on: date,
    days: int = 365,
    movers: int | None = None,
    progress: Progress | None = None,
) -> dict:
    """Simulate `days` days on a fresh workspace; returns (and writes to sim/year.json) the figures."""
    started = clock.monotonic()
    conn = connect(workspace)
    movers = households // 50 if movers is None else movers  # 2% of the town moves in over the year
    town = workspace / "town"
    generate_town(town, households + movers, seed, today=on, bad_rows=0, progress=progress)
    months = max(1, days // 30)
    extracts = split_town(town, households, months, workspace / "sim") if movers else []
    import_dir(conn, town, today=on, report_dir=workspace / "reports")
    screen(conn, workspace, rules, on, full=True)
    nightly_cycle(conn, workspace, rules, config, on, screen_first=False)
    dispatch(conn, config, workspace, on, transport=FileTransport(workspace / "outbox"), force=True)
    sim = Simulation(conn, workspace, rules, config, on, days, seed, FileTransport(workspace / "outbox"))
    moved_in: list[list] = []  # [day, rows imported] per extract of households moving in

    def new_extracts(day: date) -> None:
        i = (day - on).days
        if extracts and i % 30 == 0 and i // 30 <= len(extracts):  # a monthly extract of households moving in
            folder = extracts[i // 30 - 1]
            result = import_dir(conn, folder, today=day, report_dir=workspace / "reports")
            moved_in.append([day.isoformat(), result.total_inserted])
        if i % RELAPSE_EVERY == 0:
            sim.story.relapse_households += relapse(conn, workspace, day)

    sim.before_day = new_extracts
    story = sim.run(progress)
    end = on + timedelta(days=days)
    figures = year_figures(conn, config, sim, on, end)
    figures.update(
        {
            "households": households,
            "movers": movers,
            "moved_in": moved_in,
            "seed": seed,
            "days": days,
            "first_night": on.isoformat(),
            "end": end.isoformat(),
            "story": story.model_dump(),
            "seconds": round(clock.monotonic() - started, 1),
        }
    )
    write_private(workspace / "sim" / "year.json", json.dumps(figures, ensure_ascii=False, indent=2) + "\n")
    conn.close()
    return figures


def year_figures(conn, config: Config, sim: Simulation, start: date, end: date) -> dict:
    """The no-gap figures of a simulated span (see the module's docstring)."""
    cal = Calendar.of(config.conference)
    gaps: set[str] = set()
    gap_by_month: dict[str, set[str]] = {}
    audit_by_month: dict[str, dict[str, int]] = {}
    for day, swept in sim.swept:
        gaps.update(swept.gap_households)
        gap_by_month.setdefault(day.strftime("%Y-%m"), set()).update(swept.gap_households)
        audit_by_month[day.strftime("%Y-%m")] = swept.violation_kinds  # the month's last day wins
    triage = measure(conn, config, end)
    cases = conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    escalations = conn.execute("SELECT COUNT(*) FROM escalations").fetchone()[0]
    days = BusinessDays(cal, start - timedelta(days=400), end + timedelta(days=400))
    to_conference, urgent, later = [], [], []
    for first_flag, held_on, severity in conn.execute(
        "SELECT (SELECT MIN(f.first_detected) FROM case_flags x JOIN flags f ON f.flag_id = x.flag_id WHERE x.case_id = c.case_id), "
        "(SELECT MIN(m.held_on) FROM case_meetings cm JOIN meetings m ON m.meeting_id = cm.meeting_id WHERE cm.case_id = c.case_id), "
        "c.severity FROM cases c"
    ):
        if first_flag and held_on:
            b = days.between(date.fromisoformat(first_flag), date.fromisoformat(held_on))
            (urgent if severity == "urgent" else to_conference).append(b)
            if severity != "urgent" and first_flag > start.isoformat():
                later.append(b)  # flagged after the first screening: the steady state, not go-live's backlog
    referrals = dict(conn.execute("SELECT status, COUNT(*) FROM referrals GROUP BY status").fetchall())
    asked = sum(referrals.values())
    answered = sum(n for s, n in referrals.items() if s not in ("requested", "cancelled"))
    followups = conn.execute("SELECT COUNT(*) FROM followups WHERE status = 'done'").fetchone()[0]
    final = run_audit(conn, config, end)
    return {
        "gap_households": len(gaps),
        "gap_households_by_month": {m: len(h) for m, h in sorted(gap_by_month.items())},
        "relinked": relinked(conn, cal, end),
        "flag_to_conference_business_days": spread(to_conference),
        "urgent_flag_to_conference_business_days": spread(urgent),
        "flag_to_conference_after_first_screening": spread(later),
        "sent_to_conference_business_days": sent_to_conference(conn, cal),
        "cases": cases,
        "escalations": escalations,
        "escalations_per_100_cases": round(100 * escalations / cases, 1) if cases else None,
        "referrals": {"asked": asked, "answered": answered, "by_status": referrals},
        "followups_made": followups,
        "audit_by_month": dict(sorted(audit_by_month.items())),
        "audit_at_end": dict(Counter(v.kind for v in final.violations)),
        "triage": triage,
        "goals": {
            "gap_households": 0,
            "relinked_share": 1.0,
            "flag_to_conference_median": 10,
            "urgent_flag_to_conference_median": 2,
        },
    }


class Goal(BaseModel):
    label: str  # Japanese
    value: str
    goal: str
    met: bool


def goals_met(f: dict) -> list[Goal]:
    """Each figure with a goal, its value and whether it is met (the console's table)."""
    conf, urgent, rel = (
        f["flag_to_conference_business_days"],
        f["urgent_flag_to_conference_business_days"],
        f["relinked"],
    )
    share = rel["share_in_time"]
    return [
        Goal(
            label="担当も日付のある次の一歩もない状態が1営業日を超えた世帯",
            value=f"{f['gap_households']:,}",
            goal="0",
            met=f["gap_households"] == 0,
        ),
        Goal(
            label="再発が5営業日以内に前回の主担当機関へ",
            value="—"
            if share is None
            else f"{_share(rel)}（{rel['relapses']:,} 件中 {rel['to_previous_lead_in_time']:,} 件）",
            goal="100%",
            met=rel["to_previous_lead_in_time"] == rel["relapses"],
        ),
        Goal(
            label="フラグから会議まで（営業日、中央値）",
            value=f"{conf['median']}",
            goal="10 以下",
            met=conf["median"] is not None and conf["median"] <= 10,
        ),
        Goal(
            label="緊急: フラグから会議まで（営業日、中央値）",
            value=f"{urgent['median']}",
            goal="2 以下",
            met=urgent["median"] is None or urgent["median"] <= 2,
        ),
    ]


def _share(rel: dict) -> str:
    """The share in time, never rounded up to 100% while one is missing (2,399 of 2,400: 99.9%)."""
    done, total = rel["to_previous_lead_in_time"], rel["relapses"]
    return "100%" if done == total else f"{int(1000 * done / total) / 10:.1f}%"


def _met(ok: bool) -> str:
    return "達成" if ok else "未達"


def _spread_line(label: str, spread: dict | None, unit: str, extra: str = "") -> str:
    """One indented line of a spread of business days (or なし), in Japanese."""
    if not spread or not spread["count"]:
        return f"  {label}: なし"
    return (
        f"  {label} {spread['count']:,} {unit}: 中央値 {spread['median']}、90% {spread['p90']}、"
        f"最大 {spread['max']} 営業日{extra}"
    )


def _sent_line(f: dict) -> str:
    """Sent to a conference → the meeting that took it up (absent from years written before it)."""
    sent = f.get("sent_to_conference_business_days")
    extra = f"（未開催 {sent['not_yet_held']:,} 回）" if sent else ""
    return _spread_line("会議への付議から会議まで", sent, "回", extra)


def _later_line(f: dict) -> str:
    """Flag → conference for the cases flagged after the first screening (go-live's backlog aside)."""
    later = f.get("flag_to_conference_after_first_screening")
    return _spread_line("初回スクリーニングの後にフラグが立ち会議に至った事案", later, "件")


def render_year(f: dict) -> str:
    """The figures against their goals, in Japanese (the coordinator's and the municipality's)."""
    rel = f["relinked"]
    lines = [
        f"模擬運用 {f['days']} 日（{f['first_night']}〜{f['end']}、{f['households']:,} 世帯、転入 {f['movers']:,} 世帯、"
        f"seed {f['seed']}、{f['seconds']:,} 秒）",
        f"事案 {f['cases']:,} 件、エスカレーション {f['escalations']:,} 件（100 事案あたり {f['escalations_per_100_cases']}）",
        *(f"・{g.label}: {g.value}（目標 {g.goal}: {_met(g.met)}）" for g in goals_met(f)),
        _later_line(f),
        _sent_line(f),
        f"  再発 {rel['relapses']:,} 件: 遅れ {rel['to_previous_lead_late']}、別の機関 {rel['to_another_lead']}、"
        f"未決定 {rel['not_yet_decided']}",
        f"・参加支援の紹介 {f['referrals']['asked']:,} 件のうち回答 {f['referrals']['answered']:,} 件、定着の確認 {f['followups_made']:,} 件",
        "・監査の指摘（各月末）: "
        + "; ".join(
            f"{m} " + ("、".join(f"{KINDS.get(k, k)} {n}" for k, n in sorted(v.items())) or "0")
            for m, v in f["audit_by_month"].items()
        ),
    ]
    return "\n".join(lines)
