"""Answers about a referral, from the place's (or introducer's) link, or given by telephone and
recorded by the coordinator (`engine referral N --answer …`); and the referrals a conference decides.

One vocabulary of answers (REFERRAL_CHOICES), each a move of engine/participation/referrals.py:
    accept                                   受け入れる
    waitlist_lt1m | waitlist_1to3m | waitlist_gt3m        空き待ち（見込み）
    decline_at_capacity | decline_not_eligible | decline_could_not_contact | decline_other
and, for the coordinator only: attending, end_<reason>, cancel.
"""

from __future__ import annotations

import sqlite3
from datetime import date

from pydantic import BaseModel

from engine.config import Config
from engine.participation import referrals
from engine.participation.followups import bring_back
from engine.participation.states import REFERRAL_TRANSITIONS, ReferralRefused, move_referral
from engine.rules.model import RuleSet
from engine.store.chronology import AS_GIVEN, Dating, check_event, note_backdate
from engine.store.db import write_transaction
from engine.store.lifecycle import Log
from engine.support.errors import did_you_mean
from engine.support.vocabulary import (
    DECLINE_REASON_LABELS,
    END_REASON_LABELS,
    NEED_LABELS,
    PLACE_CATEGORY_LABELS,
    WAITLIST_BAND_LABELS,
    need_label,
)

REFERRAL_CHOICES = {"accept": "受け入れる"}
REFERRAL_CHOICES |= {f"waitlist_{b}": f"空き待ち（見込み: {label}）" for b, label in WAITLIST_BAND_LABELS.items()}
REFERRAL_CHOICES |= {f"decline_{r}": f"受入れが難しい（{label}）" for r, label in DECLINE_REASON_LABELS.items()}
COORDINATOR_CHOICES = REFERRAL_CHOICES | {"attending": "参加中", "cancel": "紹介の取消し"}
COORDINATOR_CHOICES |= {f"end_{r}": f"参加終了（{label}）" for r, label in END_REASON_LABELS.items()}


def target_of(choice: str) -> str:
    """The referral state an answer of COORDINATOR_CHOICES moves to."""
    for prefix, state in (
        ("waitlist_", "waitlisted"),
        ("decline_", "declined"),
        ("end_", "ended"),
        ("accept", "accepted"),
        ("attending", "attending"),
    ):
        if choice.startswith(prefix):
            return state
    return "cancelled"


def allowed(status: str, choice: str) -> bool:
    """A referral in `status` may take the answer `choice` (of COORDINATOR_CHOICES). One it cannot
    take is never offered, on the console or through a link."""
    return target_of(choice) in REFERRAL_TRANSITIONS[status]


class ReferralAnswer(BaseModel):
    referral_id: int
    case_id: str
    status: str  # the referral's state afterwards
    next_place: str | None = None  # declined: the place proposed next
    brought_back: bool = False  # declined with no place left: the case went back to the conference
    followups: int = 0  # accepted: follow-ups scheduled


def apply_answer(
    log: Log, rules: RuleSet, config: Config, referral_id: int, choice: str, note: str | None = None
) -> ReferralAnswer:
    """The answer's move, inside the caller's write transaction."""
    r = referrals.load(log.conn, referral_id)
    out = ReferralAnswer(referral_id=referral_id, case_id=r.case_id, status=r.status)
    if choice not in COORDINATOR_CHOICES:
        raise ReferralRefused(
            "回答は次のいずれかです: " + "、".join(f"{k}（{v}）" for k, v in COORDINATOR_CHOICES.items())
        )
    if choice == "accept":
        out.followups = len(referrals.accept(log, config, referral_id, note))
    elif choice.startswith("waitlist_"):
        referrals.waitlist(log, config, referral_id, choice.removeprefix("waitlist_"), note)
    elif choice.startswith("decline_"):
        out.next_place = referrals.decline(log, config, referral_id, choice.removeprefix("decline_"), note)
        if out.next_place is None and referrals.need_open(log.conn, r.need_id):
            place = config.participation.places[r.place_id].name
            out.brought_back = bring_back(
                log,
                rules,
                config,
                r.case_id,
                f"{place}が受け入れられず（紹介 {referral_id}）、ほかに紹介できる場所がない",
            )
    elif choice == "attending":
        move_referral(log, referral_id, "attending", f"紹介 {referral_id}: 参加中（コーディネーターが記録）")
    elif choice.startswith("end_"):
        referrals.end(log, config, referral_id, choice.removeprefix("end_"), note)
    else:
        referrals.cancel(log, config, referral_id, note or "コーディネーターが取消し")
    out.status = log.conn.execute("SELECT status FROM referrals WHERE referral_id = ?", (referral_id,)).fetchone()[0]
    return out


