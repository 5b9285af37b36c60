"""The lead hand-shake (engine/casework/handshake.py): accept makes the case active (or closed, for a
closure) with its evaluation or watch; decline asks the next candidate of the lead rules, or goes
back to a conference; answers recorded once, by the agency asked; contacts and done actions."""

from __future__ import annotations

from datetime import date

import pytest

from engine.casework.handshake import HandshakeError, accept, action_done, decline, record_contact
from engine.casework.sweep import daily_sweep
from engine.outbox import FileTransport, send_pending
from engine.store.lifecycle import CaseNotFound, InvalidTransition
from engine.support.business_days import Calendar, add_months
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
    morning,
    open_cases,
    plan_text,
    snapshot,
    status_of,
)


def test_accept_makes_the_case_active_with_an_evaluation_in_three_months(convened, cal):
    conn = convened.conn
    request_id = convened.outcome(PLAN).lead_request
    result = accept(conn, convened.cfg, convened.case, DAY, "tester", "houkatsu_chuo")
    assert (result.case_id, result.status) == (convened.case, "active")
    assert conn.execute(
        "SELECT status, lead_agency_id, lead_confirmed_on FROM cases WHERE case_id = ?", (convened.case,)
    ).fetchone() == ("active", "houkatsu_chuo", DAY.isoformat())
    assert conn.execute(
        "SELECT status, answered_on FROM lead_requests WHERE request_id = ?", (request_id,)
    ).fetchone() == ("accepted", DAY.isoformat())
    assert conn.execute("SELECT case_id, agency_id, on_day, via FROM contacts").fetchall() == [
        (convened.case, "houkatsu_chuo", DAY.isoformat(), "accept")
    ]
    assert (
        conn.execute(
            "SELECT role FROM case_agencies WHERE case_id = ? AND agency_id = 'houkatsu_chuo'", (convened.case,)
        ).fetchone()[0]
        == "lead"
    )
    ((kind, due, status),) = conn.execute(
        "SELECT kind, due_on, status FROM checkpoints WHERE case_id = ?", (convened.case,)
    ).fetchall()
    due = date.fromisoformat(due)
    # 2027-03-07 is a Sunday: the evaluation moves to the next business day
    assert (kind, status, due) == ("evaluation", "pending", date(2027, 3, 8))
    assert cal.is_business_day(due) and 0 <= (due - add_months(DAY, 3)).days < 7
    assert events(conn, convened.case)[-3:] == ["lead_accepted", "transition", "checkpoint_scheduled"]
    assert conn.execute(
        "SELECT from_status, to_status FROM audit_log WHERE event = 'transition' ORDER BY seq DESC LIMIT 1"
    ).fetchone() == ("lead_pending", "active")
    # answered: a second answer is refused
    with pytest.raises(HandshakeError, match="回答待ち"):
        accept(conn, convened.cfg, convened.case, DAY, "tester")


def test_accept_honours_the_evaluation_date_of_the_outcome(convened, cal):
    convened.outcome(PLAN + "next_evaluation: 2027-02-06\n")  # a Saturday
    accept(convened.conn, convened.cfg, convened.case, DAY, "tester")
    assert convened.conn.execute(
        "SELECT kind, due_on FROM checkpoints WHERE case_id = ?", (convened.case,)
    ).fetchall() == [("evaluation", "2027-02-08")]


def test_accepting_a_closure_closes_the_case_with_three_watch_checkpoints(convened, cal):
    conn = convened.conn
    convened.outcome(
        "decision: close\nreason: 支援が終了したため\nroles:\n  - {agency: houkatsu_chuo, action: 引継ぎ書類の作成, due: 2026-12-20}\n"
    )
    result = accept(conn, convened.cfg, convened.case, DAY, "tester")
    assert result.status == "closed"
    assert conn.execute(
        "SELECT status, is_open, closed_on, lead_agency_id, lead_confirmed_on FROM cases WHERE case_id = ?",
        (convened.case,),
    ).fetchone() == ("closed", 1, DAY.isoformat(), "houkatsu_chuo", DAY.isoformat())
    watch = conn.execute(
        "SELECT kind, due_on, status FROM checkpoints WHERE case_id = ? ORDER BY due_on", (convened.case,)
    ).fetchall()
    assert [w[0] for w in watch] == ["watch"] * 3 and {w[2] for w in watch} == {"pending"}
    days = [date.fromisoformat(w[1]) for w in watch]
    assert days == [date(2027, 3, 8), date(2027, 6, 7), date(2027, 12, 7)]  # +3 months is a Sunday
    for months, day in zip(convened.cfg.lifecycle.watch_months, days):
        assert cal.is_business_day(day) and 0 <= (day - add_months(DAY, months)).days < 7
    # the hand-over ends the conference's open actions
    assert conn.execute("SELECT status FROM case_actions WHERE case_id = ?", (convened.case,)).fetchall() == [
        ("cancelled",)
    ]
    assert conn.execute("SELECT via FROM contacts WHERE case_id = ?", (convened.case,)).fetchall() == [("accept",)]


