"""The backlog plan (対応計画): when a night opens more cases than the town can take at once (the
meetings within max_business_days_to_conference are full, or an agency's week of assessments is),
the engine proposes how many cases a week go to each pathway, by priority, and the coordinator
accepts it or changes its pace.

The plan is never a reason to wait: every case already has its dated first step (a meeting, an
assessment's start day, a check-back, a re-screen) when the plan is proposed; the plan shows those
dates week by week. Changing the pace (`assessments_per_week`) moves the start days of the
assessments not yet asked, in the same priority order, and is recorded case by case.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import date

from pydantic import BaseModel

from engine.config import Config
from engine.store.db import write_transaction
from engine.store.lifecycle import Log
from engine.support.business_days import Calendar
from engine.support.errors import EngineError
from engine.triage.model import PATHWAY_SHORT
from engine.triage.pathways import WEEK, Pacer, per_week

PLAN_STATES = {"proposed": "承認待ち", "accepted": "承認済み", "replaced": "新しい計画に置き換え"}
COLUMNS = ("conference", "assessment", "served", "watch")


class PlanError(EngineError):
    pass


class Week(BaseModel):
    index: int  # 0: this week
    starts_on: date
    counts: dict[str, int]  # pathway → first steps dated in that week


class Plan(BaseModel):
    plan_id: int | None = None
    made_on: date
    status: str = "proposed"
    per_week: int  # assessments asked of one agency a week
    waiting: int  # cases whose first step is still to come
    overflow: int  # conference cases first assessed because no meeting was near enough
    weeks: list[Week]
    by_agency: dict[str, list[int]]  # agency id → assessments per week
    decided_by: str | None = None
    decided_on: date | None = None


def schedule(conn: sqlite3.Connection, config: Config, on: date, pace: int) -> Plan:
    """Where the open cases' first steps fall, week by week from `on`: first conferences booked
    (not yet held), assessments to start or under way, served check-backs, re-screens."""
    cal = Calendar.of(config.conference)
    pacer = Pacer(conn, cal, on, pace)  # week_of: business-day weeks from `on`
    day = on.isoformat()
    dated: list[tuple[str, str, str | None]] = []  # (pathway, day, agency)
    dated += [
        ("conference", held_on, None)
        for (held_on,) in conn.execute(
            "SELECT m.held_on FROM cases c JOIN meetings m ON m.meeting_id = c.meeting_id WHERE c.is_open = 1 "
            "AND c.status IN ('detected', 'convened', 'reopened') AND m.held_on >= ? "
            "AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.case_id = c.case_id)",
            (day,),
        )
    ]
    kinds = {"assessment": "assessment", "check_back": "served", "rescreen": "watch"}
    for kind, due, status, agency in conn.execute(
        "SELECT p.kind, p.due_on, p.status, c.routed_to FROM checkpoints p JOIN cases c ON c.case_id = p.case_id "
        "WHERE c.is_open = 1 AND p.status = 'pending' AND p.kind IN ('assessment', 'check_back', 'rescreen') "
        "AND c.status IN ('assessing', 'routed', 'watching')"
    ):
        dated.append((kinds[kind], max(due, day), agency if kind == "assessment" else None))
    counts: dict[int, Counter] = {}
    agencies: dict[str, Counter] = {}
    for pathway, when, agency in dated:
        w = pacer.week_of(date.fromisoformat(when))
        counts.setdefault(w, Counter())[pathway] += 1
        if agency:
            agencies.setdefault(agency, Counter())[w] += 1
    last = max(counts, default=0)
    overflow = conn.execute(
        "SELECT COUNT(*) FROM cases WHERE is_open = 1 AND status = 'assessing' AND pathway_rule LIKE '%:overflow'"
    ).fetchone()[0]
    return Plan(
        made_on=on,
        per_week=pace,
        waiting=len(dated),
        overflow=overflow,
        weeks=[
            Week(
                index=w,
                starts_on=on if w == 0 else cal.add(on, w * WEEK),
                counts={p: counts.get(w, Counter())[p] for p in COLUMNS},
            )
            for w in range(last + 1)
        ],
        by_agency={a: [c[w] for w in range(last + 1)] for a, c in sorted(agencies.items())},
    )


def propose_if_needed(conn: sqlite3.Connection, config: Config, log: Log, deferred: int, overflow: int) -> int | None:
    """After a night (inside its transaction): a proposed plan when some of its new cases could not
    start this week (`deferred` assessments) or found no meeting near enough (`overflow`)."""
    if not (deferred or overflow):
        return None
    plan = schedule(conn, config, log.on, per_week(conn, config.triage.settings.assessments_per_week))
    conn.execute("UPDATE backlog_plans SET status = 'replaced' WHERE status = 'proposed'")
    plan_id = conn.execute(
        "INSERT INTO backlog_plans (made_on, status, per_week, body) VALUES (?, 'proposed', ?, ?)",
        (log.on.isoformat(), plan.per_week, plan.model_dump_json()),
    ).lastrowid
    log.event(
        "backlog_plan_proposed",
        reason=f"対応計画（案）第{plan_id}号: 会議の枠や機関の週あたりの件数を超える事案があるため、"
        f"{len(plan.weeks)}週にわたる計画を作成（会議に入りきらずアセスメントから始める事案 {overflow:,} 件、"
        f"翌週以降にアセスメントを依頼する事案 {deferred:,} 件）",
        plan_id=plan_id,
    )
    return plan_id


def load_plan(conn: sqlite3.Connection, plan_id: int | None = None) -> Plan | None:
    """A plan (the latest when no id is given), as it was made or decided."""
    if plan_id is not None and not 0 < plan_id < 2**63:  # no such number (SQLite's integers end there)
        return None
    row = conn.execute(
        "SELECT plan_id, status, decided_by, decided_on, body FROM backlog_plans "
        + ("WHERE plan_id = ?" if plan_id is not None else "ORDER BY plan_id DESC LIMIT 1"),
        (plan_id,) if plan_id is not None else (),
    ).fetchone()
    if row is None:
        return None
    return Plan.model_validate(json.loads(row[4])).model_copy(
        update={"plan_id": row[0], "status": row[1], "decided_by": row[2], "decided_on": row[3]}
    )


def _open_plan(conn: sqlite3.Connection, plan_id: int) -> Plan:
    plan = load_plan(conn, plan_id) if 0 < plan_id < 2**63 else None
    if plan is None:
        raise PlanError(f"対応計画 第{plan_id}号はありません（`engine backlog` で番号を確認してください）")
    if plan.status != "proposed":
        raise PlanError(
            f"対応計画 第{plan_id}号は「{PLAN_STATES[plan.status]}」です。承認・変更できるのは承認待ちの最新の計画だけです"
        )
    return plan


def accept(conn: sqlite3.Connection, config: Config, plan_id: int, on: date, actor: str) -> Plan:
    with write_transaction(conn):
        _open_plan(conn, plan_id)
        conn.execute(
            "UPDATE backlog_plans SET status = 'accepted', decided_by = ?, decided_on = ? WHERE plan_id = ?",
            (actor, on.isoformat(), plan_id),
        )
        Log(conn, on, actor, config_hash=config.hash).event(
            "backlog_plan_accepted", reason=f"対応計画 第{plan_id}号を承認", plan_id=plan_id
        )
    return load_plan(conn, plan_id)


def change(conn: sqlite3.Connection, config: Config, plan_id: int, pace: int, on: date, actor: str) -> Plan:
    """Accept the plan with another pace: the assessments not yet asked get new start days."""
    if not 1 <= pace <= 1000:
        raise PlanError("--per-week: 1 から 1000 までの件数を指定してください")
    log = Log(conn, on, actor, config_hash=config.hash)
    cal = Calendar.of(config.conference)
    with write_transaction(conn):
        _open_plan(conn, plan_id)
        waiting = conn.execute(
            "SELECT p.checkpoint_id, p.case_id, p.due_on, p.answer_due, c.routed_to FROM checkpoints p "
            "JOIN cases c ON c.case_id = p.case_id WHERE p.kind = 'assessment' AND p.status = 'pending' "
            "AND c.status = 'assessing' ORDER BY p.due_on, p.checkpoint_id"
        ).fetchall()
        pacer = Pacer(conn, cal, on, pace, pending=False)  # the waiting ones are placed again below
        moved = 0
        for checkpoint_id, case_id, due_on, answer_due, agency in waiting:
            start = pacer.start(agency)
            length = max(1, cal.between(date.fromisoformat(due_on), date.fromisoformat(answer_due)))
            conn.execute(
                "UPDATE checkpoints SET due_on = ?, answer_due = ? WHERE checkpoint_id = ?",
                (start.isoformat(), cal.add(start, length).isoformat(), checkpoint_id),
            )
            if start.isoformat() != due_on:
                moved += 1
                log.event(
                    "checkpoint_rescheduled",
                    case_id=case_id,
                    reason=f"アセスメントの依頼日を {due_on} から {start} に変更（対応計画 第{plan_id}号の変更: 1機関あたり週{pace}件）",
                    kind="assessment",
                    checkpoint_id=checkpoint_id,
                    due_on=start,
                )
        plan = schedule(conn, config, on, pace)
        conn.execute(
            "UPDATE backlog_plans SET status = 'replaced', decided_by = ?, decided_on = ? WHERE plan_id = ?",
            (actor, on.isoformat(), plan_id),
        )
        new_id = conn.execute(
            "INSERT INTO backlog_plans (made_on, status, per_week, body, decided_by, decided_on) VALUES (?, 'accepted', ?, ?, ?, ?)",
            (on.isoformat(), pace, plan.model_dump_json(), actor, on.isoformat()),
        ).lastrowid
        log.event(
            "backlog_plan_changed",
            reason=f"対応計画 第{plan_id}号を変更して承認（第{new_id}号）: 1機関あたりのアセスメントを週{pace}件に、"
            f"依頼日が変わった事案 {moved:,} 件",
            plan_id=new_id,
            replaces=plan_id,
            per_week=pace,
        )
    return load_plan(conn, new_id)


def render(plan: Plan, config: Config) -> str:
    """The plan as the coordinator reads it (Japanese)."""
    status = PLAN_STATES.get(plan.status, plan.status)
    recorded = plan.plan_id is not None  # `engine backlog --now`: today's outlook, not a recorded plan
    lines = [
        (
            f"対応計画 第{plan.plan_id}号（{plan.made_on} 作成）— {status}"
            if recorded
            else f"{plan.made_on} 時点の見通し（記録された対応計画ではありません）"
        )
        + (f"（{plan.decided_by}、{plan.decided_on}）" if plan.decided_by else ""),
        f"最初の対応を待つ事案 {plan.waiting:,} 件。会議の枠に入りきらずアセスメントから始める事案 {plan.overflow:,} 件。",
        f"1機関あたりのアセスメントの依頼: 週{plan.per_week}件"
        + (
            f"（変更: engine backlog change {plan.plan_id} --per-week 件数、承認: engine backlog accept {plan.plan_id}）"
            if plan.status == "proposed" and recorded
            else ""
        ),
        "週（開始日）            " + "  ".join(f"{PATHWAY_SHORT[p]:>6}" for p in COLUMNS),
    ]
    for w in plan.weeks:
        lines.append(f"第{w.index + 1:>2}週（{w.starts_on}）  " + "  ".join(f"{w.counts[p]:>6,}" for p in COLUMNS))
    if plan.by_agency:
        lines.append("機関別のアセスメント（週ごと）:")
        for agency, weeks in plan.by_agency.items():
            name = config.agencies[agency].name if agency in config.agencies else agency
            lines.append(f"  {name}: " + "、".join(str(n) for n in weeks))
    if plan.weeks:
        end = plan.weeks[-1]
        lines.append(f"すべての事案の最初の対応が始まるのは 第{end.index + 1}週（{end.starts_on}〜）です。")
    return "\n".join(lines)


def triage_lines(conn: sqlite3.Connection, report) -> list[str]:
    """The digest's lines on triage: a backlog plan awaiting the coordinator, and first conferences
    booked too far ahead (the audit's conference_too_far), with the farthest."""
    lines = []
    row = conn.execute(
        "SELECT plan_id, made_on FROM backlog_plans WHERE status = 'proposed' ORDER BY plan_id DESC LIMIT 1"
    ).fetchone()
    if row:
        lines.append(
            f"■ 対応計画 第{row[0]}号（{row[1]} 作成）が承認待ちです"
            f"（engine backlog で確認し、engine backlog accept {row[0]} または change {row[0]} --per-week 件数）"
        )
    far = [v for v in report.violations if v.kind == "conference_too_far"]
    if far:
        farthest = max(v.detail for v in far)
        lines.append(
            f"■ 初回の会議の予約が遠すぎる事案 {len(far)} 件（会議の枠が足りません: engine config check --workspace）"
        )
        lines.append(f"  - 最も遠いもの: {farthest}")
    return lines
