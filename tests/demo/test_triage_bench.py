"""The triage benchmark (bench/triage.py, `make bench-triage`): its figures on a hand-made workspace
whose every day is known, on a 300-household demo town, and its business-day and percentile
arithmetic on hand-made figures."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from bench import triage
from engine.store.db import connect
from engine.store.lifecycle import Log
from engine.support.business_days import Calendar

D = date.fromisoformat
END = D("2026-12-18")  # a Friday; no holiday from 11/30 on


def test_business_days_between_two_dates_skip_weekends_and_holidays():
    days = triage.BusinessDays(Calendar(), date(2026, 11, 1), date(2027, 1, 31))
    assert days.between(date(2026, 11, 27), date(2026, 12, 4)) == 5  # Fri → next Fri
    assert days.between(date(2026, 11, 20), date(2026, 11, 27)) == 4  # 勤労感謝の日 Mon 11/23
    assert days.between(date(2026, 12, 25), date(2027, 1, 5)) == 3  # 12/28, 1/4, 1/5 (年末年始 12/29-1/3)
    assert days.between(date(2026, 12, 4), date(2026, 12, 4)) == 0


def test_spread_gives_median_nearest_rank_p90_and_max():
    assert triage.spread(list(range(1, 11))) == {"count": 10, "median": 5.5, "p90": 9, "max": 10}
    assert triage.spread([7]) == {"count": 1, "median": 7, "p90": 7, "max": 7}
    assert triage.spread([])["median"] is None


def test_a_median_with_waiting_cases_counts_them_as_not_reached():
    assert triage.median_reached([1, 4, 5, 10], waiting=2) == 7.5  # 1 4 [5 10] ∞ ∞
    assert triage.median_reached([1, 4], waiting=2) is None  # half are waiting: not reached
    assert triage.median_reached([3], waiting=0) == 3 and triage.median_reached([], 0) is None


def _case(conn, case_id, *, pathway, flagged=(), opened="2026-11-30", severity="medium", meeting=None):
    hid = "H" + case_id
    conn.execute(
        "INSERT INTO cases (case_id, household_id, status, opened_on, severity, conference_basis, meeting_id, "
        "rules_hash, config_hash, pathway) VALUES (?, ?, 'detected', ?, ?, '', ?, 'r', 'c', ?)",
        (case_id, hid, opened, severity, meeting, pathway),
    )
    for day in flagged:
        flag_id = conn.execute(
            "INSERT INTO flags (household_id, rule_id, rule_version, severity, status, first_detected, "
            "last_confirmed, run_id, evidence) VALUES (?, ?, 1, ?, 'resolved', ?, ?, 1, '{}')",
            (hid, f"r{day}", severity, day, day),
        ).lastrowid
        conn.execute("INSERT INTO case_flags VALUES (?, ?, ?)", (case_id, flag_id, day))


def _meeting(conn, meeting_id, held_on, *cases):
    conn.execute("INSERT INTO meetings VALUES (?, 'support', ?, '14:00', '会議室', 8, 0)", (meeting_id, held_on))
    conn.executemany("INSERT INTO case_meetings VALUES (?, ?)", [(c, meeting_id) for c in cases])


def _event(conn, day, event, case_id, rule_id=None, **detail):
    Log(conn, D(day), "test").event(event, case_id=case_id, rule_id=rule_id, **detail)


@pytest.fixture
def hand_made(tmp_path):
    """Seven cases on known days (end 12/18):
    A assessed (answer 12/04: 4 days), then sent to a conference (12/04) held 12/11 (5 days after);
    B conference, meeting 12/14 known only as cases.meeting_id (10 business / 14 calendar days);
    C an overflow to assessment never answered (a watch answer is no owner action): waiting 14 days;
    D watch, re-triaged to an assessment later: no owner figure; E served, check-back answered 12/07
    (4 days from its 12/01 flag); F urgent, no pathway_chosen nor flag (cases.pathway, opened 12/01),
    meeting 12/02 (1 day); G conference flagged 12/15, meeting booked 2027-01-08 (14 business days
    over 年末年始, 24 calendar days): waiting 3 days for an owner at the end."""
    conn = connect(tmp_path / "ws")
    _case(conn, "A", pathway="conference", flagged=["2026-11-30"])
    _case(conn, "B", pathway="conference", flagged=["2026-11-30"], meeting="M2")
    _case(conn, "C", pathway="assessment", flagged=["2026-12-01", "2026-11-30"])
    _case(conn, "D", pathway="assessment", flagged=["2026-11-30"])
    _case(conn, "E", pathway="served", flagged=["2026-12-01"], opened="2026-12-01")
    _case(conn, "F", pathway="urgent_conference", opened="2026-12-01", severity="urgent")
    _case(conn, "G", pathway="conference", flagged=["2026-12-15"], opened="2026-12-15")
    _meeting(conn, "M1", "2026-12-11", "A")
    _meeting(conn, "M2", "2026-12-14")
    _meeting(conn, "M3", "2026-12-02", "F")
    _meeting(conn, "M4", "2027-01-08", "G")
    _event(conn, "2026-11-30", "pathway_chosen", "A", "fallback", pathway="assessment")
    _event(conn, "2026-11-30", "pathway_chosen", "B", "several_problems", pathway="conference")
    _event(conn, "2026-11-30", "pathway_chosen", "C", "complex:overflow", pathway="assessment")
    _event(conn, "2026-11-30", "pathway_chosen", "D", "arrears_only", pathway="watch")
    _event(conn, "2026-12-01", "pathway_chosen", "E", "already_served", pathway="served")
    _event(conn, "2026-12-15", "pathway_chosen", "G", "several_problems", pathway="conference")
    _event(conn, "2026-12-02", "checkpoint_answered", "C", kind="watch", result="stable")
    _event(conn, "2026-12-04", "assessment_answered", "A", result="needs_conference", attempt=1)
    _event(conn, "2026-12-04", "pathway_chosen", "A", "assessment", pathway="conference")
    _event(conn, "2026-12-07", "checkpoint_answered", "E", kind="check_back", result="stable")
    _event(conn, "2026-12-10", "pathway_chosen", "D", "rescreen", pathway="assessment")
    _event(conn, "2026-12-11", "assessment_answered", "D", result="resolved", attempt=1)
    conn.commit()
    yield conn
    conn.close()


def test_measure_dates_each_case_from_its_first_flag_to_its_first_owner_action(hand_made, cfg):
    r = triage.measure(hand_made, cfg, END)
    assert r["cases"] == 7
    assert r["pathways"] == {
        "initial": {"assessment": 2, "conference": 2, "served": 1, "urgent_conference": 1, "watch": 1},
        "initial_overflow": 1,
        "initial_from_cases_table": 1,
        "initial_silo_conference": 0,
        "current": {"assessment": 2, "conference": 3, "served": 1, "urgent_conference": 1},
    }
    owner = r["flag_to_owner_business_days"]
    assert {k: owner[k] for k in ("count", "median", "max", "waiting", "median_all", "median_all_lower_bound")} == {
        "count": 4,  # A 4, B 10, E 4 (12/01 → 12/07), F 1
        "median": 4,
        "max": 10,
        "waiting": 2,  # C 14, G 3
        "median_all": 7,  # 1 4 [4 10] ∞ ∞
        "median_all_lower_bound": 4,  # 1 3 [4 4] 10 14
    }
    by = r["flag_to_owner_by_initial_pathway"]
    assert set(by) == {"assessment", "conference", "served", "urgent_conference"}  # watch is no owner's yet
    assert by["assessment"]["median_all"] is None and by["assessment"]["waiting"] == 1  # A 4, C waiting
    assert by["conference"]["median_all"] is None and by["conference"]["median"] == 10  # B 10, G waiting


def test_measure_dates_conferences_from_the_flag_and_from_an_assessment(hand_made, cfg):
    r = triage.measure(hand_made, cfg, END)
    conf = r["flag_to_conference"]
    assert conf["business_days"] == {"count": 3, "median": 10, "p90": 14, "max": 14}  # F 1, B 10, G 14
    assert conf["calendar_days"] == {"count": 3, "median": 14, "p90": 24, "max": 24}
    assert (conf["first_meeting_held_by_end"], conf["first_meeting_booked_after_end"]) == (2, 1)
    assert conf["latest_first_meeting"] == conf["latest_meeting_booked"] == "2027-01-08"
    assert conf["without_meeting"] == conf["without_meeting_over_goal"] == 0
    assert r["assessment_to_conference_business_days"] == {
        "count": 1,
        "median": 5,
        "p90": 5,
        "max": 5,
        "without_meeting": 0,
    }
    assert r["urgent_flag_to_conference_business_days"]["max"] == 1
    assert triage.meets_goals(r) == {"flag_to_owner_median_business_days": True, "flag_to_conference": True}
    later = triage.measure(hand_made, cfg, D("2027-01-29"))  # G's meeting held by then; C still waiting
    assert later["flag_to_owner_business_days"]["median_all"] == 7  # 1 4 [4 10] 14 ∞


def test_a_goal_is_not_met_when_the_median_is_above_it_or_not_reached_or_a_conference_is_too_far():
    def figures(median, longest, over):
        conf = {"business_days": {"max": longest}, "without_meeting_over_goal": over}
        return {"flag_to_owner_business_days": {"median_all": median}, "flag_to_conference": conf}

    goals = triage.meets_goals
    assert goals(figures(10, 20, 0)) == {"flag_to_owner_median_business_days": True, "flag_to_conference": True}
    assert goals(figures(10.5, 21, 0)) == {"flag_to_owner_median_business_days": False, "flag_to_conference": False}
    assert goals(figures(None, None, 1)) == {"flag_to_owner_median_business_days": False, "flag_to_conference": False}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return triage.run(300, seed=7, days=120, work=tmp_path_factory.mktemp("triage"))


def test_the_bench_accounts_for_every_case_of_a_small_demo_town(result):
    mix, owner = result["pathways"], result["flag_to_owner_business_days"]
    assert result["cases"] >= result["cases_opened_first_night"] > 0
    assert sum(mix["initial"].values()) == sum(mix["current"].values()) == result["cases"]
    assert mix["initial_from_cases_table"] == 0  # every case's pathway was chosen in the audit log
    silo = mix["initial_silo_conference"]  # served by a 要対協: not measured
    assert owner["count"] + owner["waiting"] + mix["initial"].get("watch", 0) + silo == result["cases"]
    assert sum(f["count"] + f["waiting"] for f in result["flag_to_owner_by_initial_pathway"].values()) == (
        owner["count"] + owner["waiting"]
    )
    conf = result["flag_to_conference"]
    conference_cases = sum(mix["initial"].get(p, 0) for p in triage.CONFERENCES)
    assert conf["business_days"]["count"] + conf["without_meeting"] == conference_cases > 0
    assert conf["first_meeting_held_by_end"] + conf["first_meeting_booked_after_end"] == conf["business_days"]["count"]
    for s in (owner, conf["business_days"], conf["calendar_days"], result["assessment_to_conference_business_days"]):
        assert s["count"] and 0 <= s["median"] <= s["p90"] <= s["max"]
    assert conf["business_days"]["max"] <= conf["calendar_days"]["max"]
    assert result["first_night"] < conf["latest_first_meeting"] <= conf["latest_meeting_booked"]
    assert result["conference_too_far"] == result["audit_violations"].get("conference_too_far", 0)
    assert all(n > 0 for n in result["audit_violations"].values())
    assert result["meets_goals"] == triage.meets_goals(result) and set(result["meets_goals"]) == set(result["goals"])


def test_the_table_names_the_machine_the_command_the_figures_and_the_goals(result):
    text = triage.table(result)
    assert text.startswith("triage bench: 300 households, seed 7, 120 days (2026-11-27 → 2027-03-27), config configs; ")
    assert result["machine"] in text
    assert "python -m bench.triage --households 300 --seed 7 --days 120 --config configs" in text
    owner = result["flag_to_owner_business_days"]
    assert f"median {owner['median']:g} / p90 {owner['p90']} / max {owner['max']}" in text
    assert f"goal median ≤ {triage.GOAL_OWNER_DAYS}: " in text and f"goal ≤ {triage.GOAL_CONFERENCE_DAYS}: " in text
    assert ", ".join(f"{k} {v:,}" for k, v in result["pathways"]["initial"].items()) in text
    assert "conference_too_far" in text and "audit violations at the end" in text


def test_another_config_folder_is_measured_and_named_in_the_command(tmp_path, monkeypatch):
    used = []

    def demo(workspace, rules, config, **kw):  # the demo itself is the test above's: here only its config
        used.append(config.triage.settings.assessments_per_week)
        connect(workspace).close()
        return {"cases_opened": 0}

    monkeypatch.setattr("engine.demo.run.run_demo", demo)
    folder = tmp_path / "faster"
    shutil.copytree(triage.ROOT / "configs", folder)
    path = folder / "triage_rules.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("assessments_per_week: 10", "assessments_per_week: 25"))
    r = triage.run(10, days=5, work=tmp_path, config_dir=folder)
    assert used == [25]
    assert r["config_dir"] == str(folder.resolve()) and r["command"].endswith(f"--config {folder.resolve()}")
    assert r["cases"] == 0 and r["meets_goals"]["flag_to_owner_median_business_days"] is False
