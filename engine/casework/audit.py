"""The gap audit: `engine audit` proves that no household is lost, or names the ones that are.

Each invariant is one query; a violation names household, case, since when and for how long.
  unhandled_flag               a flag at or above the threshold in no case (and not routed)
  no_lead                      an open case without a lead and without a dated pending request
  no_next_step                 an open case without a dated next step for its state
  meeting_without_outcome      a held meeting whose outcome is not recorded within the grace period
  closure_without_watch        a closed case without a pending watch checkpoint
  overdue_without_escalation   an overdue action, request, checkpoint or evaluation nobody was told of
  conference_too_far           a case's first conference booked further than conference.max_business_days_to_conference
                               business days from its opening (a dated next step years ahead is still a gap)
  escalation_unanswered        an escalation nobody acted on for lifecycle.escalation_business_days (escalations.py)
  assessment_overdue           triage: an assessment past its start day or its answer's due day nobody was told of
  no_pathway                   triage: an open case with no pathway, or an assessment or check with no agency
  referral_overdue, match_without_followup, need_without_referral   参加支援 (engine/participation/audit.py)
"""

from __future__ import annotations

import sqlite3
from datetime import date

from pydantic import BaseModel

from engine.casework.escalations import escalations
from engine.casework.steps import owed_outcomes
from engine.conference.convene import severities_from
from engine.config import Config
from engine.participation.audit import KINDS as PARTICIPATION_KINDS
from engine.participation.audit import participation_violations
from engine.support.business_days import Calendar

KINDS = {
    "unhandled_flag": "閾値以上のフラグが事案にもつながっていない",
    "no_lead": "主担当機関も回答期限つきの受諾依頼もない",
    "no_next_step": "次の予定（日付のある次の一歩）がない",
    "meeting_without_outcome": "会議後、期限までに結果が記録されていない",
    "closure_without_watch": "終結したが見守りの予定がない",
    "overdue_without_escalation": "期限を過ぎたがコーディネーターに上げられていない",
    "conference_too_far": "初回の会議が遠すぎる（会議への振り分けから営業日の上限を超える）",
    "escalation_unanswered": "エスカレーションに期限内の対応の記録がない",
    "assessment_overdue": "アセスメントが期限を過ぎたがコーディネーターに上げられていない",
    "no_pathway": "振り分け（会議・アセスメント・確認・経過観察）が決まっていない",
} | PARTICIPATION_KINDS


class Violation(BaseModel):
    kind: str
    household_id: str
    case_id: str | None
    since: str  # ISO date
    days: int
    detail: str  # Japanese; pseudonymous ids only


class AuditReport(BaseModel):
    on: str
    open_cases: int
    violations: list[Violation]

    @property
    def ok(self) -> bool:
        return not self.violations


def _since(conn: sqlite3.Connection, case_id: str, fallback: str) -> str:
    """The day the case entered its current state."""
    row = conn.execute(
        "SELECT MAX(on_day) FROM audit_log WHERE case_id = ? AND event = 'transition'", (case_id,)
    ).fetchone()
    return row[0] or fallback