def test_accept_by_another_agency_is_refused_and_changes_nothing(convened):
    convened.outcome(PLAN)
    before = convened.snapshot()
    with pytest.raises(HandshakeError, match="houkatsu_chuo"):
        accept(convened.conn, convened.cfg, convened.case, DAY, "tester", "jiritsu_soudan")
    assert convened.snapshot() == before
    with pytest.raises(HandshakeError, match="回答待ち"):
        accept(convened.conn, convened.cfg, convened.cases[1], DAY, "tester")  # no request for a merely convened case
    assert status_of(convened.conn, convened.cases[1]) == "convened"


def test_decline_asks_the_next_candidate_of_the_lead_rules(convened, cal):
    conn = convened.conn
    first = convened.outcome(PLAN).lead_request
    result = decline(
        conn, convened.rules, convened.cfg, convened.case, "担当件数が上限のため", DAY, "tester", "houkatsu_chuo"
    )
    assert result.status == "lead_pending" and not result.escalated
    assert result.next_agency and result.next_agency != "houkatsu_chuo"
    assert convened.cfg.agencies[result.next_agency].member  # a 支援会議 case goes to members only
    rows = conn.execute(
        "SELECT request_id, agency_id, due_on, then_status, status, answered_on, reason FROM lead_requests WHERE case_id = ? ORDER BY request_id",
        (convened.case,),
    ).fetchall()
    assert rows[0] == (
        first,
        "houkatsu_chuo",
        "2026-12-14",
        "active",
        "declined",
        DAY.isoformat(),
        "担当件数が上限のため",
    )
    assert len(rows) == 2 and rows[1][1:6] == (
        result.next_agency,
        cal.add(DAY, 5).isoformat(),
        "active",
        "pending",
        None,
    )
    assert conn.execute(
        "SELECT agency_id FROM outbox WHERE message_key = ?", (f"lead_request:{rows[1][0]}",)
    ).fetchone() == (result.next_agency,)
    declined = conn.execute("SELECT reason FROM audit_log WHERE event = 'lead_declined'").fetchone()[0]
    assert "担当件数が上限のため" in declined
    # the new candidate can accept
    assert accept(conn, convened.cfg, convened.case, DAY, "tester", result.next_agency).status == "active"
    assert (
        conn.execute("SELECT lead_agency_id FROM cases WHERE case_id = ?", (convened.case,)).fetchone()[0]
        == result.next_agency
    )


def test_decline_with_no_candidate_left_escalates_and_goes_back_to_a_conference(convened):
    conn = convened.conn
    convened.outcome(PLAN)
    declined = ["houkatsu_chuo"]
    result = decline(conn, convened.rules, convened.cfg, convened.case, "上限のため", DAY, "tester")
    while result.next_agency:
        declined.append(result.next_agency)
        assert len(declined) < 10
        # the next candidate, asked today, declines too: named, since an unnamed decline on the day of
        # a re-request is refused as a probable re-run of the same command
        result = decline(
            conn, convened.rules, convened.cfg, convened.case, "対応できないため", DAY, "tester", declined[-1]
        )
    assert result.escalated and result.status in ("convened", "detected")
    ((key, kind, raised_on, detail),) = conn.execute(
        "SELECT subject_key, kind, raised_on, detail FROM escalations WHERE case_id = ?", (convened.case,)
    ).fetchall()
    assert (
        kind == "lead_exhausted" and raised_on == DAY.isoformat() and key.startswith(f"lead_exhausted:{convened.case}:")
    )
    assert all(convened.cfg.agencies[a].name in detail for a in declined)  # named, not given by id
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM lead_requests WHERE case_id = ? AND status = 'pending'", (convened.case,)
        ).fetchone()[0]
        == 0
    )
    assert conn.execute(
        "SELECT COUNT(*) FROM lead_requests WHERE case_id = ? AND status = 'declined'", (convened.case,)
    ).fetchone()[0] == len(declined)
    status, meeting, held_on = conn.execute(
        "SELECT c.status, c.meeting_id, m.held_on FROM cases c LEFT JOIN meetings m USING (meeting_id) WHERE c.case_id = ?",
        (convened.case,),
    ).fetchone()
    assert status == "convened" and meeting and meeting != convened.meeting and held_on > DAY.isoformat()
    assert "escalation" in events(conn, convened.case)
    moves = conn.execute(
        "SELECT from_status, to_status FROM audit_log WHERE event = 'transition' AND case_id = ? ORDER BY seq",
        (convened.case,),
    ).fetchall()
    assert ("lead_pending", "convened") in moves


