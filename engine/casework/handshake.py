"""The lead hand-shake: the agency the conference chose is asked to accept the case.

accept  → active (or closed, when the conference decided 終結: the hand-off is the acceptance)
decline → the next candidate of the lead rules is asked; when none is left the case goes back
          to a conference and the coordinator is told
no answer within lead_answer_business_days → escalation to the coordinator (engine/casework/sweep.py)

A case is never without a lead or a dated pending request: `engine audit` checks it.
"""

from __future__ import annotations

import sqlite3
from datetime import date

from pydantic import BaseModel

from engine.casework.steps import (
    cancel_checkpoints,
    close_case,
    requested_evaluation,
    schedule_evaluation,
    withdraw_requests,
)
from engine.conference.convene import Convener, served_silos
from engine.conference.lead import propose_lead
from engine.config import Config
from engine.outbox.keys import MessageKey
from engine.papers.notices import Notice, answer_by_link, queue_notice, recipient_name
from engine.policy.personal_data import holds_personal_data, personal_tokens
from engine.rules.model import RuleSet
from engine.store.chronology import AS_GIVEN, Dating, check_event, note_backdate
from engine.store.db import write_transaction
from engine.store.lifecycle import CaseNotFound, Log
from engine.support.business_days import Calendar
from engine.support.dates import wareki_with_weekday
from engine.support.errors import EngineError
from engine.support.vocabulary import ACTION_STATE_LABELS


class HandshakeError(EngineError):
    """The answer cannot be recorded (no pending request, another agency was asked, …)."""


class AnswerResult(BaseModel):
    case_id: str
    status: str
    next_agency: str | None = None  # decline: the candidate asked next
    escalated: bool = False  # decline: nobody left, the coordinator was told


def _agency(config: Config, agency_id: str):
    agency = config.agencies.get(agency_id)
    if agency is None:
        raise HandshakeError(
            f"機関 '{agency_id}' は agencies.yaml にありません: 会議の結果を記録し直して別の機関に依頼してください（engine outcome）"
        )
    return agency


def request_lead(
    log: Log,
    config: Config,
    case_id: str,
    agency_id: str,
    *,
    then_status: str,
    rule_id: str,
    why: str,
    told: str | None = None,
) -> int:
    """Ask `agency_id` to be the case's lead; the case waits in lead_pending with a dated request.
    `why` goes into the audit log; `told` (default `why`) is what the agency reads, and must not
    name another agency: which agency declined would tell which silo knows the household (a DV
    centre declining says the household is a DV case)."""
    conn, cal = log.conn, Calendar.of(config.conference)
    due = cal.add(log.on, config.lifecycle.lead_answer_business_days)
    _agency(config, agency_id)
    withdraw_requests(log, config, case_id, "新たな依頼に置き換え")
    # the plan's evaluation is scheduled again when the lead accepts
    cancel_checkpoints(log, case_id, "主担当機関の受諾後に評価日を決め直す", ("evaluation",))
    request_id = conn.execute(
        "INSERT INTO lead_requests (case_id, agency_id, rule_id, requested_on, due_on, then_status, status) VALUES (?,?,?,?,?,?, 'pending')",
        (case_id, agency_id, rule_id, log.on.isoformat(), due.isoformat(), then_status),
    ).lastrowid
    log.move(case_id, "lead_pending", f"{config.agencies[agency_id].name}に主担当機関の受諾を依頼（回答期限 {due}）")
    log.event(
        "lead_requested",
        case_id=case_id,
        reason=why,
        rule_id=rule_id,
        agency=agency_id,
        due_on=due,
        request_id=request_id,
    )
    what = "終結後に支援を引き継ぐ主担当機関" if then_status == "closed" else "主担当機関"
    queue_notice(
        conn,
        config,
        Notice(
            key=str(MessageKey.lead_request(request_id)),
            kind="lead_request",
            recipient=agency_id,
            title="主担当機関の受諾のお願い",
            case_id=case_id,
            issued_on=log.on,
            lines=[
                f"{told or why}、事案 {case_id} の{what}を貴機関にお願いしたく、ご依頼申し上げます。",
                f"ご回答の期限: {wareki_with_weekday(due)}",
                "期限までにご回答がない場合は、コーディネーターからご連絡いたします。",
            ],
            answer=answer_by_link(
                "次のリンクから、お引き受けいただける場合は「受諾」を、難しい場合は理由を添えて「辞退」をお選びください。"
            ),
        ),
    )
    return request_id


