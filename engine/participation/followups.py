"""After the match (定着支援): both sides are asked how it goes, and what their answers start.

At settings.followup_business_days after the acceptance (default +10, +20, +60 business days:
about two weeks, one month, three months) the lead (or the introducer) is asked how the person
is, and the place — when it may be told of the person — whether the person attends. The lead's
follow-ups go to the lead of the day they are asked (follow_the_lead), whoever led at the match.

    lead  well               the referral is `attending`
          stopped_by_choice  the person chose to stop: the referral ends, nothing else
          stopped            a stop the person did not choose: the referral ends, and the case
                             comes back (もどし) with its previous lead
          concern            the case comes back (もどし); the referral stays
    place attending          the referral is `attending`
          not_attending      the coordinator is told, and the lead is asked now (its next
                             follow-up is brought forward to today)

もどし: a closed or suspended case is reopened and convened with its previous lead (engine/
conference/reopening.py); an open case is brought to its next conference unless it is booked
into one already; an archived case is raised to the coordinator.
"""

from __future__ import annotations

import sqlite3

from pydantic import BaseModel

from engine.config import Config
from engine.papers.notices import recipient_name
from engine.participation.persons import member_label
from engine.participation.referrals import Referral, end, load, place_of
from engine.participation.states import ReferralRefused, move_referral
from engine.rules.model import RuleSet
from engine.store.lifecycle import Log
from engine.support.business_days import Calendar
from engine.support.vocabulary import FOLLOWUP_LEAD_LABELS, FOLLOWUP_PLACE_LABELS

SIDES = {"lead": FOLLOWUP_LEAD_LABELS, "place": FOLLOWUP_PLACE_LABELS}


class FollowupResult(BaseModel):
    followup_id: int
    referral_id: int
    case_id: str
    side: str
    result: str
    referral_status: str
    brought_back: bool = False


def schedule_followups(log: Log, config: Config, r: Referral) -> list[int]:
    """The follow-ups of an accepted referral: the lead's always, the place's when it is told."""
    cal = Calendar.of(config.conference)
    days = [cal.add(log.on, n) for n in config.participation.settings.followup_business_days]
    lead = _lead_of(log.conn, r)
    asked = [("lead", lead)] + ([("place", r.place_id)] if r.channel == "place" else [])
    ids = []
    for side, who in asked:
        for d in days:
            ids.append(
                log.conn.execute(
                    "INSERT INTO followups (referral_id, side, agency_id, due_on, status) VALUES (?,?,?,?, 'pending')",
                    (r.referral_id, side, who, d.isoformat()),
                ).lastrowid
            )
    log.event(
        "followups_scheduled",
        case_id=r.case_id,
        reason=f"紹介 {r.referral_id} の定着の確認: "
        + "、".join(str(d) for d in days)
        + ("（主担当機関と場所の双方に確認）" if r.channel == "place" else "（主担当機関に確認）"),
        referral_id=r.referral_id,
        due_on=[str(d) for d in days],
    )
    return ids


# SQL (c = the case, r = the referral): who answers the lead's follow-ups now — the case's lead, else
# the introducer. Read when a follow-up is asked and when its link is used, never fixed in advance:
# the lead may change after the place accepted (a declined proposal, a handover).
LEAD_NOW = "COALESCE(c.lead_agency_id, r.introduced_by)"


def _lead_of(conn: sqlite3.Connection, r: Referral) -> str:
    (lead,) = conn.execute(
        f"SELECT {LEAD_NOW} FROM cases c, referrals r WHERE c.case_id = ? AND r.referral_id = ?",
        (r.case_id, r.referral_id),
    ).fetchone()
    return lead


