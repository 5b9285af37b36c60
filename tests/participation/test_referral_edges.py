"""The referral loop's edges: a decline proposes the next place or brings the case back, a waitlist is
asked again when its band ends, capacity follows acceptances, the DV lock and the consent rule at
send time, the watch after closure asks about participation, and stale listings in the digest."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import pytest

from engine.casework.sweep import daily_sweep
from engine.outbox.keys import MessageKey
from engine.participation.answers import answer_referral, refer_case
from engine.participation.referrals import available_now
from engine.participation.states import ReferralRefused
from engine.support.business_days import Calendar, add_months
from tests.helpers.casework import DAY, LEAD, MEETING_DAY, accept, decide, open_cases, plan_text, status_of
from tests.helpers.mail import messages
from tests.links.conftest import send
from tests.participation.test_referral_loop import SON_TO_IBASHO, row


@pytest.fixture
def referred(conn, workspace, rules, cfg):
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    result = decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=SON_TO_IBASHO))
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    return case_id, meeting_id, result.referrals


def escalation(conn, key: str) -> str | None:
    found = conn.execute("SELECT detail FROM escalations WHERE subject_key = ?", (key,)).fetchone()
    return found[0] if found else None


def test_a_decline_at_capacity_proposes_the_next_place_to_the_coordinator(referred, conn, cfg, rules):
    case_id, _, _ = referred
    # the son needs to get ready for work: 就労体験 in 中央 first, the town-wide programme next
    first = refer_case(conn, cfg, case_id, "2", "shuro_chuo", DAY, "tester", consent=True, need="work_readiness")
    r = answer_referral(conn, rules, cfg, first, "decline_at_capacity", DAY, "tester")
    assert (r.status, r.next_place, r.brought_back) == ("declined", "shuro_zeniki", False)
    text = escalation(conn, f"referral_declined:{first}")
    assert cfg.participation.places["shuro_zeniki"].name in text and "定員に空きがない" in text
    assert f"engine refer {case_id} --member 世帯員2 --place shuro_zeniki" in text
    assert conn.execute(
        "SELECT status FROM participation_needs WHERE need_id = ?", (row(conn, first)["need_id"],)
    ).fetchone() == ("open",)
    assert status_of(conn, case_id) == "active"


def test_a_decline_with_no_place_left_brings_the_case_back_to_the_conference(referred, conn, cfg, rules):
    case_id, _, (son, _) = referred
    tried = set()
    r = answer_referral(conn, rules, cfg, son, "decline_not_eligible", DAY, "tester")
    while r.next_place:  # every place proposed in turn declines
        assert r.next_place not in tried
        tried.add(r.next_place)
        new = refer_case(conn, cfg, case_id, "2", r.next_place, DAY, "tester", consent=True, need="social_contact")
        r = answer_referral(conn, rules, cfg, new, "decline_at_capacity", DAY, "tester")
    assert r.brought_back
    held = conn.execute(
        "SELECT m.held_on FROM cases c JOIN meetings m ON m.meeting_id = c.meeting_id WHERE c.case_id = ?", (case_id,)
    ).fetchone()
    assert held and held[0] >= DAY.isoformat()


def test_a_waitlisted_referral_is_asked_again_when_its_band_ends(referred, conn, cfg, rules):
    case_id, _, (son, _) = referred
    answer_referral(conn, rules, cfg, son, "waitlist_lt1m", DAY, "tester")
    again = date.fromisoformat(row(conn, son)["answer_due"])
    assert again == Calendar.of(cfg.conference).add(add_months(DAY, 1), 0) and row(conn, son)["band"] == "lt1m"
    key = f"referral_reminder:{son}:v{again.strftime('%Y%m%d')}"  # the waitlist's round
    daily_sweep(conn, rules, cfg, again)
    assert not conn.execute("SELECT 1 FROM outbox WHERE message_key = ?", (key,)).fetchone()
    daily_sweep(conn, rules, cfg, Calendar.of(cfg.conference).add(again, 1))
    assert conn.execute("SELECT 1 FROM outbox WHERE message_key = ?", (key,)).fetchone()
    assert answer_referral(conn, rules, cfg, son, "accept", again + timedelta(days=3), "tester").status == "accepted"


def test_capacity_now_is_the_directorys_count_less_acceptances_since_it(referred, conn, cfg, rules):
    _, _, (son, _) = referred
    place = cfg.participation.places["ibasho_chuo"]
    before = available_now(conn, place)
    assert before == place.capacity.available
    answer_referral(conn, rules, cfg, son, "accept", DAY, "tester")
    assert available_now(conn, place) == before - 1
    event = conn.execute("SELECT reason FROM audit_log WHERE event = 'capacity_updated'").fetchone()[0]
    assert f"空き: {before - 1}" in event


def test_a_dv_lock_between_queueing_and_sending_withholds_the_places_email(referred, conn, cfg, workspace):
    case_id, _, (son, _) = referred
    hid = conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]
    pid = conn.execute("SELECT person_id FROM persons WHERE household_id = ? ORDER BY person_id", (hid,)).fetchone()[0]
    with conn:
        conn.execute(
            "INSERT INTO records VALUES (?,?,?,?,?,?,NULL)",
            (f"{pid}|dv|x", pid, "dv", "dv_support_measure", "住民票等の閲覧制限", "2026-12-01"),
        )
    send(conn, cfg, workspace)
    assert f"referral_{son}.eml" not in messages(workspace / "outbox")
    status, why = conn.execute(
        "SELECT status, last_error FROM outbox WHERE message_key = ?", (str(MessageKey.referral(son)),)
    ).fetchone()
    assert status == "superseded" and why.startswith("the household is locked (DV)")
    assert escalation(conn, f"withheld:referral:{son}") is not None


def test_a_place_is_never_a_recipient_of_another_referral_or_without_consent(referred, conn, cfg, workspace):
    case_id, _, (son, father) = referred
    with conn:  # a message about the father's in_person referral addressed to the place by mistake
        conn.execute(
            "INSERT INTO outbox (message_key, kind, agency_id, subject, parts, status, queued_at) VALUES (?,?,?,?,?,?,?)",
            (
                f"referral_reminder:{father}",
                "referral_reminder",
                "salon_chuo",
                "x",
                '{"text": "x"}',
                "pending",
                "2026-12-07T00:00:00+00:00",
            ),
        )
    send(conn, cfg, workspace)
    status, why = conn.execute(
        "SELECT status, last_error FROM outbox WHERE message_key = ?", (f"referral_reminder:{father}",)
    ).fetchone()
    assert status == "failed" and "may not be told" in why
    assert not any(
        m["To"] == cfg.participation.places["salon_chuo"].email for m in messages(workspace / "outbox").values()
    )


def test_the_watch_after_closure_asks_about_participation(conn, workspace, rules, cfg):
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    text = f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n" + SON_TO_IBASHO
    decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, text)
    assert accept(conn, cfg, case_id, MEETING_DAY, "tester").status == "closed"
    (son,) = conn.execute("SELECT referral_id FROM referrals WHERE place_id = 'ibasho_chuo'").fetchone()
    answer_referral(conn, rules, cfg, son, "accept", DAY, "tester")
    (due,) = conn.execute(
        "SELECT MIN(due_on) FROM checkpoints WHERE case_id = ? AND kind = 'watch'", (case_id,)
    ).fetchone()
    daily_sweep(conn, rules, cfg, date.fromisoformat(due))
    (parts,) = conn.execute("SELECT parts FROM outbox WHERE kind = 'checkpoint'").fetchone()
    assert "中央 まちの居場所" in parts and "参加の様子もあわせて" in parts


def test_the_digest_lists_stale_listings(conn, cfg, rules):
    on = date(2026, 12, 7)
    stale = [p for p in cfg.participation.places.values() if p.stale(on, cfg.participation.settings.stale_months)]
    assert stale and len(stale) < len(cfg.participation.places)  # the shipped directory has some of each
    daily_sweep(conn, rules, cfg, on)
    (parts,) = conn.execute("SELECT parts FROM outbox WHERE kind = 'digest'").fetchone()
    assert f"社会資源の情報 {len(stale)} 件" in parts and all(p.name in parts for p in stale)


def test_refusals_say_why_in_japanese_and_record_nothing(referred, conn, cfg, rules):
    case_id, _, _ = referred
    before = conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()
    with pytest.raises(ReferralRefused, match="本人の同意"):
        refer_case(conn, cfg, case_id, "2", "shuro_chuo", DAY, "tester", consent=False)
    with pytest.raises(ReferralRefused, match="resources.yaml にありません"):
        refer_case(conn, cfg, case_id, "2", "ibasho_cho", DAY, "tester", consent=True)
    with pytest.raises(ReferralRefused, match="世帯員"):
        refer_case(conn, cfg, case_id, "9", "ibasho_chuo", DAY, "tester", consent=True)
    with pytest.raises(ReferralRefused, match="既に"):
        refer_case(conn, cfg, case_id, "2", "ibasho_chuo", DAY, "tester", consent=True)
    assert conn.execute("SELECT COUNT(*) FROM audit_log").fetchone() == before
    with pytest.raises(sqlite3.IntegrityError):
        with conn:
            conn.execute(
                "INSERT INTO referrals (case_id, person_id, place_id, introduced_by, consent, channel, status, requested_on, answer_due) "
                "VALUES (?, 'p', 'ibasho_chuo', ?, 1, 'place', 'accepted', '2026-12-07', '2026-12-07')",
                (case_id, LEAD),
            )


def _asked(conn, referral_id: int, side: str) -> tuple[int, str]:
    return conn.execute(
        "SELECT followup_id, answer_due FROM followups WHERE referral_id = ? AND side = ? AND status = 'asked'",
        (referral_id, side),
    ).fetchone()


def test_a_follow_up_unanswered_by_its_date_is_escalated_once_on_business_days(referred, conn, cfg, rules):
    from engine.casework.audit import run_audit

    _, _, (son, _) = referred
    answer_referral(conn, rules, cfg, son, "accept", DAY, "tester")
    cal = Calendar.of(cfg.conference)
    first = cal.add(DAY, cfg.participation.settings.followup_business_days[0])
    daily_sweep(conn, rules, cfg, first)
    fid, due = _asked(conn, son, "lead")
    assert date.fromisoformat(due) == cal.add(first, cfg.participation.settings.followup_answer_business_days)
    daily_sweep(conn, rules, cfg, date.fromisoformat(due))
    assert escalation(conn, f"followup:{fid}") is None  # the answer day itself is in time
    late = cal.add(date.fromisoformat(due), 1)
    assert "referral_overdue" in [v.kind for v in run_audit(conn, cfg, late).violations]  # before the sweep runs
    daily_sweep(conn, rules, cfg, late)
    assert escalation(conn, f"followup:{fid}") is not None
    assert "referral_overdue" not in [v.kind for v in run_audit(conn, cfg, late).violations]
    assert daily_sweep(conn, rules, cfg, late).escalations == 0  # raised once


def test_a_place_saying_the_person_stopped_coming_asks_the_lead_at_once(referred, conn, cfg, rules):
    from engine.participation.answers import answer_followup

    _, _, (son, _) = referred
    answer_referral(conn, rules, cfg, son, "accept", DAY, "tester")
    cal = Calendar.of(cfg.conference)
    first = cal.add(DAY, cfg.participation.settings.followup_business_days[0])
    daily_sweep(conn, rules, cfg, first)
    lead_first, _ = _asked(conn, son, "lead")
    answer_followup(conn, rules, cfg, lead_first, "well", first, "tester")
    place_first, _ = _asked(conn, son, "place")
    day = first + timedelta(days=1)
    answer_followup(conn, rules, cfg, place_first, "not_attending", day, "tester")
    assert escalation(conn, f"followup_not_attending:{place_first}") is not None
    (nxt,) = conn.execute(
        "SELECT MIN(due_on) FROM followups WHERE referral_id = ? AND side = 'lead' AND status = 'pending'", (son,)
    ).fetchone()
    assert nxt == day.isoformat()  # brought forward from the second follow-up's day
    daily_sweep(conn, rules, cfg, day)
    assert _asked(conn, son, "lead") is not None


def test_follow_ups_end_with_the_referral(referred, conn, cfg, rules):
    _, _, (son, _) = referred
    answer_referral(conn, rules, cfg, son, "accept", DAY, "tester")
    answer_referral(conn, rules, cfg, son, "end_moved", DAY + timedelta(days=1), "tester")
    assert conn.execute("SELECT DISTINCT status FROM followups WHERE referral_id = ?", (son,)).fetchall() == [
        ("cancelled",)
    ]


def test_a_waitlist_after_a_reminder_is_asked_again_in_a_round_of_its_own(referred, conn, cfg, rules):
    _, _, (son, _) = referred
    cal = Calendar.of(cfg.conference)
    first_due = date.fromisoformat(row(conn, son)["answer_due"])
    late = cal.add(first_due, cfg.participation.settings.escalation_business_days + 1)
    daily_sweep(conn, rules, cfg, late)  # reminded and escalated in the first round
    assert escalation(conn, f"referral:{son}") is not None
    answer_referral(conn, rules, cfg, son, "waitlist_lt1m", late, "tester")
    again = date.fromisoformat(row(conn, son)["answer_due"])
    after = cal.add(again, cfg.participation.settings.escalation_business_days + 1)
    daily_sweep(conn, rules, cfg, after)
    key = f"referral_reminder:{son}:v{again.strftime('%Y%m%d')}"
    assert conn.execute("SELECT 1 FROM outbox WHERE message_key = ?", (key,)).fetchone()
    assert escalation(conn, f"referral:{son}:{again.isoformat()}") is not None


def test_refer_checks_what_goes_into_a_places_email_and_who_introduces(referred, conn, cfg, rules):
    case_id, _, _ = referred
    with pytest.raises(ReferralRefused, match="ニーズの一覧にありません"):
        refer_case(conn, cfg, case_id, "2", "volunteer_zeniki", DAY, "tester", consent=True, need="太郎 2005-10-05生")
    with pytest.raises(ReferralRefused, match="構成員ではない"):
        refer_case(
            conn, cfg, case_id, "2", "volunteer_zeniki", DAY, "tester", consent=True, introduced_by="hikikomori_npo"
        )
    with pytest.raises(ReferralRefused, match="事案 C-2026-99999 はありません"):
        refer_case(conn, cfg, "C-2026-99999", "1", "volunteer_zeniki", DAY, "tester", consent=True)
    with pytest.raises(ReferralRefused, match="紹介 99999999999999999999 はありません"):
        answer_referral(conn, rules, cfg, 99999999999999999999, "accept", DAY, "tester")


def test_an_ended_referral_settles_or_reopens_its_need(referred, conn, cfg, rules):
    _, _, (son, father) = referred
    for referral_id, how, expected in ((son, "end_needs_met", "settled"), (father, "end_person_stopped", "open")):
        answer_referral(conn, rules, cfg, referral_id, "accept", DAY, "tester")
        answer_referral(conn, rules, cfg, referral_id, how, DAY + timedelta(days=1), "tester")
        need = conn.execute(
            "SELECT status FROM participation_needs WHERE need_id = ?", (row(conn, referral_id)["need_id"],)
        ).fetchone()
        assert need == (expected,), how


def test_accepting_at_a_full_place_tells_the_coordinator(conn, workspace, rules, cfg):
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    full = "ibasho_minato"  # the shipped directory lists it with no free place
    assert cfg.participation.places[full].capacity.available == 0
    decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text())
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    r = refer_case(conn, cfg, case_id, "2", full, DAY, "tester", consent=True, need="social_contact")
    answer_referral(conn, rules, cfg, r, "accept", DAY, "tester")
    assert "resources.yaml の空きは 0" in escalation(conn, f"over_capacity:{r}")
