"""What an answer link asks, as the agency's page shows it: the question, its state and its choices.

The state is read from the engine's own tables every time (a request withdrawn, an action
cancelled by a new plan, a checkpoint cancelled by a closure: the link is revoked; answered by
telephone through the CLI: answered), so a link never outlives its question. What the page may
show (`facts`) is no more than the e-mail said, and for a DV-locked case nothing but the case id.
Reading a question changes nothing.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Literal

from pydantic import BaseModel

from engine.casework.watch import RESULT_LABELS
from engine.config import Config
from engine.links.participation import participation_facts, shows_case
from engine.links.tokens import TOKEN, Asked, asked, token_hash
from engine.papers.notices import recipient_name
from engine.participation.answers import REFERRAL_CHOICES, allowed
from engine.policy import members
from engine.policy.consent import case_consented
from engine.policy.dv import case_id_locked
from engine.store.lifecycle import CHECKPOINT_LABELS
from engine.support.dates import wareki_with_weekday
from engine.support.errors import EngineError
from engine.support.vocabulary import ASSESSMENT_RESULT_LABELS, FOLLOWUP_LEAD_LABELS, FOLLOWUP_PLACE_LABELS

Kind = Literal["lead_request", "action", "checkpoint", "attendance", "referral", "followup"]
State = Literal["open", "answered", "expired", "revoked"]
ATTENDANCE_LABELS = {"attend": "出席", "absent": "欠席"}
ANSWER_LABELS = {
    "lead_request": {"accept": "受諾", "decline": "辞退", "accepted": "受諾", "declined": "辞退"},
    "action": {"done": "完了"},
    "checkpoint": RESULT_LABELS | ASSESSMENT_RESULT_LABELS,
    "attendance": ATTENDANCE_LABELS,
    "referral": REFERRAL_CHOICES,
    "followup": FOLLOWUP_LEAD_LABELS | FOLLOWUP_PLACE_LABELS,
}
TITLES = {
    "lead_request": "主担当機関の受諾のお願い",
    "action": "役割分担の完了のご報告",
    "checkpoint": "世帯の様子のご報告",
    "attendance": "会議の出欠のご回答",
    "referral": "参加のご相談（ご紹介）へのご回答",
    "followup": "参加状況のご確認",
}


class LinkNotFound(EngineError):
    """No such link (unknown or altered)."""

    def __init__(self, message: str = "このリンクは無効です。メールのリンクを省略せずに開いてください。"):
        super().__init__(message)


class Choice(BaseModel):
    value: str
    label: str  # Japanese
    needs_reason: bool = False  # a note is required with this choice
    allows_note: bool = False


class Question(BaseModel):
    kind: Kind
    agency_id: str
    agency_name: str
    case_id: str | None = None
    meeting_id: str | None = None
    action_id: int | None = None
    due_on: date | None = None
    state: State
    answered_at: str | None = None  # YYYY-MM-DD HH:MM (Japan) through a link, YYYY-MM-DD otherwise
    answer_label: str | None = None
    choices: list[Choice]
    facts: list[str]
    scope: str  # the CSRF scope of the answer form
    locked: bool = False  # the household is DV-locked: the page shows the case id and nothing else


CHOICES: dict[str, list[Choice]] = {
    "lead_request": [
        Choice(value="accept", label="受諾する"),
        Choice(value="decline", label="辞退する", needs_reason=True, allows_note=True),
    ],
    "action": [Choice(value="done", label="完了した", allows_note=True)],
    "checkpoint": [
        Choice(value="stable", label=RESULT_LABELS["stable"], allows_note=True),
        Choice(value="concern", label=RESULT_LABELS["concern"], needs_reason=True, allows_note=True),
        Choice(value="lost_contact", label=RESULT_LABELS["lost_contact"], allows_note=True),
    ],
    "attendance": [
        Choice(value="attend", label=ATTENDANCE_LABELS["attend"], allows_note=True),
        Choice(value="absent", label=ATTENDANCE_LABELS["absent"], allows_note=True),
    ],
    "referral": [
        Choice(value=v, label=label, needs_reason=v == "decline_other", allows_note=True)
        for v, label in REFERRAL_CHOICES.items()
    ],
    "followup": [  # the lead's; a place's follow-up offers FOLLOWUP_PLACE_LABELS (choices_of)
        Choice(value=v, label=label, needs_reason=v == "concern", allows_note=True)
        for v, label in FOLLOWUP_LEAD_LABELS.items()
    ],
}
ASSESSMENT_CHOICES = [  # a checkpoint of kind 'assessment' (engine/triage/assessment.py)
    Choice(value=v, label=label, needs_reason=v == "needs_conference", allows_note=True)
    for v, label in ASSESSMENT_RESULT_LABELS.items()
]
PLACE_FOLLOWUP_CHOICES = [Choice(value=v, label=label, allows_note=True) for v, label in FOLLOWUP_PLACE_LABELS.items()]


def choices_of(conn: sqlite3.Connection, q: Asked) -> list[Choice]:
    if q.kind == "followup":
        (side,) = conn.execute("SELECT side FROM followups WHERE followup_id = ?", (int(q.ref),)).fetchone()
        return PLACE_FOLLOWUP_CHOICES if side == "place" else CHOICES["followup"]
    if q.kind == "checkpoint" and checkpoint_kind(conn, q.ref) == "assessment":
        return ASSESSMENT_CHOICES
    if q.kind == "referral":  # only what the referral's state allows (a waitlisted one: not 空き待ち again)
        (status,) = conn.execute("SELECT status FROM referrals WHERE referral_id = ?", (int(q.ref),)).fetchone()
        return [c for c in CHOICES["referral"] if allowed(status, c.value)]
    return CHOICES[q.kind]


def checkpoint_kind(conn: sqlite3.Connection, ref: str) -> str:
    return conn.execute("SELECT kind FROM checkpoints WHERE checkpoint_id = ?", (int(ref),)).fetchone()[0]


def link_row(conn: sqlite3.Connection, token: str) -> sqlite3.Row:
    """The stored link of a token (by its hash); LinkNotFound for anything else."""
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise LinkNotFound()
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    row = cur.execute("SELECT * FROM answer_links WHERE token_hash = ?", (token_hash(token),)).fetchone()
    if row is None:
        raise LinkNotFound()
    return row


def _when(stamp: str | None) -> str | None:
    """An answer's time as the page shows it: YYYY-MM-DD HH:MM in Japan (the link's), or the day."""
    return stamp.replace("T", " ")[:16] if stamp else None


def underlying(conn: sqlite3.Connection, q: Asked) -> tuple[str, str | None, str | None]:
    """(state of the question itself: open | answered | revoked, when answered, the answer)."""
    if q.kind == "attendance":
        row = conn.execute(
            "SELECT answer, answered_on FROM attendance WHERE meeting_id = ? AND agency_id = ?", (q.ref, q.agency_id)
        ).fetchone()
        return ("answered", row[1], row[0]) if row else ("open", None, None)
    if q.kind == "referral":  # open while requested or waitlisted; the state is the answer
        status, on = conn.execute(
            "SELECT status, answered_on FROM referrals WHERE referral_id = ?", (int(q.ref),)
        ).fetchone()
        if status in ("requested", "waitlisted"):
            return "open", None, None
        return ("revoked", None, None) if status == "cancelled" else ("answered", on, None)
    table, column, answer, open_status = {
        "lead_request": ("lead_requests", "request_id", "status", "pending"),
        "action": ("case_actions", "action_id", "status", "open"),
        "checkpoint": ("checkpoints", "checkpoint_id", "result", "asked"),
        "followup": ("followups", "followup_id", "result", "asked"),
    }[q.kind]
    when = "answered_on" if q.kind == "lead_request" else "done_on"
    status, on, value = conn.execute(
        f"SELECT status, {when}, {answer} FROM {table} WHERE {column} = ?", (int(q.ref),)
    ).fetchone()
    if status == open_status:
        return "open", None, None
    if status in ("cancelled", "pending"):  # withdrawn or replaced; a checkpoint or follow-up not asked (any more)
        return "revoked", None, None
    return "answered", on, value


def _locked(conn: sqlite3.Connection, config: Config, q: Asked, on: date) -> bool:
    """The case's household is DV-locked on `on` (policy/dv.py)."""
    return q.case_id is not None and case_id_locked(conn, config, q.case_id, on.isoformat())


