"""もどし・つなぎ直し: every reopen trigger (a watch answer of concern or lost contact, a crisis reported
between checkpoints, no contact by the lead, a new flag, the suspension's review day) convenes the
same case again, with the previous lead proposed and asked to accept again."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from engine.casework.handshake import accept, record_contact
from engine.casework.sweep import daily_sweep
from engine.casework.watch import answer_checkpoint
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import (
    LEAD,
    MEETING_DAY,
    add_arrears,
    case,
    checkpoints,
    close,
    d,
    decide,
    open_cases,
    plan,
    violations,
)


def assert_reopened(conn, case_id: str, on: date) -> dict:
    row = case(conn, case_id)
    assert row["status"] in ("convened", "detected") and row["is_open"] == 1
    assert (
        row["reopen_count"] == 1
        and row["lead_agency_id"] == LEAD
        and row["lead_confirmed_on"] is None
        and row["closed_on"] is None
    )
    assert "前回の主担当機関" in row["lead_reason"]
    if row["status"] == "convened":
        assert (
            conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (row["meeting_id"],)).fetchone()[0]
            > on.isoformat()
        )
    assert (
        conn.execute("SELECT COUNT(*) FROM cases WHERE household_id = ?", (row["household_id"],)).fetchone()[0] == 1
    )  # the same case, no new one
    assert not [c for c in checkpoints(conn, case_id) if c["status"] in ("pending", "asked")]
    assert conn.execute(
        "SELECT to_status FROM audit_log WHERE case_id = ? AND event = 'transition' ORDER BY seq DESC LIMIT 2",
        (case_id,),
    ).fetchall()[1] == ("reopened",)
    return row


@pytest.mark.parametrize("answer", ["concern", "lost_contact"])
def test_a_watch_answer_of_concern_or_lost_contact_reopens_the_case(conn, workspace, rules, cfg, answer):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-22"))
    record_contact(conn, cfg, cid, LEAD, d("2027-03-01"), "tester")
    daily_sweep(conn, rules, cfg, d("2027-03-23"))
    result = answer_checkpoint(conn, rules, cfg, cid, answer, d("2027-03-25"), "tester")
    assert result.status == "convened"
    assert_reopened(conn, cid, d("2027-03-25"))
    assert checkpoints(conn, cid, "watch")[0]["result"] == answer
    contacts = conn.execute("SELECT via FROM contacts WHERE case_id = ? AND on_day = '2027-03-25'", (cid,)).fetchall()
    assert contacts == ([] if answer == "lost_contact" else [("watch",)])


def test_a_new_flag_for_a_closed_household_reopens_the_same_case(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"))
    add_arrears(conn, "H1", 1, "2027-01-20")
    result = nightly_cycle(conn, workspace, rules, cfg, d("2027-01-20")).convene
    assert (result.reopened, result.cases_opened, result.flags_attached) == (1, 0, 1)
    assert_reopened(conn, cid, d("2027-01-20"))
    flags = {
        r
        for (r,) in conn.execute(
            "SELECT f.rule_id FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id WHERE c.case_id = ?", (cid,)
        )
    }
    assert {"8050", "multiple_arrears"} <= flags


def test_a_new_flag_for_a_suspended_household_reopens_the_same_case(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        "decision: suspend\nreview_on: 2027-06-01\nreason: 本人が支援を希望しないため\n",
    )
    assert case(conn, cid)["status"] == "suspended"
    add_arrears(conn, "H1", 1, "2027-01-20")
    assert nightly_cycle(conn, workspace, rules, cfg, d("2027-01-20")).convene.reopened == 1
    assert_reopened(conn, cid, d("2027-01-20"))


def test_no_contact_by_the_lead_for_90_days_reopens_but_a_logged_contact_keeps_it_closed(conn, workspace, rules, cfg):
    (silent, m), (in_touch, _), (other_agency, _) = open_cases(conn, workspace, rules, cfg, "HA", "HB", "HC")
    for cid in (silent, in_touch, other_agency):
        close(conn, workspace, rules, cfg, cid, m, d("2026-12-07"))
    record_contact(conn, cfg, in_touch, LEAD, d("2027-02-01"), "tester")
    record_contact(conn, cfg, other_agency, "jiritsu_soudan", d("2027-02-01"), "tester")  # not the lead: does not count
    assert daily_sweep(conn, rules, cfg, d("2027-03-05")).reopened == 0  # 88 days
    assert {case(conn, c)["status"] for c in (silent, in_touch, other_agency)} == {"closed"}
    # 91 days after closure the +3-month checkpoint is asked that very morning: the lead has until
    # the answer is due before its silence counts against it
    result = daily_sweep(conn, rules, cfg, d("2027-03-08"))
    assert (result.checkpoints_asked, result.reopened) == (3, 0)
    answer_due = checkpoints(conn, silent, "watch")[0]["answer_due"]
    assert daily_sweep(conn, rules, cfg, d(answer_due)).reopened == 0
    after = d(answer_due) + timedelta(days=1)
    result = daily_sweep(conn, rules, cfg, after)
    assert result.reopened == 2
    assert_reopened(conn, silent, after)
    assert_reopened(conn, other_agency, after)
    kept = case(conn, in_touch)
    assert (kept["status"], kept["reopen_count"]) == ("closed", 0)
    assert checkpoints(conn, in_touch, "watch")[0]["status"] == "asked"
    reason = conn.execute(
        "SELECT reason FROM audit_log WHERE case_id = ? AND to_status = 'reopened'", (silent,)
    ).fetchone()[0]
    assert "90日間ない" in reason
    assert daily_sweep(conn, rules, cfg, after).reopened == 0


def test_the_suspension_review_day_reopens_the_case(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        "decision: suspend\nreview_on: 2027-01-11\nreason: 本人が支援を希望しないため\n",
    )
    (review,) = checkpoints(conn, cid, "review")
    assert (review["due_on"], review["status"]) == ("2027-01-12", "pending")  # 2027-01-11 is 成人の日
    assert violations(conn, cfg, d("2027-01-08")) == []
    assert daily_sweep(conn, rules, cfg, d("2027-01-11")).reopened == 0 and case(conn, cid)["status"] == "suspended"
    assert daily_sweep(conn, rules, cfg, d("2027-01-12")).reopened == 1
    assert_reopened(conn, cid, d("2027-01-12"))
    assert checkpoints(conn, cid, "review")[0]["status"] == "done"
    assert daily_sweep(conn, rules, cfg, d("2027-01-12")).reopened == 0


@pytest.mark.regression("review of the case lifecycle")
def test_a_lead_reporting_a_crisis_between_checkpoints_can_bring_the_case_back(conn, workspace, rules, cfg):
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
    accept(conn, cfg, cid, d("2026-12-07"), "tester")
    # five weeks later the lead calls: the son has lost his job and the father fell
    result = answer_checkpoint(conn, rules, cfg, cid, "concern", d("2027-01-12"), "tester", LEAD)
    assert result.status in ("convened", "detected")


# --- the previous lead is proposed again -------------------------------------------------------------
OTHER_LEAD = "jiritsu_soudan"  # a member agency the lead rules would not choose for an 8050 household


@pytest.mark.parametrize(
    "trigger",
    [
        "watch_concern",
        "watch_lost_contact",
        "crisis_between_checkpoints",
        "no_contact",
        "new_flag",
        "suspension_review",
    ],
)
def test_every_reopen_trigger_proposes_the_previous_lead_who_must_accept_again(conn, workspace, rules, cfg, trigger):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    if trigger == "suspension_review":
        plan(conn, workspace, rules, cfg, cid, mid, lead=OTHER_LEAD, roles=((OTHER_LEAD, "家計相談", "2027-01-29"),))
        daily_sweep(conn, rules, cfg, d("2027-03-04"))  # the evaluation books a meeting
        m2 = case(conn, cid)["meeting_id"]
        held = d(conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (m2,)).fetchone()[0])
        decide(
            conn,
            workspace,
            rules,
            cfg,
            cid,
            m2,
            held,
            "decision: suspend\nreview_on: 2027-05-10\nreason: 本人が入院したため\n",
        )
        day = d("2027-05-10")
        assert daily_sweep(conn, rules, cfg, day).reopened == 1
    else:
        close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"), lead=OTHER_LEAD)
        if trigger in ("watch_concern", "watch_lost_contact"):
            record_contact(conn, cfg, cid, OTHER_LEAD, d("2027-03-01"), "tester")
            daily_sweep(conn, rules, cfg, d("2027-03-08"))
            day = d("2027-03-09")
            answer_checkpoint(conn, rules, cfg, cid, trigger.removeprefix("watch_"), day, "tester")
        elif trigger == "crisis_between_checkpoints":
            day = d("2027-01-15")
            answer_checkpoint(conn, rules, cfg, cid, "concern", day, "tester")
        elif trigger == "no_contact":
            record_contact(conn, cfg, cid, LEAD, d("2027-01-10"), "tester")  # someone else's contact does not count
            assert (
                daily_sweep(conn, rules, cfg, d("2027-03-08")).reopened == 0
            )  # 91 days, but the +3-month checkpoint is asked
            day = d(checkpoints(conn, cid, "watch")[0]["answer_due"]) + timedelta(days=1)
            assert daily_sweep(conn, rules, cfg, day).reopened == 1
        else:
            day = d("2027-01-20")
            add_arrears(conn, "H1", 1, day.isoformat())
            assert nightly_cycle(conn, workspace, rules, cfg, day).convene.reopened == 1
    row = case(conn, cid)
    assert row["status"] in ("convened", "detected") and row["reopen_count"] == 1
    assert row["lead_agency_id"] == OTHER_LEAD and "前回の主担当機関" in row["lead_reason"]
    assert row["lead_confirmed_on"] is None  # the previous lead must accept again
    assert (cid, OTHER_LEAD) in conn.execute(
        "SELECT case_id, agency_id FROM case_agencies WHERE case_id = ?", (cid,)
    ).fetchall()
    assert conn.execute("SELECT COUNT(*) FROM cases WHERE household_id = 'H1'").fetchone()[0] == 1  # the same case
    moves = conn.execute(
        "SELECT to_status FROM audit_log WHERE case_id = ? AND event = 'transition' AND on_day = ? ORDER BY seq",
        (cid, day.isoformat()),
    ).fetchall()
    assert ("reopened",) in moves
