"""Steps of the case lifecycle that several commands take: withdraw a lead request, schedule the
plan's evaluation or a check-back, close a case with its watch, start a reopening. Each writes
what it does to the audit log (via Log) and needs nothing but the database and the configuration.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date

from engine.business_days import Calendar, add_months
from engine.config import Config
from engine.lifecycle import Log
from engine.notices import Notice, queue_notice


def withdraw_requests(log: Log, config: Config, case_id: str, why: str) -> int:
    """Cancel the case's pending lead request, say so in the audit log, and tell the agency if the
    request already reached it (an unsent one is simply withheld at dispatch)."""
    rows = log.conn.execute("SELECT request_id, agency_id FROM lead_requests WHERE case_id = ? AND status = 'pending'", (case_id,)).fetchall()
    for request_id, agency in rows:
        log.conn.execute("UPDATE lead_requests SET status = 'cancelled', answered_on = ? WHERE request_id = ?", (log.on.isoformat(), request_id))
        log.event("lead_request_withdrawn", case_id=case_id, reason=f"{agency}への受諾依頼を取り下げ: {why}", request_id=request_id, agency=agency)
        reached = log.conn.execute(
            "SELECT 1 FROM outbox WHERE message_key = ? AND (status IN ('sent', 'sending') OR possible_duplicate = 1)", (f"lead_request:{request_id}",)).fetchone()
        if reached and agency in config.agencies:
            queue_notice(log.conn, config, Notice(
                key=f"lead_withdrawn:{request_id}", kind="lead_withdrawn", recipient=agency, title="受諾依頼の取り下げ", case_id=case_id,
                lines=[f"事案 {case_id} の主担当機関の受諾依頼（番号 {request_id}）は取り下げました（{why}）。", "この依頼への回答は不要です。"],
            ))
    return len(rows)


def schedule_evaluation(log: Log, config: Config, case_id: str, requested: date | None = None) -> date:
    """The plan's next evaluation (default evaluation_months ahead), on a business day."""
    due = Calendar.of(config.conference).add(requested or add_months(log.on, config.lifecycle.evaluation_months), 0)
    log.conn.execute("UPDATE checkpoints SET status = 'cancelled', done_on = ? WHERE case_id = ? AND kind = 'evaluation' AND status = 'pending'", (log.on.isoformat(), case_id))
    log.conn.execute("INSERT INTO checkpoints (case_id, kind, due_on, status) VALUES (?, 'evaluation', ?, 'pending')", (case_id, due.isoformat()))
    log.event("checkpoint_scheduled", case_id=case_id, reason=f"プランの評価 {due}", kind="evaluation", due_on=due)
    return due


def close_case(log: Log, config: Config, case_id: str, reason: str) -> list[date]:
    """終結: the case is the lead's now; the engine keeps a light watch at +3, +6, +12 months."""
    conn, cal = log.conn, Calendar.of(config.conference)
    log.move(case_id, "closed", reason)
    conn.execute("UPDATE cases SET closed_on = ? WHERE case_id = ?", (log.on.isoformat(), case_id))
    n = conn.execute("UPDATE case_actions SET status = 'cancelled', done_on = ? WHERE case_id = ? AND status = 'open'", (log.on.isoformat(), case_id)).rowcount
    if n:
        log.event("actions_replaced", case_id=case_id, reason=f"終結に伴い未完了の役割 {n}件を主担当機関へ引継ぎ")
    conn.execute("UPDATE checkpoints SET status = 'cancelled', done_on = ? WHERE case_id = ? AND status IN ('pending', 'asked')", (log.on.isoformat(), case_id))
    days = [cal.add(add_months(log.on, m), 0) for m in config.lifecycle.watch_months]
    conn.executemany("INSERT INTO checkpoints (case_id, kind, due_on, status) VALUES (?, 'watch', ?, 'pending')", [(case_id, d.isoformat()) for d in days])
    log.event("checkpoint_scheduled", case_id=case_id, reason="終結後の見守り " + "、".join(str(d) for d in days), kind="watch", due_on=[str(d) for d in days])
    return days


def requested_evaluation(conn: sqlite3.Connection, case_id: str) -> date | None:
    """The next_evaluation the latest conference asked for, if any."""
    row = conn.execute("SELECT body FROM outcomes WHERE case_id = ? ORDER BY decided_on DESC, recorded_on DESC LIMIT 1", (case_id,)).fetchone()
    requested = json.loads(row[0]).get("next_evaluation") if row else None
    return date.fromisoformat(requested) if requested else None


def schedule_check_back(log: Log, config: Config, case_id: str, owner_name: str) -> date:
    """The next question to the owner of the silo conference a routed case was left with."""
    due = Calendar.of(config.conference).add(add_months(log.on, config.lifecycle.check_back_months), 0)
    log.conn.execute("INSERT INTO checkpoints (case_id, kind, due_on, status) VALUES (?, 'check_back', ?, 'pending')", (case_id, due.isoformat()))
    log.event("checkpoint_scheduled", case_id=case_id, reason=f"{owner_name}への確認日 {due}", kind="check_back", due_on=due)
    return due


def begin_reopen(log: Log, config: Config, case_id: str, reason: str) -> str | None:
    """Move a closed or suspended case to reopened and end what was pending (checkpoints, the lead
    request, open actions); the lead must accept again. Returns the previous lead."""
    day = log.on.isoformat()
    log.move(case_id, "reopened", reason)
    previous = log.conn.execute("SELECT lead_agency_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]
    log.conn.execute("UPDATE cases SET reopen_count = reopen_count + 1, lead_confirmed_on = NULL, closed_on = NULL WHERE case_id = ?", (case_id,))
    log.conn.execute("UPDATE checkpoints SET status = 'cancelled', done_on = ? WHERE case_id = ? AND status IN ('pending', 'asked')", (day, case_id))
    log.conn.execute("UPDATE case_actions SET status = 'cancelled', done_on = ? WHERE case_id = ? AND status = 'open'", (day, case_id))
    withdraw_requests(log, config, case_id, "事案の再開")
    return previous