def _facts(conn: sqlite3.Connection, config: Config, q: Asked, on: date, locked: bool) -> list[str]:
    """What the page may show: what the e-mail said (the due date is shown apart); a DV-locked
    case: its id only."""
    if q.kind == "attendance":
        m = conn.execute(
            "SELECT conference_type, held_on, start_time, place FROM meetings WHERE meeting_id = ?", (q.ref,)
        ).fetchone()
        return [
            f"会議: {config.name_of(m[0])}（会議番号 {q.ref}）",
            f"日時: {wareki_with_weekday(date.fromisoformat(m[1]))} {m[2]}〜",
            f"場所: {m[3]}",
        ]
    if q.kind in ("referral", "followup"):
        return participation_facts(conn, config, q, on, locked)
    facts = [f"事案番号: {q.case_id}"]
    if locked:
        return facts
    if q.kind == "lead_request":
        (then,) = conn.execute("SELECT then_status FROM lead_requests WHERE request_id = ?", (int(q.ref),)).fetchone()
        facts.append("ご依頼: " + ("終結後の主担当機関（引継ぎ）" if then == "closed" else "主担当機関"))
    elif q.kind == "action":
        (action,) = conn.execute("SELECT action FROM case_actions WHERE action_id = ?", (int(q.ref),)).fetchone()
        facts.append(f"会議で合意した役割（番号 {q.ref}）: {action}")
    else:
        kind, due = conn.execute(
            "SELECT kind, due_on FROM checkpoints WHERE checkpoint_id = ?", (int(q.ref),)
        ).fetchone()
        facts.append(f"{CHECKPOINT_LABELS.get(kind, kind)}（確認日 {wareki_with_weekday(date.fromisoformat(due))}）")
    return facts