@pytest.mark.parametrize("reason", ["", "   "])
def test_decline_without_a_reason_is_refused(convened, reason):
    convened.outcome(PLAN)
    before = convened.snapshot()
    with pytest.raises(HandshakeError, match="--reason"):
        decline(convened.conn, convened.rules, convened.cfg, convened.case, reason, DAY, "tester")
    assert convened.snapshot() == before


def test_a_plan_naming_the_confirmed_lead_goes_straight_to_active(convened):
    conn = convened.conn
    convened.outcome(PLAN)
    accept(conn, convened.cfg, convened.case, DAY, "tester")
    evaluation = date(2027, 3, 8)
    sweep = daily_sweep(conn, convened.rules, convened.cfg, evaluation)  # the evaluation books the case into a meeting
    assert sweep.evaluations_booked == 1
    meeting, held_on = conn.execute(
        "SELECT c.meeting_id, m.held_on FROM cases c JOIN meetings m USING (meeting_id) WHERE c.case_id = ?",
        (convened.case,),
    ).fetchone()
    assert meeting != convened.meeting and status_of(conn, convened.case) == "active"
    requests_before = conn.execute("SELECT COUNT(*) FROM lead_requests").fetchone()[0]
    mails_before = conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'lead_request'").fetchone()[0]
    on = date.fromisoformat(held_on)
    result = convened.outcome(
        "decision: plan\nlead: houkatsu_chuo\nroles:\n  - {agency: houkatsu_chuo, action: サービスの見直し, due: 2027-04-30}\n",
        meeting=meeting,
        on=on,
    )
    assert (result.status, result.lead_request) == ("active", None)
    assert conn.execute("SELECT COUNT(*) FROM lead_requests").fetchone()[0] == requests_before
    assert conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'lead_request'").fetchone()[0] == mails_before
    assert conn.execute(
        "SELECT kind, due_on FROM checkpoints WHERE case_id = ? AND status = 'pending'", (convened.case,)
    ).fetchall() == [("evaluation", Calendar.of(convened.cfg.conference).add(add_months(on, 3), 0).isoformat())]
    # the first plan's action was replaced by the new one
    assert conn.execute(
        "SELECT action, status FROM case_actions WHERE case_id = ? ORDER BY action_id", (convened.case,)
    ).fetchall() == [("介護サービスの利用調整", "cancelled"), ("サービスの見直し", "open")]


def test_a_plan_naming_another_lead_for_an_active_case_asks_that_agency(convened):
    conn = convened.conn
    convened.outcome(PLAN)
    accept(conn, convened.cfg, convened.case, DAY, "tester")
    daily_sweep(conn, convened.rules, convened.cfg, date(2027, 3, 8))
    meeting, held_on = conn.execute(
        "SELECT c.meeting_id, m.held_on FROM cases c JOIN meetings m USING (meeting_id) WHERE c.case_id = ?",
        (convened.case,),
    ).fetchone()
    result = convened.outcome(
        "decision: plan\nlead: jiritsu_soudan\nroles:\n  - {agency: jiritsu_soudan, action: 就労支援, due: 2027-04-30}\n",
        meeting=meeting,
        on=date.fromisoformat(held_on),
    )
    assert result.status == "lead_pending" and result.lead_request
    assert conn.execute(
        "SELECT agency_id, status FROM lead_requests WHERE request_id = ?", (result.lead_request,)
    ).fetchone() == ("jiritsu_soudan", "pending")


