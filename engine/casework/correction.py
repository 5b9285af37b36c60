"""Correct a wrong entry by appending a correcting event: `engine correct CASE SEQ --reason … [--date D]`.

The audit log is append-only: the wrong entry stays, a `corrected` event names it (`corrects`) with
the reason and the actor, and the state derived from it follows the correction.

- a contact (`engine contact`): withdrawn (no --date: it did not happen) or re-dated; the contact
  that keeps a closed case's 90-day watch is the corrected one;
- a done action (`engine done`): withdrawn (the action is open again and reminded) or re-dated.

The corrected day obeys the date policy (engine/store/chronology.py): not before what the entry
answers, not ahead of today. The correction's reason is its back-date reason. An entry can be
corrected again (from its corrected day) until it is withdrawn. A decision that moved the case (an
outcome, accept, decline, a watch answer) is not corrected here: the next conference decides again.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date

from pydantic import BaseModel

from engine.casework.history import CORRECTABLE_EVENTS, EVENT_LABELS
from engine.config import Config
from engine.policy.personal_data import holds_personal_data, personal_tokens
from engine.store.chronology import AS_GIVEN, DateRefused, Dating, check_event
from engine.store.db import write_transaction
from engine.store.lifecycle import CaseNotFound, Log
from engine.support import clock
from engine.support.errors import EngineError

VIA = {"contact": "contact", "action_done": "action"}  # a correctable event -> its contacts row's `via`


class CorrectionRefused(EngineError):
    """The entry cannot be corrected (said why and what to do instead)."""


class CorrectionResult(BaseModel):
    case_id: str
    corrected: int  # the seq of the entry corrected
    seq: int  # the seq of the correcting event
    withdrawn: bool
    day: str | None  # the corrected day (None: withdrawn)


def _target(conn: sqlite3.Connection, case_id: str, seq: int) -> tuple[str, str, dict]:
    """The event `seq` of the case: (event, its current day, detail), following earlier corrections."""
    row = conn.execute(
        "SELECT event, on_day, detail FROM audit_log WHERE seq = ? AND case_id = ?",
        (seq, case_id) if 0 < seq < 2**63 else (0, case_id),
    ).fetchone()
    if row is None:
        raise CorrectionRefused(
            f"事案 {case_id} に記録番号 {seq} はありません（`engine history {case_id}` に番号が出ます）"
        )
    event, day, detail = row[0], row[1], json.loads(row[2]) if row[2] else {}
    if event not in CORRECTABLE_EVENTS:
        raise CorrectionRefused(
            f"記録番号 {seq} は「{EVENT_LABELS.get(event, event)}」です: 訂正できるのは接触の記録と役割の完了だけです"
            "（事案を動かした決定は次の会議の結果で改めてください: engine outcome）"
        )
    for (later,) in conn.execute(
        "SELECT detail FROM audit_log WHERE case_id = ? AND event = 'corrected' AND json_extract(detail, '$.corrects') = ? ORDER BY seq",
        (case_id, seq),
    ):
        day = json.loads(later).get("to")
        if day is None:
            raise CorrectionRefused(f"記録番号 {seq} は取り消し済みです（`engine history {case_id}`）")
    return event, day, detail


def correct_entry(
    conn: sqlite3.Connection,
    config: Config,
    case_id: str,
    seq: int,
    reason: str,
    actor: str,
    *,
    to: date | None = None,
    dating: Dating = AS_GIVEN,
) -> CorrectionResult:
    """Withdraw the entry `seq` of `case_id` (to=None) or re-date it to `to`, by appending a `corrected` event."""
    if not reason.strip():
        raise CorrectionRefused("--reason: say what was wrong (it is kept in the case history)")
    if conn.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is None:
        raise CaseNotFound(f"事案 {case_id} はありません（`engine cases` で事案番号を確認してください）")
    (household,) = conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()
    if holds_personal_data(reason, personal_tokens(conn, household)):
        raise CorrectionRefused(
            "--reason: the reason holds personal data of the household (a name, kana, address or birth date); write 本人, 世帯員… instead"
        )
    log = Log(conn, clock.today(), actor, config_hash=config.hash)
    with write_transaction(conn):  # what it reads stays current until it commits
        event, day, detail = _target(conn, case_id, seq)
        agency, action_id = detail.get("agency"), detail.get("action_id")
        if to is not None:
            if event == "contact":
                (since,) = conn.execute("SELECT opened_on FROM cases WHERE case_id = ?", (case_id,)).fetchone()
                what = f"opening of case {case_id}"
            else:
                (since,) = conn.execute(
                    "SELECT m.held_on FROM case_actions a JOIN meetings m ON m.meeting_id = a.meeting_id WHERE a.action_id = ?",
                    (action_id,),
                ).fetchone()
                what = f"meeting that agreed action {action_id}"
            check_event(
                conn,
                to,
                dating.model_copy(update={"backdate_reason": reason}),
                answers=since,
                what=what,
                case_id=case_id,
                relation="" if event == "contact" else "it answers",
            )
        elif dating.backdate_reason:
            raise DateRefused("--backdate-reason: a withdrawal has no date; --reason says why")
        found = conn.execute(
            "SELECT rowid FROM contacts WHERE case_id = ? AND agency_id = ? AND on_day = ? AND via = ? LIMIT 1",
            (case_id, agency, day, VIA[event]),
        ).fetchone()
        if found and to is None:
            conn.execute("DELETE FROM contacts WHERE rowid = ?", found)
        elif found:
            conn.execute("UPDATE contacts SET on_day = ? WHERE rowid = ?", (to.isoformat(), found[0]))
        if (
            event == "action_done"
            and not conn.execute(
                "UPDATE case_actions SET status = ?, done_on = ? WHERE action_id = ? AND status = 'done'",
                ("open" if to is None else "done", None if to is None else to.isoformat(), action_id),
            ).rowcount
        ):
            raise CorrectionRefused(
                f"役割 {action_id} は完了のままではありません（取り消し済みか、会議の決定で置き換え済み）"
            )
        label = EVENT_LABELS[event]
        log.event(
            "corrected",
            case_id=case_id,
            reason=(
                f"記録番号 {seq}（{label}、{day}）を取り消し"
                if to is None
                else f"記録番号 {seq}（{label}）の日付を {day} から {to} に訂正"
            )
            + f": {reason.strip()}",
            corrects=seq,
            was=day,
            to=to,
            agency=agency,
            action_id=action_id,
        )
        new_seq = conn.execute("SELECT MAX(seq) FROM audit_log").fetchone()[0]
    return CorrectionResult(
        case_id=case_id, corrected=seq, seq=new_seq, withdrawn=to is None, day=to.isoformat() if to else None
    )
