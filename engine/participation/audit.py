"""参加支援's part of the gap audit (engine/casework/audit.py):

referral_overdue          a referral (or a follow-up) past its answer date — for a referral, past
                          the escalation date after the reminder — that nobody raised to the coordinator
match_without_followup    an accepted referral with no follow-up scheduled
need_without_referral     a need the conference recorded with neither a live referral nor a reason
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date

from engine.config import Config
from engine.participation.referrals import escalation_key
from engine.support.business_days import Calendar
from engine.support.vocabulary import need_label

KINDS = {
    "referral_overdue": "参加支援の紹介・定着確認が回答期限を過ぎたがコーディネーターに上げられていない",
    "match_without_followup": "受入れが決まったが定着の確認が予定されていない",
    "need_without_referral": "会議で記録した参加支援のニーズに、紹介も紹介しない理由もない",
}


# need_without_referral, the one rule (also the area view's 期限を過ぎて未対応, engine/region/figures.py):
# a need of a case still open, left `open` for the grace after it was recorded or its last referral closed
NEED_SINCE = "MAX(n.recorded_on, COALESCE((SELECT MAX(r.closed_on) FROM referrals r WHERE r.need_id = n.need_id), ''))"


def past_grace(cal, since: str, grace: int, on: date) -> bool:
    """The need waited past the coordinator's grace (business days) on `on`."""
    return cal.add(date.fromisoformat(since[:10]), grace) < on


def participation_violations(
    conn: sqlite3.Connection, config: Config, on: date, add: Callable[[str, str, str | None, str, str], None]
) -> None:
    day, cal = on.isoformat(), Calendar.of(config.conference)
    grace = config.participation.settings.escalation_business_days

    def escalated(key: str) -> bool:
        return conn.execute("SELECT 1 FROM escalations WHERE subject_key = ?", (key,)).fetchone() is not None

    for referral_id, hid, case_id, due, status in conn.execute(
        "SELECT r.referral_id, c.household_id, r.case_id, r.answer_due, r.status FROM referrals r JOIN cases c ON c.case_id = r.case_id "
        "WHERE r.status IN ('requested', 'waitlisted') AND r.answer_due < ? AND c.is_open = 1 ORDER BY r.referral_id",
        (day,),
    ).fetchall():
        if cal.add(date.fromisoformat(due), grace) < on and not escalated(escalation_key(referral_id, status, due)):
            add("referral_overdue", hid, case_id, due, f"紹介 {referral_id} の回答期限 {due} を過ぎた")
    for followup_id, hid, case_id, due in conn.execute(
        "SELECT f.followup_id, c.household_id, r.case_id, f.answer_due FROM followups f JOIN referrals r ON r.referral_id = f.referral_id "
        "JOIN cases c ON c.case_id = r.case_id WHERE f.status = 'asked' AND f.answer_due < ? AND c.is_open = 1",
        (day,),
    ).fetchall():
        if not escalated(f"followup:{followup_id}"):
            add("referral_overdue", hid, case_id, due, f"定着の確認 {followup_id} の回答期限 {due} を過ぎた")
    for referral_id, hid, case_id, answered in conn.execute(
        "SELECT r.referral_id, c.household_id, r.case_id, COALESCE(r.answered_on, r.requested_on) FROM referrals r "
        "JOIN cases c ON c.case_id = r.case_id WHERE r.status = 'accepted' AND c.is_open = 1 AND NOT EXISTS "
        "(SELECT 1 FROM followups f WHERE f.referral_id = r.referral_id AND f.status IN ('pending', 'asked')) ORDER BY r.referral_id"
    ).fetchall():
        add(
            "match_without_followup",
            hid,
            case_id,
            answered,
            f"紹介 {referral_id} は受入れ決定後の定着の確認が予定されていない",
        )
    for need_id, hid, case_id, need, since in conn.execute(
        f"SELECT n.need_id, c.household_id, n.case_id, n.need, {NEED_SINCE} FROM participation_needs n "
        "JOIN cases c ON c.case_id = n.case_id WHERE n.status = 'open' AND c.is_open = 1 ORDER BY n.need_id"
    ).fetchall():
        if not past_grace(cal, since, grace, on):  # the coordinator's days to refer or say why
            continue
        label = need_label(need)
        add(
            "need_without_referral",
            hid,
            case_id,
            since,
            f"ニーズ {need_id}（{label}）に紹介先も紹介しない理由もない（engine match {case_id} で候補を確認し engine refer、"
            "または engine need で理由を記録）",
        )
