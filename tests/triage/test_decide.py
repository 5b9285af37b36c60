"""The pathway of a new case (engine/triage/decide.py) on CaseFacts made by hand: each shipped rule of
configs/triage_rules.yaml picks its pathway and agency, the limits the rules cannot change (urgent,
DV lock, つなぎ直し) come first, a rule without an eligible agency is skipped, and every `when`
condition holds for a case inside it and not for one just outside."""

from __future__ import annotations

import pytest

from engine.triage.decide import CaseFacts, decide, holds
from engine.triage.model import Triage, When


def facts(*flags: str, silos=(), severity="medium", served=(), consent=False, area="中央") -> CaseFacts:
    return CaseFacts(
        flag_ids=frozenset(flags),
        severity=severity,
        silos=frozenset(silos),
        served=frozenset(served),
        all_consented=consent,
        area=area,
    )


def pick(cfg, f: CaseFacts, *, urgent=False, locked=False, relinked=False, led=None, skip=frozenset()):
    return decide(cfg, f, urgent=urgent, locked=locked, relinked=relinked, led=led or {}, skip=skip)


def without(cfg, *rule_ids: str):
    """The configuration without some of the shipped triage rules."""
    kept = tuple(r for r in cfg.triage.rules if r.id not in rule_ids)
    return cfg.model_copy(update={"triage": cfg.triage.model_copy(update={"rules": kept})})


# --- each shipped rule ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "f, expected",
    [
        (
            facts("young_carer", silos=("子ども", "教育", "介護", "障害"), severity="high"),
            ("conference", "complex", None),
        ),
        (facts("hikikomori", "multiple_arrears", silos=("困窮",)), ("conference", "several_problems", None)),
        (facts("child_risk", silos=("子ども",), severity="high"), ("assessment", "child_safety", "kodomo_center")),
        (facts("hikikomori", silos=("困窮",), served=("困窮",)), ("served", "already_served", "jiritsu_soudan")),
        (facts("8050", silos=("介護", "困窮"), severity="high"), ("conference", "care_and_hardship", None)),
        (
            facts("isolated_elder", silos=("介護",), severity="high", area="北部"),
            ("assessment", "elder_alone", "houkatsu_kita"),
        ),
        (facts("isolated_elder", silos=("介護",), area="南部"), ("assessment", "elder_alone", "houkatsu_minami")),
        (facts("double_care", silos=("子ども", "介護")), ("assessment", "family_care", "kodomo_center")),
        (facts("foreign_household_risk", silos=("子ども", "教育")), ("assessment", "family_care", "kodomo_center")),
        (facts("multiple_arrears", silos=("困窮",)), ("watch", "arrears_only", "jiritsu_soudan")),
        (facts("multiple_arrears", silos=("困窮",), severity="high"), ("assessment", "fallback", "jiritsu_soudan")),
        (facts("self_neglect", silos=("介護", "障害", "困窮")), ("conference", "complex", None)),
    ],
    ids=lambda x: x[1] if isinstance(x, tuple) else None,
)
def test_each_shipped_rule_picks_its_pathway(cfg, f, expected):
    got = pick(cfg, f)
    assert (got.pathway, got.rule_id, got.agency_id) == expected, got.reason
    assert f"（振り分け規則 {expected[1]}）" in got.reason, "理由に振り分け規則の id を書くこと"
    if expected[2] and expected[0] != "watch":
        assert cfg.agencies[expected[2]].name in got.reason and f"{f.area}地区を担当" in got.reason
    elif expected[0] == "watch":  # no owner until the re-screen: no agency is named as 担当
        assert "担当:" not in got.reason


def test_child_safety_has_its_own_due_days(cfg):
    got = pick(cfg, facts("child_risk", silos=("子ども",), severity="high"))
    assert got.due_business_days == 5, "こども家庭センターは5営業日以内に確認する"
    assert pick(cfg, facts("isolated_elder", silos=("介護",))).due_business_days is None, "規定の間隔を使う"


def test_withdrawal_is_skipped_without_consent_because_its_centre_is_no_member(cfg):
    assert not cfg.agencies["hikikomori_npo"].member
    got = pick(cfg, facts("hikikomori", silos=("困窮",)))
    assert (got.pathway, got.rule_id, got.agency_id) == ("assessment", "fallback", "jiritsu_soudan")
    assert "規則 withdrawal は担当できる機関がないため適用しない" in got.reason, got.reason


def test_withdrawal_with_everyones_consent_goes_to_the_hikikomori_centre(cfg):
    got = pick(cfg, facts("hikikomori", silos=("困窮",), consent=True))
    assert (got.pathway, got.rule_id, got.agency_id) == ("assessment", "withdrawal", "hikikomori_npo")
    assert "適用しない" not in got.reason


def test_a_rule_whose_agency_does_not_serve_the_area_is_skipped(cfg):
    got = pick(cfg, facts("isolated_elder", silos=("介護",), area="離島"))  # no 地域包括 serves it
    assert (got.rule_id, got.agency_id) == ("fallback", "jiritsu_soudan")
    assert "規則 elder_alone は担当できる機関がない" in got.reason


def test_served_needs_a_serving_agency_in_a_silo_of_the_flags(cfg):
    """Served 保護 only: the flags' silo 困窮 is not served, so already_served does not hold."""
    got = pick(cfg, facts("hikikomori", silos=("困窮",), served=("保護",)))
    assert got.rule_id == "fallback" and got.pathway == "assessment"


