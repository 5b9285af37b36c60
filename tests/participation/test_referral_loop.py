"""参加支援's referral loop end to end: the conference refers a member to a place, the place answers
from the link in its e-mail, follow-ups go to both sides on business days, a concern brings the
case back (もどし), and a coordinator can trace it all in `engine history`."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import pytest

from engine import links
from engine.casework.history import history, render_history
from engine.casework.sweep import daily_sweep
from engine.participation.answers import answer_followup, answer_referral, settle_need
from engine.participation.states import ReferralRefused
from engine.support.business_days import Calendar
from tests.helpers.casework import DAY, LEAD, MEETING_DAY, accept, decide, open_cases, plan_text, status_of
from tests.helpers.mail import messages
from tests.links.conftest import send, token_in

SON_TO_IBASHO = (
    "participation:\n"
    "  - {member: 世帯員2, need: social_contact, place: ibasho_chuo, consent: true}\n"
    "  - {member: 1, need: daily_activity, place: salon_chuo, consent: false}\n"
)


@pytest.fixture
def referred(conn, workspace, rules, cfg):
    """An 8050 case whose plan refers the son (consent) to ibasho_chuo and the father (no consent)
    to salon_chuo; the lead accepted; the e-mails of 2026-12-07 sent."""
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    result = decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=SON_TO_IBASHO))
    assert len(result.referrals) == 2
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    send(conn, cfg, workspace)
    return case_id, meeting_id, result.referrals


def row(conn, referral_id: int) -> dict:
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    return dict(cur.execute("SELECT * FROM referrals WHERE referral_id = ?", (referral_id,)).fetchone())


def test_the_conference_refers_and_only_a_consenting_persons_place_is_told(referred, conn, cfg, workspace):
    case_id, _, (son, father) = referred
    assert (row(conn, son)["channel"], row(conn, son)["status"], row(conn, son)["consent"]) == ("place", "requested", 1)
    assert row(conn, father)["channel"] == "in_person"  # no consent, the place is no member: nothing goes to it
    sent = messages(workspace / "outbox")
    to_place = sent[f"referral_{son}.eml"]
    assert to_place["To"] == cfg.participation.places["ibasho_chuo"].email
    text = to_place.get_body(("plain",)).get_content()
    assert (
        case_id not in text and "支援会議" not in text.split("――――")[0]
    )  # a place is not told the case or the conference
    assert "紹介番号: " + str(son) in text and "50代の方" in text
    assert f"referral_{father}.eml" in sent and sent[f"referral_{father}.eml"]["To"] == cfg.agencies[LEAD].email
    assert not any(m["To"] == cfg.participation.places["salon_chuo"].email for m in sent.values())
    needs = conn.execute("SELECT need, status FROM participation_needs WHERE case_id = ? ORDER BY need_id", (case_id,))
    assert needs.fetchall() == [("social_contact", "referred"), ("daily_activity", "referred")]


def test_the_place_accepts_from_its_link_and_follow_ups_go_to_both_sides_on_business_days(
    referred, conn, cfg, rules, workspace
):
    case_id, _, (son, _) = referred
    token = token_in(workspace, f"referral:{son}")
    page = links.lookup(conn, cfg, token, DAY)
    assert page.case_id is None and page.kind == "referral" and "accept" in [c.value for c in page.choices]
    assert not any(case_id in f for f in page.facts)
    done = links.answer(conn, cfg, rules, token, "accept", None, DAY)
    assert done.state == "answered" and row(conn, son)["status"] == "accepted"
    cal = Calendar.of(cfg.conference)
    due = [cal.add(DAY, n) for n in cfg.participation.settings.followup_business_days]
    got = conn.execute(
        "SELECT side, agency_id, due_on FROM followups WHERE referral_id = ? ORDER BY due_on, side", (son,)
    ).fetchall()
    assert got == [(side, who, d.isoformat()) for d in due for side, who in (("lead", LEAD), ("place", "ibasho_chuo"))]
    first = due[0]
    assert daily_sweep(conn, rules, cfg, first - timedelta(days=1)).followups_asked == 0  # not before its day
    assert daily_sweep(conn, rules, cfg, first).followups_asked == 2
    keys = {k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE kind = 'followup'")}
    assert len(keys) == 2
    assert daily_sweep(conn, rules, cfg, first).followups_asked == 0  # asked once


def test_a_concern_at_follow_up_brings_the_case_back_and_history_traces_it(referred, conn, cfg, rules, workspace):
    case_id, _, (son, _) = referred
    answer_referral(conn, rules, cfg, son, "accept", DAY, "tester")
    first = Calendar.of(cfg.conference).add(DAY, cfg.participation.settings.followup_business_days[0])
    daily_sweep(conn, rules, cfg, first)
    (lead_followup,) = conn.execute(
        "SELECT followup_id FROM followups WHERE referral_id = ? AND side = 'lead' AND status = 'asked'", (son,)
    ).fetchone()
    place_followup = conn.execute(
        "SELECT followup_id FROM followups WHERE referral_id = ? AND side = 'place' AND status = 'asked'", (son,)
    ).fetchone()[0]
    r = answer_followup(conn, rules, cfg, place_followup, "attending", first, "tester")
    assert r.referral_status == "attending"
    assert status_of(conn, case_id) == "active"
    r = answer_followup(conn, rules, cfg, lead_followup, "concern", first, "tester", "最近休みがち")
    assert r.brought_back
    meeting = conn.execute(
        "SELECT m.held_on FROM cases c JOIN meetings m ON m.meeting_id = c.meeting_id WHERE c.case_id = ?", (case_id,)
    ).fetchone()
    assert meeting and meeting[0] >= first.isoformat()  # booked into a coming conference
    text = render_history(case_id, history(conn, case_id))
    for step in ("フラグ", "参加支援の紹介", "受入れを決定", "参加中", "心配なことがある", "会議に付議"):
        assert step in text, step


def test_a_stop_the_person_chose_ends_the_referral_without_bringing_the_case_back(referred, conn, cfg, rules):
    case_id, _, (son, _) = referred
    answer_referral(conn, rules, cfg, son, "accept", DAY, "tester")
    first = Calendar.of(cfg.conference).add(DAY, cfg.participation.settings.followup_business_days[0])
    daily_sweep(conn, rules, cfg, first)
    (fid,) = conn.execute(
        "SELECT followup_id FROM followups WHERE referral_id = ? AND side = 'lead' AND status = 'asked'", (son,)
    ).fetchone()
    meetings_before = conn.execute("SELECT COUNT(*) FROM case_meetings WHERE case_id = ?", (case_id,)).fetchone()
    r = answer_followup(conn, rules, cfg, fid, "stopped_by_choice", first, "tester")
    assert (r.referral_status, r.brought_back) == ("ended", False)
    assert (
        conn.execute("SELECT COUNT(*) FROM case_meetings WHERE case_id = ?", (case_id,)).fetchone() == meetings_before
    )
    assert not conn.execute(
        "SELECT 1 FROM followups WHERE referral_id = ? AND status IN ('pending', 'asked')", (son,)
    ).fetchone()


def test_an_unanswered_referral_is_reminded_then_escalated_on_business_days(referred, conn, cfg, rules):
    case_id, _, (son, _) = referred
    cal = Calendar.of(cfg.conference)
    due = date.fromisoformat(row(conn, son)["answer_due"])
    assert daily_sweep(conn, rules, cfg, due).reminders == 0  # the answer date itself is still in time
    day_after = cal.add(due, 1)
    daily_sweep(conn, rules, cfg, day_after)
    assert conn.execute("SELECT 1 FROM outbox WHERE message_key = ?", (f"referral_reminder:{son}",)).fetchone()
    assert not conn.execute("SELECT 1 FROM escalations WHERE subject_key = ?", (f"referral:{son}",)).fetchone()
    late = cal.add(due, cfg.participation.settings.escalation_business_days + 1)
    daily_sweep(conn, rules, cfg, late)
    assert conn.execute("SELECT 1 FROM escalations WHERE subject_key = ?", (f"referral:{son}",)).fetchone()


def test_the_audit_finds_an_overdue_referral_nobody_raised_and_a_need_without_a_place(referred, conn, cfg, rules):
    from engine.casework.audit import run_audit

    case_id, _, (son, father) = referred
    cal = Calendar.of(cfg.conference)
    late = cal.add(
        date.fromisoformat(row(conn, son)["answer_due"]), cfg.participation.settings.escalation_business_days + 1
    )
    kinds = [v.kind for v in run_audit(conn, cfg, late).violations]
    assert kinds.count("referral_overdue") == 2  # the sweep has not run: nobody was told
    answer_referral(conn, rules, cfg, father, "decline_not_eligible", DAY, "tester")
    grace = cfg.participation.settings.escalation_business_days
    assert "need_without_referral" not in [v.kind for v in run_audit(conn, cfg, cal.add(DAY, grace)).violations]
    later = cal.add(DAY, grace + 1)
    assert "need_without_referral" in [v.kind for v in run_audit(conn, cfg, later).violations]
    settle_need(conn, cfg, case_id, "1", "daily_activity", "本人が当面は自宅で過ごすことを希望", later, "tester")
    assert "need_without_referral" not in [v.kind for v in run_audit(conn, cfg, later).violations]


def test_the_referral_states_are_enforced_by_the_database(referred, conn, rules, cfg):
    _, _, (son, _) = referred
    with pytest.raises(sqlite3.IntegrityError, match="invalid referral transition"):
        with conn:
            conn.execute("UPDATE referrals SET status = 'attending' WHERE referral_id = ?", (son,))
    with pytest.raises(ReferralRefused, match="移れません"):
        answer_referral(conn, rules, cfg, son, "end_moved", DAY, "tester")
    answer_referral(conn, rules, cfg, son, "accept", DAY, "tester")
    with pytest.raises(ReferralRefused):
        answer_referral(conn, rules, cfg, son, "accept", DAY, "tester")
