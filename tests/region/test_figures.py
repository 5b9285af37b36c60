"""The area view's figures, counted by hand on the town of tests/region/town.py (its docstring lists
every row). Window: --months 2 up to 2026-11-27, i.e. 2026-10 and 2026-11."""

from __future__ import annotations

from datetime import date

from engine.region.candidates import rank_candidates
from engine.region.figures import area_figures, business_days_between, months_up_to
from engine.support.business_days import Calendar
from tests.helpers.town import add_household, person
from tests.region.town import MONTHS, ON


def test_the_window_is_calendar_months_up_to_the_day():
    """3 months up to 2026-01-15: 2025-11, 2025-12, 2026-01 (1–15: the last month ends on the day)."""
    got = months_up_to(date(2026, 1, 15), 3)
    assert [(m.key, m.first.isoformat(), m.last.isoformat()) for m in got] == [
        ("2025-11", "2025-11-01", "2025-11-30"),
        ("2025-12", "2025-12-01", "2025-12-31"),
        ("2026-01", "2026-01-01", "2026-01-15"),
    ]


def test_business_days_skip_weekends_and_holidays():
    """Mon 2026-10-05 → Fri 10-16: 6,7,8,9 and (12 スポーツの日 closed) 13,14,15,16 = 8; same day = 0."""
    cal = Calendar()
    assert business_days_between(cal, date(2026, 10, 5), date(2026, 10, 16)) == 8
    assert business_days_between(cal, date(2026, 10, 5), date(2026, 10, 5)) == 0


def test_flagged_households_per_1000_by_pattern(town_conn, directory, rules):
    """中央 has 4 households, 北部 2.
    2026-10: 中央 8050 {C1 (F1), C2 (F2, resolved 11-01)} = 2 → 500.0; isolated_elder {C4 (F5)} = 1
      → 250.0; any {C1, C2, C4} = 3 → 750.0. C3's F4 was resolved on 10-01: open until 9-30 only.
    2026-11: 中央 8050 {C1} = 1 → 250.0 (F2 resolved on the 1st); isolated_elder {C2 (F3)} = 1;
      any {C1, C2} = 2 → 500.0. 北部 8050 {N1} = 1 → 500.0; N2's flag is from 11-28 (after the day).
    北部 2026-10: nobody → 0.0."""
    f = area_figures(town_conn, directory[1], rules, ON, MONTHS)
    assert f.areas == ["中央", "北部"]
    assert f.households == {"中央": 4, "北部": 2}
    oct_c, nov_c = f.of("中央", "2026-10"), f.of("中央", "2026-11")
    oct_n, nov_n = f.of("北部", "2026-10"), f.of("北部", "2026-11")
    assert oct_c.flagged == {"8050": 2, "isolated_elder": 1} and oct_c.flagged_any == 3
    assert oct_c.per_1000(oct_c.flagged["8050"]) == 500.0 and oct_c.per_1000(oct_c.flagged_any) == 750.0
    assert nov_c.flagged == {"8050": 1, "isolated_elder": 1} and nov_c.per_1000(nov_c.flagged_any) == 500.0
    assert oct_n.flagged == {} and oct_n.per_1000(oct_n.flagged_any) == 0.0
    assert nov_n.flagged == {"8050": 1} and nov_n.per_1000(1) == 500.0
    assert f.patterns() == ["8050", "isolated_elder"]
    assert f.flag_titles["isolated_elder"].startswith("孤立した高齢者")


def test_cases_opened_and_median_business_days_to_first_conference(town_conn, directory, rules):
    """中央 2026-10: K1 (flag 10-05 → first meeting 10-16: 8 business days, 10-12 is a holiday),
    K2 (flag 10-01 → first of its two meetings 10-08: 2, 5, 6, 7, 8 = 5), K3 (meeting on 12-03,
    after the day: opened, no conference yet) → opened 3, conferenced 2, median (5, 8) = 6.5.
    中央 2026-11: K5 (11-10 → 11-17: 11, 12, 13, 16, 17 = 5) → 1, 1, 5.0.
    北部 2026-11: K4 (Fri 11-20 → Thu 11-26: 24, 25, 26; 11-23 勤労感謝の日) → 1, 1, 3.0.
    北部 2026-10: none → median None."""
    f = area_figures(town_conn, directory[1], rules, ON, MONTHS)
    got = {(m.area, m.month): (m.cases_opened, m.conferenced, m.median_days_to_conference) for m in f.monthly}
    assert got == {
        ("中央", "2026-10"): (3, 2, 6.5),
        ("中央", "2026-11"): (1, 1, 5.0),
        ("北部", "2026-10"): (0, 0, None),
        ("北部", "2026-11"): (1, 1, 3.0),
    }


