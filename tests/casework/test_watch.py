"""Checkpoints answered by agencies (engine/casework/watch.py): the post-closure watch on business days,
archiving after the last stable answer, and the check-back of a case left with a silo conference."""

from __future__ import annotations

import pytest

from engine.casework.handshake import accept
from engine.casework.sweep import daily_sweep
from engine.casework.watch import WatchError, answer_checkpoint
from engine.conference.lead import propose_lead
from engine.support.business_days import add_months
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import (
    LEAD,
    MEETING_DAY,
    add_arrears,
    add_yotaikyo,
    case,
    checkpoints,
    close,
    d,
    decide,
    held_on,
    open_cases,
    plan_text,
    violations,
)
from tests.helpers.town import ON


@pytest.mark.parametrize(
    "closed_on, expected",
    [
        ("2026-12-07", ["2027-03-08", "2027-06-07", "2027-12-07"]),  # +3 months: Sunday 2027-03-07
        ("2026-12-22", ["2027-03-23", "2027-06-22", "2027-12-22"]),  # +3 months: 2027-03-22 春分の日 振替休日
        ("2027-02-03", ["2027-05-06", "2027-08-03", "2028-02-03"]),  # +3 months: 憲法記念日, みどりの日, こどもの日
    ],
)
def test_watch_checkpoints_are_moved_to_the_next_business_day(conn, workspace, rules, cfg, cal, closed_on, expected):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d(closed_on))
    assert case(conn, cid)["closed_on"] == closed_on
    due = [c["due_on"] for c in checkpoints(conn, cid, "watch")]
    assert due == expected
    assert all(cal.is_business_day(d(x)) for x in due)
    assert not cal.is_business_day(add_months(d(closed_on), 3))  # the raw +3 months is a closed day


def archive(conn, workspace, rules, cfg) -> str:
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"))
    states = [
        answer_checkpoint(conn, rules, cfg, cid, "stable", d(day), "tester").status
        for day in ("2027-03-08", "2027-06-07", "2027-12-07")
    ]
    assert states == ["closed", "closed", "archived"]
    return cid


def test_stable_on_the_last_watch_checkpoint_archives_the_case(conn, workspace, rules, cfg):
    cid = archive(conn, workspace, rules, cfg)
    row = case(conn, cid)
    assert (row["status"], row["is_open"]) == ("archived", 0)
    assert [c["result"] for c in checkpoints(conn, cid, "watch")] == ["stable"] * 3
    assert violations(conn, cfg, d("2027-12-08")) == []
    assert daily_sweep(conn, rules, cfg, d("2028-06-01")).reopened == 0  # the 90-day rule is for closed cases only


def test_an_archived_household_flagged_again_gets_a_new_case_linked_to_the_old_one(conn, workspace, rules, cfg):
    old = archive(conn, workspace, rules, cfg)
    add_arrears(conn, "H1", 1, "2028-01-10")
    result = nightly_cycle(conn, workspace, rules, cfg, d("2028-01-10")).convene
    assert (result.cases_opened, result.relinked, result.reopened) == (1, 1, 0)
    new = conn.execute("SELECT case_id FROM cases WHERE household_id = 'H1' AND is_open = 1").fetchone()[0]
    assert new != old and case(conn, old)["status"] == "archived"
    row = case(conn, new)
    assert row["previous_case_id"] == old and row["status"] == "convened" and row["reopen_count"] == 0
    # the rules alone would choose the 困窮 lead for arrears; the previous lead is proposed instead
    assert (
        propose_lead(
            cfg, area="中央", flag_ids={"multiple_arrears"}, served_silos=set(), conference_type="support", led={}
        ).agency_id
        != LEAD
    )
    assert row["lead_agency_id"] == LEAD and "前回の主担当機関" in row["lead_reason"]
    assert (
        conn.execute("SELECT COUNT(*) FROM audit_log WHERE case_id = ? AND event = 'relinked'", (new,)).fetchone()[0]
        == 1
    )


@pytest.mark.regression("review of the case lifecycle")
def test_a_watch_answer_by_an_unknown_agency_is_refused(conn, workspace, rules, cfg):
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
    with pytest.raises(WatchError):
        answer_checkpoint(conn, rules, cfg, cid, "stable", d("2027-03-08"), "tester", "houkatu_chuo")


# --- the check-back of a routed case -----------------------------------------------------------------
@pytest.mark.regression("review of the case lifecycle")
def test_a_routed_case_brought_to_a_conference_drops_its_check_back(conn, workspace, rules, cfg):
    add_yotaikyo(conn)
    nightly_cycle(conn, workspace, rules, cfg, ON)
    cid = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HYOTAI'").fetchone()[0]
    assert case(conn, cid)["status"] == "routed"
    (cb,) = checkpoints(conn, cid, "check_back")
    add_arrears(conn, "HYOTAI", 1, "2026-12-01", rel="世帯主")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-01"))
    assert case(conn, cid)["status"] == "convened"
    daily_sweep(conn, rules, cfg, d(cb["due_on"]))
    asked = conn.execute("SELECT message_key, agency_id FROM outbox WHERE kind = 'checkpoint'").fetchall()
    assert asked == [], f"a 要対協 check-back question went to {asked} for a case that is no longer routed"
    assert [c["status"] for c in checkpoints(conn, cid, "check_back")] == ["cancelled"]


@pytest.mark.regression("review of the case lifecycle")
def test_a_stale_check_back_on_an_active_case_does_not_trap_the_lead(conn, workspace, rules, cfg):
    add_yotaikyo(conn)
    nightly_cycle(conn, workspace, rules, cfg, ON)
    cid = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HYOTAI'").fetchone()[0]
    (cb,) = checkpoints(conn, cid, "check_back")
    add_arrears(conn, "HYOTAI", 1, "2026-12-01", rel="世帯主")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-01"))
    row = case(conn, cid)
    lead, mid = row["lead_agency_id"], row["meeting_id"]
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        held_on(conn, mid),
        plan_text(lead=lead, roles=((lead, "状況の確認", "2027-03-31"),)),
    )
    accept(conn, cfg, cid, held_on(conn, mid), "tester")
    daily_sweep(conn, rules, cfg, d(cb["due_on"]))
    # the check-back ended when the case left 要対協: nobody is asked, and nothing waits for an answer
    assert conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'checkpoint'").fetchone()[0] == 0
    assert [c["status"] for c in checkpoints(conn, cid, "check_back")] == ["cancelled"]
    with pytest.raises(WatchError):
        answer_checkpoint(conn, rules, cfg, cid, "concern", d(cb["due_on"]), "tester")
    assert case(conn, cid)["status"] == "active"
