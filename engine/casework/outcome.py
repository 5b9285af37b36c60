"""Record what a conference decided for one case: `engine outcome MEETING CASE --file outcome.yaml`.

The file and its checks are in engine/casework/outcome_file.py (OutcomeInvalid is imported from
here too). plan and close ask the lead to accept (the hand-shake, engine/casework/handshake.py)
unless that agency already is the case's confirmed lead.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from pydantic import BaseModel

from engine.casework.handshake import request_lead
from engine.casework.outcome_file import Outcome, OutcomeInvalid, check_outcome, read_outcome
from engine.casework.steps import (
    begin_reopen,
    cancel_actions,
    cancel_checkpoints,
    close_case,
    schedule_evaluation,
    withdraw_requests,
)
from engine.conference.convener import Convener
from engine.config import Config
from engine.participation.outcome import record_entries
from engine.rules.model import RuleSet
from engine.store.chronology import AS_GIVEN, Dating, check_event, note_backdate
from engine.store.db import write_transaction
from engine.store.lifecycle import Log
from engine.support.business_days import Calendar
from engine.support.dates import wareki_with_weekday
from engine.support.errors import EngineError
from engine.support.yamlfile import YamlFile

__all__ = [
    "OutcomeInvalid",
    "OutcomeRefused",
    "OutcomeResult",
    "apply_outcome",
    "check_outcome",
    "read_outcome",
    "record_outcome",
]


class OutcomeRefused(EngineError):
    """The outcome cannot be recorded for this meeting and case (said why)."""


class AgreedAction(BaseModel):
    """One role the outcome created: its number is what `engine done` takes."""

    action_id: int
    agency: str
    action: str
    due: date


class OutcomeResult(BaseModel):
    case_id: str
    decision: str
    status: str  # the case's state afterwards
    lead_request: int | None = None  # the hand-shake request sent, if any
    lead_agency: str | None = None  # the agency that request asks
    actions: int = 0
    roles: list[AgreedAction] = []  # the roles created, in the outcome file's order
    meeting_id: str | None = None  # continue: the meeting the case is booked into
    history_only: bool = False  # a later meeting had decided already: recorded, nothing changed
    referrals: list[int] = []  # 参加支援: the referrals made (engine referral N)


def store_outcome(
    conn: sqlite3.Connection, case_id: str, meeting_id: str, held_on: date, on: date, outcome: Outcome
) -> None:
    """The decision as recorded (append-only; the file's fields kept as JSON)."""
    conn.execute(
        "INSERT INTO outcomes VALUES (?,?,?,?,?,?,?,?)",
        (
            case_id,
            meeting_id,
            held_on.isoformat(),
            on.isoformat(),
            outcome.decision,
            outcome.lead,
            outcome.consent,
            outcome.model_dump_json(),
        ),
    )


def record_outcome(
    conn: sqlite3.Connection,
    rules: RuleSet,
    config: Config,
    meeting_id: str,
    case_id: str,
    path: Path,
    on: date,
    actor: str,
    *,
    dating: Dating = AS_GIVEN,
) -> OutcomeResult:
    """Validate the outcome file and apply the decision, in one transaction, which reads the case
    under the write lock (an answer or the sweep may be changing it at the same time)."""
    doc, outcome = read_outcome(path)
    return apply_outcome(conn, rules, config, meeting_id, case_id, doc, outcome, on, actor, dating=dating)


def apply_outcome(
    conn: sqlite3.Connection,
    rules: RuleSet,
    config: Config,
    meeting_id: str,
    case_id: str,
    doc: YamlFile,
    outcome: Outcome,
    on: date,
    actor: str,
    *,
    dating: Dating = AS_GIVEN,
) -> OutcomeResult:
    """The decision read from a file (record_outcome) or the console's form (engine/web/console/outcome.py),
    checked (check_outcome, the date policy) and applied in one write transaction."""
    with write_transaction(conn):
        return _apply(conn, rules, config, meeting_id, case_id, doc, outcome, on, actor, dating)


def _apply(
    conn: sqlite3.Connection,
    rules: RuleSet,
    config: Config,
    meeting_id: str,
    case_id: str,
    doc,
    outcome: Outcome,
    on: date,
    actor: str,
    dating: Dating,
) -> OutcomeResult:
    meeting = conn.execute(
        "SELECT held_on, conference_type FROM meetings WHERE meeting_id = ?", (meeting_id,)
    ).fetchone()
    if meeting is None:
        raise OutcomeRefused(f"会議 {meeting_id} はありません（`engine meetings --all` で確認してください）")
    row = conn.execute(
        "SELECT household_id, status, meeting_id, lead_agency_id, lead_confirmed_on, conference_type FROM cases WHERE case_id = ?",
        (case_id,),
    ).fetchone()
    if row is None:
        raise OutcomeRefused(
            f"事案 {case_id} はありません（`engine meetings --all` または `engine cases` で事案番号を確認してください）"
        )
    household_id, status, case_meeting, lead, confirmed_on, conference_type = row
    held_on = date.fromisoformat(meeting[0])
    if not conn.execute(
        "SELECT 1 FROM case_meetings WHERE case_id = ? AND meeting_id = ?", (case_id, meeting_id)
    ).fetchone():
        raise OutcomeRefused(
            f"事案 {case_id} は会議 {meeting_id} に付議されていません（現在の付議先: {case_meeting or 'なし'}）"
        )
    if held_on > on:
        raise OutcomeRefused(f"会議 {meeting_id} は {held_on} に開かれます: 結果はその日以降に記録してください")
    if conn.execute("SELECT 1 FROM outcomes WHERE case_id = ? AND meeting_id = ?", (case_id, meeting_id)).fetchone():
        raise OutcomeRefused(
            f"事案 {case_id} の会議 {meeting_id} の結果は記録済みです（記録は追記のみ。`engine history {case_id}` を参照）"
        )
    problems = check_outcome(
        conn,
        config,
        doc,
        outcome,
        household_id=household_id,
        held_on=held_on,
        conference_type=meeting[1],
        case_id=case_id,
    )
    if problems:
        raise OutcomeInvalid(problems)
    check_event(conn, on, dating, answers=held_on, what=f"meeting {meeting_id}", case_id=case_id)
    log = Log(conn, on, actor, config_hash=config.hash)
    labels = {
        "plan": "支援方針と役割分担を決定",
        "close": "終結（主担当機関へ引継ぎ）",
        "suspend": "中断",
        "continue": "継続審議",
    }
    later = conn.execute(
        "SELECT o.meeting_id FROM outcomes o JOIN meetings m ON m.meeting_id = o.meeting_id WHERE o.case_id = ? AND m.held_on > ? ORDER BY m.held_on DESC LIMIT 1",
        (case_id, held_on.isoformat()),
    ).fetchone()
    if later:  # a later conference has decided already: this one is kept as history and changes nothing
        with conn:
            note_backdate(log, dating, case_id=case_id, meeting_id=meeting_id)
            store_outcome(conn, case_id, meeting_id, held_on, on, outcome)
            log.event(
                "outcome",
                case_id=case_id,
                meeting_id=meeting_id,
                reason=f"{labels[outcome.decision]}（後の会議 {later[0]} の決定が優先のため記録のみ）",
                decision=outcome.decision,
                history_only=True,
            )
        return OutcomeResult(case_id=case_id, decision=outcome.decision, status=status, history_only=True)
    if status in ("closed", "suspended"):  # the conference takes the case up again (もどし)
        log.check(case_id, "reopened")
    decision_status = {"plan": "lead_pending", "close": "closed", "suspend": "suspended", "continue": status}[
        outcome.decision
    ]
    if status not in ("closed", "suspended"):
        log.check(
            case_id,
            decision_status if not (outcome.decision == "plan" and outcome.lead == lead and confirmed_on) else "active",
        )
    result = OutcomeResult(case_id=case_id, decision=outcome.decision, status=status)
    with conn:
        note_backdate(log, dating, case_id=case_id, meeting_id=meeting_id)
        if status in ("closed", "suspended"):
            begin_reopen(log, config, case_id, f"会議 {meeting_id} で再び検討（{labels[outcome.decision]}）")
            log.move(case_id, "convened", f"会議 {meeting_id} の決定による再開", meeting_id=meeting_id)
            lead, confirmed_on = conn.execute(
                "SELECT lead_agency_id, lead_confirmed_on FROM cases WHERE case_id = ?", (case_id,)
            ).fetchone()
        store_outcome(conn, case_id, meeting_id, held_on, on, outcome)
        if outcome.consent:
            conn.execute("UPDATE cases SET consent_state = ? WHERE case_id = ?", (outcome.consent, case_id))
        log.event(
            "outcome",
            case_id=case_id,
            meeting_id=meeting_id,
            reason=labels[outcome.decision] + (f"（{outcome.reason}）" if outcome.reason else ""),
            decision=outcome.decision,
            lead=outcome.lead,
            consent=outcome.consent,
            roles=len(outcome.roles),
            late=on > Calendar.of(config.conference).add(held_on, config.lifecycle.outcome_business_days),
        )
        if outcome.decision in ("plan", "suspend"):
            cancel_actions(log, case_id, f"会議 {meeting_id} の新しい決定")
        agreed = []
        for role in outcome.roles:
            action_id = conn.execute(
                "INSERT INTO case_actions (case_id, meeting_id, agency_id, action, due_on, status) VALUES (?,?,?,?,?, 'open')",
                (case_id, meeting_id, role.agency, role.action, role.due.isoformat()),
            ).lastrowid
            agreed.append({"action_id": action_id, "agency": role.agency, "due": role.due})
            result.roles.append(AgreedAction(action_id=action_id, agency=role.agency, action=role.action, due=role.due))
            result.actions += 1
        if outcome.roles:  # the numbers `engine done` takes are in the history
            log.event(
                "actions_agreed",
                case_id=case_id,
                meeting_id=meeting_id,
                roles=agreed,
                reason=f"役割分担 {len(agreed)}件: "
                + "、".join(
                    f"役割 {a.action_id}（{config.agencies[a.agency].name}、{wareki_with_weekday(a.due)}まで）"
                    for a in result.roles
                ),
            )
        if outcome.participation:  # 参加支援: needs and referrals (engine/participation/outcome.py)
            result.referrals = record_entries(
                log, config, case_id, meeting_id, outcome.participation, outcome.lead or lead
            )
        if outcome.decision in ("plan", "close"):
            target = outcome.lead or lead
            then = "active" if outcome.decision == "plan" else "closed"
            if target == lead and confirmed_on:
                withdraw_requests(log, config, case_id, f"会議 {meeting_id} で確定済みの主担当機関が継続")
                if then == "active":
                    log.move(case_id, "active", "確定済みの主担当機関がプランを継続", meeting_id=meeting_id)
                    schedule_evaluation(log, config, case_id, outcome.next_evaluation)
                else:
                    close_case(log, config, case_id, "会議で終結を決定（主担当機関へ引継ぎ済み）")
            else:
                result.lead_agency = target
                result.lead_request = request_lead(
                    log,
                    config,
                    case_id,
                    target,
                    then_status=then,
                    rule_id="conference",
                    why=f"会議 {meeting_id} の決定（{labels[outcome.decision]}）により",
                )
        elif outcome.decision == "suspend":
            withdraw_requests(log, config, case_id, f"会議 {meeting_id} で中断を決定")
            cancel_checkpoints(log, case_id, "中断")
            log.move(case_id, "suspended", f"中断: {outcome.reason}", meeting_id=meeting_id)
            review = Calendar.of(config.conference).add(outcome.review_on, 0)
            conn.execute(
                "INSERT INTO checkpoints (case_id, kind, due_on, status) VALUES (?, 'review', ?, 'pending')",
                (case_id, review.isoformat()),
            )
            log.event(
                "checkpoint_scheduled", case_id=case_id, reason=f"中断の見直し {review}", kind="review", due_on=review
            )
        else:  # continue: the next meeting
            c = Convener(conn, rules, config, on, log=log)
            if case_meeting == meeting_id:  # this meeting has been held: book the next (a later booking is kept)
                conn.execute("UPDATE cases SET meeting_id = NULL WHERE case_id = ?", (case_id,))
            c.convene_case(*c.load_case(case_id), note="継続審議。", continued=True)
            result.meeting_id = conn.execute("SELECT meeting_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()[
                0
            ]  # None: waits for a slot
        result.status = conn.execute("SELECT status FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]
    return result