def test_needs_without_a_place_and_declines_by_reason(town_conn, directory, rules):
    """Grace: 3 business days (resources.yaml default).
    中央 2026-10: recorded n1, n5, n6 = 3; n1 unmatched; n5 is open but its referral r1 closed on
      11-24, +3 business days = 11-27, not before the day → not past grace; n6 settled → 1 without place.
      Declined: r2 (10-22) not eligible.
    中央 2026-11: recorded n2, n3, n4 = 3; n2 unmatched; n3 open since r3 closed 11-18, +3 = 11-24
      (11-23 holiday) < 11-27 → past grace; n4 recorded 11-25, +3 = 11-30 → not yet → 2 without place.
      Declined: r1 (11-24) at capacity, r3 (11-18) could not contact.
    北部 2026-11: n7, n8 unmatched → 2; declined r4 (11-25) at capacity."""
    f = area_figures(town_conn, directory[1], rules, ON, MONTHS)
    got = {
        (m.area, m.month): (m.needs_recorded, m.needs_unmatched, m.needs_open_past_grace, m.declines) for m in f.monthly
    }
    assert got == {
        ("中央", "2026-10"): (3, 1, 0, {"not_eligible": 1}),
        ("中央", "2026-11"): (3, 1, 1, {"at_capacity": 1, "could_not_contact": 1}),
        ("北部", "2026-10"): (0, 0, 0, {}),
        ("北部", "2026-11"): (2, 2, 0, {"at_capacity": 1}),
    }
    assert f.of("中央", "2026-11").needs_without_place == 2


def test_places_by_category_with_free_capacity_now_and_stale(town_conn, directory, rules):
    """中央 居場所: P1 (2 free less r5 accepted on 11-05, after its count of 10-28 → 1) and P2 (full,
    verified two years ago: stale) → 2 places, 1 with a free place, 1 free, 1 stale.
    中央 ボランティア: P4 temporarily closed → 1 place, 1 closed, nothing free.
    北部 サロン: P3 full → 1 place, 0 free. P5 is inactive: not listed (no 中央 サロン row)."""
    f = area_figures(town_conn, directory[1], rules, ON, MONTHS)
    got = {(p.area, p.category_label): (p.places, p.closed, p.with_free, p.free, p.stale) for p in f.places}
    assert got == {
        ("中央", "居場所"): (2, 0, 1, 1, 1),
        ("中央", "ボランティア"): (1, 1, 0, 0, 0),
        ("北部", "サロン・通いの場"): (1, 0, 0, 0, 0),
    }


def test_resource_development_candidates_are_ranked_with_evidence(town_conn, directory, rules):
    """Unmet = unmatched + open past grace + declined at capacity / not eligible:
    北部 respite: n7, n8 unmatched + r4 at capacity = 3; its category サロン (carer_respite) has P3
      in 北部, full → 1 place, 0 with a free place.
    中央 social_contact: n1, n2 unmatched + r1 at capacity (n5) = 3; 居場所 P1, P2 → 2 places, 1 free.
    中央 respite: n3 past grace = 1; サロン in 中央: only P5, inactive → 0 places.
    中央 ibasho (r2 without a need: the place's category): not eligible = 1; 居場所 → 1 with a free place.
    Ties on the count go to the need with fewer places with a free place: 北部 respite 1st,
    中央 social_contact 2nd, 中央 respite 3rd, 中央 ibasho 4th. n4 (role) is not yet past grace,
    r3 (could not contact) says nothing of resources: neither is a candidate."""
    f = area_figures(town_conn, directory[1], rules, ON, MONTHS)
    got = rank_candidates(town_conn, directory[1], f)
    assert [(c.rank, c.area, c.need, c.unmet, c.places, c.places_with_free) for c in got] == [
        (1, "北部", "respite", 3, 1, 0),
        (2, "中央", "social_contact", 3, 2, 1),
        (3, "中央", "respite", 1, 0, 0),
        (4, "中央", "ibasho", 1, 2, 1),
    ]
    first = got[0]
    assert (first.unmatched, first.declined_capacity, first.declined_eligibility) == (2, 1, 0)
    assert first.need_label == "介護する家族の休息・交流" and first.category_labels == ["サロン・通いの場"]
    assert "紹介先のないニーズ 2 件" in first.evidence() and "定員超過による受入れ不可 1 件" in first.evidence()
    assert "空きのある場所 0 か所" in first.evidence()
    assert got[3].need_label == "居場所" and got[3].declined_eligibility == 1