# --- limits the rules cannot change -----------------------------------------------------------------
def test_urgent_always_goes_to_an_urgent_conference(cfg):
    for f in (facts("multiple_arrears", silos=("困窮",)), facts("dv", silos=("DV", "子ども"), severity="urgent")):
        got = pick(cfg, f, urgent=True, locked=True, relinked=True)
        assert (got.pathway, got.rule_id, got.agency_id) == ("urgent_conference", "urgent", None)
        assert "緊急" in got.reason


def test_a_locked_household_goes_to_a_conference(cfg):
    got = pick(cfg, facts("isolated_elder", silos=("介護",)), locked=True, relinked=True)
    assert (got.pathway, got.rule_id) == ("conference", "dv_lock")
    assert "DVロック" in got.reason and "一機関には任せない" in got.reason


def test_a_relinked_household_goes_to_a_conference(cfg):
    got = pick(cfg, facts("multiple_arrears", silos=("困窮",)), relinked=True)
    assert (got.pathway, got.rule_id) == ("conference", "relink")
    assert "つなぎ直し" in got.reason


def test_no_rule_means_a_conference_default(cfg):
    config = without(cfg, "fallback")
    got = pick(config, facts("parent_disability_child", silos=("障害", "子ども"), severity="low"))
    assert (got.pathway, got.rule_id, got.agency_id) == ("conference", "default", None)
    assert "どの振り分け規則にも当たらない" in got.reason and "適用しない" not in got.reason


def test_default_names_the_rules_skipped(cfg):
    got = pick(without(cfg, "fallback"), facts("hikikomori", silos=("困窮",)))
    assert got.rule_id == "default" and "（規則 withdrawal は担当できる機関がないため適用しない）" in got.reason


def test_no_triage_rules_means_every_case_to_a_conference(cfg):
    config = cfg.model_copy(update={"triage": Triage()})
    got = pick(config, facts("isolated_elder", silos=("介護",)))
    assert (got.pathway, got.rule_id) == ("conference", "default")


def test_skip_watch_passes_over_the_watch_rule(cfg):
    f = facts("multiple_arrears", silos=("困窮",))
    assert pick(cfg, f).pathway == "watch"
    got = pick(cfg, f, skip=frozenset({"watch"}))
    assert (got.pathway, got.rule_id, got.agency_id) == ("assessment", "fallback", "jiritsu_soudan")


def test_a_full_agency_is_still_taken_when_it_alone_serves_the_area(cfg):
    """No two 地域包括 share an area in the shipped registry: the one serving 港 is taken, however
    many cases it leads (a full agency is still better than none)."""
    led = {"houkatsu_chuo": 1000}
    got = pick(cfg, facts("isolated_elder", silos=("介護",), area="港"), led=led)
    assert got.agency_id == "houkatsu_chuo"


# --- every `when` condition: inside, and just outside ------------------------------------------------
CASE = facts("hikikomori", "multiple_arrears", silos=("困窮", "介護"), severity="medium", served=("困窮",))

CONDITIONS = [
    (When(flags=("hikikomori", "dv")), When(flags=("dv", "child_risk"))),
    (When(only_flags=("hikikomori", "multiple_arrears", "dv")), When(only_flags=("hikikomori",))),
    (When(min_severity="medium"), When(min_severity="high")),
    (When(max_severity="medium"), When(max_severity="low")),
    (When(min_silos=2), When(min_silos=3)),
    (When(max_silos=2), When(max_silos=1)),
    (When(min_flags=2), When(min_flags=3)),
    (When(max_flags=2), When(max_flags=1)),
    (When(consent="not_all"), When(consent="all")),
    (When(served="some"), When(served="all")),
    (When(), When(served="none")),
]


@pytest.mark.parametrize("inside, outside", CONDITIONS, ids=[repr(o) for _, o in CONDITIONS])
def test_each_when_condition_holds_inside_and_not_just_outside(inside, outside):
    assert holds(inside, CASE), f"{inside!r} は成り立つはず"
    assert not holds(outside, CASE), f"{outside!r} は成り立たないはず"


def test_consent_all_holds_only_with_everyones_consent():
    agreed = CASE.model_copy(update={"all_consented": True})
    assert holds(When(consent="all"), agreed) and not holds(When(consent="not_all"), agreed)


@pytest.mark.parametrize(
    "served, all_, some, none",
    [
        (("困窮", "介護"), True, True, False),  # every silo of the flags is served
        (("困窮",), False, True, False),  # one of two
        (("保護",), False, False, True),  # served, but in another silo
        ((), False, False, True),
    ],
)
def test_served_all_some_none(served, all_, some, none):
    f = CASE.model_copy(update={"served": frozenset(served)})
    got = tuple(holds(When(served=s), f) for s in ("all", "some", "none"))
    assert got == (all_, some, none), f"served={served}"


def test_served_all_needs_a_silo():
    """A case whose flags touch no silo is not 'served all' (an empty set is no proof of service)."""
    f = facts("x", silos=(), served=("困窮",))
    assert not holds(When(served="all"), f) and holds(When(served="none"), f)


def test_conditions_combine_with_and():
    w = When(flags=("hikikomori",), max_severity="medium", min_flags=3)
    assert not holds(w, CASE), "min_flags 3 が成り立たないので全体も成り立たない"
    assert holds(w.model_copy(update={"min_flags": 2}), CASE)
