"""The daily sweep on a fake clock (the `on` date handed to each call): reminders, escalations, the
coordinator's digest, plan evaluations booked into a meeting, the lead asked on a checkpoint's day,
and a second sweep of the same day doing nothing."""

from __future__ import annotations

import email
import email.policy

from engine.casework.handshake import accept, action_done, record_contact
from engine.casework.sweep import daily_sweep
from engine.outbox import FileTransport, send_pending
from engine.papers.notices import ANSWER_LINK
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import (
    LEAD,
    MEETING_DAY,
    actions,
    add_arrears,
    case,
    checkpoints,
    close,
    d,
    decide,
    escalations,
    open_cases,
    plan,
    plan_text,
    snapshot,
    text_of,
    violations,
)


def outbox(conn, kind: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT message_key, agency_id FROM outbox WHERE kind = ? ORDER BY message_key", (kind,)
    ).fetchall()


# --- reminders and the digest ------------------------------------------------------------------------
def test_an_action_due_within_three_business_days_gets_exactly_one_reminder(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        roles=((LEAD, "介護サービスの利用調整", "2026-12-10"), ("jiritsu_soudan", "就労に向けた相談", "2026-12-25")),
    )
    soon, later = actions(conn, cid)
    # Fri 12-04: three business days ahead is Wed 12-09, the action is due Thu 12-10: not yet
    assert daily_sweep(conn, rules, cfg, d("2026-12-04")).reminders == 0 and outbox(conn, "reminder") == []
    assert daily_sweep(conn, rules, cfg, d("2026-12-07")).reminders == 1
    assert outbox(conn, "reminder") == [(f"reminder:{soon}:due", LEAD)]
    # run again the same day and the next day: nothing new
    assert daily_sweep(conn, rules, cfg, d("2026-12-07")).reminders == 0
    assert daily_sweep(conn, rules, cfg, d("2026-12-08")).reminders == 0
    assert outbox(conn, "reminder") == [(f"reminder:{soon}:due", LEAD)]
    assert escalations(conn) == {}
    assert f"reminder:{later}:due" not in dict(outbox(conn, "reminder"))


def test_an_overdue_action_gets_an_overdue_reminder_and_one_escalation(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),))
    (aid,) = actions(conn, cid)
    daily_sweep(conn, rules, cfg, d("2026-12-07"))
    assert daily_sweep(conn, rules, cfg, d("2026-12-10")).escalations == 0  # due today: not overdue yet
    result = daily_sweep(conn, rules, cfg, d("2026-12-11"))
    assert (result.reminders, result.escalations) == (1, 1)
    assert outbox(conn, "reminder") == [(f"reminder:{aid}:due", LEAD), (f"reminder:{aid}:overdue", LEAD)]
    assert escalations(conn) == {f"action:{aid}": (cid, "action_overdue", "2026-12-11", "2026-12-11")}
    again = [daily_sweep(conn, rules, cfg, day) for day in (d("2026-12-11"), d("2026-12-14"))]
    assert sum(r.reminders + r.escalations for r in again) == 0
    assert len(outbox(conn, "reminder")) == 2 and len(escalations(conn)) == 1


def test_a_done_action_gets_no_reminder(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),))
    (aid,) = actions(conn, cid)
    action_done(conn, cfg, aid, d("2026-12-05"), "tester")
    for day in ("2026-12-07", "2026-12-11", "2026-12-14"):
        assert daily_sweep(conn, rules, cfg, d(day)).reminders == 0
    assert outbox(conn, "reminder") == [] and escalations(conn) == {}
    assert violations(conn, cfg, d("2026-12-14")) == []