def follow_the_lead(log: Log, config: Config) -> int:
    """Lead follow-ups bound to an agency that is no longer the one to answer (LEAD_NOW): one not
    asked yet is bound to the lead now; one asked already is withdrawn (its link dies) and asked
    again of the lead now, as a new follow-up due today with its own e-mail. How many moved."""
    conn, day = log.conn, log.on.isoformat()
    moved = conn.execute(
        f"SELECT f.followup_id, f.referral_id, f.status, f.agency_id, {LEAD_NOW}, r.case_id FROM followups f "
        "JOIN referrals r ON r.referral_id = f.referral_id JOIN cases c ON c.case_id = r.case_id "
        f"WHERE f.side = 'lead' AND f.status IN ('pending', 'asked') AND f.agency_id IS NOT {LEAD_NOW} "
        "ORDER BY f.followup_id"
    ).fetchall()
    for followup_id, referral_id, status, before, lead, case_id in moved:
        if status == "pending":
            conn.execute("UPDATE followups SET agency_id = ? WHERE followup_id = ?", (lead, followup_id))
            continue
        conn.execute("UPDATE followups SET status = 'cancelled', done_on = ? WHERE followup_id = ?", (day, followup_id))
        again = conn.execute(
            "INSERT INTO followups (referral_id, side, agency_id, due_on, status) VALUES (?, 'lead', ?, ?, 'pending')",
            (referral_id, lead, day),
        ).lastrowid
        log.event(
            "followup_moved",
            case_id=case_id,
            reason=f"紹介 {referral_id} の定着の確認 {followup_id} は、主担当機関が変わったため"
            f"{recipient_name(config, lead)}に照会し直す（確認 {again}）",
            referral_id=referral_id,
            followup_id=again,
            agency=lead,
            before=before,
        )
    return len(moved)


def cancel_followups(log: Log, referral_id: int, why: str) -> int:
    n = log.conn.execute(
        "UPDATE followups SET status = 'cancelled', done_on = ? WHERE referral_id = ? AND status IN ('pending', 'asked')",
        (log.on.isoformat(), referral_id),
    ).rowcount
    if n:
        case_id = log.conn.execute("SELECT case_id FROM referrals WHERE referral_id = ?", (referral_id,)).fetchone()[0]
        log.event(
            "followups_cancelled",
            case_id=case_id,
            reason=f"紹介 {referral_id} の確認 {n}件を取り消し（{why}）",
            referral_id=referral_id,
        )
    return n


