"""参加支援's part of the daily sweep (engine/casework/sweep.py), in the sweep's transaction:

- a referral past its answer date           → a reminder to whoever answers it (once), and after
                                              settings.escalation_business_days more an escalation
- a waitlisted referral whose band has ended → the same: the place is asked again
- a follow-up due                            → the lead (or the place) is asked, with an answer date;
                                              the lead's goes to the lead now (follow_the_lead)
- a follow-up past its answer date           → escalation
- a follow-up of a referral that has ended   → cancelled
Every e-mail has its own key and every escalation is raised once: a sweep run twice sends nothing twice.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from engine.config import Config
from engine.outbox.keys import MessageKey
from engine.papers.notices import Notice, answer_by_link, queue_notice, recipient_name
from engine.participation.followups import follow_the_lead
from engine.participation.mail import SENDER
from engine.participation.referrals import escalation_key, member_label, queue_request
from engine.participation.requests import LOCKED_WORDING
from engine.policy.dv import case_id_locked
from engine.store.lifecycle import Log
from engine.support.business_days import Calendar
from engine.support.dates import wareki_with_weekday
from engine.support.vocabulary import FOLLOWUP_LEAD_LABELS, FOLLOWUP_PLACE_LABELS


class ParticipationSweep(BaseModel):
    reminders: int = 0
    escalations: int = 0
    followups_asked: int = 0


def sweep_participation(log: Log, config: Config, on: date) -> ParticipationSweep:
    conn, day, out = log.conn, on.isoformat(), ParticipationSweep()
    settings = config.participation.settings
    cal = Calendar.of(config.conference)
    for referral_id, case_id, place_id, due, status in conn.execute(
        "SELECT referral_id, case_id, place_id, answer_due, status FROM referrals WHERE status IN ('requested', 'waitlisted') "
        "AND answer_due < ? ORDER BY answer_due, referral_id",
        (day,),
    ).fetchall():
        out.reminders += queue_request(conn, config, referral_id, on, reminder=True)
        if cal.add(date.fromisoformat(due), settings.escalation_business_days) < on:
            place = config.participation.places.get(place_id)
            out.escalations += log.escalate(
                escalation_key(referral_id, status, due),
                "referral_no_answer",
                f"事案 {case_id}: 紹介 {referral_id}（{place.name if place else place_id}）への回答が、"
                f"期限の{wareki_with_weekday(due)}を過ぎてもありません",
                case_id=case_id,
            )
    conn.execute(
        "UPDATE followups SET status = 'cancelled', done_on = ? WHERE status IN ('pending', 'asked') AND referral_id IN "
        "(SELECT referral_id FROM referrals WHERE status IN ('declined', 'ended', 'cancelled'))",
        (day,),
    )
    follow_the_lead(log, config)  # the lead may have changed since the place accepted
    for followup_id, referral_id, side, who, due, case_id, person_id, place_id in conn.execute(
        "SELECT f.followup_id, f.referral_id, f.side, f.agency_id, f.due_on, r.case_id, r.person_id, r.place_id "
        "FROM followups f JOIN referrals r ON r.referral_id = f.referral_id "
        "WHERE f.status = 'pending' AND f.due_on <= ? ORDER BY f.due_on, f.followup_id",
        (day,),
    ).fetchall():
        answer_due = cal.add(on, settings.followup_answer_business_days)
        conn.execute(
            "UPDATE followups SET status = 'asked', asked_on = ?, answer_due = ? WHERE followup_id = ?",
            (day, answer_due.isoformat(), followup_id),
        )
        place = config.participation.places.get(place_id)
        place_name = place.name if place else place_id
        log.event(
            "followup_asked",
            case_id=case_id,
            reason=f"紹介 {referral_id}（{place_name}）の定着の確認を{recipient_name(config, who)}に照会、回答期限 {answer_due}",
            referral_id=referral_id,
            followup_id=followup_id,
            agency=who,
        )
        queue_notice(
            conn,
            config,
            _question(
                conn, config, followup_id, referral_id, side, who, case_id, person_id, place_name, due, answer_due, on
            ),
        )
        out.followups_asked += 1
    for followup_id, case_id, answer_due in conn.execute(
        "SELECT f.followup_id, r.case_id, f.answer_due FROM followups f JOIN referrals r ON r.referral_id = f.referral_id "
        "WHERE f.status = 'asked' AND f.answer_due < ?",
        (day,),
    ).fetchall():
        out.escalations += log.escalate(
            f"followup:{followup_id}",
            "followup_no_answer",
            f"事案 {case_id}: 参加支援の定着の確認 {followup_id} への回答が、期限の{wareki_with_weekday(answer_due)}までにありません",
            case_id=case_id,
        )
    return out


def _question(
    conn, config, followup_id, referral_id, side, who, case_id, person_id, place_name, due, answer_due, on
) -> Notice:
    if side == "place":
        return Notice(
            key=str(MessageKey.followup(followup_id)),
            kind="followup",
            recipient=who,
            title="ご紹介した方の参加状況のご確認",
            issued_on=on,
            sender=SENDER,
            lines=[
                f"先日受け入れていただいた方（紹介番号 {referral_id}）の参加状況をお知らせください。",
                "「" + "」「".join(FOLLOWUP_PLACE_LABELS.values()) + "」のいずれかでご回答ください。",
                f"ご回答の期限: {wareki_with_weekday(answer_due)}",
                "受け入れにあたってお困りのことがあれば、メモにお書きいただくか、お電話でご相談ください。",
            ],
            answer=answer_by_link("次のリンクからご回答ください（メモを添えられます）。"),
        )
    if case_id_locked(conn, config, case_id, on.isoformat()):  # DV: where the person goes is never e-mailed
        what = (
            f"事案 {case_id} の参加支援（紹介番号 {referral_id}）について、確認の時期（{wareki_with_weekday(due)}）を迎えました。"
            + LOCKED_WORDING
        )
    else:
        label = member_label(conn, case_id, person_id, on)
        what = f"事案 {case_id} の{label}が{place_name}に通い始めてから、確認の時期（{wareki_with_weekday(due)}）を迎えました。"
    return Notice(
        key=str(MessageKey.followup(followup_id)),
        kind="followup",
        recipient=who,
        case_id=case_id,
        title="参加支援の定着のご確認",
        issued_on=on,
        lines=[
            what + "ご本人の様子をお知らせください。",
            "「" + "」「".join(FOLLOWUP_LEAD_LABELS.values()) + "」のいずれかでご回答ください。",
            "本人が望まない形で参加が途切れた場合や、心配なことがある場合は、会議で改めて検討します（もどし）。",
            f"ご回答の期限: {wareki_with_weekday(answer_due)}",
        ],
        answer=answer_by_link("次のリンクからご回答ください（メモを添えられます）。"),
    )


def participation_lines(conn, config: Config, case_id: str, on: date) -> list[str]:
    """The watch after closure asks about participation too: the places the household's members
    go to (none for a DV-locked household, whose questions carry fixed wording only)."""
    from engine.policy.dv import household_locked

    rows = conn.execute(
        "SELECT r.person_id, r.place_id, c.household_id FROM referrals r JOIN cases c ON c.case_id = r.case_id "
        "WHERE r.case_id = ? AND r.status IN ('accepted', 'attending') ORDER BY r.referral_id",
        (case_id,),
    ).fetchall()
    if not rows or household_locked(conn, config, rows[0][2], on.isoformat()):
        return []
    names = [
        f"{member_label(conn, case_id, person, on)}が{config.participation.places[place].name}"
        for person, place, _ in rows
        if place in config.participation.places
    ]
    return (
        ["参加支援: " + "、".join(names) + "に参加しています。参加の様子もあわせてお知らせください。"] if names else []
    )
