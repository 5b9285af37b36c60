"""The coordinator's list of referrals (`engine referrals`, the console's case page)."""

from __future__ import annotations

import sqlite3
from datetime import date

from pydantic import BaseModel

from engine.config import Config
from engine.papers.notices import recipient_name
from engine.participation.persons import member_label
from engine.support.dates import wareki_with_weekday
from engine.support.vocabulary import REFERRAL_STATE_LABELS, WAITLIST_BAND_LABELS


class ReferralRow(BaseModel):
    referral_id: int
    case_id: str
    member: str  # 世帯員N（50代・子）
    place_id: str
    place: str  # its name
    category: str  # its label
    status: str
    state: str  # Japanese
    introduced_by: str  # the agency's name
    channel: str  # place | in_person
    answer_due: date
    next_followup: date | None = None
    followups: list[str] = []  # each answered or asked follow-up, in Japanese


def list_referrals(
    conn: sqlite3.Connection, config: Config, on: date, *, case_id: str | None = None, status: str | None = None
) -> list[ReferralRow]:
    rows = conn.execute(
        "SELECT referral_id, case_id, person_id, place_id, status, introduced_by, channel, answer_due, band FROM referrals "
        "WHERE (? IS NULL OR case_id = ?) AND (? IS NULL OR status = ?) ORDER BY referral_id",
        (case_id, case_id, status, status),
    ).fetchall()
    out = []
    from engine.support.vocabulary import FOLLOWUP_LEAD_LABELS, FOLLOWUP_PLACE_LABELS

    labels = FOLLOWUP_LEAD_LABELS | FOLLOWUP_PLACE_LABELS
    for referral_id, cid, person, place_id, st, intro, channel, due, band in rows:
        place = config.participation.places.get(place_id)
        fups = conn.execute(
            "SELECT followup_id, side, due_on, status, result FROM followups WHERE referral_id = ? ORDER BY due_on, side",
            (referral_id,),
        ).fetchall()
        nxt = next((d for _, _, d, s, _ in fups if s in ("pending", "asked")), None)
        out.append(
            ReferralRow(
                referral_id=referral_id,
                case_id=cid,
                member=member_label(conn, cid, person, on),
                place_id=place_id,
                place=place.name if place else place_id,
                category=place.category_label if place else "",
                status=st,
                state=REFERRAL_STATE_LABELS[st]
                + (f"（見込み {WAITLIST_BAND_LABELS[band]}）" if st == "waitlisted" and band else ""),
                introduced_by=recipient_name(config, intro),
                channel=channel,
                answer_due=date.fromisoformat(due),
                next_followup=date.fromisoformat(nxt) if nxt else None,
                followups=[
                    f"確認 {fid}（{'主担当機関' if side == 'lead' else '場所'}、{wareki_with_weekday(d)}）: "
                    + (
                        labels.get(res, res)
                        if res
                        else {"pending": "予定", "asked": "照会中", "cancelled": "取消し", "done": "回答済み"}[s]
                    )
                    for fid, side, d, s, res in fups
                ],
            )
        )
    return out
