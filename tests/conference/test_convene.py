"""Opening cases (engine/conference/convene.py): which flagged households get a case, which conference
takes it (consent of everyone concerned, lasting until the meeting), and routing to a silo
conference (要対協) instead of a parallel case — and back when the silo lets it go."""

from __future__ import annotations

from datetime import date

import pytest

from engine.conference.convene import convene
from engine.papers.agenda import meeting_papers
from engine.screening.screen import screen
from engine.workflows.cycle import nightly_cycle
from tests.helpers.conference import case_of, cycle, new_import
from tests.helpers.mail import body, emails
from tests.helpers.town import ON, add_household, elder_and_son, person


# --- which households, which conference --------------------------------------------------------------
def test_flags_below_the_threshold_open_no_case(conn, workspace, rules, cfg):
    # parent with a disability and a minor child: severity low, below the shipped threshold (medium)
    add_household(
        conn,
        "HLOW",
        person(40, "世帯主", ("disability_certificate", "身体"), ("earned_income", "3000000")),
        person(10, "子"),
    )
    screen(conn, workspace, rules, ON)
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM flags WHERE household_id = 'HLOW' AND rule_id = 'parent_disability_child'"
        ).fetchone()[0]
        == 1
    )
    convene(conn, rules, cfg, ON)
    assert case_of(conn, "HLOW") is None


def test_consent_of_everyone_concerned_decides_the_conference_type(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    no_consent, agreed = case_of(town, "H8050"), case_of(town, "HAGREED")
    assert no_consent["type"] == "support" and "同意 0人" in no_consent["basis"] and "106条の6" in no_consent["basis"]
    assert agreed["type"] == "multi" and "全員の本人同意あり" in agreed["basis"]
    assert (
        town.execute("SELECT conference_type FROM meetings WHERE meeting_id = ?", (agreed["meeting"],)).fetchone()[0]
        == "multi"
    )


def test_consent_of_only_one_person_concerned_is_not_enough(conn, workspace, rules, cfg):
    elder, son = elder_and_son()
    elder["records"].append(("consent", "重層的支援会議", "2026-01-10", None))
    add_household(conn, "HHALF", elder, son)
    cycle(conn, workspace, rules, cfg)
    case = case_of(conn, "HHALF")
    assert case["type"] == "support" and "2人中 同意 1人" in case["basis"]


def test_ended_consent_does_not_count(conn, workspace, rules, cfg):
    elder, son = elder_and_son()
    for m in (elder, son):
        m["records"].append(("consent", "重層的支援会議", "2025-01-10", "2026-06-30"))
    add_household(conn, "HWITHDRAWN", elder, son)
    cycle(conn, workspace, rules, cfg)
    assert case_of(conn, "HWITHDRAWN")["type"] == "support"


def test_withdrawn_consent_moves_a_booking_to_a_support_meeting(conn, workspace, rules, cfg):
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    cycle(conn, workspace, rules, cfg)
    before = case_of(conn, "HAGREED")
    assert before["type"] == "multi"
    # the son withdraws his consent before the meeting (the silo sends an end date)
    conn.execute(
        "UPDATE records SET end_date = '2026-11-28' WHERE code = 'consent' AND person_id IN (SELECT person_id FROM persons WHERE household_id = 'HAGREED' AND relationship = '子')"
    )
    conn.commit()
    result, _ = cycle(conn, workspace, rules, cfg, date(2026, 11, 30))
    after = case_of(conn, "HAGREED")
    assert result.convene.consent_withdrawn == 1
    assert (
        after["type"] == "support"
        and after["meeting"] != before["meeting"]
        and after["basis"].startswith("本人同意が撤回された")
    )
    assert (
        conn.execute("SELECT conference_type FROM meetings WHERE meeting_id = ?", (after["meeting"],)).fetchone()[0]
        == "support"
    )
    invited = {a for (a,) in conn.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (after["case_id"],))}
    assert not invited & {a.id for a in cfg.agencies.values() if not a.member}
    again, _ = cycle(conn, workspace, rules, cfg, date(2026, 11, 30))
    assert again.convene.consent_withdrawn == 0