def pending_request(
    conn: sqlite3.Connection, case_id: str, agency_id: str | None, on: date, answer: str
) -> tuple[int, str, str]:
    """The case's pending request (request id, agency, status after acceptance), read inside the
    answer's write transaction. `agency_id` must be the agency asked; without it, a request made
    on `on` because another agency declined is refused: the answer is most likely meant for the
    agency that declined (the same command typed twice, or an accept racing a decline), and the new
    agency has not even been sent the request yet."""
    if conn.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is None:
        raise CaseNotFound(f"事案 {case_id} はありません（`engine cases` で事案番号を確認してください）")
    row = conn.execute(
        "SELECT request_id, agency_id, then_status FROM lead_requests WHERE case_id = ? AND status = 'pending'",
        (case_id,),
    ).fetchone()
    if row is None:
        raise HandshakeError(
            f"事案 {case_id} に回答待ちの受諾依頼はありません（`engine history {case_id}` で経過を確認してください）"
        )
    if agency_id and agency_id != row[1]:
        raise HandshakeError(f"事案 {case_id} の受諾依頼は {row[1]} に出ています（{agency_id} ではありません）")
    if agency_id is None:
        requested_on, rule_id = conn.execute(
            "SELECT requested_on, rule_id FROM lead_requests WHERE request_id = ?", (row[0],)
        ).fetchone()
        if requested_on == on.isoformat() and rule_id != "conference":
            raise HandshakeError(
                f"事案 {case_id} の受諾依頼は本日 {row[1]} に出し直したところです: {row[1]} の{answer}なら --agency {row[1]} を付けてください"
            )
    return row


def _answers_request(log: Log, dating: Dating, case_id: str, request_id: int, agency: str) -> None:
    """The answer's day against the date policy (engine/store/chronology.py): not before the request."""
    (requested_on,) = log.conn.execute(
        "SELECT requested_on FROM lead_requests WHERE request_id = ?", (request_id,)
    ).fetchone()
    check_event(log.conn, log.on, dating, answers=requested_on, what=f"request to {agency}", case_id=case_id)
    note_backdate(log, dating, case_id=case_id)


def accept(
    conn: sqlite3.Connection,
    config: Config,
    case_id: str,
    on: date,
    actor: str,
    agency_id: str | None = None,
    *,
    dating: Dating = AS_GIVEN,
) -> AnswerResult:
    """The asked agency accepts: it becomes the confirmed lead."""
    log = Log(conn, on, actor, config_hash=config.hash)
    with write_transaction(conn):
        request_id, agency, then = pending_request(conn, case_id, agency_id, on, "受諾")
        _agency(config, agency)
        _answers_request(log, dating, case_id, request_id, agency)
        log.check(case_id, then)
        conn.execute(
            "UPDATE lead_requests SET status = 'accepted', answered_on = ? WHERE request_id = ?",
            (on.isoformat(), request_id),
        )
        conn.execute(
            "UPDATE cases SET lead_agency_id = ?, lead_confirmed_on = ? WHERE case_id = ?",
            (agency, on.isoformat(), case_id),
        )
        conn.execute("UPDATE case_agencies SET role = 'participant' WHERE case_id = ? AND role = 'lead'", (case_id,))
        conn.execute("INSERT OR REPLACE INTO case_agencies VALUES (?,?, 'lead')", (case_id, agency))
        log.event(
            "lead_accepted",
            case_id=case_id,
            reason=f"{config.agencies[agency].name}が主担当機関を受諾",
            agency=agency,
            request_id=request_id,
        )
        log.contact(case_id, agency, "accept")
        if then == "closed":
            close_case(log, config, case_id, f"{config.agencies[agency].name}へ引継ぎ（終結）")
        else:
            log.move(case_id, "active", f"{config.agencies[agency].name}が受諾しプランを実施")
            schedule_evaluation(log, config, case_id, requested_evaluation(conn, case_id))
        status = log.status(case_id)
    return AnswerResult(case_id=case_id, status=status)