def _checked(conn: sqlite3.Connection, case_id: str, note: str | None) -> str | None:
    """A note goes into the audit log: the one guard of free text on a case (engine/casework/notes.py)."""
    from engine.casework.notes import NoteRefused, check_note

    if not (note or "").strip():
        return None
    try:
        return check_note(conn, case_id, note)
    except NoteRefused as err:
        raise ReferralRefused(str(err)) from None


def answer_referral(
    conn: sqlite3.Connection,
    rules: RuleSet,
    config: Config,
    referral_id: int,
    choice: str,
    on: date,
    actor: str,
    note: str | None = None,
    *,
    dating: Dating = AS_GIVEN,
) -> ReferralAnswer:
    """Record an answer about a referral in one write transaction (dated no earlier than the request)."""
    with write_transaction(conn):
        log = Log(conn, on, actor, rules_hash=rules.hash, config_hash=config.hash)
        r = referrals.load(conn, referral_id)
        check_event(conn, on, dating, answers=r.requested_on, what=f"referral {referral_id}", case_id=r.case_id)
        note = _checked(conn, r.case_id, note)
        note_backdate(log, dating, case_id=r.case_id)
        return apply_answer(log, rules, config, referral_id, choice, note)


def answer_followup(
    conn: sqlite3.Connection,
    rules: RuleSet,
    config: Config,
    followup_id: int,
    result: str,
    on: date,
    actor: str,
    note: str | None = None,
    *,
    dating: Dating = AS_GIVEN,
):
    """Record a follow-up's answer in one write transaction (engine/participation/followups.py),
    dated no earlier than its due day."""
    from engine.participation.followups import answer_followup as record

    with write_transaction(conn):
        log = Log(conn, on, actor, rules_hash=rules.hash, config_hash=config.hash)
        row = (
            conn.execute(
                "SELECT f.due_on, r.case_id FROM followups f JOIN referrals r ON r.referral_id = f.referral_id WHERE f.followup_id = ?",
                (followup_id,),
            ).fetchone()
            if 0 < followup_id < 2**63
            else None
        )
        if row is None:
            raise ReferralRefused(f"確認 {followup_id} はありません（`engine referrals` で確認してください）")
        check_event(conn, on, dating, answers=row[0], what=f"follow-up {followup_id}", case_id=row[1])
        note = _checked(conn, row[1], note)
        note_backdate(log, dating, case_id=row[1])
        return record(log, rules, config, followup_id, result, note)