def run_audit(conn: sqlite3.Connection, config: Config, on: date) -> AuditReport:
    day = on.isoformat()
    cal = Calendar.of(config.conference)
    out: list[Violation] = []

    def add(kind: str, household_id: str, case_id: str | None, since: str, detail: str) -> None:
        out.append(
            Violation(
                kind=kind,
                household_id=household_id,
                case_id=case_id,
                since=since,
                days=(on - date.fromisoformat(since)).days,
                detail=detail,
            )
        )

    sev = severities_from(config.conference.min_severity)
    for hid, rule_id, first in conn.execute(
        f"SELECT f.household_id, f.rule_id, f.first_detected FROM flags f WHERE f.status = 'open' AND f.severity IN ({','.join('?' * len(sev))}) "
        "AND NOT EXISTS (SELECT 1 FROM case_flags c WHERE c.flag_id = f.flag_id) ORDER BY f.household_id, f.rule_id",
        sev,
    ):
        add("unhandled_flag", hid, None, first, f"フラグ {rule_id} が事案にも要対協等への通知にもつながっていない")

    cases = conn.execute(
        "SELECT c.case_id, c.household_id, c.status, c.opened_on, c.lead_agency_id, c.meeting_id, m.held_on, c.closed_on, "
        "c.pathway, COALESCE(c.pathway_on, c.opened_on), c.routed_to FROM cases c "
        "LEFT JOIN meetings m ON m.meeting_id = c.meeting_id WHERE c.is_open = 1 ORDER BY c.case_id"
    ).fetchall()

    def has(sql: str, *params) -> bool:
        return conn.execute(sql, params).fetchone() is not None

    # what each open case has ahead of it, read once for the whole audit (not a query per case and kind)
    requested = {c for (c,) in conn.execute("SELECT case_id FROM lead_requests WHERE status = 'pending'")}
    ahead = set(conn.execute("SELECT case_id, kind, status FROM checkpoints WHERE status IN ('pending', 'asked')"))

    def checkpoint(case_id: str, kind: str, *statuses: str) -> bool:
        return any((case_id, kind, s) in ahead for s in statuses)

    owed: dict[str, list[tuple[str, str]]] = {}
    for case_id, meeting_id, held_on in owed_outcomes(conn):  # booked or held, not yet decided
        owed.setdefault(case_id, []).append((meeting_id, held_on))

    for case_id, hid, status, opened_on, lead, meeting_id, held_on, closed_on, pathway, pathway_on, owner in cases:
        pending_request = case_id in requested
        if pathway is None or (status in ("assessing", "routed") and not owner):
            add(
                "no_pathway",
                hid,
                case_id,
                opened_on,
                "振り分けが記録されていない" if pathway is None else f"状態「{status}」だが担当する機関がない",
            )
        if status not in ("routed", "assessing", "watching") and not lead and not pending_request:
            add(
                "no_lead",
                hid,
                case_id,
                opened_on,
                f"状態「{status}」で主担当機関が決まっていない（lead_rules.yaml か会議の決定を確認）",
            )
        elif status == "lead_pending" and not pending_request:
            add("no_lead", hid, case_id, _since(conn, case_id, opened_on), "受諾待ちだが回答期限つきの依頼がない")
        step = {
            "detected": meeting_id is not None,
            "reopened": meeting_id is not None,
            "convened": meeting_id is not None,
            "lead_pending": pending_request,
            "active": bool(owed.get(case_id)) or checkpoint(case_id, "evaluation", "pending"),
            "suspended": checkpoint(case_id, "review", "pending"),
            "routed": checkpoint(case_id, "check_back", "pending", "asked"),
            "closed": True,  # closure_without_watch below
            "assessing": checkpoint(case_id, "assessment", "pending", "asked"),
            "watching": checkpoint(case_id, "rescreen", "pending"),
        }[status]
        if not step:
            add(
                "no_next_step",
                hid,
                case_id,
                _since(conn, case_id, opened_on),
                f"状態「{status}」で会議・依頼・確認日のいずれも予定されていない",
            )
        if (
            status in ("detected", "convened", "reopened")
            and held_on
            and held_on >= day
            and not has("SELECT 1 FROM outcomes WHERE case_id = ?", case_id)
        ):
            # from the day the case was sent to a conference: its pathway, or a reopening (もどし) since
            reopened = conn.execute(
                "SELECT MAX(on_day) FROM audit_log WHERE case_id = ? AND event = 'transition' AND to_status = 'reopened'",
                (case_id,),
            ).fetchone()[0]
            pathway_on = max(pathway_on, reopened or "")
            limit = cal.add(date.fromisoformat(pathway_on), config.conference.max_business_days_to_conference)
            if held_on > limit.isoformat():
                add(
                    "conference_too_far",
                    hid,
                    case_id,
                    pathway_on,
                    f"初回の会議 {meeting_id}（{held_on}）が、会議への振り分け（{pathway_on}）から"
                    f"{config.conference.max_business_days_to_conference}営業日（{limit}）より先"
                    "（会議の枠を増やすか、優先度の低い事案の扱いを見直してください）",
                )
        if status == "closed" and not checkpoint(case_id, "watch", "pending", "asked"):
            months = "・".join(f"+{m}" for m in config.lifecycle.watch_months)
            add(
                "closure_without_watch",
                hid,
                case_id,
                closed_on or _since(conn, case_id, opened_on),
                f"終結後の見守り（{months}か月）が予定されていない",
            )
        for held_meeting, held_day in owed.get(case_id, ()):
            if held_day >= day:
                continue
            deadline = cal.add(date.fromisoformat(held_day), config.lifecycle.outcome_business_days)
            if deadline < on:
                add(
                    "meeting_without_outcome",
                    hid,
                    case_id,
                    held_day,
                    f"会議 {held_meeting}（{held_day}）の結果が {deadline} までに記録されていない",
                )

    overdue = [
        (
            "action",
            "SELECT a.action_id, c.household_id, a.case_id, a.due_on, a.agency_id FROM case_actions a JOIN cases c ON c.case_id = a.case_id "
            "WHERE a.status = 'open' AND a.due_on < ? AND c.is_open = 1",
            "役割 {0}（{4}）の期日 {3} を過ぎた",
        ),
        (
            "lead",
            "SELECT r.request_id, c.household_id, r.case_id, r.due_on, r.agency_id FROM lead_requests r JOIN cases c ON c.case_id = r.case_id "
            "WHERE r.status = 'pending' AND r.due_on < ? AND c.is_open = 1",
            "受諾依頼 {0}（{4}）の回答期限 {3} を過ぎた",
        ),
        (
            "checkpoint",
            "SELECT p.checkpoint_id, c.household_id, p.case_id, p.answer_due, p.kind FROM checkpoints p JOIN cases c ON c.case_id = p.case_id "
            "WHERE p.status = 'asked' AND p.answer_due < ? AND c.is_open = 1",
            "確認 {0}（{4}）の回答期限 {3} を過ぎた",
        ),
        (
            "checkpoint",
            "SELECT p.checkpoint_id, c.household_id, p.case_id, p.due_on, p.kind FROM checkpoints p JOIN cases c ON c.case_id = p.case_id "
            "WHERE p.status = 'pending' AND p.due_on < ? AND c.is_open = 1",
            "確認 {0}（{4}）の予定日 {3} を過ぎても実施されていない",
        ),
    ]
    for prefix, sql, text in overdue:
        for ref, hid, case_id, due, what in conn.execute(sql, (day,)).fetchall():
            if not has("SELECT 1 FROM escalations WHERE subject_key = ?", f"{prefix}:{ref}"):
                kind = "assessment_overdue" if what == "assessment" else "overdue_without_escalation"
                add(kind, hid, case_id, due, text.format(ref, hid, case_id, due, what))
    limit = config.lifecycle.escalation_business_days
    for e in escalations(conn, config, on):
        if not e.settled and e.age > limit:
            hid = conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (e.case_id,)).fetchone()
            add(
                "escalation_unanswered",
                hid[0] if hid else "-",
                e.case_id,
                e.since.isoformat(),
                f"エスカレーション {e.key} に{e.age}営業日、対応の記録がない（上限 {limit}営業日）: {e.detail}",
            )
    participation_violations(conn, config, on, add)
    return AuditReport(on=day, open_cases=len(cases), violations=out)


