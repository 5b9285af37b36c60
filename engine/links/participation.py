"""What a 参加支援 answer page may show (engine/links/questions.py): to a place, the referral's
number, the kind of place asked for and the person's age band — never the case id, a name, or
which conference knows the person; to the introducer or the lead (an agency of the case), the case
id, the member as the agenda names them and the place. A DV-locked household: the number only."""

from __future__ import annotations

import sqlite3
from datetime import date

from engine.config import Config
from engine.links.tokens import Asked
from engine.support.vocabulary import need_label


def _referral(conn: sqlite3.Connection, q: Asked) -> tuple:
    if q.kind == "followup":
        return conn.execute(
            "SELECT r.referral_id, r.case_id, r.person_id, r.place_id, r.need_id, f.side FROM followups f "
            "JOIN referrals r ON r.referral_id = f.referral_id WHERE f.followup_id = ?",
            (int(q.ref),),
        ).fetchone()
    return conn.execute(
        "SELECT referral_id, case_id, person_id, place_id, need_id, CASE channel WHEN 'place' THEN 'place' ELSE 'lead' END "
        "FROM referrals WHERE referral_id = ?",
        (int(q.ref),),
    ).fetchone()


def shows_case(conn: sqlite3.Connection, config: Config, q: Asked) -> bool:
    """The page names the case: not to a place (a member place is an agency too and sees it)."""
    return q.kind not in ("referral", "followup") or q.agency_id in config.agencies


def participation_facts(conn: sqlite3.Connection, config: Config, q: Asked, on: date, locked: bool) -> list[str]:
    from engine.papers.agenda import age_band
    from engine.participation.persons import age_of, member_label

    referral_id, case_id, person_id, place_id, need_id, side = _referral(conn, q)
    facts = [f"紹介番号: {referral_id}"]
    if locked:
        return facts
    place = config.participation.places.get(place_id)
    need = conn.execute("SELECT need FROM participation_needs WHERE need_id = ?", (need_id,)).fetchone()
    what = (place.category_label if place else "") + (
        f"（{need_label(need[0])}）" if need and (not place or need[0] != place.category) else ""
    )
    if shows_case(conn, config, q):
        facts = [f"事案番号: {case_id}", *facts, f"世帯員: {member_label(conn, case_id, person_id, on)}"]
        if place:
            facts.append(f"場所: {place.name}（{place.organisation}、{place.schedule.text()}）")
    else:
        facts.append(f"ご本人: {age_band(age_of(conn, person_id, on))}の方")
    facts.append(f"ご紹介の内容: {what}")
    if q.kind == "followup":
        facts.append("ご確認いただくこと: " + ("ご本人の参加状況" if side == "place" else "参加先でのご本人の様子"))
    return facts