def _case_member(log: Log, case_id: str, member: str, dating: Dating) -> tuple[str, str | None]:
    """(the person the coordinator names as 世帯員N, the case's lead) of an existing case, the
    entry dated no earlier than the case's opening; ReferralRefused otherwise."""
    from engine.participation.persons import member_of

    row = log.conn.execute("SELECT opened_on, lead_agency_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()
    if row is None:
        raise ReferralRefused(f"事案 {case_id} はありません（`engine cases` で確認してください）")
    check_event(
        log.conn, log.on, dating, answers=row[0], what=f"opening of case {case_id}", case_id=case_id, relation=""
    )
    note_backdate(log, dating, case_id=case_id)
    person = member_of(log.conn, case_id, log.on, member)
    if person is None:
        raise ReferralRefused(
            f"--member: 事案 {case_id} の世帯に「{member}」はいません（世帯員1、世帯員2 … の番号で指定してください）"
        )
    return person, row[1]


def refer_case(
    conn: sqlite3.Connection,
    config: Config,
    case_id: str,
    member: str,
    place_id: str,
    on: date,
    actor: str,
    *,
    consent: bool,
    introduced_by: str | None = None,
    need: str | None = None,
    dating: Dating = AS_GIVEN,
) -> int:
    """A referral decided after the conference (`engine refer`): the need is recorded with it."""
    with write_transaction(conn):
        log = Log(conn, on, actor, config_hash=config.hash)
        person, lead_id = _case_member(log, case_id, member, dating)
        if need is not None and need not in NEED_LABELS:  # the need goes into the place's e-mail
            hint = did_you_mean(need, NEED_LABELS) or "、".join(f"{k}（{v}）" for k, v in NEED_LABELS.items())
            raise ReferralRefused(f"--need: '{need}' はニーズの一覧にありません（{hint}）")
        if not (introduced_by or lead_id):
            raise ReferralRefused(
                f"事案 {case_id} は主担当機関が未定です: --introduced-by で紹介元の機関を指定してください"
            )
        place = referrals.place_of(config, place_id)
        need = need or _need_served(log.conn, config, case_id, person, place.category) or place.category
        need_id = record_need(log, case_id, None, person, need, None, for_referral=True)
        return referrals.refer(
            log,
            config,
            case_id,
            person,
            place_id,
            introduced_by=introduced_by or lead_id,
            consent=consent,
            need_id=need_id,
        )


def _need_served(conn: sqlite3.Connection, config: Config, case_id: str, person_id: str, category: str) -> str | None:
    """The member's oldest open (else referred) need that a place of `category` serves: a referral
    made without --need covers it (say, to the next place proposed after a decline)."""
    from engine.participation.matching import categories_for

    for (need,) in conn.execute(
        "SELECT need FROM participation_needs WHERE case_id = ? AND person_id = ? AND status IN ('open', 'referred') "
        "ORDER BY status = 'open' DESC, need_id",
        (case_id, person_id),
    ):
        if category in categories_for(config, need):
            return need
    return None


def record_need(
    log: Log,
    case_id: str,
    meeting_id: str | None,
    person_id: str,
    need: str,
    reason: str | None,
    *,
    no_place: bool = False,
    for_referral: bool = False,
) -> int:
    """A need for one member: settled at once when the conference gave a reason for no place; an
    open need of the same member and kind is reused (and settled, when a reason is given).
    `no_place`: the reason is that no place of the town can take the member — the need is then
    `unmatched`, which 地域づくり counts as a shortage; otherwise `settled` (the person's wish …).
    `for_referral`: a referral is made for it, so a need of that kind already referred elsewhere
    is reused too (two places asked at once for one need: one need, not two)."""
    settled = "unmatched" if no_place else "settled"
    if need not in NEED_LABELS and need not in PLACE_CATEGORY_LABELS:  # a second guard: it is e-mailed
        raise ReferralRefused(f"'{need}' はニーズの一覧にありません")

    reusable = "('open', 'referred')" if for_referral and not reason else "('open')"
    row = log.conn.execute(
        "SELECT need_id FROM participation_needs WHERE case_id = ? AND person_id = ? AND need = ? "
        f"AND status IN {reusable} ORDER BY status = 'open' DESC, need_id",
        (case_id, person_id, need),
    ).fetchone()
    if row and not reason:
        return row[0]
    if row:  # the open need is settled: no place, for this reason
        log.conn.execute(
            "UPDATE participation_needs SET status = ?, reason = ? WHERE need_id = ?", (settled, reason, row[0])
        )
        log.event(
            "need_settled",
            case_id=case_id,
            meeting_id=meeting_id,
            reason=f"参加支援のニーズ {row[0]}（{need_label(need)}）: "
            + ("紹介できる場所がない" if no_place else "紹介しない理由")
            + f" {reason}",
            need_id=row[0],
            no_place=no_place,
        )
        return row[0]
    need_id = log.conn.execute(
        "INSERT INTO participation_needs (case_id, meeting_id, person_id, need, recorded_on, reason, status) VALUES (?,?,?,?,?,?,?)",
        (case_id, meeting_id, person_id, need, log.on.isoformat(), reason, settled if reason else "open"),
    ).lastrowid
    label = need_label(need)
    log.event(
        "need_recorded",
        case_id=case_id,
        meeting_id=meeting_id,
        reason=f"参加支援のニーズ {need_id}: {label}" + (f"（紹介しない理由: {reason}）" if reason else ""),
        need_id=need_id,
        need=need,
    )
    return need_id


def settle_need(
    conn: sqlite3.Connection,
    config: Config,
    case_id: str,
    member: str,
    need: str,
    reason: str,
    on: date,
    actor: str,
    *,
    no_place: bool = False,
    dating: Dating = AS_GIVEN,
) -> int:
    """`engine need`: the coordinator records why a member's need gets no place (a need left open
    after a decline, or one the conference recorded without a place): the gap audit's
    need_without_referral ends. The reason is checked like any note (no personal data)."""

    with write_transaction(conn):
        log = Log(conn, on, actor, config_hash=config.hash)
        person, _ = _case_member(log, case_id, member, dating)
        if (
            need not in NEED_LABELS
            and not conn.execute(
                "SELECT 1 FROM participation_needs WHERE case_id = ? AND person_id = ? AND need = ?",
                (case_id, person, need),
            ).fetchone()
        ):
            raise ReferralRefused(
                "--need: " + "、".join(f"{k}（{v}）" for k, v in NEED_LABELS.items()) + " のいずれかです"
            )
        text = _checked(conn, case_id, reason)
        if not text:
            raise ReferralRefused("--reason: 紹介しない理由を書いてください（氏名などは書かずに）")
        return record_need(log, case_id, None, person, need, text, no_place=no_place)