def render_audit(report: AuditReport) -> str:
    if report.ok:
        return f"監査 {report.on}: 抜け漏れなし（開いている事案 {report.open_cases:,} 件をすべて確認）"
    lines = [f"監査 {report.on}: 抜け漏れ {len(report.violations):,} 件（開いている事案 {report.open_cases:,} 件）"]
    by_kind: dict[str, list[Violation]] = {}
    for v in report.violations:
        by_kind.setdefault(v.kind, []).append(v)
    for kind, items in by_kind.items():
        lines.append(f"\n■ {KINDS[kind]}: {len(items)} 件")
        for v in items:
            lines.append(f"  - 世帯 {v.household_id} 事案 {v.case_id or '-'}: {v.detail}（{v.since} から {v.days} 日）")
    return "\n".join(lines)


class LogCheck(BaseModel):
    """`engine audit --verify`: the audit log's hash chain and protecting triggers (engine/store/audit_chain.py)."""

    entries: int
    head: str | None  # the newest entry's hash: note it elsewhere to catch a rewrite of the whole chain
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_log(conn: sqlite3.Connection) -> LogCheck:
    from engine.store.audit_chain import verify

    problems, entries, head = verify(conn)
    return LogCheck(entries=entries, head=head, problems=problems)


def render_log_check(check: LogCheck) -> str:
    if check.ok:
        return f"ok: audit log intact, {check.entries:,} entries, chain head {check.head or '-'}"
    return "\n".join(f"audit log: {p}" for p in check.problems)