def decline(
    conn: sqlite3.Connection,
    rules: RuleSet,
    config: Config,
    case_id: str,
    reason: str,
    on: date,
    actor: str,
    agency_id: str | None = None,
    *,
    dating: Dating = AS_GIVEN,
) -> AnswerResult:
    """The asked agency declines (a reason is required): the next candidate of the lead rules is
    asked; with none left the case goes back to a conference and the coordinator is told."""
    if not reason.strip():
        raise HandshakeError("--reason: say why the agency declines (it is kept in the case history)")
    log = Log(conn, on, actor, rules_hash=rules.hash, config_hash=config.hash)
    with write_transaction(conn):
        request_id, agency, then = pending_request(conn, case_id, agency_id, on, "辞退")
        _agency(config, agency)
        _answers_request(log, dating, case_id, request_id, agency)
        household = conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]
        if holds_personal_data(reason, personal_tokens(conn, household)):
            raise HandshakeError(
                "--reason: the reason holds personal data of the household (a name, kana, address or birth date); write 本人, 世帯員… instead"
            )
        conn.execute(
            "UPDATE lead_requests SET status = 'declined', answered_on = ?, reason = ? WHERE request_id = ?",
            (on.isoformat(), reason, request_id),
        )
        log.event(
            "lead_declined",
            case_id=case_id,
            reason=f"{config.agencies[agency].name}が辞退: {reason}",
            agency=agency,
            request_id=request_id,
        )
        declined = frozenset(
            a
            for (a,) in conn.execute(
                "SELECT agency_id FROM lead_requests WHERE case_id = ? AND status = 'declined'", (case_id,)
            )
        )
        c = Convener(conn, rules, config, on, log=log)
        cid, cand, hh = c.load_case(case_id)
        kind = (
            conn.execute("SELECT conference_type FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0] or "support"
        )
        nxt = propose_lead(
            config,
            area=cand.area,
            flag_ids=cand.flag_ids,
            served_silos=served_silos(hh, on.isoformat()),
            conference_type=kind,
            led=c.led,
            exclude=declined,
        )
        if nxt:
            request_lead(
                log,
                config,
                case_id,
                nxt.agency_id,
                then_status=then,
                rule_id=nxt.rule_id,
                why=f"{config.agencies[agency].name}の辞退を受け、主担当機関の規則による次の候補として",
                told="前の候補機関が辞退したため、次の候補として",
            )  # no rule id either: dv_safety would say it (the rule id is in the entry's rule_id)
            return AnswerResult(case_id=case_id, status=log.status(case_id), next_agency=nxt.agency_id)
        log.escalate(
            f"lead_exhausted:{case_id}:{request_id}",
            "lead_exhausted",
            f"事案 {case_id}: 候補の機関がすべて主担当機関を辞退しました（{'、'.join(recipient_name(config, a) for a in sorted(declined))}）。次の会議で決める必要があります",
            case_id=case_id,
        )
        log.move(case_id, "convened", "候補がすべて辞退したため会議で再検討")
        conn.execute("UPDATE cases SET meeting_id = NULL WHERE case_id = ?", (case_id,))
        c.convene_case(cid, cand, hh, note="候補がすべて主担当機関を辞退したため再付議。")
        return AnswerResult(case_id=case_id, status=log.status(case_id), escalated=True)


def record_contact(
    conn: sqlite3.Connection,
    config: Config,
    case_id: str,
    agency_id: str,
    on: date,
    actor: str,
    *,
    dating: Dating = AS_GIVEN,
) -> None:
    """The lead (or another agency) was in contact with the household: resets the 90-day watch."""
    log = Log(conn, on, actor, config_hash=config.hash)
    if agency_id not in config.agencies:
        raise HandshakeError(f"--agency: unknown agency '{agency_id}' (agency ids are in agencies.yaml)")
    with write_transaction(conn):
        log.status(case_id)
        (opened_on,) = conn.execute("SELECT opened_on FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        check_event(
            conn, on, dating, answers=opened_on, what=f"opening of case {case_id}", case_id=case_id, relation=""
        )
        note_backdate(log, dating, case_id=case_id)
        log.contact(case_id, agency_id, "contact")
        log.event("contact", case_id=case_id, reason=f"{config.agencies[agency_id].name}が世帯と接触", agency=agency_id)


def action_done(
    conn: sqlite3.Connection, config: Config, action_id: int, on: date, actor: str, *, dating: Dating = AS_GIVEN
) -> str:
    """An agreed action is done; returns its case id."""
    log = Log(conn, on, actor, config_hash=config.hash)
    with write_transaction(conn):
        row = (
            conn.execute(
                "SELECT case_id, agency_id, status FROM case_actions WHERE action_id = ?", (action_id,)
            ).fetchone()
            if 0 < action_id < 2**63
            else None
        )
        if row is None:
            raise HandshakeError(f"役割 {action_id} はありません（`engine history CASE` に役割番号が出ます）")
        if row[2] != "open":
            raise HandshakeError(f"役割 {action_id} は既に{ACTION_STATE_LABELS.get(row[2], row[2])}です")
        meeting_id, held_on = conn.execute(
            "SELECT m.meeting_id, m.held_on FROM case_actions a JOIN meetings m ON m.meeting_id = a.meeting_id WHERE a.action_id = ?",
            (action_id,),
        ).fetchone()
        check_event(
            conn,
            on,
            dating,
            answers=held_on,
            what=f"meeting {meeting_id} that agreed action {action_id}",
            case_id=row[0],
        )
        note_backdate(log, dating, case_id=row[0])
        conn.execute(
            "UPDATE case_actions SET status = 'done', done_on = ? WHERE action_id = ?", (on.isoformat(), action_id)
        )
        log.event(
            "action_done",
            case_id=row[0],
            reason=f"役割 {action_id} 完了（{recipient_name(config, row[1])}）",
            action_id=action_id,
            agency=row[1],
        )
        log.contact(row[0], row[1], "action")
    return row[0]