def test_contacts_and_done_actions_are_logged(convened):
    conn = convened.conn
    convened.outcome(PLAN)
    (action_id,) = conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (convened.case,)).fetchone()
    assert action_done(conn, convened.cfg, action_id, DAY, "tester") == convened.case
    assert conn.execute("SELECT status, done_on FROM case_actions WHERE action_id = ?", (action_id,)).fetchone() == (
        "done",
        DAY.isoformat(),
    )
    with pytest.raises(HandshakeError, match="既に完了です"):
        action_done(conn, convened.cfg, action_id, DAY, "tester")
    with pytest.raises(HandshakeError, match="9999"):
        action_done(conn, convened.cfg, 9999, DAY, "tester")
    record_contact(conn, convened.cfg, convened.case, "kikan_soudan", DAY, "tester")
    assert conn.execute(
        "SELECT agency_id, via FROM contacts WHERE case_id = ? ORDER BY rowid", (convened.case,)
    ).fetchall() == [("houkatsu_chuo", "action"), ("kikan_soudan", "contact")]
    with pytest.raises(HandshakeError, match="unknown agency"):
        record_contact(conn, convened.cfg, convened.case, "nobody", DAY, "tester")
    with pytest.raises(CaseNotFound):
        record_contact(conn, convened.cfg, "C-2026-99999", "kikan_soudan", DAY, "tester")
    assert conn.execute("SELECT COUNT(*) FROM contacts").fetchone()[0] == 2


# --- answers given twice, or for an agency the registry no longer has --------------------------------
def test_accept_twice_is_refused_and_changes_nothing(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    accept(conn, cfg, cid, d("2026-12-07"), "tester")
    before = snapshot(conn)
    with pytest.raises(HandshakeError, match="回答待ちの受諾依頼はありません"):
        accept(conn, cfg, cid, d("2026-12-07"), "tester")
    assert snapshot(conn) == before
    assert len(checkpoints(conn, cid, "evaluation")) == 1


def test_decline_naming_the_agency_cannot_be_applied_twice(conn, workspace, rules, cfg):
    # the safe form of the command: with --agency a re-run is refused
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    nxt = decline(conn, rules, cfg, cid, "担当件数が上限のため", d("2026-12-07"), "tester", LEAD).next_agency
    before = snapshot(conn)
    with pytest.raises(HandshakeError, match=nxt):
        decline(conn, rules, cfg, cid, "担当件数が上限のため", d("2026-12-07"), "tester", LEAD)
    assert snapshot(conn) == before


@pytest.mark.regression("review of the case lifecycle")
def test_a_decline_recorded_twice_does_not_decline_for_the_next_candidate(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    first = decline(conn, rules, cfg, cid, "担当件数が上限のため", d("2026-12-07"), "tester")
    assert first.next_agency and first.next_agency != LEAD
    try:
        decline(conn, rules, cfg, cid, "担当件数が上限のため", d("2026-12-07"), "tester")  # the same command again
    except HandshakeError:
        pass
    pending = conn.execute(
        "SELECT agency_id FROM lead_requests WHERE case_id = ? AND status = 'pending'", (cid,)
    ).fetchall()
    assert pending == [(first.next_agency,)], conn.execute(
        "SELECT agency_id, status, answered_on FROM lead_requests"
    ).fetchall()


@pytest.mark.regression("review of the case lifecycle")
def test_answering_a_request_of_an_agency_removed_from_the_registry_is_a_clear_refusal(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    merged = cfg.model_copy(update={"agencies": {k: v for k, v in cfg.agencies.items() if k != LEAD}})
    with pytest.raises((HandshakeError, InvalidTransition)):
        accept(conn, merged, cid, d("2026-12-07"), "tester")


@pytest.mark.regression("review of the case lifecycle")
def test_a_withdrawn_lead_request_is_in_the_history_and_the_agency_is_told(conn, workspace, rules, cfg):
    ((cid, m1),) = open_cases(conn, workspace, rules, cfg)
    add_arrears(conn, "H1", 1, "2026-12-07")
    decide(conn, workspace, rules, cfg, cid, m1, MEETING_DAY, plan_text())  # asks houkatsu_chuo (e-mailed)
    (first,) = conn.execute("SELECT request_id FROM lead_requests WHERE case_id = ?", (cid,)).fetchone()
    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"), now=morning("2026-12-04"))
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))  # the new problem books the case into a later meeting
    m2 = case(conn, cid)["meeting_id"]
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        m2,
        held_on(conn, m2),
        "decision: suspend\nreview_on: 2027-03-01\nreason: 本人が支援を希望しないため\n",
    )
    assert conn.execute("SELECT status FROM lead_requests WHERE request_id = ?", (first,)).fetchone()[0] == "cancelled"
    told = conn.execute(
        "SELECT COUNT(*) FROM outbox WHERE agency_id = ? AND message_key != ? AND kind != 'agenda'",
        (LEAD, f"lead_request:{first}"),
    ).fetchone()[0]
    logged = [
        r
        for (r,) in conn.execute("SELECT detail FROM audit_log WHERE case_id = ? AND event != 'lead_requested'", (cid,))
        if r and f'"request_id": {first}' in r
    ]
    assert logged and told
