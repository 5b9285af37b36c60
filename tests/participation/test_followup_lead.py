"""The lead's follow-ups after a match go to the case's lead at the time they are asked, not to the
agency that was the lead (or only proposed) when the place accepted: a lead that declines or hands
over no longer hears of the person, and its link no longer answers (engine/participation/followups.py
follow_the_lead, engine/links/tokens.py)."""

from __future__ import annotations

import pytest

from engine import links
from engine.casework.handshake import accept, decline, request_lead
from engine.casework.history import history, render_history
from engine.casework.sweep import daily_sweep
from engine.links.questions import LinkNotFound
from engine.participation.answers import answer_referral
from engine.store.lifecycle import Log
from engine.support import clock
from engine.support.business_days import Calendar
from tests.helpers.casework import DAY, LEAD, MEETING_DAY, decide, morning, open_cases, plan_text
from tests.helpers.mail import messages
from tests.links.conftest import send, token_in

PLAN = "participation:\n  - {member: 世帯員2, need: social_contact, place: ibasho_chuo, consent: true}\n"


@pytest.fixture
def matched(conn, workspace, rules, cfg):
    """The place accepts the person while the proposed lead (LEAD) has not answered yet:
    (case id, referral id, the day of the first follow-up)."""
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    (referral_id,) = decide(
        conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=PLAN)
    ).referrals
    answer_referral(conn, rules, cfg, referral_id, "accept", DAY, "tester")
    first = Calendar.of(cfg.conference).add(DAY, cfg.participation.settings.followup_business_days[0])
    return case_id, referral_id, first


def lead_followups(conn, referral_id: int) -> list[tuple]:
    return conn.execute(
        "SELECT followup_id, agency_id, status FROM followups WHERE referral_id = ? AND side = 'lead' ORDER BY followup_id",
        (referral_id,),
    ).fetchall()


def sweep_and_send(conn, rules, cfg, workspace, on) -> dict[str, str]:
    """The sweep and the dispatch of `on`: the lead follow-up e-mails sent, key -> To."""
    with clock.pinned(morning(on.isoformat())):
        daily_sweep(conn, rules, cfg, on)
        send(conn, cfg, workspace, on)
    return {
        k.removesuffix(".eml"): m["To"] for k, m in messages(workspace / "outbox").items() if k.startswith("followup_")
    }


def test_the_lead_that_declined_is_not_asked_the_new_lead_is(matched, conn, rules, cfg, workspace):
    case_id, referral_id, first = matched
    assert {a for _, a, _ in lead_followups(conn, referral_id)} == {LEAD}  # the proposed lead, when accepted
    nxt = decline(conn, rules, cfg, case_id, "体制が整わない", DAY, "tester").next_agency
    assert nxt and nxt != LEAD
    accept(conn, cfg, case_id, DAY, "tester", nxt)
    sent = sweep_and_send(conn, rules, cfg, workspace, first)
    ((asked, _, _), *_) = [f for f in lead_followups(conn, referral_id) if f[2] == "asked"]
    assert sent[f"followup_{asked}"] == cfg.agencies[nxt].email
    assert cfg.agencies[LEAD].email not in sent.values()
    assert {a for _, a, s in lead_followups(conn, referral_id) if s == "pending"} == {nxt}  # the later ones too


def test_a_follow_up_asked_before_the_lead_changed_is_asked_again_of_the_new_lead(matched, conn, rules, cfg, workspace):
    case_id, referral_id, first = matched
    accept(conn, cfg, case_id, DAY, "tester", LEAD)
    sweep_and_send(conn, rules, cfg, workspace, first)
    ((old_id, _, _),) = [f for f in lead_followups(conn, referral_id) if f[2] == "asked"]
    old_token = token_in(workspace, f"followup:{old_id}")
    assert links.lookup(conn, cfg, old_token, first).state == "open"
    # a later conference asks another agency to take the case over, and it accepts
    other = "jiritsu_soudan"
    with conn:
        log = Log(conn, first, "tester")
        request_lead(log, cfg, case_id, other, then_status="active", rule_id="conference", why="会議の決定により")
    accept(conn, cfg, case_id, first, "tester", other)
    with pytest.raises(LinkNotFound):  # the old lead's link no longer answers, at once
        links.answer(conn, cfg, rules, old_token, "stopped", None, first)
    sent = sweep_and_send(conn, rules, cfg, workspace, first)
    moved = [f for f in lead_followups(conn, referral_id) if f[0] > old_id and f[1] == other and f[2] == "asked"]
    assert len(moved) == 1, lead_followups(conn, referral_id)
    assert (old_id, LEAD, "cancelled") in lead_followups(conn, referral_id)
    assert sent[f"followup_{moved[0][0]}"] == cfg.agencies[other].email
    done = links.answer(conn, cfg, rules, token_in(workspace, f"followup:{moved[0][0]}"), "well", None, first)
    assert done.state == "answered"
    text = render_history(case_id, history(conn, case_id))
    assert "定着の確認の照会先の変更" in text and "主担当機関が変わったため" in text
    again = sweep_and_send(conn, rules, cfg, workspace, first)  # a second sweep the same day moves nothing
    assert again == sent


def test_a_follow_up_queued_to_a_lead_that_changed_before_the_dispatch_is_withheld(
    matched, conn, rules, cfg, workspace
):
    case_id, referral_id, first = matched
    accept(conn, cfg, case_id, DAY, "tester", LEAD)
    with clock.pinned(morning(first.isoformat())):
        daily_sweep(conn, rules, cfg, first)  # queued to LEAD, not sent yet (an outage, say)
    ((old_id, _, _),) = [f for f in lead_followups(conn, referral_id) if f[2] == "asked"]
    other = "jiritsu_soudan"
    with conn:
        log = Log(conn, first, "tester")
        request_lead(log, cfg, case_id, other, then_status="active", rule_id="conference", why="会議の決定により")
    accept(conn, cfg, case_id, first, "tester", other)
    with clock.pinned(morning(first.isoformat())):
        send(conn, cfg, workspace, first)
    (state,) = conn.execute("SELECT status FROM outbox WHERE message_key = ?", (f"followup:{old_id}",)).fetchone()
    assert state == "superseded"  # the old lead is not told where the person goes
