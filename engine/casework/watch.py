"""Checkpoints answered by agencies: the post-closure watch (見守り) and the check-back of a case
left with a silo conference. `engine watch CASE --result stable|concern|lost_contact`.

stable                → the next checkpoint waits; after the last watch checkpoint the case is archived
concern, lost_contact → もどし: the case is reopened and convened again with its previous lead
                        (a routed case is brought to a conference)
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Literal

from pydantic import BaseModel

from engine.casework.steps import cancel_checkpoints, schedule_check_back
from engine.conference.convene import Convener
from engine.config import Config
from engine.rules.model import RuleSet
from engine.store.chronology import AS_GIVEN, Dating, check_event, note_backdate
from engine.store.db import write_transaction
from engine.store.lifecycle import Log
from engine.support.errors import EngineError
from engine.support.vocabulary import WATCH_RESULT_LABELS

Result = Literal["stable", "concern", "lost_contact"]
RESULT_LABELS = WATCH_RESULT_LABELS  # one place: engine/support/vocabulary.py


class WatchError(EngineError):
    pass


class WatchResult(BaseModel):
    case_id: str
    checkpoint_id: int
    result: str
    status: str  # the case's state afterwards


def answer_checkpoint(
    conn: sqlite3.Connection,
    rules: RuleSet,
    config: Config,
    case_id: str,
    result: Result,
    on: date,
    actor: str,
    agency_id: str | None = None,
    *,
    dating: Dating = AS_GIVEN,
) -> WatchResult:
    if result not in RESULT_LABELS:
        raise WatchError(f"--result: '{result}' is not one of stable, concern, lost_contact")
    if agency_id and agency_id not in config.agencies:
        raise WatchError(f"--agency: unknown agency '{agency_id}' (agency ids are in agencies.yaml)")
    log = Log(conn, on, actor, rules_hash=rules.hash, config_hash=config.hash)
    with write_transaction(conn):
        status = log.status(case_id)
        row = conn.execute(
            "SELECT checkpoint_id, kind FROM checkpoints WHERE case_id = ? AND kind IN ('watch', 'check_back') AND (status = 'asked' OR (status = 'pending' AND due_on <= ?)) "
            "ORDER BY due_on LIMIT 1",
            (case_id, on.isoformat()),
        ).fetchone()
        if row is None and result != "stable" and status in ("closed", "suspended", "routed"):
            since = conn.execute(
                "SELECT MAX(on_day) FROM audit_log WHERE case_id = ? AND event = 'transition' AND to_status = ?",
                (case_id, status),
            ).fetchone()[0]
            check_event(conn, on, dating, answers=since or on, what=f"case's {status} state", case_id=case_id)
            note_backdate(log, dating, case_id=case_id)
            return _unscheduled_report(conn, rules, config, log, case_id, status, result, on, agency_id)
        if row is None:
            nxt = conn.execute(
                "SELECT MIN(due_on) FROM checkpoints WHERE case_id = ? AND kind IN ('watch', 'check_back') AND status = 'pending'",
                (case_id,),
            ).fetchone()[0]
            raise WatchError(
                f"事案 {case_id}（{status}）に回答を待つ確認はありません" + (f"（次の確認日: {nxt}）" if nxt else "")
            )
        checkpoint_id, kind = row
        (due_on,) = conn.execute("SELECT due_on FROM checkpoints WHERE checkpoint_id = ?", (checkpoint_id,)).fetchone()
        check_event(conn, on, dating, answers=due_on, what=f"checkpoint {checkpoint_id} ({kind})", case_id=case_id)
        note_backdate(log, dating, case_id=case_id)
        lead = conn.execute(
            "SELECT COALESCE(lead_agency_id, routed_to) FROM cases WHERE case_id = ?", (case_id,)
        ).fetchone()[0]
        who = agency_id or lead
        conn.execute(
            "UPDATE checkpoints SET status = 'done', result = ?, done_on = ? WHERE checkpoint_id = ?",
            (result, on.isoformat(), checkpoint_id),
        )
        log.event(
            "checkpoint_answered",
            case_id=case_id,
            reason=f"{'見守り' if kind == 'watch' else '確認'}の結果: {RESULT_LABELS[result]}",
            kind=kind,
            result=result,
            checkpoint_id=checkpoint_id,
            agency=who,
        )
        if result != "lost_contact" and who:
            log.contact(case_id, who, "watch")
        if result == "stable":
            if kind == "check_back":
                schedule_check_back(log, config, case_id, config.agencies[who].name if who in config.agencies else who)
            elif not conn.execute(
                "SELECT 1 FROM checkpoints WHERE case_id = ? AND kind = 'watch' AND status IN ('pending', 'asked')",
                (case_id,),
            ).fetchone():
                log.move(case_id, "archived", "終結後の見守りをすべて終え、安定")
        else:
            c = Convener(conn, rules, config, on, log=log)
            cid, cand, hh = c.load_case(case_id)
            why = f"{'見守り' if kind == 'watch' else '要対協・支援中の機関への確認'}で「{RESULT_LABELS[result]}」"
            if status == "routed":
                cancel_checkpoints(log, case_id, "会議に付議")
                to_conference(c, case_id, why)
                c.convene_case(cid, cand, hh, note=why + "のため会議に付議。")
            else:
                c.reopen(cid, hh, why)
        status = log.status(case_id)
    return WatchResult(case_id=case_id, checkpoint_id=checkpoint_id, result=result, status=status)


def to_conference(c: Convener, case_id: str, why: str) -> None:
    """A routed case's owner reports a concern: its pathway is now a conference (from today)."""
    from engine.triage.decide import Decision
    from engine.triage.pathways import record_pathway

    record_pathway(c, case_id, Decision(pathway="conference", rule_id="check_back", reason=why))


def _unscheduled_report(
    conn, rules, config, log: Log, case_id: str, status: str, result: str, on: date, agency_id: str | None
) -> WatchResult:
    """A lead (or owner) reports a new crisis between checkpoints: もどし at once, not at the next checkpoint."""
    lead = conn.execute(
        "SELECT COALESCE(lead_agency_id, routed_to) FROM cases WHERE case_id = ?", (case_id,)
    ).fetchone()[0]
    log.event(
        "crisis_reported",
        case_id=case_id,
        reason=f"確認日以外の報告: {RESULT_LABELS[result]}",
        result=result,
        agency=agency_id or lead,
    )
    if result != "lost_contact" and (agency_id or lead):
        log.contact(case_id, agency_id or lead, "watch")
    c = Convener(conn, rules, config, on, log=log)
    cid, cand, hh = c.load_case(case_id)
    why = f"確認日以外に「{RESULT_LABELS[result]}」の報告"
    if status == "routed":
        cancel_checkpoints(log, case_id, "会議に付議")
        to_conference(c, case_id, why)
        c.convene_case(cid, cand, hh, note=why + "のため会議に付議。")
    else:
        c.reopen(cid, hh, why)
    return WatchResult(case_id=case_id, checkpoint_id=0, result=result, status=log.status(case_id))
