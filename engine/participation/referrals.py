"""The referral loop of 参加支援: a member introduced to a place, the place's answer, and what follows.

    refer          requested; the place is asked by e-mail (its link answers) when it may be told
                   (engine/policy/members.py may_tell_place), else the introducer goes with the
                   person and answers for the referral (channel in_person)
    accept         accepted: the place's free capacity is one less, follow-ups are scheduled on
                   both sides (settings.followup_business_days after today, business days)
    waitlist       waitlisted with a band (1か月以内, 1〜3か月, 3か月以上): asked again when it ends
    decline        declined with a reason (at capacity, not eligible, could not contact, other):
                   the need is open again, and the next place is proposed to the coordinator;
                   with no place left the case goes back to the conference
    attending      the person goes (a follow-up said so)
    end, cancel    ended (reason) / cancelled: the follow-ups still pending end with it

Every step writes the audit log on the referral's case; `engine history CASE` shows it.
Follow-ups and their answers are in engine/participation/followups.py, the daily part of the
sweep in engine/participation/sweep.py.
"""

from __future__ import annotations

import sqlite3
from datetime import date

from pydantic import BaseModel

from engine.config import Config
from engine.papers.notices import queue_notice, recipient_name
from engine.participation.directory import Place
from engine.participation.persons import member_label  # noqa: F401 - sweep.py reads it from here
from engine.participation.requests import request_lines
from engine.participation.states import LIVE, ReferralRefused, move_referral
from engine.policy.dv import household_locked
from engine.policy.members import may_share_with, may_tell_place
from engine.store.lifecycle import Log
from engine.support.business_days import Calendar
from engine.support.vocabulary import (
    DECLINE_REASON_LABELS,
    END_REASON_LABELS,
    NEED_LABELS,
    WAITLIST_BAND_LABELS,
)

BAND_MONTHS = {"lt1m": 1, "1to3m": 3, "gt3m": 6}  # a waitlisted referral is asked again after this


class Referral(BaseModel):
    referral_id: int
    case_id: str
    person_id: str
    place_id: str
    introduced_by: str
    consent: bool
    channel: str
    status: str
    requested_on: date
    answer_due: date
    need_id: int | None = None


def place_of(config: Config, place_id: str) -> Place:
    place = config.participation.places.get(place_id)
    if place is None:
        from engine.support.errors import did_you_mean

        hint = did_you_mean(place_id, config.participation.places) or "`engine resources list` で確認してください"
        raise ReferralRefused(f"場所 '{place_id}' は resources.yaml にありません（{hint}）")
    return place


def load(conn: sqlite3.Connection, referral_id: int) -> Referral:
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    row = (
        cur.execute("SELECT * FROM referrals WHERE referral_id = ?", (referral_id,)).fetchone()
        if 0 < referral_id < 2**63
        else None
    )
    if row is None:
        raise ReferralRefused(f"紹介 {referral_id} はありません（`engine referrals` で確認してください）")
    return Referral(**{k: row[k] for k in Referral.model_fields})