@pytest.mark.regression("review of the conference slice")
def test_consent_withdrawn_the_day_before_the_meeting_takes_the_case_out_of_it(conn, workspace, rules, cfg):
    add_household(conn, "HWD", *elder_and_son(consent=True), area="北部")
    cycle(conn, workspace, rules, cfg)
    case = case_of(conn, "HWD")
    assert case["type"] == "multi" and case["meeting"] == "M-20261210-1400-J"
    conn.execute(
        "UPDATE records SET end_date = '2026-12-09' WHERE code = 'consent'"
    )  # withdrawn later: last valid day 12/9
    conn.commit()
    meeting_day = date(2026, 12, 10)  # the 02:00 nightly run of the meeting day, meeting at 14:00
    result, _ = cycle(conn, workspace, rules, cfg, meeting_day)
    npo = [
        a
        for a in meeting_papers(conn, rules, cfg, case["meeting"], meeting_day).agendas
        if a.agency_id == "hikikomori_npo"
    ]
    assert case_of(conn, "HWD")["type"] == "support" and not any(
        c.case_id == case["case_id"] for a in npo for c in a.cases
    )


@pytest.mark.regression("second review of the conference slice")
def test_consent_known_to_end_before_the_meeting_does_not_book_a_multi_meeting(conn, workspace, rules, cfg):
    elder, son = elder_and_son()
    for m in (elder, son):
        m["records"].append(
            ("consent", "重層的支援会議", "2026-01-10", "2026-12-09")
        )  # valid through 12/9, as recorded
    add_household(conn, "HEND", elder, son, area="北部")
    cycle(conn, workspace, rules, cfg)
    case = case_of(conn, "HEND")
    held_on = conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (case["meeting"],)).fetchone()[0]
    npo = [
        m["X-Engine-Key"]
        for m in emails(workspace)
        if m["X-Engine-Key"].endswith(":hikikomori_npo:v1") and case["case_id"] in body(m)
    ]
    # consent is read on the night, not for the meeting day: booked into the 重層的支援会議 on 12/10 and the
    # non-member NPO is e-mailed the case with its facts, for a meeting held after the consent has ended
    assert (case["type"], npo) == ("support", []) or held_on <= "2026-12-09", (case["type"], held_on, npo)


