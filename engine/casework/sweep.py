"""The daily sweep (07:00 Asia/Tokyo): reminders and escalations that actually fire.

- a lead request unanswered past its due day        → escalation to the coordinator
- an action due within reminder_business_days       → reminder to its agency (once)
- an action overdue                                 → reminder to its agency + escalation (digest)
- a meeting held without an outcome after the grace → escalation
- a plan evaluation due                             → booked into a meeting
- a watch / check-back checkpoint due               → the lead (or owner) is asked; no answer → escalation
- triage: an assessment's start day                 → the agency is asked (engine/triage/assessment.py)
- triage: a watched case's re-screen day            → archived, or triaged again
- a suspended case's review day                     → reopened and convened again
- 参加支援: referrals and follow-ups after a match (engine/participation/sweep.py)
- a closed case without contact by its lead for no_contact_days → reopened (もどし)
- on business days                                  → the coordinator's digest (escalations, failures, audit)

Every e-mail has its own key and every escalation is raised once: a sweep run twice sends nothing twice.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import date, timedelta

from pydantic import BaseModel

from engine.casework.audit import KINDS, run_audit
from engine.casework.escalations import escalations
from engine.casework.history import with_agency_names
from engine.casework.steps import cancel_checkpoints, owed_outcomes
from engine.conference.convene import Convener
from engine.config import Config
from engine.outbox.keys import MessageKey
from engine.papers.notices import COORDINATOR, Notice, answer_by_link, queue_notice, recipient_name
from engine.participation.sweep import participation_lines, sweep_participation
from engine.policy.dv import household_locked
from engine.rules.model import RuleSet
from engine.store.chronology import check_run
from engine.store.db import write_transaction
from engine.store.lifecycle import CHECKPOINT_LABELS, Log
from engine.support import clock
from engine.support.business_days import Calendar
from engine.support.dates import wareki_with_weekday
from engine.support.vocabulary import WATCH_RESULT_LABELS
from engine.triage.assessment import ask_assessment, rescreen
from engine.triage.backlog import triage_lines

GAP_KINDS = frozenset({"unhandled_flag", "no_lead", "no_next_step", "no_pathway"})
RESULT_CHOICES = "".join(
    f"「{label}」" for label in WATCH_RESULT_LABELS.values()
)  # 「安定」「懸念あり」「連絡が取れない」


class SweepResult(BaseModel):
    reminders: int = 0  # reminder e-mails queued
    escalations: int = 0
    evaluations_booked: int = 0
    checkpoints_asked: int = 0
    reopened: int = 0
    followups_asked: int = 0  # 参加支援: follow-ups after a match, asked of the lead or the place
    digest: bool = False
    violations: int = 0
    violation_kinds: dict[str, int] = {}  # the day's audit, by kind
    # households the audit finds with an open flag and no owner or no dated next step (unhandled_flag,
    # no_lead, no_next_step, no_pathway) for more than 1 business day: the no-gap promise's measure
    gap_households: list[str] = []
    seconds: float = 0.0


def daily_sweep(conn: sqlite3.Connection, rules: RuleSet, config: Config, on: date) -> SweepResult:
    check_run(conn, on, "sweep")
    started = clock.monotonic()
    cal, lc, day = Calendar.of(config.conference), config.lifecycle, on.isoformat()
    result = SweepResult()
    with write_transaction(conn):  # what is overdue is read under the write lock: an answer may just have come in
        log = Log(conn, on, "sweep", rules_hash=rules.hash, config_hash=config.hash)
        c = Convener(conn, rules, config, on, log=log)

        for request_id, case_id, agency, due in conn.execute(
            "SELECT request_id, case_id, agency_id, due_on FROM lead_requests WHERE status = 'pending' AND due_on < ?",
            (day,),
        ).fetchall():
            result.escalations += log.escalate(
                f"lead:{request_id}",
                "lead_no_answer",
                f"事案 {case_id}: {recipient_name(config, agency)}から主担当機関の受諾依頼への回答が、"
                f"期限の{wareki_with_weekday(due)}までにありません",
                case_id=case_id,
            )

        soon = cal.add(on, lc.reminder_business_days).isoformat()
        actions = conn.execute(
            "SELECT a.action_id, a.case_id, c.household_id, a.agency_id, a.action, a.due_on FROM case_actions a JOIN cases c ON c.case_id = a.case_id "
            "WHERE a.status = 'open' AND c.is_open = 1 AND a.due_on <= ? ORDER BY a.due_on, a.action_id",
            (soon,),
        ).fetchall()
        locked: dict[str, bool] = {}
        for action_id, case_id, household_id, agency, action, due in actions:
            overdue = due < day
            if household_id not in locked:
                locked[household_id] = household_locked(conn, config, household_id, day)
            # DV: not even the action's wording goes by e-mail (its own key: an earlier one is withheld)
            if locked[household_id]:
                action = "内容はメールには記載していません（会議でお伝えした内容をご確認ください）"
            result.reminders += queue_notice(
                conn,
                config,
                Notice(
                    key=str(MessageKey.reminder(action_id, overdue=overdue, locked=locked[household_id])),
                    kind="reminder",
                    recipient=agency,
                    case_id=case_id,
                    title="役割分担の期日が過ぎています" if overdue else "役割分担の期日が近づいています",
                    issued_on=on,
                    lines=[
                        "会議で合意した次の役割について、期日を過ぎましたが、まだ完了のご報告をいただいていません。"
                        if overdue
                        else "会議で合意した次の役割の期日が近づいています。",
                        f"  役割（番号 {action_id}）: {action}",
                        f"  期日: {wareki_with_weekday(due)}",
                    ]
                    + (
                        [
                            "まだ完了していない場合は、今後の見通しをコーディネーターにお知らせください。"
                            "期日を過ぎていることは、コーディネーターにもお伝えしています。"
                        ]
                        if overdue
                        else []
                    ),
                    answer=answer_by_link(
                        ("既に完了している場合は、" if overdue else "完了しましたら、")
                        + "次のリンクから完了をお知らせください（メモを添えられます）。"
                    ),
                ),
            )
            if overdue:
                result.escalations += log.escalate(
                    f"action:{action_id}",
                    "action_overdue",
                    f"事案 {case_id}: {recipient_name(config, agency)}の役割 {action_id} が、"
                    f"期日の{wareki_with_weekday(due)}を過ぎても完了していません",
                    case_id=case_id,
                )

        for case_id, meeting_id, held_on in owed_outcomes(conn, day):
            deadline = cal.add(date.fromisoformat(held_on), lc.outcome_business_days)
            if deadline < on:
                result.escalations += log.escalate(
                    f"outcome:{case_id}:{meeting_id}",
                    "outcome_missing",
                    f"事案 {case_id}: 会議 {meeting_id}（{wareki_with_weekday(held_on)}）の結果が、"
                    f"{wareki_with_weekday(deadline)}までに記録されていません",
                    case_id=case_id,
                )

        checkpoints = conn.execute(
            "SELECT p.checkpoint_id, p.case_id, p.kind, p.due_on, c.status, COALESCE(c.lead_agency_id, c.routed_to) FROM checkpoints p JOIN cases c ON c.case_id = p.case_id "
            "WHERE p.status = 'pending' AND p.due_on <= ? AND c.is_open = 1 ORDER BY p.due_on, p.checkpoint_id",
            (day,),
        ).fetchall()
        for checkpoint_id, case_id, kind, due, status, agency in checkpoints:
            if kind == "evaluation" and status == "active":

                def booked() -> bool:
                    return (
                        conn.execute(
                            "SELECT 1 FROM cases c JOIN meetings m ON m.meeting_id = c.meeting_id WHERE c.case_id = ? AND m.held_on >= ?",
                            (case_id, day),
                        ).fetchone()
                        is not None
                    )

                if not booked():  # else a new flag has brought it to a meeting already: that meeting evaluates the plan
                    c.convene_case(*c.load_case(case_id), note="プランの評価（モニタリング）。")
                if booked():
                    conn.execute(
                        "UPDATE checkpoints SET status = 'done', done_on = ? WHERE checkpoint_id = ?",
                        (day, checkpoint_id),
                    )
                    result.evaluations_booked += 1
                else:
                    result.escalations += log.escalate(
                        f"checkpoint:{checkpoint_id}",
                        "evaluation_unbooked",
                        f"事案 {case_id}: プランの評価（{wareki_with_weekday(due)}）を会議に予約できません（会議枠が満杯です）",
                        case_id=case_id,
                    )
            elif kind == "review" and status == "suspended":
                conn.execute(
                    "UPDATE checkpoints SET status = 'done', done_on = ? WHERE checkpoint_id = ?", (day, checkpoint_id)
                )
                cid, cand, hh = c.load_case(case_id)
                c.reopen(cid, hh, f"中断の見直し期日（{due}）")
                result.reopened += 1
            elif kind == "assessment" and status == "assessing" and agency:  # triage: one agency assesses
                result.checkpoints_asked += ask_assessment(c, checkpoint_id, case_id, agency)
            elif kind == "rescreen" and status == "watching":  # triage: watch only, re-screened today
                rescreen(c, checkpoint_id, case_id, due)
            elif kind == "check_back" and status != "routed":  # left over from before the case got a conference
                cancel_checkpoints(log, case_id, "要対協等から会議へ移った事案", ("check_back",))
            elif kind in ("watch", "check_back") and agency:
                answer_due = cal.add(on, lc.watch_answer_business_days)
                conn.execute(
                    "UPDATE checkpoints SET status = 'asked', asked_on = ?, answer_due = ? WHERE checkpoint_id = ?",
                    (day, answer_due.isoformat(), checkpoint_id),
                )
                log.event(
                    "checkpoint_asked",
                    case_id=case_id,
                    reason=f"{CHECKPOINT_LABELS[kind]}（{due}）を{recipient_name(config, agency)}に照会、回答期限 {answer_due}",
                    kind=kind,
                    checkpoint_id=checkpoint_id,
                    agency=agency,
                )
                queue_notice(
                    conn,
                    config,
                    Notice(
                        key=str(MessageKey.checkpoint(checkpoint_id)),
                        kind="checkpoint",
                        recipient=agency,
                        case_id=case_id,
                        title=f"世帯の様子のご照会（{CHECKPOINT_LABELS[kind]}）",
                        issued_on=on,
                        lines=[
                            f"事案 {case_id} は、{CHECKPOINT_LABELS[kind]}の時期（{wareki_with_weekday(due)}）を迎えました。"
                            "世帯の様子をお知らせください。",
                            *participation_lines(conn, config, case_id, on),
                            f"「{WATCH_RESULT_LABELS['concern']}」「{WATCH_RESULT_LABELS['lost_contact']}」の場合は、"
                            "会議で改めて検討します（もどし）。",
                            f"ご回答の期限: {wareki_with_weekday(answer_due)}",
                        ],
                        answer=answer_by_link(
                            f"次のリンクから{RESULT_CHOICES}のいずれかを選び、世帯の様子をメモに添えてご回答ください。"
                        ),
                    ),
                )
                result.checkpoints_asked += 1

        for checkpoint_id, case_id, kind, answer_due in conn.execute(
            "SELECT checkpoint_id, case_id, kind, answer_due FROM checkpoints WHERE status = 'asked' AND answer_due < ? "
            "ORDER BY checkpoint_id",
            (day,),
        ).fetchall():
            result.escalations += log.escalate(
                f"checkpoint:{checkpoint_id}",
                "checkpoint_no_answer",
                f"事案 {case_id}: {CHECKPOINT_LABELS.get(kind, kind)}の照会への回答が、"
                f"期限の{wareki_with_weekday(answer_due)}までにありません",
                case_id=case_id,
            )

        participation = sweep_participation(log, config, on)
        result.reminders += participation.reminders
        result.escalations += participation.escalations
        result.followups_asked = participation.followups_asked

        limit = (on - timedelta(days=lc.no_contact_days)).isoformat()
        # a lead asked at a watch checkpoint has until the answer is due: the question is not held against it
        silent = conn.execute(
            "SELECT c.case_id FROM cases c WHERE c.status = 'closed' AND c.is_open = 1 AND MAX(c.closed_on, COALESCE((SELECT MAX(t.on_day) FROM contacts t "
            "WHERE t.case_id = c.case_id AND t.agency_id = c.lead_agency_id), '')) < ? "
            "AND NOT EXISTS (SELECT 1 FROM checkpoints p WHERE p.case_id = c.case_id AND p.status = 'asked' AND p.answer_due >= ?) ORDER BY c.case_id",
            (limit, day),
        ).fetchall()
        for (case_id,) in silent:
            cid, cand, hh = c.load_case(case_id)
            c.reopen(cid, hh, f"主担当機関の連絡記録が{lc.no_contact_days}日間ない")
            result.reopened += 1

    report = run_audit(conn, config, on)
    result.violations = len(report.violations)
    result.violation_kinds = dict(Counter(v.kind for v in report.violations))
    result.gap_households = sorted(
        {
            v.household_id
            for v in report.violations
            if v.kind in GAP_KINDS and cal.add(date.fromisoformat(v.since), 1) < on
        }
    )
    if cal.is_business_day(on):
        result.digest = queue_digest(conn, config, on, report)
    result.seconds = round(clock.monotonic() - started, 3)
    return result


def queue_digest(conn: sqlite3.Connection, config: Config, on: date, report) -> bool:
    """One digest per business day to the coordinator: new escalations, overdue items, failed
    e-mails and the audit's violations — pseudonymous ids only."""
    with write_transaction(conn):
        fresh = conn.execute(
            "SELECT subject_key, detail FROM escalations WHERE digest_on IS NULL ORDER BY raised_on, subject_key"
        ).fetchall()
        open_escalations = conn.execute("SELECT COUNT(*) FROM escalations").fetchone()[0]
        failed = conn.execute(
            "SELECT message_key, agency_id, last_error FROM outbox WHERE status = 'failed' ORDER BY message_key"
        ).fetchall()
        lines = [f"{wareki_with_weekday(on)}時点の状況です。"]
        lines.append(f"■ 新たなエスカレーション {len(fresh)} 件")
        names = {a: recipient_name(config, a) for a in config.agencies}
        lines += [f"  - {with_agency_names(detail, names)}" for _, detail in fresh[:100]] + (
            [f"  …ほか {len(fresh) - 100} 件（engine audit）"] if len(fresh) > 100 else []
        )
        lines.append(
            f"■ 送信に失敗したメール {len(failed)} 件"
            + ("（engine outbox --status failed で確認、原因を直して --retry-failed）" if failed else "")
        )
        lines += [
            f"  - {key}（{recipient_name(config, agency)}宛て）: {(error or '')[:120]}"
            for key, agency, error in failed[:50]
        ]
        stale = [
            p for p in config.participation.places.values() if p.stale(on, config.participation.settings.stale_months)
        ]
        if config.participation.present:
            lines.append(
                f"■ 確認から{config.participation.settings.stale_months}か月以上たった社会資源の情報 {len(stale)} 件"
                + ("（場所に確認して resources.yaml の assured_on を更新してください）" if stale else "")
            )
            lines += [f"  - {p.name}（最終確認 {wareki_with_weekday(p.assured_on)}）" for p in stale[:30]]
            lines += [f"  …ほか {len(stale) - 30} 件（engine resources list）"] if len(stale) > 30 else []
        aging = [e for e in escalations(conn, config, on) if not e.settled]
        lines.append(
            f"■ 対応の記録がないエスカレーション {len(aging)} 件（古い順。"
            f"{config.lifecycle.escalation_business_days}営業日を超えると監査の指摘になります）"
        )
        lines += [f"  - {e.age}営業日: {with_agency_names(e.detail, names)}" for e in aging[:30]]
        lines += [f"  …ほか {len(aging) - 30} 件（engine escalations）"] if len(aging) > 30 else []
        lines += triage_lines(conn, report)
        lines.append(
            f"■ 監査の指摘 {len(report.violations)} 件"
            + ("（engine audit で一覧）" if report.violations else "（抜け漏れなし）")
        )
        # case ids only: the household number is the municipality's own and stays in `engine audit`
        lines += [
            f"  - {KINDS[v.kind]}: "
            + (f"事案 {v.case_id}" if v.case_id else "事案なし（engine audit で世帯を確認）")
            + f"（{v.days}日）"
            for v in report.violations[:50]
        ]
        queued = queue_notice(
            conn,
            config,
            Notice(
                key=str(MessageKey.digest(on)),
                kind="digest",
                recipient=COORDINATOR,
                title="多機関協働 日次ダイジェスト",
                issued_on=on,
                lines=lines,
            ),
        )
        if queued:
            conn.execute("UPDATE escalations SET digest_on = ? WHERE digest_on IS NULL", (on.isoformat(),))
            Log(conn, on, "sweep", config_hash=config.hash).event(
                "digest_queued",
                reason=f"ダイジェスト: エスカレーション {len(fresh)} 件、失敗メール {len(failed)} 件、監査 {len(report.violations)} 件",
                escalations_total=open_escalations,
            )
    return queued
