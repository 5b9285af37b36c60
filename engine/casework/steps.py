"""Steps of the case lifecycle that several commands take: withdraw a lead request, schedule the
plan's evaluation or a check-back, close a case with its watch, start a reopening. Each writes
what it does to the audit log (via Log) and needs nothing but the database and the configuration.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date

from engine.config import Config
from engine.outbox.keys import MessageKey
from engine.papers.notices import Notice, queue_notice, recipient_name
from engine.store.lifecycle import CHECKPOINT_LABELS, Log
from engine.support.business_days import Calendar, add_months
from engine.support.dates import wareki_with_weekday


def cancel_checkpoints(log: Log, case_id: str, why: str, kinds: tuple[str, ...] | None = None) -> int:
    """End the case's pending or asked checkpoints (all, or of `kinds`), in the audit log."""
    kinds = kinds or tuple(CHECKPOINT_LABELS)
    n = log.conn.execute(
        f"UPDATE checkpoints SET status = 'cancelled', done_on = ? WHERE case_id = ? AND status IN ('pending', 'asked') AND kind IN ({','.join('?' * len(kinds))})",
        (log.on.isoformat(), case_id, *kinds),
    ).rowcount
    if n:
        log.event(
            "checkpoints_cancelled", case_id=case_id, reason=f"確認の予定 {n}件を取り消し（{why}）", kinds=list(kinds)
        )
    return n


def cancel_actions(log: Log, case_id: str, why: str) -> int:
    """End the case's open actions (a new plan, a closure, a suspension or a reopening), in the audit log."""
    n = log.conn.execute(
        "UPDATE case_actions SET status = 'cancelled', done_on = ? WHERE case_id = ? AND status = 'open'",
        (log.on.isoformat(), case_id),
    ).rowcount
    if n:
        log.event("actions_replaced", case_id=case_id, reason=f"未完了の役割 {n}件を終了（{why}）")
    return n


def owed_outcomes(
    conn: sqlite3.Connection, held_before: str = "9999-12-31", *, inclusive: bool = False, case_id: str | None = None
) -> list[tuple[str, str, str]]:
    """(case, meeting, held_on) of each meeting held before the day (or on it, if inclusive; by
    default every booked one) with an open case on it and no outcome recorded: every meeting a
    case was on owes one, even after a new flag moved the case to a later meeting."""
    return conn.execute(
        "SELECT cm.case_id, cm.meeting_id, m.held_on FROM case_meetings cm JOIN meetings m ON m.meeting_id = cm.meeting_id JOIN cases c ON c.case_id = cm.case_id "
        f"WHERE c.is_open = 1 AND m.held_on {'<=' if inclusive else '<'} ? AND (? IS NULL OR cm.case_id = ?) "
        "AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.case_id = cm.case_id AND o.meeting_id = cm.meeting_id) "
        "ORDER BY cm.case_id, m.held_on",
        (held_before, case_id, case_id),
    ).fetchall()


def withdraw_requests(log: Log, config: Config, case_id: str, why: str) -> int:
    """Cancel the case's pending lead request, say so in the audit log, and tell the agency if the
    request already reached it (an unsent one is simply withheld at dispatch)."""
    rows = log.conn.execute(
        "SELECT request_id, agency_id, requested_on FROM lead_requests WHERE case_id = ? AND status = 'pending'",
        (case_id,),
    ).fetchall()
    for request_id, agency, requested_on in rows:
        log.conn.execute(
            "UPDATE lead_requests SET status = 'cancelled', answered_on = ? WHERE request_id = ?",
            (log.on.isoformat(), request_id),
        )
        log.event(
            "lead_request_withdrawn",
            case_id=case_id,
            reason=f"{recipient_name(config, agency)}への受諾依頼を取り下げ: {why}",
            request_id=request_id,
            agency=agency,
        )
        reached = log.conn.execute(
            "SELECT 1 FROM outbox WHERE message_key = ? AND (status IN ('sent', 'sending') OR possible_duplicate = 1)",
            (str(MessageKey.lead_request(request_id)),),
        ).fetchone()
        if reached and agency in config.agencies:
            queue_notice(
                log.conn,
                config,
                Notice(
                    key=str(MessageKey.lead_withdrawn(request_id)),
                    kind="lead_withdrawn",
                    recipient=agency,
                    title="主担当機関の受諾依頼の取り下げ",
                    case_id=case_id,
                    issued_on=log.on,
                    lines=[
                        f"{wareki_with_weekday(requested_on)}付けでお送りした事案 {case_id} の主担当機関の受諾依頼"
                        f"（依頼番号 {request_id}）は、取り下げさせていただきます（理由: {why}）。",
                        "この依頼へのご回答は不要です。お送りしたリンクからのご回答も受け付けません。",
                        "行き違いでご対応いただいていた場合は、お手数ですがコーディネーターにお知らせください。",
                    ],
                ),
            )
    return len(rows)