def may_still_answer(conn: sqlite3.Connection, config: Config, q: Asked, on: date, locked: bool) -> bool:
    """What the e-mails to it follow at send time: a place (参加支援) answers nothing once the
    household is DV-locked (engine/participation/mail.py withholds its e-mails); an agency that is
    not a registered member answers about a case only while everyone it concerns still consents
    (engine/policy/members.py). Its link dies with either."""
    if q.case_id is None:
        return True
    agency = config.agencies.get(q.agency_id)
    if agency is None:
        return not (locked and q.agency_id in config.participation.places)
    return not members.refusal(
        agency,
        q.agency_id,
        restricted=False,
        lifecycle=True,
        consented=lambda: case_consented(conn, q.case_id, on.isoformat()),
    )


def question(conn: sqlite3.Connection, config: Config, q: Asked, on: date, link: sqlite3.Row | None = None) -> Question:
    """The question as the page shows it, with the state of its link (if any) on `on`."""
    state, answered_at, value = underlying(conn, q)
    if link is not None and link["used_at"]:
        state, answered_at, value = "answered", _when(link["used_at"]), link["answer"]
    locked = _locked(conn, config, q, on)
    if state == "open" and link is not None and not link["used_at"]:
        if link["revoked_at"] or not may_still_answer(conn, config, q, on, locked):
            state = "revoked"
        elif on.isoformat() > link["expires_on"]:
            state = "expired"
    return Question(
        kind=q.kind,
        agency_id=q.agency_id,
        agency_name=recipient_name(config, q.agency_id),  # an agency or a place, by its name
        case_id=q.case_id if shows_case(conn, config, q) else None,  # a place never sees the case id
        meeting_id=q.meeting_id,
        action_id=int(q.ref) if q.kind == "action" else None,
        due_on=q.due_on,
        state=state,
        answered_at=answered_at,
        answer_label=ANSWER_LABELS[q.kind].get(value) if value else None,
        choices=choices_of(conn, q) if state == "open" else [],
        facts=_facts(conn, config, q, on, locked),
        locked=locked,
        scope=f"link:{link['token_hash']}" if link is not None else "",
    )


def resolve(conn: sqlite3.Connection, token: str) -> tuple[sqlite3.Row, Asked]:
    """The link of a token and the question it is bound to (LinkNotFound if either is gone)."""
    row = link_row(conn, token)
    q = asked(conn, row["kind"], row["ref"], row["agency_id"])
    if q is None and row["used_at"] is not None:
        # answered, and the answer moved the question to another agency (an assessment that sent the
        # case to a conference with another proposed lead): the page says it was answered, not 無効
        q = Asked(kind=row["kind"], ref=row["ref"], agency_id=row["agency_id"], case_id=row["case_id"])
    if q is None:
        raise LinkNotFound()
    return row, q


def lookup(conn: sqlite3.Connection, config: Config, token: str, on: date) -> Question:
    """The question behind a link, read only: a mail scanner opening it changes nothing."""
    row, q = resolve(conn, token)
    return question(conn, config, q, on, row)


def open_questions(
    conn: sqlite3.Connection, config: Config, agency_id: str, case_id: str | None, on: date
) -> list[Question]:
    """The agency's open questions on the case (pending request, open actions, asked checkpoints),
    without their links: the page lists them, each is answered from its own e-mail."""
    if not case_id:
        return []
    refs = [
        ("lead_request", r)
        for (r,) in conn.execute(
            "SELECT request_id FROM lead_requests WHERE case_id = ? AND agency_id = ? AND status = 'pending'",
            (case_id, agency_id),
        )
    ]
    refs += [
        ("action", r)
        for (r,) in conn.execute(
            "SELECT action_id FROM case_actions WHERE case_id = ? AND agency_id = ? AND status = 'open' ORDER BY due_on, action_id",
            (case_id, agency_id),
        )
    ]
    refs += [
        ("checkpoint", r)
        for (r,) in conn.execute(
            "SELECT checkpoint_id FROM checkpoints WHERE case_id = ? AND status = 'asked' ORDER BY due_on", (case_id,)
        )
    ]
    found = [asked(conn, kind, str(ref), agency_id) for kind, ref in refs]
    return [question(conn, config, q, on) for q in found if q is not None]
