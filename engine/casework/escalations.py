"""An escalation is not an answer (issue 18): each escalation raised to the coordinator is either
settled — its subject resolved, or someone acted on it — or it ages, and one nobody has acted on
for more than lifecycle.escalation_business_days is back in the gap audit (escalation_unanswered).

Acting means a decision, an answer, a new due date or a reassignment, recorded in the audit log:
- the subject itself is resolved (the lead request answered or withdrawn, the action done, the
  outcome recorded, the checkpoint answered or cancelled, the follow-up answered …);
- a person (not the engine's nightly, sweep or dispatch) recorded anything but a bare note on the
  case after the escalation was raised — an answer through a link counts, it is the agency's;
- or the coordinator recorded an act on the escalation itself (`engine escalation KEY`: a new due
  date, a reassignment or a decision): the escalation is settled until that due date, then ages again.
Some escalations only inform (the engine acted at once: a case sent to a conference because an
agency could not reach the household); they are settled when raised.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date

from pydantic import BaseModel

from engine.config import Config
from engine.store.chronology import too_far_ahead
from engine.store.db import write_transaction
from engine.store.lifecycle import SYSTEM_ACTORS, Log
from engine.support.business_days import Calendar
from engine.support.errors import EngineError

INFORMING = frozenset({"assessment_unreachable", "participation_archived"})  # the engine acted when it raised them
NOT_AN_ACT = frozenset({"note", "escalation", "digest_queued", "escalation_acted"})  # the last: by its due date
# the subject of an escalation key (prefix:ref): its state, and the states in which it is still open
SUBJECTS = {
    "lead": ("SELECT status FROM lead_requests WHERE request_id = ?", {"pending"}),
    "action": ("SELECT status FROM case_actions WHERE action_id = ?", {"open"}),
    "checkpoint": ("SELECT status FROM checkpoints WHERE checkpoint_id = ?", {"pending", "asked"}),
    "followup": ("SELECT status FROM followups WHERE followup_id = ?", {"pending", "asked"}),
    "referral": ("SELECT status FROM referrals WHERE referral_id = ?", {"requested", "waitlisted"}),
}


class EscalationError(EngineError):
    pass


class Escalation(BaseModel):
    key: str
    kind: str
    case_id: str | None
    raised_on: date
    detail: str  # Japanese, pseudonymous ids only
    settled: bool
    settled_how: str | None = None  # Japanese
    since: date  # raised, or the due date of the coordinator's last act
    age: int  # business days since `since` (0 while settled)


def _subject_open(conn: sqlite3.Connection, key: str) -> bool | None:
    """Whether the escalation's subject is still open (None: the key names no subject we know)."""
    prefix, _, ref = key.partition(":")
    if prefix == "outcome":
        case_id, _, meeting_id = ref.partition(":")
        return not conn.execute(
            "SELECT 1 FROM outcomes WHERE case_id = ? AND meeting_id = ?", (case_id, meeting_id)
        ).fetchone()
    subject = SUBJECTS.get(prefix)
    number = ref.split(":")[0]
    if subject is None or not number.isdigit() or int(number) >= 2**63:
        return None
    row = conn.execute(subject[0], (int(number),)).fetchone()
    return None if row is None else row[0] in subject[1]  # a subject that is not there is not resolved


def _acts(conn: sqlite3.Connection) -> dict[str, tuple[str, str | None]]:
    """The coordinator's latest act on each escalation key: (day recorded, new due date or None)."""
    out: dict[str, tuple[str, str | None]] = {}
    for on_day, detail in conn.execute(
        "SELECT on_day, detail FROM audit_log WHERE event = 'escalation_acted' ORDER BY seq"
    ):
        d = json.loads(detail or "{}")
        out[d.get("key", "")] = (on_day, d.get("due_on"))
    return out


def escalations(conn: sqlite3.Connection, config: Config, on: date, *, key: str | None = None) -> list[Escalation]:
    """Every escalation of an open case (or of none), settled or not, oldest unsettled first;
    only the one raised for `key` when it is given (also when its case has closed)."""
    cal, day = Calendar.of(config.conference), on.isoformat()
    acts = _acts(conn)
    system = tuple(SYSTEM_ACTORS)
    out = []
    columns = "SELECT e.subject_key, e.kind, e.case_id, e.raised_on, e.detail FROM "
    rows = conn.execute(
        # from the open cases, not through every escalation ever raised; then those of no case
        f"{columns}cases c CROSS JOIN escalations e ON e.case_id = c.case_id WHERE c.is_open = 1 "
        f"UNION ALL {columns}escalations e WHERE e.case_id IS NULL"
        if key is None
        else f"{columns}escalations e WHERE e.subject_key = ?",  # this one, whatever its case's state
        () if key is None else (key,),
    ).fetchall()
    for key, kind, case_id, raised_on, detail in rows:
        since, how = raised_on, None
        act = acts.get(key)
        if kind in INFORMING:
            how = "エンジンが対応済み（お知らせ）"
        elif _subject_open(conn, key) is False:
            how = "対象が解決した（回答・完了・記録・取り下げ）"
        elif act and (act[1] or act[0]) >= day:
            how = f"コーディネーターが対応を記録（{act[0]}、次の期日 {act[1] or '—'}）"
        elif (
            case_id
            and conn.execute(
                f"SELECT 1 FROM audit_log WHERE case_id = ? AND on_day >= ? AND actor NOT IN ({','.join('?' * len(system))}) "
                f"AND event NOT IN ({','.join('?' * len(NOT_AN_ACT))}) LIMIT 1",
                (case_id, raised_on, *system, *sorted(NOT_AN_ACT)),
            ).fetchone()
        ):
            how = "担当者が事案について対応を記録"
        if act and how is None:
            since = max(raised_on, act[1] or act[0])  # the new due date has passed: it ages from there
        start = date.fromisoformat(since)
        age = 0 if how else cal.between(start, on)
        out.append(
            Escalation(
                key=key,
                kind=kind,
                case_id=case_id,
                raised_on=date.fromisoformat(raised_on),
                detail=detail,
                settled=how is not None,
                settled_how=how,
                since=start,
                age=age,
            )
        )
    return sorted(out, key=lambda e: (e.settled, -e.age, e.raised_on, e.key))


def record_act(
    conn: sqlite3.Connection, config: Config, key: str, on: date, actor: str, *, due: date | None, note: str
) -> Escalation:
    """The coordinator acted on an escalation: a decision, a reassignment or a new due date (`due`)."""
    row = conn.execute("SELECT case_id FROM escalations WHERE subject_key = ?", (key,)).fetchone()
    if row is None:
        raise EscalationError(f"エスカレーション {key} はありません（`engine escalations` で確認してください）")
    text = note.strip()
    if not text:
        raise EscalationError("--note: 何をしたか（決定・担当の変更・新しい期日の理由）を書いてください")
    if row[0]:
        from engine.casework.notes import check_note

        text = check_note(conn, row[0], text)  # no personal data of the household
    if due is not None and due < on:
        raise EscalationError(f"--due {due}: 今日（{on}）より前の期日は指定できません")
    if due is not None and (far := too_far_ahead(on, due)):
        raise EscalationError(f"--due {far}")
    with write_transaction(conn):
        Log(conn, on, actor, config_hash=config.hash).event(
            "escalation_acted",
            case_id=row[0],
            reason=f"エスカレーション {key} への対応: {text}" + (f"（次の期日 {due}）" if due else ""),
            key=key,
            due_on=due,
        )
    return next(e for e in escalations(conn, config, on, key=key) if e.key == key)