def schedule_evaluation(log: Log, config: Config, case_id: str, requested: date | None = None) -> date:
    """The plan's next evaluation (default evaluation_months ahead), on a business day."""
    due = Calendar.of(config.conference).add(requested or add_months(log.on, config.lifecycle.evaluation_months), 0)
    cancel_checkpoints(log, case_id, "新しい評価日に置き換え", ("evaluation",))
    log.conn.execute(
        "INSERT INTO checkpoints (case_id, kind, due_on, status) VALUES (?, 'evaluation', ?, 'pending')",
        (case_id, due.isoformat()),
    )
    log.event("checkpoint_scheduled", case_id=case_id, reason=f"プランの評価 {due}", kind="evaluation", due_on=due)
    return due


def close_case(log: Log, config: Config, case_id: str, reason: str) -> list[date]:
    """終結: the case is the lead's now; the engine keeps a light watch at +3, +6, +12 months."""
    conn, cal = log.conn, Calendar.of(config.conference)
    log.move(case_id, "closed", reason)
    conn.execute("UPDATE cases SET closed_on = ? WHERE case_id = ?", (log.on.isoformat(), case_id))
    cancel_actions(log, case_id, "終結: 主担当機関へ引継ぎ")
    cancel_checkpoints(log, case_id, "終結")
    days = [cal.add(add_months(log.on, m), 0) for m in config.lifecycle.watch_months]
    conn.executemany(
        "INSERT INTO checkpoints (case_id, kind, due_on, status) VALUES (?, 'watch', ?, 'pending')",
        [(case_id, d.isoformat()) for d in days],
    )
    log.event(
        "checkpoint_scheduled",
        case_id=case_id,
        reason="終結後の見守り " + "、".join(str(d) for d in days),
        kind="watch",
        due_on=[str(d) for d in days],
    )
    return days


def requested_evaluation(conn: sqlite3.Connection, case_id: str) -> date | None:
    """The next_evaluation the latest conference asked for, if any."""
    row = conn.execute(
        "SELECT body FROM outcomes WHERE case_id = ? ORDER BY decided_on DESC, recorded_on DESC LIMIT 1", (case_id,)
    ).fetchone()
    requested = json.loads(row[0]).get("next_evaluation") if row else None
    return date.fromisoformat(requested) if requested else None


def schedule_check_back(log: Log, config: Config, case_id: str, owner_name: str, *, due: date | None = None) -> date:
    """The next question to the owner of the silo conference (or the serving agency) a routed case
    was left with: on `due`, else check_back_months ahead."""
    due = due or Calendar.of(config.conference).add(add_months(log.on, config.lifecycle.check_back_months), 0)
    log.conn.execute(
        "INSERT INTO checkpoints (case_id, kind, due_on, status) VALUES (?, 'check_back', ?, 'pending')",
        (case_id, due.isoformat()),
    )
    log.event(
        "checkpoint_scheduled", case_id=case_id, reason=f"{owner_name}への確認日 {due}", kind="check_back", due_on=due
    )
    return due


def begin_reopen(log: Log, config: Config, case_id: str, reason: str) -> str | None:
    """Move a closed or suspended case to reopened and end what was pending (checkpoints, the lead
    request, open actions); the lead must accept again. Returns the previous lead."""
    log.move(case_id, "reopened", reason)
    previous = log.conn.execute("SELECT lead_agency_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]
    log.conn.execute(
        "UPDATE cases SET reopen_count = reopen_count + 1, lead_confirmed_on = NULL, closed_on = NULL WHERE case_id = ?",
        (case_id,),
    )
    cancel_checkpoints(log, case_id, "事案の再開")
    cancel_actions(log, case_id, "事案の再開")
    withdraw_requests(log, config, case_id, "事案の再開")
    return previous