def refer(
    log: Log,
    config: Config,
    case_id: str,
    person_id: str,
    place_id: str,
    *,
    introduced_by: str,
    consent: bool,
    need_id: int | None = None,
) -> int:
    """Introduce the member to the place (see the module docstring); returns the referral's number.
    ReferralRefused (in Japanese) when it cannot be made as asked."""
    conn, on = log.conn, log.on
    place = place_of(config, place_id)
    row = conn.execute("SELECT household_id, is_open FROM cases WHERE case_id = ?", (case_id,)).fetchone()
    if row is None:
        raise ReferralRefused(f"事案 {case_id} はありません（`engine cases` で確認してください）")
    household_id, is_open = row
    if not is_open:
        raise ReferralRefused(f"事案 {case_id} は見守りを終えています: 新たな紹介は、改めて事案として検討してください")
    if not conn.execute(
        "SELECT 1 FROM persons WHERE person_id = ? AND household_id = ?", (person_id, household_id)
    ).fetchone():
        raise ReferralRefused(f"事案 {case_id} の世帯に、その世帯員はいません")
    if place.status != "active":
        raise ReferralRefused(f"{place.name}は現在受け付けていません（resources.yaml の status: {place.status}）")
    if introduced_by not in config.agencies:
        raise ReferralRefused(f"紹介元の機関 '{introduced_by}' は agencies.yaml にありません")
    kind = conn.execute("SELECT conference_type FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]
    if kind and not may_share_with(config.agencies[introduced_by], kind):
        raise ReferralRefused(
            f"{config.agencies[introduced_by].name}は{config.name_of('support')}の構成員ではないため、"
            "本人の同意なしにこの事案を伝えられません: 構成員の機関を紹介元にしてください"
        )
    if place.consent_required and not consent:
        raise ReferralRefused(
            f"{place.name}は本人の同意があって初めて受け入れる場所です（consent_required）: "
            "同意を得てから紹介するか、同意なしで行ける場所を選んでください"
        )
    if conn.execute(
        f"SELECT 1 FROM referrals WHERE person_id = ? AND place_id = ? AND status IN ({','.join('?' * len(LIVE))})",
        (person_id, place_id, *sorted(LIVE)),
    ).fetchone():
        raise ReferralRefused(f"この世帯員は既に{place.name}に紹介中です（`engine referrals --case {case_id}`）")
    locked = household_locked(conn, config, household_id, on.isoformat())
    channel = "place" if may_tell_place(member=place.member, consent=consent, locked=locked) else "in_person"
    due = Calendar.of(config.conference).add(on, config.participation.settings.answer_business_days)
    referral_id = conn.execute(
        "INSERT INTO referrals (case_id, need_id, person_id, place_id, introduced_by, consent, channel, status, requested_on, answer_due) "
        "VALUES (?,?,?,?,?,?,?, 'requested', ?, ?)",
        (case_id, need_id, person_id, place_id, introduced_by, int(consent), channel, on.isoformat(), due.isoformat()),
    ).lastrowid
    if need_id is not None:
        conn.execute("UPDATE participation_needs SET status = 'referred' WHERE need_id = ?", (need_id,))
    label = member_label(conn, case_id, person_id, on)
    intro = recipient_name(config, introduced_by)
    log.event(
        "referral_requested",
        case_id=case_id,
        reason=f"紹介 {referral_id}: {label}を{place.name}（{place.category_label}）に紹介、紹介元 {intro}、"
        + ("本人同意あり" if consent else "本人同意なし")
        + ("、場所へメールで依頼" if channel == "place" else "、紹介元が本人に同行して紹介（場所には連絡しない）")
        + f"、回答期限 {due}",
        referral_id=referral_id,
        place=place_id,
        agency=introduced_by,
        channel=channel,
        consent=consent,
        due_on=due,
    )
    queue_request(conn, config, referral_id, on)
    return referral_id


def escalation_key(referral_id: int, status: str, answer_due: str) -> str:
    """The key of the escalation of an unanswered referral: one per round (a waitlist asks again)."""
    return f"referral:{referral_id}" + (f":{answer_due}" if status == "waitlisted" else "")


def queue_request(
    conn: sqlite3.Connection, config: Config, referral_id: int, on: date, *, reminder: bool = False
) -> bool:
    """The e-mail asking for the referral's answer (once per key; a waitlist's round has its own):
    to the place, or to the introducer."""
    return queue_notice(conn, config, request_lines(conn, config, load(conn, referral_id), on, reminder=reminder))


def available_now(conn: sqlite3.Connection, place: Place) -> int:
    """The place's free capacity: the directory's count less those it has taken since that count."""
    (taken,) = conn.execute(
        "SELECT COUNT(*) FROM referrals WHERE place_id = ? AND status IN ('accepted', 'attending') AND answered_on >= ?",
        (place.id, place.capacity.updated_on.isoformat()),
    ).fetchone()
    return max(0, place.capacity.available - taken)


def accept(log: Log, config: Config, referral_id: int, note: str | None = None) -> list[int]:
    """The place takes the person: accepted, capacity one less, follow-ups scheduled; their ids."""
    from engine.participation.followups import schedule_followups

    r = load(log.conn, referral_id)
    place = place_of(config, r.place_id)
    full = available_now(log.conn, place) == 0
    move_referral(
        log,
        referral_id,
        "accepted",
        f"紹介 {referral_id}: {place.name}が受入れを決定",
        answered_on=log.on.isoformat(),
        note=note,
    )
    if full:  # the directory's count says no room: the listing is out of date, or the place is over its capacity
        log.escalate(
            f"over_capacity:{referral_id}",
            "place_over_capacity",
            f"事案 {r.case_id}: {place.name}が紹介 {referral_id} を受け入れましたが、resources.yaml の空きは 0 です"
            "（定員を超えていないか場所に確認し、capacity と updated_on を更新してください）",
            case_id=r.case_id,
        )
    log.event(
        "capacity_updated",
        case_id=r.case_id,
        reason=f"{place.name}の空き: {available_now(log.conn, place)}（最大 {place.capacity.maximum}）",
        place=place.id,
        available=available_now(log.conn, place),
    )
    return schedule_followups(log, config, r)


def waitlist(log: Log, config: Config, referral_id: int, band: str, note: str | None = None) -> date:
    """The place has no room yet: waitlisted with its band; the place is asked again when it ends."""
    from engine.support.business_days import add_months

    if band not in WAITLIST_BAND_LABELS:
        raise ReferralRefused(f"空き待ちの見込みは {', '.join(WAITLIST_BAND_LABELS)} のいずれかです（'{band}'）")
    r = load(log.conn, referral_id)
    again = Calendar.of(config.conference).add(add_months(log.on, BAND_MONTHS[band]), 0)
    move_referral(
        log,
        referral_id,
        "waitlisted",
        f"紹介 {referral_id}: {place_of(config, r.place_id).name}は空き待ち（見込み {WAITLIST_BAND_LABELS[band]}）、{again} に改めて確認",
        answered_on=log.on.isoformat(),
        band=band,
        answer_due=again.isoformat(),
        note=note,
    )
    return again


def decline(log: Log, config: Config, referral_id: int, reason: str, note: str | None = None) -> str | None:
    """The place cannot take the person. The need is open again and the next place is proposed to
    the coordinator (an escalation naming it); returns that place's id, or None when no place is
    left (the caller brings the case back to the conference) or the need no longer waits for a
    place (need_open: another live referral covers it, or it was met)."""
    if reason not in DECLINE_REASON_LABELS:
        raise ReferralRefused(f"受入れが難しい理由は {', '.join(DECLINE_REASON_LABELS)} のいずれかです（'{reason}'）")
    r = load(log.conn, referral_id)
    place = place_of(config, r.place_id)
    move_referral(
        log,
        referral_id,
        "declined",
        f"紹介 {referral_id}: {place.name}は受入れが難しい（{DECLINE_REASON_LABELS[reason]}）",
        answered_on=log.on.isoformat(),
        reason=reason,
        note=note,
    )
    _reopen_need(log, r)
    if not need_open(log.conn, r.need_id):  # another live referral covers it, or it was settled (met)
        return None
    nxt = _next_place(log.conn, config, r, log.on)
    label = member_label(log.conn, r.case_id, r.person_id, log.on)
    if nxt is not None:
        need = log.conn.execute("SELECT need FROM participation_needs WHERE need_id = ?", (r.need_id,)).fetchone()
        flag = f" --need {need[0]}" if need and need[0] in NEED_LABELS else ""  # the referral covers the same need
        log.escalate(
            f"referral_declined:{referral_id}",
            "referral_declined",
            f"事案 {r.case_id}: {label}の紹介 {referral_id} を{place.name}が受けられません"
            f"（{DECLINE_REASON_LABELS[reason]}）。次の候補: {config.participation.places[nxt].name}"
            f"（`engine refer {r.case_id} --member {label[: label.index('（')]} --place {nxt}{flag}`）",
            case_id=r.case_id,
        )
    return nxt


def need_open(conn: sqlite3.Connection, need_id: int | None) -> bool:
    """The need waits for a place: neither covered by a live referral (`referred`, _reopen_need) nor
    settled (met, or a reason given). A referral without a recorded need counts as open."""
    if need_id is None:
        return True
    row = conn.execute("SELECT status FROM participation_needs WHERE need_id = ?", (need_id,)).fetchone()
    return row is None or row[0] == "open"


def _next_place(conn: sqlite3.Connection, config: Config, r: Referral, on: date) -> str | None:
    """The best place not yet tried for the same need (engine/participation/matching.py)."""
    tried = {
        p
        for (p,) in conn.execute(
            "SELECT place_id FROM referrals WHERE person_id = ? AND case_id = ?", (r.person_id, r.case_id)
        )
    }
    need = conn.execute("SELECT need FROM participation_needs WHERE need_id = ?", (r.need_id,)).fetchone()
    want = need[0] if need else config.participation.places[r.place_id].category
    try:
        from engine.participation.matching import next_place
    except ImportError:  # pragma: no cover - the matching module is built alongside
        return None
    found = next_place(conn, config, r.case_id, r.person_id, want, on, tuple(sorted(tried)), consented=r.consent)
    return found.place_id if found is not None else None


def _reopen_need(log: Log, r: Referral) -> None:
    """The referral no longer covers its need: open again, unless another live referral does."""
    if r.need_id is None:
        return
    log.conn.execute(
        f"UPDATE participation_needs SET status = 'open' WHERE need_id = ? AND status = 'referred' AND NOT EXISTS "
        f"(SELECT 1 FROM referrals WHERE need_id = ? AND referral_id != ? AND status IN ({','.join('?' * len(LIVE))}))",
        (r.need_id, r.need_id, r.referral_id, *sorted(LIVE)),
    )


def end(log: Log, config: Config, referral_id: int, reason: str, note: str | None = None) -> None:
    """The person no longer goes (reason of END_REASON_LABELS); pending follow-ups end."""
    from engine.participation.followups import cancel_followups

    if reason not in END_REASON_LABELS:
        raise ReferralRefused(f"参加終了の理由は {', '.join(END_REASON_LABELS)} のいずれかです（'{reason}'）")
    r = load(log.conn, referral_id)
    move_referral(
        log,
        referral_id,
        "ended",
        f"紹介 {referral_id}: {place_of(config, r.place_id).name}への参加が終了（{END_REASON_LABELS[reason]}）",
        reason=reason,
        note=note,
    )
    if reason in ("needs_met", "moved"):  # the need is met, or moot: settled with the reason
        log.conn.execute(
            "UPDATE participation_needs SET status = 'settled', reason = ? WHERE need_id = ? AND status = 'referred'",
            (END_REASON_LABELS[reason], r.need_id),
        )
    else:  # the person stopped: the need is open again (refer elsewhere, or say why: engine need)
        _reopen_need(log, r)
    cancel_followups(log, referral_id, "参加終了")


def cancel(log: Log, config: Config, referral_id: int, why: str) -> None:
    """The referral is withdrawn (the conference decided otherwise); pending follow-ups end."""
    from engine.participation.followups import cancel_followups

    r = load(log.conn, referral_id)
    move_referral(log, referral_id, "cancelled", f"紹介 {referral_id} を取消し（{why}）", reason="other", note=why)
    _reopen_need(log, r)
    cancel_followups(log, referral_id, "紹介の取消し")
