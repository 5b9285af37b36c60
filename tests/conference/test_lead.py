"""Proposing a lead agency (engine/conference/lead.py): the first lead rule naming a flag, load
balancing with a tie-break by id, an agency already serving a member preferred, members only for a
支援会議, a full agency yielding; the reason is stored."""

from __future__ import annotations

from engine.conference.lead import propose_lead
from tests.helpers.conference import conference_only, cycle
from tests.helpers.town import add_household, person


def lead(cfg, flags, area="中央", served=(), kind="multi", led=None):
    return propose_lead(
        cfg, area=area, flag_ids=set(flags), served_silos=set(served), conference_type=kind, led=led or {}
    )


def test_first_rule_naming_a_flag_chooses_and_the_reason_is_stored(cfg):
    p = lead(cfg, {"8050", "dv"})
    assert p.agency_id == "dv_center" and p.rule_id == "dv_safety" and "（規則 dv_safety）" in p.reason
    p = lead(cfg, {"8050"}, area="港")
    assert p.agency_id == "houkatsu_chuo" and "港地区を担当" in p.reason


def test_lead_load_balancing_and_tie_break_by_id(cfg):
    # parent_disability_child → silo 障害: kikan_soudan (capacity 60) and soudan_jigyosho_hikari (capacity 20)
    assert lead(cfg, {"parent_disability_child"}).agency_id == "kikan_soudan"  # both idle: id order
    p = lead(cfg, {"parent_disability_child"}, led={"kikan_soudan": 30, "soudan_jigyosho_hikari": 4})
    assert p.agency_id == "soudan_jigyosho_hikari" and "現在の主担当 4件／上限 20件" in p.reason  # 20% < 50%
    assert "候補 2 機関から選択" in p.reason


def test_an_agency_already_serving_a_member_is_preferred(cfg):
    p = lead(cfg, {"parent_disability_child"}, served={"障害"}, led={"kikan_soudan": 0, "soudan_jigyosho_hikari": 0})
    assert "既に世帯員を支援している" in p.reason


def test_support_meeting_lead_must_be_a_member(cfg):
    assert lead(cfg, {"hikikomori"}).agency_id == "hikikomori_npo"  # ひきこもり: its own centre
    p = lead(cfg, {"hikikomori"}, kind="support")  # …which is no 支援会議 member: the next rule naming it
    assert p.agency_id == "jiritsu_soudan" and p.rule_id == "hikikomori_support_meeting"


def test_arrears_go_to_the_jiritsu_soudan_not_to_an_agency_of_the_same_silo(cfg):
    """Issue 16: the ひきこもり centre (silo 困窮, id first) was proposed for arrears of people in their 70s."""
    for flags in ({"multiple_arrears"}, {"multiple_arrears", "hikikomori"}, {"self_neglect"}):
        assert lead(cfg, flags).agency_id == "jiritsu_soudan", flags


def test_full_agency_yields_to_one_with_room(cfg):
    assert lead(cfg, {"parent_disability_child"}, led={"kikan_soudan": 60}).agency_id == "soudan_jigyosho_hikari"


def test_cases_spread_over_agencies_in_one_run(conn, workspace, rules, cfg):
    for i in range(6):
        add_household(conn, f"HW{i}", person(48, "世帯主", sex="M"), area="西部")  # hikikomori (medium)
    cycle(conn, workspace, rules, conference_only(cfg))  # triage would send them to an assessment
    leads = [agency for (agency,) in conn.execute("SELECT lead_agency_id FROM cases ORDER BY case_id")]
    assert len(leads) == 6 and set(leads) == {"jiritsu_soudan"}  # support meetings: the NPO is not a member
    assert [r for (r,) in conn.execute("SELECT lead_reason FROM cases ORDER BY case_id")][-1].count(
        "現在の主担当 5件"
    ) == 1
