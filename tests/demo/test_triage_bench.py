"""The triage benchmark (bench/triage.py, `make bench-triage`) on a 300-household demo town, and its
business-day and percentile arithmetic on hand-made figures."""

from __future__ import annotations

from datetime import date

import pytest

from bench import triage
from engine.support.business_days import Calendar


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


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return triage.run(300, seed=7, days=120, work=tmp_path_factory.mktemp("triage"))


def test_the_bench_measures_every_conference_case_of_a_small_demo_town(result):
    conf = result["flag_to_conference"]
    owner, business, calendar = (
        result["flag_to_owner_business_days"],
        conf["business_days"],
        conf["calendar_days"],
    )
    assert result["cases"] >= result["cases_opened_first_night"] > 0
    assert sum(result["pathways"].values()) == result["cases"] and result["pathway_source"] == "status/routed_to"
    measured = conf["first_meeting_held_by_end"] + conf["first_meeting_booked_after_end"]
    assert owner["count"] == business["count"] == calendar["count"] == measured > 0
    assert result["pathways"].get("routed", 0) + measured + result["waiting_without_owner_action"] == result["cases"]
    for s in (owner, business, calendar):
        assert 0 <= s["median"] <= s["p90"] <= s["max"]
    assert business["max"] <= calendar["max"]  # a business day is a calendar day, not every calendar day is one
    assert result["first_night"] < conf["latest_first_meeting"] <= conf["latest_meeting_booked"]
    assert all(n > 0 for n in result["audit_violations"].values())


def test_the_table_names_the_machine_the_command_and_the_figures(result):
    text = triage.table(result)
    assert text.startswith("triage bench: 300 households, seed 7, 120 days (2026-11-27 → 2027-03-27); ")
    assert result["machine"] in text and "python -m bench.triage --households 300 --seed 7 --days 120" in text
    owner = result["flag_to_owner_business_days"]
    assert f"median {owner['median']:g} / p90 {owner['p90']} / max {owner['max']}" in text
    assert "pathway mix (status/routed_to)" in text and "audit violations at the end" in text
