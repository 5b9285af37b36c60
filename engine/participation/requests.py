"""The e-mail asking for a referral's answer (参加支援): to the place when it may be told of the
person, else to the introducer who goes with them; under the DV lock, the introducer's carries
fixed wording only (LOCKED_WORDING), and a place never reads the DV centre's name.
"""

from __future__ import annotations

import sqlite3
from datetime import date

from engine.config import Config
from engine.outbox.keys import MessageKey
from engine.papers.notices import Notice, answer_by_link, recipient_name
from engine.participation.mail import SENDER
from engine.participation.persons import age_of, member_label
from engine.policy.dv import case_id_locked
from engine.support.dates import wareki_with_weekday
from engine.support.vocabulary import need_label

# the fixed wording of a DV-locked case's 参加支援 e-mail to an agency: one without it says where the
# person goes, and is withheld under the lock (engine/participation/mail.py stale_reason)
LOCKED_WORDING = "ご本人と場所の詳細は、会議で、またはコーディネーターから直接お伝えします。"


def introducer_name(config: Config, introducer: str) -> str:
    """The introducer as a place reads it: never the DV centre, whose name alone would say why the
    person is referred; the 参加支援 desk's name instead (it arranges the contact)."""
    from engine.policy.dv import DV_CENTRE_SILO

    agency = config.agencies.get(introducer)
    if agency is not None and agency.silo == DV_CENTRE_SILO:
        return SENDER
    return recipient_name(config, introducer)


def request_lines(conn: sqlite3.Connection, config: Config, r, on: date, *, reminder: bool) -> Notice:
    place = config.participation.places[r.place_id]
    # a waitlisted referral is asked again when its band ends: each such round has its own reminder
    round_on = r.answer_due if reminder and r.status == "waitlisted" else None
    key = str(MessageKey.referral(r.referral_id, reminder=reminder, round_on=round_on))
    need = conn.execute("SELECT need FROM participation_needs WHERE need_id = ?", (r.need_id,)).fetchone()
    what = place.category_label + (f"（{need_label(need[0])}）" if need and need[0] != place.category else "")
    first = "先日ご相談した" if reminder else ""
    if r.channel == "place":
        from engine.papers.agenda import age_band

        return Notice(
            key=key,
            kind="referral_reminder" if reminder else "referral",
            recipient=r.place_id,
            title="参加のご相談（ご紹介）" + ("の再送" if reminder else ""),
            issued_on=on,
            sender=SENDER,
            lines=[
                f"{place.name}に、{first}次の方の参加について、ご相談申し上げます。",
                f"  紹介番号: {r.referral_id}",
                f"  ご紹介の内容: {what}",
                f"  ご本人: {age_band(age_of(conn, r.person_id, on))}の方"
                + ("（ご本人の同意を得てご紹介しています）" if r.consent else ""),
                f"  紹介元: {introducer_name(config, r.introduced_by)}（日程などは紹介元からご連絡いたします）",
                f"ご回答の期限: {wareki_with_weekday(r.answer_due)}",
            ]
            + (["期限を過ぎていますが、まだご回答をいただいていません。"] if reminder else []),
            answer=answer_by_link(  # the answers the referral's state allows (a waitlisted one: not 空き待ち again)
                "次のリンクから"
                + (
                    "「受け入れる」「受入れが難しい（理由）」"
                    if r.status == "waitlisted"
                    else "「受け入れる」「空き待ち（見込みの時期）」「受入れが難しい（理由）」"
                )
                + "のいずれかをお選びください。"
            ),
        )
    if case_id_locked(conn, config, r.case_id, on.isoformat()):  # DV: where and when the person goes is never e-mailed
        lines = [
            f"会議で決めた参加支援について、{first}ご紹介（同行）をお願いいたします。" + LOCKED_WORDING,
            f"  紹介番号: {r.referral_id}",
            f"ご回答の期限: {wareki_with_weekday(r.answer_due)}",
        ]
    else:
        lines = [
            f"会議で決めた参加支援について、{first}次の場所へのご紹介をお願いいたします。"
            "ご本人の情報は場所には送っていません。ご本人に同行するなどして、直接ご紹介ください。",
            f"  紹介番号: {r.referral_id}",
            f"  ご本人: {member_label(conn, r.case_id, r.person_id, on)}",
            f"  場所: {place.name}（{place.organisation}、{place.address}、{place.schedule.text()}）",
            f"  ご紹介の内容: {what}",
            f"ご回答の期限: {wareki_with_weekday(r.answer_due)}",
        ]
    return Notice(
        key=key,
        kind="referral_reminder" if reminder else "referral",
        recipient=r.introduced_by,
        case_id=r.case_id,
        title="参加支援のご紹介（同行）のお願い" + ("の再送" if reminder else ""),
        issued_on=on,
        lines=lines,
        answer=answer_by_link(
            "ご紹介の結果を、次のリンクからお知らせください（"
            + ("受け入れ、受入れが難しい" if r.status == "waitlisted" else "受け入れ、空き待ち、受入れが難しい")
            + "）。"
        ),
    )