# --- routing to a silo conference --------------------------------------------------------------------
def test_household_known_to_yotaikyo_is_routed_not_given_a_parallel_case(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    case = case_of(town, "HYOTAI")
    assert case["status"] == "routed" and case["meeting"] is None and "要保護児童対策地域協議会" in case["basis"]
    keys = [k for (k,) in town.execute("SELECT message_key FROM outbox WHERE kind = 'routing'")]
    assert keys == [f"routing:{case['case_id']}:kodomo_center:v1"]
    notice = next(m for m in emails(workspace) if m["X-Engine-Key"] == keys[0])
    assert notice["To"] == cfg.agencies["kodomo_center"].email and "並行するケースは開始しません" in body(notice)


def test_routed_household_with_a_new_problem_outside_the_silo_is_escalated(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    # months later the mother is in arrears on two accounts: outside 要対協's remit
    pid = town.execute(
        "SELECT person_id FROM persons WHERE household_id = 'HYOTAI' AND relationship = '世帯主'"
    ).fetchone()[0]
    for kind in ("kokuho", "water"):
        town.execute(
            "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
            (f"{pid}|t|arrears|{kind}", pid, "t", "arrears", f"{kind}:4", "2026-09-01", None),
        )
    town.execute("UPDATE households SET changed_seq = 1 WHERE household_id = 'HYOTAI'")
    town.execute("INSERT INTO imports VALUES (1, '2026-12-01T00:00:00', 'x', 'utf-8', '{}')")
    town.commit()
    later = date(2026, 12, 1)
    result, _ = cycle(town, workspace, rules, cfg, later)
    case = case_of(town, "HYOTAI")
    assert result.convene.cases_escalated == 1 and case["status"] == "convened" and case["meeting"] is not None
    assert case["basis"].startswith("要対協等の範囲外の課題が加わったため会議に付議")


@pytest.mark.regression("review of the conference slice")
def test_multi_domain_household_known_to_yotaikyo_gets_a_conference(conn, workspace, rules, cfg):
    add_household(
        conn,
        "HMULTI",
        person(38, "世帯主", ("disability_certificate", "身体"), ("earned_income", "2000000")),
        person(2, "子", ("health_check_missed", "連絡なし"), ("yotaikyo_registered", "要支援児童")),
        person(80, "母", ("care_level", "要介護3"), ("service_use", "介護")),
        area="東部",
    )
    screen(conn, workspace, rules, ON)
    flags = {r for (r,) in conn.execute("SELECT rule_id FROM flags WHERE household_id = 'HMULTI' AND status = 'open'")}
    assert "multi_domain" in flags  # 介護, 障害, 子ども: well beyond 要対協
    convene(conn, rules, cfg, ON)
    assert case_of(conn, "HMULTI")["status"] != "routed", flags


@pytest.mark.regression("review of the conference slice")
def test_routed_case_comes_back_when_the_silo_conference_lets_it_go(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    assert case_of(town, "HYOTAI")["status"] == "routed"
    town.execute(
        "UPDATE records SET end_date = '2026-12-15' WHERE code = 'yotaikyo_registered'"
    )  # 要対協 closes its registration
    new_import(town, 1, "HYOTAI", "2026-12-16")
    cycle(town, workspace, rules, cfg, date(2027, 1, 5))
    flags_open = town.execute(
        "SELECT COUNT(*) FROM flags WHERE household_id = 'HYOTAI' AND status = 'open'"
    ).fetchone()[0]
    assert flags_open and case_of(town, "HYOTAI")["status"] != "routed"


@pytest.mark.regression("second review of the conference slice")
def test_a_routed_case_whose_flags_are_all_resolved_is_not_escalated_when_the_registration_ends(
    town, workspace, rules, cfg
):
    cycle(town, workspace, rules, cfg)
    case = case_of(town, "HYOTAI")
    assert case["status"] == "routed"
    # the child went to the health check (record ended), then 要対協 closed the registration: nothing is left
    town.execute("UPDATE records SET end_date = '2026-12-10' WHERE code = 'health_check_missed'")
    town.execute("UPDATE records SET end_date = '2026-12-15' WHERE code = 'yotaikyo_registered'")
    new_import(town, 1, "HYOTAI", "2026-12-16")
    result, _ = cycle(town, workspace, rules, cfg, date(2027, 1, 5))
    assert (
        town.execute("SELECT COUNT(*) FROM flags WHERE household_id = 'HYOTAI' AND status = 'open'").fetchone()[0] == 0
    )
    mailed = [
        m["X-Engine-Key"]
        for m in emails(workspace)
        if case["case_id"] in body(m) and m["X-Engine-Key"].startswith("agenda:")
    ]
    # escalated into a 支援会議 (shared without consent) over a resolved flag, its papers e-mailed to every member agency
    assert result.convene.cases_escalated == 0 and mailed == [], (case_of(town, "HYOTAI")["status"], mailed)


@pytest.mark.regression("second review of the conference slice")
def test_a_rule_removed_from_the_rule_set_does_not_stop_every_later_night(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    assert case_of(town, "HYOTAI")["status"] == "routed"  # its case holds a child_risk flag
    # the town renames child_risk in flags.yaml; the full screen under the new rules resolves the old flags
    renamed = rules.model_copy(
        update={"flags": {k: v for k, v in rules.flags.items() if k != "child_risk"}, "hash": rules.hash + "-renamed"}
    )
    result = nightly_cycle(
        town, workspace, renamed, cfg, date(2026, 11, 30)
    )  # KeyError: 'child_risk' in routing_for, every night
    assert result.convene is not None
