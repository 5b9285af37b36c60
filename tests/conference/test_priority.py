"""Who gets the meeting slots first when they are scarce (issue 17): severity, then the number of
silos the flags touch, then how long the flag has waited; and the gap audit's "first conference
too far" (conference.max_business_days_to_conference)."""

from __future__ import annotations

from engine.casework.audit import run_audit
from engine.conference.candidates import Candidate
from engine.conference.convene import booking_priority
from engine.workflows.cycle import nightly_cycle
from tests.helpers.town import ON, add_household, person


def test_priority_is_severity_then_silos_then_waiting_time(rules):
    one_silo = Candidate("HA", "中央", [(1, "multiple_arrears", "medium", [])])
    two_silos = Candidate("HZ", "中央", [(2, "double_care", "medium", [])])
    urgent_one = Candidate("HY", "中央", [(3, "hikikomori", "high", [])])
    early = Candidate("HB", "中央", [(4, "multiple_arrears", "medium", [])])
    ranked = sorted(
        [(one_silo, "2026-11-20"), (two_silos, "2026-11-27"), (urgent_one, "2026-11-27"), (early, "2026-10-01")],
        key=lambda c: booking_priority(rules, c[0], c[1]),
    )
    assert [c.household_id for c, _ in ranked] == ["HY", "HZ", "HB", "HA"]


def scarce(cfg):
    return cfg.model_copy(update={"conference": cfg.conference.model_copy(update={"cases_per_meeting": 1})})


def test_with_one_case_per_meeting_the_household_touching_more_silos_goes_first(conn, workspace, rules, cfg):
    add_household(conn, "HA", person(45, "世帯主", ("arrears", "kokuho:4"), ("arrears", "water:4")), area="中央")
    add_household(
        conn,
        "HZ",
        person(35, "世帯主", ("arrears", "kokuho:4")),
        person(2, "子"),
        person(80, "母", ("care_level", "要介護1")),
        area="中央",
    )
    nightly_cycle(conn, workspace, rules, scarce(cfg), ON)
    days = dict(
        conn.execute(
            "SELECT c.household_id, m.held_on FROM cases c JOIN meetings m ON m.meeting_id = c.meeting_id"
        ).fetchall()
    )
    flags = dict(
        conn.execute(
            "SELECT household_id, rule_id FROM flags WHERE status = 'open' AND rule_id IN ('double_care', 'multiple_arrears')"
        ).fetchall()
    )
    assert flags == {"HA": "multiple_arrears", "HZ": "double_care"}
    assert days["HZ"] < days["HA"]  # by household id alone HA would have come first


def test_a_first_conference_further_than_the_limit_is_a_gap_of_its_own(conn, workspace, rules, cfg):
    add_household(conn, "HA", person(45, "世帯主", ("arrears", "kokuho:4"), ("arrears", "water:4")), area="中央")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    assert "conference_too_far" not in [v.kind for v in run_audit(conn, cfg, ON).violations]
    near = cfg.model_copy(
        update={"conference": cfg.conference.model_copy(update={"max_business_days_to_conference": 1})}
    )
    (v,) = [v for v in run_audit(conn, near, ON).violations if v.kind == "conference_too_far"]
    assert v.household_id == "HA" and "1営業日" in v.detail and "会議の枠を増やす" in v.detail
