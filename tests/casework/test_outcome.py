"""Recording a conference's outcome (engine/casework/outcome.py): plan, close, suspend and continue and
what each sets in motion; an outcome recorded once per meeting and case, for a meeting the case is
in, refused as a whole; the order of meetings (a late outcome of an earlier one, a case closed or
suspended while booked into a later one)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from engine.casework.handshake import accept
from engine.casework.outcome import OutcomeRefused
from engine.store.lifecycle import InvalidTransition
from engine.support.dates import wareki_with_weekday
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import (
    DAY,
    LEAD,
    MEETING_DAY,
    PLAN,
    add_arrears,
    case,
    checkpoints,
    d,
    decide,
    events,
    held_on,
    open_cases,
    plan_text,
    snapshot,
    status_of,
)
from tests.helpers.town import ON


@pytest.mark.parametrize(
    ("on", "due"),
    [(DAY, date(2026, 12, 14)), (date(2026, 12, 25), date(2027, 1, 7))],
    ids=["over-a-weekend", "over-year-end"],
)
def test_plan_asks_the_lead_with_a_dated_request_and_an_email(convened, cal, on, due):
    conn = convened.conn
    result = convened.outcome(PLAN, on=on)
    assert (result.case_id, result.decision, result.status, result.actions, result.meeting_id) == (
        convened.case,
        "plan",
        "lead_pending",
        1,
        None,
    )
    assert (
        due == cal.add(on, convened.cfg.lifecycle.lead_answer_business_days)
        and convened.cfg.lifecycle.lead_answer_business_days == 5
    )
    assert sum(cal.is_business_day(on + timedelta(days=i)) for i in range(1, (due - on).days + 1)) == 5
    request = conn.execute(
        "SELECT request_id, case_id, agency_id, rule_id, requested_on, due_on, then_status, status, answered_on FROM lead_requests"
    ).fetchall()
    assert request == [
        (
            result.lead_request,
            convened.case,
            "houkatsu_chuo",
            "conference",
            on.isoformat(),
            due.isoformat(),
            "active",
            "pending",
            None,
        )
    ]
    mail = conn.execute(
        "SELECT message_key, kind, agency_id, status, subject, parts FROM outbox WHERE kind = 'lead_request'"
    ).fetchall()
    assert len(mail) == 1
    key, kind, agency, status, subject, parts = mail[0]
    assert (key, kind, agency, status) == (
        f"lead_request:{result.lead_request}",
        "lead_request",
        "houkatsu_chuo",
        "pending",
    )
    assert convened.case in subject and f"ご回答の期限: {wareki_with_weekday(due)}" in json.loads(parts)["text"]
    assert conn.execute(
        "SELECT case_id, meeting_id, decided_on, recorded_on, decision, lead_agency_id, consent FROM outcomes"
    ).fetchall() == [
        (convened.case, convened.meeting, MEETING_DAY.isoformat(), on.isoformat(), "plan", "houkatsu_chuo", "pending")
    ]
    assert (
        conn.execute("SELECT consent_state FROM cases WHERE case_id = ?", (convened.case,)).fetchone()[0] == "pending"
    )
    assert conn.execute("SELECT agency_id, action, due_on, status, meeting_id FROM case_actions").fetchall() == [
        ("houkatsu_chuo", "介護サービスの利用調整", "2026-12-20", "open", convened.meeting)
    ]
    assert events(conn, convened.case)[-4:] == ["outcome", "actions_agreed", "transition", "lead_requested"]
    late = json.loads(conn.execute("SELECT detail FROM audit_log WHERE event = 'outcome'").fetchone()[0])["late"]
    assert late is (on > cal.add(MEETING_DAY, convened.cfg.lifecycle.outcome_business_days))
    assert conn.execute(
        "SELECT from_status, to_status, actor, on_day FROM audit_log WHERE event = 'transition' ORDER BY seq DESC LIMIT 1"
    ).fetchone() == ("convened", "lead_pending", "tester", on.isoformat())


def test_close_asks_the_proposed_lead_to_take_the_case_over(convened):
    result = convened.outcome("decision: close\nreason: 介護保険サービスで安定したため\n")
    assert result.status == "lead_pending" and result.lead_request
    assert convened.conn.execute("SELECT agency_id, then_status, status FROM lead_requests").fetchall() == [
        ("houkatsu_chuo", "closed", "pending")
    ]
    other = convened.outcome("decision: close\nlead: kikan_soudan\nreason: 障害分野で継続\n", case=convened.cases[1])
    assert other.status == "lead_pending"
    assert convened.conn.execute(
        "SELECT agency_id, then_status FROM lead_requests WHERE case_id = ?", (convened.cases[1],)
    ).fetchall() == [("kikan_soudan", "closed")]
    reason = convened.conn.execute(
        "SELECT reason FROM audit_log WHERE event = 'outcome' AND case_id = ?", (convened.case,)
    ).fetchone()[0]
    assert "終結" in reason and "介護保険サービスで安定したため" in reason


def test_suspend_sets_a_review_checkpoint_on_a_business_day(convened, cal):
    # 2027-01-02 is a Saturday within 年末年始: the review moves to Monday 2027-01-04
    result = convened.outcome("decision: suspend\nreview_on: 2027-01-02\nreason: 本人が入院したため\n")
    assert result.status == "suspended" and result.lead_request is None
    assert convened.conn.execute(
        "SELECT kind, due_on, status FROM checkpoints WHERE case_id = ?", (convened.case,)
    ).fetchall() == [("review", "2027-01-04", "pending")]
    assert cal.is_business_day(date(2027, 1, 4)) and not cal.is_business_day(date(2027, 1, 2))
    assert convened.conn.execute("SELECT is_open FROM cases WHERE case_id = ?", (convened.case,)).fetchone()[0] == 1
    assert convened.conn.execute("SELECT COUNT(*) FROM lead_requests").fetchone()[0] == 0
    move = convened.conn.execute(
        "SELECT from_status, to_status, reason FROM audit_log WHERE event = 'transition' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert move == ("convened", "suspended", "中断: 本人が入院したため")


def test_continue_keeps_the_case_convened_in_a_later_meeting(convened):
    result = convened.outcome("decision: continue\nreason: 情報が不足しているため次回に継続\n", on=MEETING_DAY)
    assert result.status == "convened" and result.meeting_id and result.meeting_id != convened.meeting
    meeting, held_on = convened.conn.execute(
        "SELECT c.meeting_id, m.held_on FROM cases c JOIN meetings m USING (meeting_id) WHERE c.case_id = ?",
        (convened.case,),
    ).fetchone()
    assert meeting == result.meeting_id and held_on > MEETING_DAY.isoformat()
    assert convened.conn.execute("SELECT decision FROM outcomes WHERE case_id = ?", (convened.case,)).fetchall() == [
        ("continue",)
    ]
    assert convened.conn.execute("SELECT COUNT(*) FROM lead_requests").fetchone()[0] == 0
    decided = convened.conn.execute(
        "SELECT meeting_id, reason FROM audit_log WHERE event = 'conference_decided' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert decided[0] == meeting and "継続審議" in decided[1]
    # the new meeting takes an outcome in turn
    assert (
        convened.outcome(PLAN, meeting=meeting, on=date.fromisoformat(held_on), name="second.yaml").status
        == "lead_pending"
    )


def test_a_refused_outcome_records_nothing(convened):
    before = convened.snapshot()
    # the meeting has not been held yet
    with pytest.raises(OutcomeRefused, match=str(MEETING_DAY)):
        convened.outcome(PLAN, on=ON)
    assert convened.snapshot() == before
    # unknown meeting, unknown case
    with pytest.raises(OutcomeRefused, match="M-19990101-1000-S"):
        convened.outcome(PLAN, meeting="M-19990101-1000-S")
    with pytest.raises(OutcomeRefused, match="C-2026-99999"):
        convened.outcome(PLAN, case="C-2026-99999")
    assert convened.snapshot() == before
    assert convened.conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0] == 0


def test_an_outcome_for_a_meeting_the_case_is_not_in_is_refused(convened):
    convened.conn.execute(
        "INSERT INTO meetings (meeting_id, conference_type, held_on, start_time, place, capacity) VALUES ('M-20261201-1400-S', 'support', '2026-12-01', '14:00', '会議室', 8)"
    )
    convened.conn.commit()
    before = convened.snapshot()
    with pytest.raises(OutcomeRefused, match=f"付議されていません.*{convened.meeting}"):
        convened.outcome(PLAN, meeting="M-20261201-1400-S")
    assert convened.snapshot() == before


def test_an_outcome_is_recorded_only_once_per_meeting(convened):
    convened.outcome(PLAN)
    after_first = convened.snapshot()
    for text in (PLAN, "decision: continue\n", "decision: suspend\nreview_on: 2027-02-01\nreason: 入院\n"):
        with pytest.raises(OutcomeRefused, match="記録済み"):
            convened.outcome(text, on=DAY + timedelta(days=1))
    assert convened.snapshot() == after_first
    assert status_of(convened.conn, convened.case) == "lead_pending"
    assert convened.conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0] == 1


def test_the_same_outcome_recorded_twice_is_refused_and_changes_nothing(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    before = snapshot(conn)
    with pytest.raises(OutcomeRefused, match="記録済み"):
        decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    assert snapshot(conn) == before


# --- outcomes of cases booked into more than one meeting ---------------------------------------------
@pytest.mark.regression("review of the case lifecycle")
def test_a_new_problem_during_the_closing_hand_off_can_still_be_planned(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n",
    )
    add_arrears(conn, "H1", 1, "2026-12-07")  # the son falls into arrears while the lead is being asked
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))
    m2 = case(conn, cid)["meeting_id"]
    assert m2 != mid and held_on(conn, m2) > d("2026-12-08")  # the new problem is on a conference's agenda
    accept(conn, cfg, cid, d("2026-12-08"), "tester")
    # the conference meets about the arrears and decides a plan
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        m2,
        held_on(conn, m2),
        plan_text(roles=((LEAD, "家計の相談につなぐ", "2027-01-29"),)),
    )
    assert case(conn, cid)["status"] in ("lead_pending", "active")


@pytest.mark.regression("review of the case lifecycle")
def test_a_case_suspended_while_booked_into_a_later_meeting_can_be_planned_there(conn, workspace, rules, cfg):
    ((cid, m1),) = open_cases(conn, workspace, rules, cfg)
    add_arrears(conn, "H1", 1, "2026-12-07")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))  # rebooked before M1's outcome is written down
    m2 = case(conn, cid)["meeting_id"]
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        m1,
        d("2026-12-08"),
        "decision: suspend\nreview_on: 2027-03-01\nreason: 本人が支援を希望しないため\n",
    )
    assert case(conn, cid)["meeting_id"] == m2  # still on M2's agenda
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        m2,
        held_on(conn, m2),
        plan_text(roles=((LEAD, "家計の相談につなぐ", "2027-01-29"),)),
    )


@pytest.mark.regression("review of the case lifecycle")
@pytest.mark.parametrize("late", ["continue", "suspend", "plan"])
def test_a_late_outcome_of_an_earlier_meeting_does_not_undo_the_later_decision(conn, workspace, rules, cfg, late):
    ((cid, m1),) = open_cases(conn, workspace, rules, cfg)
    add_arrears(conn, "H1", 1, "2026-12-07")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))  # M1 held without outcome; the case moves to M2
    m2 = case(conn, cid)["meeting_id"]
    h2 = held_on(conn, m2)
    decide(conn, workspace, rules, cfg, cid, m2, h2, plan_text(roles=((LEAD, "家計と介護の調整", "2027-01-29"),)))
    accept(conn, cfg, cid, h2, "tester")
    before = case(conn, cid)
    newer = conn.execute("SELECT action_id FROM case_actions WHERE meeting_id = ?", (m2,)).fetchall()
    # the digest keeps reporting M1 without outcome: the coordinator writes down what M1 decided
    text = {
        "continue": "decision: continue\n",
        "suspend": "decision: suspend\nreview_on: 2027-03-01\nreason: 検討の途中\n",
        "plan": plan_text(roles=((LEAD, "当初の役割", "2027-01-10"),)),
    }[late]
    try:
        decide(conn, workspace, rules, cfg, cid, m1, h2 + timedelta(days=1), text)
    except (OutcomeRefused, InvalidTransition):
        pass  # refusing is acceptable; applying it over the newer decision is not
    after = case(conn, cid)
    assert (after["status"], after["meeting_id"]) == (before["status"], before["meeting_id"])
    assert {s for (s,) in conn.execute("SELECT status FROM case_actions WHERE meeting_id = ?", (m2,))} == {
        "open"
    } and newer


def closed_while_booked_later(conn, workspace, rules, cfg) -> tuple[str, str]:
    """The conference closes the case; arrears flagged during the hand-off book it into a later
    meeting M2; the lead accepts, so the case is closed while still on M2. (case, M2)"""
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n",
    )
    add_arrears(conn, "H1", 1, "2026-12-07")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))
    m2 = case(conn, cid)["meeting_id"]
    accept(conn, cfg, cid, d("2026-12-08"), "tester")
    return cid, m2


def test_a_refused_outcome_inside_the_transaction_records_nothing(conn, workspace, rules, cfg, monkeypatch):
    # the continue of a closed case reopens it, then fails deep inside convene_case: everything is rolled back
    from engine.conference.convene import Convener

    cid, m2 = closed_while_booked_later(conn, workspace, rules, cfg)
    before = snapshot(conn)

    def broken(self, *args, **kwargs):
        raise InvalidTransition("simulated failure after the reopen")

    monkeypatch.setattr(Convener, "convene_case", broken)
    with pytest.raises(InvalidTransition):
        decide(conn, workspace, rules, cfg, cid, m2, held_on(conn, m2), "decision: continue\n")
    assert snapshot(conn) == before


def test_a_closed_case_on_a_later_meeting_is_reopened_by_its_decision(conn, workspace, rules, cfg):
    cid, m2 = closed_while_booked_later(conn, workspace, rules, cfg)
    assert case(conn, cid)["status"] == "closed"
    result = decide(conn, workspace, rules, cfg, cid, m2, held_on(conn, m2), "decision: continue\n")
    assert result.status in ("convened", "detected") and case(conn, cid)["reopen_count"] == 1
    assert [c["status"] for c in checkpoints(conn, cid, "watch")] == ["cancelled"] * 3


def test_continue_keeps_the_lead_the_conference_was_proposed_even_where_the_rules_would_pick_another(convened):
    """Found by the simulated year: after 継続審議 the lead rules decided afresh and proposed the
    agency that had declined the case months before, instead of the lead it had accepted twice."""
    conn = convened.conn
    (proposed,) = conn.execute("SELECT lead_agency_id FROM cases WHERE case_id = ?", (convened.case,)).fetchone()
    other = next(a for a in convened.cfg.agencies if a not in (proposed, "dv_center") and a.startswith("jiritsu"))
    conn.execute(
        "UPDATE cases SET lead_agency_id = ?, lead_rule_id = 'previous' WHERE case_id = ?", (other, convened.case)
    )
    convened.outcome("decision: continue\nreason: 情報が不足しているため次回に継続\n", on=MEETING_DAY)
    lead, reason = conn.execute(
        "SELECT lead_agency_id, lead_reason FROM cases WHERE case_id = ?", (convened.case,)
    ).fetchone()
    assert lead == other and "継続審議のため主担当機関の案を継続" in reason