def answer_followup(
    log: Log, rules: RuleSet, config: Config, followup_id: int, result: str, note: str | None = None
) -> FollowupResult:
    """Record a follow-up's answer (asked, or due already) and do what it starts (module docstring)."""
    conn = log.conn
    row = conn.execute(
        "SELECT referral_id, side, agency_id, status, due_on FROM followups WHERE followup_id = ?", (followup_id,)
    ).fetchone()
    if row is None:
        raise ReferralRefused(f"確認 {followup_id} はありません（`engine referrals` で確認してください）")
    referral_id, side, who, status, due_on = row
    if status not in ("asked", "pending") or (status == "pending" and due_on > log.on.isoformat()):
        raise ReferralRefused(
            f"確認 {followup_id} は回答を待っていません（"
            + ("回答済みか取消し済み" if status in ("done", "cancelled") else f"確認日は {due_on}")
            + "）"
        )
    labels = SIDES[side]
    if result not in labels:
        raise ReferralRefused(
            f"確認の回答は {', '.join(f'{k}（{v}）' for k, v in labels.items())} のいずれかです（'{result}'）"
        )
    r = load(conn, referral_id)
    place = place_of(config, r.place_id)
    label = member_label(conn, r.case_id, r.person_id, log.on)
    conn.execute(
        "UPDATE followups SET status = 'done', result = ?, done_on = ?, note = ? WHERE followup_id = ?",
        (result, log.on.isoformat(), note, followup_id),
    )
    log.event(
        "followup_answered",
        case_id=r.case_id,
        reason=f"紹介 {referral_id}（{place.name}）の定着の確認に{'主担当機関' if side == 'lead' else place.name}が回答: {labels[result]}"
        + (f"（メモ: {note}）" if note else ""),
        referral_id=referral_id,
        followup_id=followup_id,
        side=side,
        result=result,
        agency=who,
    )
    if side == "lead" and who in config.agencies:
        log.contact(r.case_id, who, "followup")
    brought_back = False
    if result in ("well", "attending") and r.status == "accepted":
        move_referral(log, referral_id, "attending", f"紹介 {referral_id}: {label}が{place.name}に参加中")
    elif result == "stopped_by_choice" and r.status in ("accepted", "attending"):
        end(log, config, referral_id, "person_stopped", note)
    elif result == "stopped":
        if r.status in ("accepted", "attending"):
            end(log, config, referral_id, "other", note)
        brought_back = bring_back(
            log, rules, config, r.case_id, f"{place.name}への参加が途切れた（本人が望んだものではない）"
        )
    elif result == "concern":
        brought_back = bring_back(
            log,
            rules,
            config,
            r.case_id,
            f"{place.name}に参加している{label[: label.index('（')]}について心配なことがある",
        )
    elif result == "not_attending":
        log.escalate(
            f"followup_not_attending:{followup_id}",
            "participation_stopped",
            f"事案 {r.case_id}: {place.name}から、{label}の参加が途切れているとの回答（紹介 {referral_id}）。主担当機関に様子を確認しています",
            case_id=r.case_id,
        )
        conn.execute(
            "UPDATE followups SET due_on = ? WHERE followup_id = (SELECT followup_id FROM followups WHERE referral_id = ? "
            "AND side = 'lead' AND status = 'pending' ORDER BY due_on LIMIT 1) AND due_on > ?",
            (log.on.isoformat(), referral_id, log.on.isoformat()),
        )
    (now,) = conn.execute("SELECT status FROM referrals WHERE referral_id = ?", (referral_id,)).fetchone()
    return FollowupResult(
        followup_id=followup_id,
        referral_id=referral_id,
        case_id=r.case_id,
        side=side,
        result=result,
        referral_status=now,
        brought_back=brought_back,
    )


def bring_back(log: Log, rules: RuleSet, config: Config, case_id: str, why: str) -> bool:
    """もどし after a follow-up or a place that no one can take the person to; True if the case was
    brought to a conference (reopened or booked), False if it already was or could not be."""
    from engine.conference.convene import Convener

    status, meeting_id = log.conn.execute(
        "SELECT status, meeting_id FROM cases WHERE case_id = ?", (case_id,)
    ).fetchone()
    if status == "archived":
        log.escalate(
            f"participation_archived:{case_id}:{log.on.isoformat()}",
            "participation_concern",
            f"事案 {case_id}: 見守りを終えた事案ですが、参加支援の確認で「{why}」: 新たな事案として検討してください",
            case_id=case_id,
        )
        return False
    c = Convener(log.conn, rules, config, log.on, log=log)
    if status in ("closed", "suspended"):
        cid, cand, hh = c.load_case(case_id)
        c.reopen(cid, hh, f"参加支援の確認で「{why}」")
        log.event("participation_concern", case_id=case_id, reason=f"{why}（再開・もどし）", brought_back=True)
        return True
    booked = (
        meeting_id
        and log.conn.execute(
            "SELECT 1 FROM meetings WHERE meeting_id = ? AND held_on >= ?", (meeting_id, log.on.isoformat())
        ).fetchone()
    )
    if status in ("detected", "convened", "reopened") or booked:
        log.event("participation_concern", case_id=case_id, reason=f"{why}（次の会議で検討）")
        return False
    cid, cand, hh = c.load_case(case_id)
    c.convene_case(cid, cand, hh, note=f"参加支援の確認で「{why}」のため会議に付議（もどし）。")
    log.event("participation_concern", case_id=case_id, reason=f"{why}（会議に付議・もどし）", brought_back=True)
    return True