def test_a_shorter_window_leaves_the_earlier_month_out(town_conn, directory, rules):
    """--months 1: 2026-11 only — 中央's candidates lose n1 (10-08) but keep n2 and r1: social_contact 2;
    the October decline r2 (ibasho) is gone."""
    f = area_figures(town_conn, directory[1], rules, ON, 1)
    assert [m.key for m in f.months] == ["2026-11"]
    unmet = {(u.area, u.need): u.total for u in f.unmet}
    assert unmet == {("中央", "social_contact"): 2, ("中央", "respite"): 1, ("北部", "respite"): 3}


def test_a_dv_household_is_never_counted_by_area(town_conn, directory, rules):
    """離島 has one household: its DV flag (conference.yaml locked_flags) would say where a DV victim
    lives. Neither its pattern nor 「いずれかのパターン」 counts it, in any output; 北部's DV household
    that also has an 8050 flag is counted under 8050 only."""
    from engine.region.view import area_view, csv_of, json_of, text_of
    from tests.region.town import _flag

    config = directory[1]
    assert config.conference.locked_flags == ("dv",)
    add_household(town_conn, "I1", person(34), area="離島")
    _flag(town_conn, 20, "I1", "dv", "2026-11-02")
    _flag(town_conn, 21, "N1", "dv", "2026-11-21")
    view = area_view(town_conn, config, rules, ON, MONTHS)
    island, north = view.figures.of("離島", "2026-11"), view.figures.of("北部", "2026-11")
    assert island.households == 1 and island.flagged == {} and island.flagged_any == 0
    assert north.flagged == {"8050": 1} and north.flagged_any == 1
    assert "dv" not in view.figures.patterns()
    title = rules.flags["dv"].title
    for out in (text_of(view), csv_of(view), json_of(view)):
        assert title not in out and '"dv"' not in out


def test_unmet_needs_past_the_grace_follow_the_gap_audits_rule(conn, directory, rules):
    """期限を過ぎて未対応 is the gap audit's need_without_referral: a need left open past the grace on a
    case still open. Found by a review: an archived case's open need counted in the area view only."""
    from engine.participation.audit import participation_violations
    from tests.region.town import _case, _flag, _need

    for hid, case_id, is_open in (("A1", "K1", 0), ("A2", "K2", 1)):
        add_household(conn, hid, person(70), area="中央")
        _flag(conn, int(hid[1]), hid, "8050", "2026-09-20")
        _case(conn, case_id, hid, int(hid[1]), "2026-09-20", ["2026-09-30"], is_open=is_open)
        _need(conn, int(hid[1]), case_id, "social_contact", "2026-10-01", "open")
    conn.commit()
    gaps: list = []
    participation_violations(conn, directory[1], ON, lambda kind, *rest: gaps.append((kind, rest)))
    f = area_figures(conn, directory[1], rules, ON, MONTHS)
    assert [kind for kind, _ in gaps].count("need_without_referral") == 1
    assert f.of("中央", "2026-10").needs_open_past_grace == 1


def test_a_case_opened_for_a_dv_pattern_only_is_not_counted_by_area(town_conn, directory, rules):
    """離島's one household, flagged dv only, had its case opened, conferenced and a need recorded:
    「開始した事案 1」 beside no flagged household would say the case came from a hidden pattern
    (found by a second review). A case with another pattern besides is counted as before."""
    from tests.region.town import _case, _flag, _need

    add_household(town_conn, "I1", person(34), area="離島")
    _flag(town_conn, 20, "I1", "dv", "2026-11-02")
    _case(town_conn, "KDV", "I1", 20, "2026-11-02", ["2026-11-10"])
    _need(town_conn, 20, "KDV", "social_contact", "2026-11-12", "unmatched")
    town_conn.commit()
    f = area_figures(town_conn, directory[1], rules, ON, MONTHS)
    island = f.of("離島", "2026-11")
    assert (island.flagged_any, island.cases_opened, island.conferenced, island.needs_recorded) == (0, 0, 0, 0)
    assert not [u for u in f.unmet if u.area == "離島"]