def test_the_digest_goes_to_the_coordinator_on_business_days_only(conn, workspace, rules, cfg, cal):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),))
    (aid,) = actions(conn, cid)
    saturday = d("2026-12-12")
    assert cal.closed_reason(saturday) == "土曜日"
    result = daily_sweep(conn, rules, cfg, saturday)
    assert result.escalations == 1 and result.digest is False
    assert outbox(conn, "digest") == [] and escalations(conn)[f"action:{aid}"][3] is None  # waits for Monday
    monday = daily_sweep(conn, rules, cfg, d("2026-12-14"))
    assert monday.digest is True
    assert outbox(conn, "digest") == [("digest:2026-12-14", "coordinator")]
    body = text_of(conn, "digest:2026-12-14")
    assert (
        "新たなエスカレーション 1 件" in body
        and f"{cfg.agencies[LEAD].name}の役割 {aid} が、期日の令和8年12月10日（木）を過ぎても完了していません" in body
        and cid in body
        and "令和8年12月14日（月）時点の状況です" in body
    )
    assert LEAD not in body  # the agency by its name, not its id
    assert escalations(conn)[f"action:{aid}"][3] == "2026-12-14"
    # a second sweep the same day queues no second digest; the next day's digest has nothing new
    assert daily_sweep(conn, rules, cfg, d("2026-12-14")).digest is False
    assert daily_sweep(conn, rules, cfg, d("2026-12-15")).digest is True
    assert "新たなエスカレーション 0 件" in text_of(conn, "digest:2026-12-15")
    # a national holiday (成人の日) and the new-year closure: no digest
    assert cal.closed_reason(d("2027-01-11")) == "成人の日"
    for closed in ("2027-01-11", "2026-12-30"):
        assert daily_sweep(conn, rules, cfg, d(closed)).digest is False
    assert [k for k, _ in outbox(conn, "digest")] == ["digest:2026-12-14", "digest:2026-12-15"]

    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"))
    assert conn.execute("SELECT status, sent_to FROM outbox WHERE message_key = 'digest:2026-12-14'").fetchone() == (
        "sent",
        cfg.lifecycle.coordinator_email,
    )
    msg = email.message_from_bytes(
        (workspace / "outbox" / "digest_2026-12-14.eml").read_bytes(), policy=email.policy.default
    )
    assert msg["To"] == cfg.lifecycle.coordinator_email and msg["X-Engine-Key"] == "digest:2026-12-14"
    assert f"役割 {aid}" in msg.get_body(("plain",)).get_content()


# --- escalations -------------------------------------------------------------------------------------
def test_a_lead_request_unanswered_past_its_due_day_is_escalated(conn, workspace, rules, cfg, cal):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, accepted=False)
    request_id, due = conn.execute(
        "SELECT request_id, due_on FROM lead_requests WHERE case_id = ? AND status = 'pending'", (cid,)
    ).fetchone()
    assert due == cal.add(MEETING_DAY, cfg.lifecycle.lead_answer_business_days).isoformat() == "2026-12-11"
    assert daily_sweep(conn, rules, cfg, d(due)).escalations == 0
    assert daily_sweep(conn, rules, cfg, d("2026-12-14")).escalations == 1
    assert escalations(conn) == {f"lead:{request_id}": (cid, "lead_no_answer", "2026-12-14", "2026-12-14")}
    assert daily_sweep(conn, rules, cfg, d("2026-12-15")).escalations == 0


def test_a_meeting_without_outcome_is_escalated_only_after_the_grace(conn, workspace, rules, cfg, cal):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    assert cal.add(MEETING_DAY, cfg.lifecycle.outcome_business_days) == d("2026-12-08")
    for day in ("2026-12-04", "2026-12-07", "2026-12-08"):
        assert daily_sweep(conn, rules, cfg, d(day)).escalations == 0, day
    assert escalations(conn) == {}
    assert daily_sweep(conn, rules, cfg, d("2026-12-09")).escalations == 1
    assert escalations(conn) == {f"outcome:{cid}:{mid}": (cid, "outcome_missing", "2026-12-09", "2026-12-09")}


def test_a_recorded_outcome_is_not_escalated(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, on=d("2026-12-07"))
    assert daily_sweep(conn, rules, cfg, d("2026-12-09")).escalations == 0 and escalations(conn) == {}


def test_an_unanswered_watch_checkpoint_is_escalated_after_its_answer_day(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-22"))
    record_contact(conn, cfg, cid, LEAD, d("2027-03-01"), "tester")  # keeps the 90-day rule quiet
    assert daily_sweep(conn, rules, cfg, d("2027-03-23")).checkpoints_asked == 1
    first = checkpoints(conn, cid, "watch")[0]
    assert (first["status"], first["answer_due"]) == ("asked", "2027-03-30")
    assert daily_sweep(conn, rules, cfg, d("2027-03-30")).escalations == 0
    assert daily_sweep(conn, rules, cfg, d("2027-03-31")).escalations == 1
    assert escalations(conn) == {
        f"checkpoint:{first['checkpoint_id']}": (cid, "checkpoint_no_answer", "2027-03-31", "2027-03-31")
    }
    assert violations(conn, cfg, d("2027-03-31")) == []


# --- plan evaluation and checkpoints -----------------------------------------------------------------
def test_a_due_plan_evaluation_is_booked_into_a_meeting(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid)
    (evaluation,) = checkpoints(conn, cid, "evaluation")
    assert (evaluation["due_on"], evaluation["status"]) == ("2027-03-04", "pending")  # +3 months of acceptance
    assert (
        daily_sweep(conn, rules, cfg, d("2027-03-03")).evaluations_booked == 0 and case(conn, cid)["meeting_id"] == mid
    )
    result = daily_sweep(conn, rules, cfg, d("2027-03-04"))
    assert result.evaluations_booked == 1
    after = case(conn, cid)
    assert after["status"] == "active" and after["lead_agency_id"] == LEAD and after["meeting_id"] != mid
    held_on = conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (after["meeting_id"],)).fetchone()[0]
    assert held_on > "2027-03-04"
    assert checkpoints(conn, cid, "evaluation")[0]["status"] == "done"
    assert (
        daily_sweep(conn, rules, cfg, d("2027-03-05")).evaluations_booked == 0
        and case(conn, cid)["meeting_id"] == after["meeting_id"]
    )


