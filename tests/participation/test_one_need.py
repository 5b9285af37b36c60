"""One need, however many places are asked for it: the referral the coordinator makes after a
decline (the escalation's own `engine refer` command, typed as it is) and two places asked at once
for the same need cover the one need — so a decline while another place is still asked brings
nothing back, and the gap audit and 地域づくり never count a covered need as unmet. And a request or
reminder written for a state the referral has left since is withheld at send time."""

from __future__ import annotations

import re
from datetime import date

import pytest

from engine.casework.sweep import daily_sweep
from engine.participation.answers import answer_referral, refer_case
from engine.region.figures import area_figures
from engine.support.business_days import Calendar
from tests.helpers.casework import DAY, MEETING_DAY, accept, decide, open_cases, plan_text, status_of, violations
from tests.helpers.mail import messages
from tests.helpers.matching import config_with, place
from tests.links.conftest import send
from tests.participation.test_referral_loop import SON_TO_IBASHO, row

WORK = "participation:\n  - {member: 世帯員2, need: work_readiness, place: shuro_chuo, consent: true}\n"


@pytest.fixture
def two_places(conn, workspace, rules, tmp_path):
    """Two places of one kind, both asked at once for the son's social_contact: (cfg, case, a, b)."""
    _, cfg = config_with(tmp_path, rules, [place("ib_a"), place("ib_b")])
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text())
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    a = refer_case(conn, cfg, case_id, "2", "ib_a", DAY, "tester", consent=True, need="social_contact")
    b = refer_case(conn, cfg, case_id, "2", "ib_b", DAY, "tester", consent=True, need="social_contact")
    return cfg, case_id, a, b


def needs(conn) -> list[tuple]:
    return conn.execute("SELECT need, status FROM participation_needs ORDER BY need_id").fetchall()


def nothing_unmet(conn, cfg, rules, on: date) -> None:
    """No gap-audit violation for a need and no need open past its grace in 地域づくり."""
    assert not violations(conn, cfg, on, "need_without_referral")
    figures = area_figures(conn, cfg, rules, on, 1)
    assert not any(m.needs_open_past_grace for m in figures.monthly), figures.monthly
    assert not [u for u in figures.unmet if u.open_past_grace], figures.unmet


def test_the_command_an_escalation_suggests_after_a_decline_covers_the_declined_need(conn, workspace, rules, cfg):
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=WORK))
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    (first,) = [r for (r,) in conn.execute("SELECT referral_id FROM referrals")]
    assert answer_referral(conn, rules, cfg, first, "decline_at_capacity", DAY, "tester").next_place
    (detail,) = conn.execute(
        "SELECT detail FROM escalations WHERE subject_key = ?", (f"referral_declined:{first}",)
    ).fetchone()
    command = re.search(r"`engine refer (\S+) --member (\S+) --place (\S+) --need (\S+)`", detail)
    assert command and command[4] == "work_readiness", detail
    refer_case(conn, cfg, command[1], command[2], command[3], DAY, "tester", consent=True, need=command[4])
    assert needs(conn) == [("work_readiness", "referred")]
    nothing_unmet(conn, cfg, rules, Calendar.of(cfg.conference).add(DAY, 10))


def test_a_referral_without_need_covers_the_members_open_need_that_the_place_serves(conn, workspace, rules, cfg):
    """The same, typed without --need (as the escalation suggested before it named the need)."""
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=WORK))
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    (first,) = [r for (r,) in conn.execute("SELECT referral_id FROM referrals")]
    nxt = answer_referral(conn, rules, cfg, first, "decline_at_capacity", DAY, "tester").next_place
    refer_case(conn, cfg, case_id, "2", nxt, DAY, "tester", consent=True)
    assert needs(conn) == [("work_readiness", "referred")]
    nothing_unmet(conn, cfg, rules, Calendar.of(cfg.conference).add(DAY, 10))


def test_two_places_asked_at_once_for_one_need(two_places, conn, workspace, rules):
    cfg, case_id, a, b = two_places
    assert needs(conn) == [("social_contact", "referred")]
    before = status_of(conn, case_id)
    declined = answer_referral(conn, rules, cfg, a, "decline_at_capacity", DAY, "tester")
    assert (declined.brought_back, declined.next_place) == (False, None)  # ib_b is still asked
    assert status_of(conn, case_id) == before and needs(conn) == [("social_contact", "referred")]
    answer_referral(conn, rules, cfg, b, "accept", DAY, "tester")
    nothing_unmet(conn, cfg, rules, Calendar.of(cfg.conference).add(DAY, 10))
    # a place asked for it later (ib_b attending) joins the same need too
    c = refer_case(conn, cfg, case_id, "2", "ib_a", DAY, "tester", consent=True, need="social_contact")
    assert needs(conn) == [("social_contact", "referred")] and row(conn, c)["need_id"] == row(conn, b)["need_id"]


def test_a_reminder_queued_before_the_place_answered_by_telephone_is_withheld(conn, workspace, rules, cfg):
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    (son, _) = decide(
        conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=SON_TO_IBASHO)
    ).referrals
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    send(conn, cfg, workspace, MEETING_DAY)
    cal = Calendar.of(cfg.conference)
    night = cal.add(date.fromisoformat(row(conn, son)["answer_due"]), 1)
    daily_sweep(conn, rules, cfg, night)  # queues the reminder 「まだご回答をいただいていません」
    answer_referral(conn, rules, cfg, son, "waitlist_lt1m", night, "tester")  # the place telephones first
    send(conn, cfg, workspace, night)
    state = conn.execute("SELECT status FROM outbox WHERE message_key = ?", (f"referral_reminder:{son}",)).fetchone()
    assert state == ("superseded",) and f"referral_reminder_{son}.eml" not in messages(workspace / "outbox")
    # the waitlist's round: its own reminder still goes while the round waits for its answer
    again = date.fromisoformat(row(conn, son)["answer_due"])
    round_key = f"referral_reminder:{son}:v{again.strftime('%Y%m%d')}"
    daily_sweep(conn, rules, cfg, cal.add(again, 1))
    send(conn, cfg, workspace, cal.add(again, 1))
    assert conn.execute("SELECT status FROM outbox WHERE message_key = ?", (round_key,)).fetchone() == ("sent",)


def test_a_need_met_at_one_place_is_not_proposed_again_when_the_other_place_declines(two_places, conn, rules):
    cfg, case_id, a, b = two_places
    answer_referral(conn, rules, cfg, a, "accept", DAY, "tester")
    answer_referral(conn, rules, cfg, a, "end_needs_met", DAY, "tester")
    assert needs(conn) == [("social_contact", "settled")]
    before = status_of(conn, case_id)
    declined = answer_referral(conn, rules, cfg, b, "decline_at_capacity", DAY, "tester")
    assert (declined.next_place, declined.brought_back) == (None, False)  # nothing to find a place for
    assert status_of(conn, case_id) == before and needs(conn) == [("social_contact", "settled")]
    assert not conn.execute("SELECT 1 FROM escalations WHERE subject_key = ?", (f"referral_declined:{b}",)).fetchone()
