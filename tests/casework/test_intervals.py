"""Every interval of lifecycle.yaml is honoured (configurable): the plan evaluation, the watch months,
no contact, the lead's answer, reminders, the outcome's grace, the watch answer, a routed case's
check-back."""

from __future__ import annotations

from engine.casework.handshake import record_contact
from engine.casework.sweep import daily_sweep
from engine.casework.watch import answer_checkpoint
from engine.support.business_days import add_months
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import (
    LEAD,
    MEETING_DAY,
    add_yotaikyo,
    case,
    checkpoints,
    close,
    d,
    escalation_kinds,
    kinds,
    open_cases,
    plan,
    with_lc,
)
from tests.helpers.town import ON


def test_plan_evaluation_interval_is_configurable(conn, workspace, rules, cfg, cal):
    six = with_lc(cfg, evaluation_months=6)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, six, cid, mid)
    (evaluation,) = checkpoints(conn, cid, "evaluation")
    assert (
        evaluation["due_on"] == cal.add(add_months(MEETING_DAY, 6), 0).isoformat() == "2027-06-04"
    )  # default: 2027-03-04
    assert (
        daily_sweep(conn, rules, six, d("2027-03-04")).evaluations_booked == 0 and case(conn, cid)["meeting_id"] == mid
    )
    assert daily_sweep(conn, rules, six, d("2027-06-04")).evaluations_booked == 1
    assert case(conn, cid)["meeting_id"] != mid and case(conn, cid)["status"] == "active"


def test_watch_months_are_configurable_and_the_last_one_archives(conn, workspace, rules, cfg, cal):
    short = with_lc(cfg, watch_months=(1, 2))
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, short, cid, mid, d("2026-12-07"))
    due = [c["due_on"] for c in checkpoints(conn, cid, "watch")]
    assert due == ["2027-01-07", "2027-02-08"]  # 2027-02-07 is a Sunday
    assert all(cal.is_business_day(d(x)) for x in due)
    assert answer_checkpoint(conn, rules, short, cid, "stable", d("2027-01-07"), "tester").status == "closed"
    assert answer_checkpoint(conn, rules, short, cid, "stable", d("2027-02-08"), "tester").status == "archived"


def test_no_contact_days_is_configurable(conn, workspace, rules, cfg):
    thirty = with_lc(cfg, no_contact_days=30)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"))
    assert daily_sweep(conn, rules, thirty, d("2027-01-05")).reopened == 0  # 29 days
    assert daily_sweep(conn, rules, cfg, d("2027-01-07")).reopened == 0  # 31 days: nothing with the default 90
    assert case(conn, cid)["status"] == "closed"
    assert daily_sweep(conn, rules, thirty, d("2027-01-07")).reopened == 1
    assert case(conn, cid)["status"] in ("convened", "detected")
    reason = conn.execute(
        "SELECT reason FROM audit_log WHERE case_id = ? AND to_status = 'reopened'", (cid,)
    ).fetchone()[0]
    assert "30日間ない" in reason


def test_lead_answer_business_days_is_configurable(conn, workspace, rules, cfg, cal):
    two = with_lc(cfg, lead_answer_business_days=2)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, two, cid, mid, accepted=False)
    request_id, due = conn.execute("SELECT request_id, due_on FROM lead_requests WHERE case_id = ?", (cid,)).fetchone()
    assert due == cal.add(MEETING_DAY, 2).isoformat() == "2026-12-08"  # default: 2026-12-11
    assert daily_sweep(conn, rules, two, d("2026-12-08")).escalations == 0
    daily_sweep(conn, rules, two, d("2026-12-09"))
    assert escalation_kinds(conn).get(f"lead:{request_id}") == "lead_no_answer"


def test_reminder_business_days_is_configurable(conn, workspace, rules, cfg):
    one = with_lc(cfg, reminder_business_days=1)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),))
    (aid,) = conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (cid,)).fetchone()
    assert daily_sweep(conn, rules, one, d("2026-12-08")).reminders == 0  # the default (3) would remind on 12-07
    assert daily_sweep(conn, rules, one, d("2026-12-09")).reminders == 1
    assert conn.execute("SELECT message_key FROM outbox WHERE kind = 'reminder'").fetchall() == [
        (f"reminder:{aid}:due",)
    ]


def test_outcome_grace_is_configurable_for_the_escalation_and_the_audit(conn, workspace, rules, cfg):
    four = with_lc(cfg, outcome_business_days=4)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    assert kinds(conn, cfg, d("2026-12-09")) == ["meeting_without_outcome"]  # the default grace (2) has passed
    assert kinds(conn, four, d("2026-12-10")) == []
    assert daily_sweep(conn, rules, four, d("2026-12-10")).escalations == 0
    assert daily_sweep(conn, rules, four, d("2026-12-11")).escalations == 1
    assert escalation_kinds(conn) == {f"outcome:{cid}:{mid}": "outcome_missing"}
    assert kinds(conn, four, d("2026-12-11")) == ["meeting_without_outcome"]


def test_watch_answer_business_days_is_configurable(conn, workspace, rules, cfg):
    two = with_lc(cfg, watch_answer_business_days=2)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-22"))
    record_contact(conn, cfg, cid, LEAD, d("2027-03-01"), "tester")
    assert daily_sweep(conn, rules, two, d("2027-03-23")).checkpoints_asked == 1
    first = checkpoints(conn, cid, "watch")[0]
    assert first["answer_due"] == "2027-03-25"  # default: 2027-03-30
    assert daily_sweep(conn, rules, two, d("2027-03-25")).escalations == 0
    daily_sweep(conn, rules, two, d("2027-03-26"))
    assert escalation_kinds(conn) == {f"checkpoint:{first['checkpoint_id']}": "checkpoint_no_answer"}


def test_check_back_months_of_a_routed_case_is_configurable(conn, workspace, rules, cfg, cal):
    one = with_lc(cfg, check_back_months=1)
    add_yotaikyo(conn)
    nightly_cycle(conn, workspace, rules, one, ON)
    cid = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HYOTAI'").fetchone()[0]
    assert case(conn, cid)["status"] == "routed"
    (cb,) = checkpoints(conn, cid, "check_back")
    assert cb["due_on"] == cal.add(add_months(ON, 1), 0).isoformat() == "2026-12-28"
    assert daily_sweep(conn, rules, one, d("2026-12-28")).checkpoints_asked == 1
    assert conn.execute(
        "SELECT agency_id FROM outbox WHERE message_key = ?", (f"checkpoint:{cb['checkpoint_id']}",)
    ).fetchone() == (case(conn, cid)["routed_to"],)