def test_evaluation_due_while_already_booked_is_not_escalated_as_unbookable(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid)
    action_done(conn, cfg, actions(conn, cid)[0], d("2027-01-20"), "tester")
    # a new problem a few days before the evaluation: the active case is booked into a meeting
    add_arrears(conn, "H1", 1, "2027-03-01")
    nightly_cycle(conn, workspace, rules, cfg, d("2027-03-01"))
    upcoming = case(conn, cid)["meeting_id"]
    assert (
        upcoming != mid
        and conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (upcoming,)).fetchone()[0] > "2027-03-04"
    )
    daily_sweep(conn, rules, cfg, d("2027-03-04"))  # the evaluation is due
    assert not [k for k, v in escalations(conn).items() if v[1] == "evaluation_unbooked"], escalations(conn)
    assert checkpoints(conn, cid, "evaluation")[0]["status"] == "done"


def test_the_sweep_asks_the_lead_on_the_checkpoint_day(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-22"))
    record_contact(conn, cfg, cid, LEAD, d("2027-03-01"), "tester")
    first = checkpoints(conn, cid, "watch")[0]
    assert daily_sweep(conn, rules, cfg, d("2027-03-22")).checkpoints_asked == 0  # 振替休日: the raw +3 months
    assert checkpoints(conn, cid, "watch")[0]["status"] == "pending" and outbox(conn, "checkpoint") == []
    assert daily_sweep(conn, rules, cfg, d("2027-03-23")).checkpoints_asked == 1
    asked = checkpoints(conn, cid, "watch")
    assert (asked[0]["status"], asked[0]["asked_on"], asked[0]["answer_due"]) == ("asked", "2027-03-23", "2027-03-30")
    assert [c["status"] for c in asked[1:]] == ["pending", "pending"]
    assert outbox(conn, "checkpoint") == [(f"checkpoint:{first['checkpoint_id']}", LEAD)]
    assert ANSWER_LINK in text_of(conn, f"checkpoint:{first['checkpoint_id']}")  # the link goes in when it is sent
    assert (
        daily_sweep(conn, rules, cfg, d("2027-03-24")).checkpoints_asked == 0 and len(outbox(conn, "checkpoint")) == 1
    )
    assert case(conn, cid)["status"] == "closed"


# --- idempotence -------------------------------------------------------------------------------------
def test_a_sweep_run_twice_a_day_does_nothing_twice(conn, workspace, rules, cfg):
    (a, ma), (b, mb), (c, mc) = open_cases(conn, workspace, rules, cfg, "HA", "HB", "HC")
    decide(
        conn,
        workspace,
        rules,
        cfg,
        a,
        ma,
        MEETING_DAY,
        plan_text(roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),)),
    )
    accept(conn, cfg, a, MEETING_DAY, "tester")
    decide(conn, workspace, rules, cfg, b, mb, MEETING_DAY, plan_text())  # never answered
    decide(
        conn,
        workspace,
        rules,
        cfg,
        c,
        mc,
        MEETING_DAY,
        "decision: suspend\nreview_on: 2026-12-14\nreason: 本人が支援を希望しないため\n",
    )
    for day in ("2026-12-07", "2026-12-14"):
        first = daily_sweep(conn, rules, cfg, d(day))
        before = snapshot(conn)
        again = daily_sweep(conn, rules, cfg, d(day))
        assert (
            again.reminders,
            again.escalations,
            again.reopened,
            again.checkpoints_asked,
            again.evaluations_booked,
            again.digest,
        ) == (0, 0, 0, 0, 0, False)
        after = snapshot(conn)
        assert {k: v for k, v in after.items() if k != "audit_log"} == {
            k: v for k, v in before.items() if k != "audit_log"
        }
        assert after["audit_log"] == before["audit_log"], "a second sweep wrote to the audit log"
    assert first.reopened == 1 and case(conn, c)["status"] in ("convened", "detected")
