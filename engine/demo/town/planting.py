"""The planted patterns: each scenario returns (household kind, members, finish) where `finish`
adds the scenario's own records once ids and natural records exist; ひきこもり is planted per
person on top of any household."""

from __future__ import annotations

from collections.abc import Callable

from engine.demo.town.chunk import Chunk, Household, Member
from engine.demo.town.compose import children, compose, new_head, spouse_of
from engine.demo.town.household_records import arrears, consultation
from engine.demo.town.population import (
    CARE_LEVELS,
    DEMENTIA,
    ELDERLY_AGE,
    HIKIKOMORI_RATE,
    HIKIKOMORI_RATE_OTHER,
    HOUSEHOLD_TYPES,
    OLD_ELDERLY_AGE,
)

Finish = Callable[[Household], None]  # adds a scenario's own records once the household exists
Planted = tuple[str, list[Member], Finish | None]  # household kind, members (head first), finish


def plant_hikikomori(c: Chunk, house: Household) -> bool:
    """Mark ひきこもり among members aged 15-64 (not in households on public assistance)."""
    if house.assistance and c.r() < 0.9:
        return False
    alone = len(house.members) == 1 or house.kind == "elder_with_adult_child"
    planted = False
    for m in house.members:
        if not 15 <= m.age <= 64 or m.absence or m.hikikomori or m.disability:
            continue
        if m.rel == "子":
            rate = HIKIKOMORI_RATE["子"]
        elif m.rel == "世帯主":
            rate = HIKIKOMORI_RATE["世帯主"] if alone else 0.0
        elif m.rel in ("妻", "夫") and any(k.age < 18 for k in house.members):
            rate = 0.0
        else:
            rate = HIKIKOMORI_RATE_OTHER
        if rate and c.r() < rate:
            m.hikikomori = True
            planted = True
    return planted


# ---- the scenarios


def plant_8050(c: Chunk) -> Planted:
    """An elderly parent (75+) with care certification and a withdrawn child of 40-64."""
    r = c.r
    parent = Member("世帯主", "F" if r() < 0.7 else "M", OLD_ELDERLY_AGE(r))
    parent.care = CARE_LEVELS(r)
    child = Member("子", "M" if r() < 0.65 else "F", min(64, max(40, parent.age - c.between(24, 38))))
    child.hikikomori = child.no_service = True
    if r() < 0.6:
        members = [parent, child]
        if r() < 0.25:
            members.insert(1, spouse_of(c, parent))
            members[1].age = max(70, members[1].age)
    else:
        child.rel = "世帯主"
        parent.rel = "母" if parent.sex == "F" else "父"
        members = [child, parent]

    def finish(house: Household) -> None:
        if r() < 0.3:
            consultation(c, parent, "ひきこもり" if r() < 0.6 else "介護", ended_share=0.3)

    return "elder_with_adult_child", members, finish


def plant_double_care(c: Chunk) -> Planted:
    """Parents with a preschool child and a parent needing care, under stress."""
    r = c.r
    head = new_head(c, 30, 46, 0.85)
    spouse = spouse_of(c, head)
    mother = spouse if spouse.sex == "F" else head
    kids = children(c, mother.age, 1 + (r() < 0.5), youngest_max=5)
    elder_sex = "F" if r() < 0.6 else "M"
    elder = Member("母" if elder_sex == "F" else "父", elder_sex, min(95, head.age + c.between(26, 38)))
    elder.care = CARE_LEVELS(r)
    members = [head, spouse, *kids, elder]

    def finish(house: Household) -> None:
        roll = r()
        if roll < 0.45:
            c.record(kids[-1], "子ども家庭", "waiting_list", "保育所", max(kids[-1].birth + 1, c.past(300, 14)))
        elif roll < 0.7 and c.first_time(elder.pid, "特養"):
            c.record(elder, "介護保険", "waiting_list", "特養", c.past(500, 14))
        else:
            arrears(c, house, 1 + (r() < 0.3), lambda: c.between(1, 6), ended_share=0.0)

    return "three_generation", members, finish


def plant_young_carer(c: Chunk) -> Planted:
    """A child of 10-17 missing 30+ school days, caring for a parent or grandparent at the head."""
    r = c.r
    carer = Member("子", "F" if r() < 0.55 else "M", c.between(10, 17))
    carer.absence = c.between(30, 120)
    if r() < 0.75:
        head = new_head(c, carer.age + 22, min(58, carer.age + 40), 0.2)
        head.disability = "精神" if r() < 0.7 else "療育"
        siblings = children(c, head.age, int(r() < 0.5))
        members = [head, carer, *siblings]
        kind = "single_parent"
    else:
        head = new_head(c, carer.age + 50, min(88, carer.age + 70), 0.45)
        head.care = CARE_LEVELS(r)
        parent = Member("子", "F" if r() < 0.8 else "M", carer.age + c.between(22, 38))
        carer.rel = "孫"
        members = [head, parent, carer]
        kind = "three_generation"
    return kind, members, None


def plant_isolated_elder(c: Chunk) -> Planted:
    """A person of 75+ living alone, with care certification or dementia, using no service."""
    r = c.r
    m = Member("世帯主", "F" if r() < 0.7 else "M", OLD_ELDERLY_AGE(r))
    if r() < 0.8:
        m.care = CARE_LEVELS(r)
    else:
        m.dementia = DEMENTIA(r) if r() < 0.5 else "IIa"
    m.no_service = True
    return "single_elderly", [m], None


def plant_self_neglect(c: Chunk) -> Planted:
    """A hoarding / self-neglect complaint about a person living alone."""
    r = c.r
    m = Member("世帯主", "M" if r() < 0.6 else "F", c.between(40, 64) if r() < 0.4 else ELDERLY_AGE(r))

    def finish(house: Household) -> None:
        consultation(c, m, "ごみ" if r() < 0.75 else "セルフネグレクト", ended_share=0.0)

    return "single_elderly" if m.age >= 65 else "single_middle", [m], finish


def plant_multiple_arrears(c: Chunk) -> Planted:
    """Arrears of 3+ months in two or three kinds (tax, 国保, water, rent, school fees)."""
    r = c.r
    kind = HOUSEHOLD_TYPES(r)
    members = compose(c, kind)

    def finish(house: Household) -> None:
        arrears(c, house, 2 + (r() < 0.3), lambda: c.between(3, 12), ended_share=0.0)
        if r() < 0.4:
            consultation(c, house.members[0], "生活困窮", ended_share=0.2)

    return kind, members, finish


def plant_child_risk(c: Chunk) -> Planted:
    """A missed infant check with no contact, or a 特定妊婦 in a household in arrears."""
    r = c.r
    single = r() < 0.35
    head = new_head(c, 19, 42, 0.0 if single else 0.88)
    members = [head] if single else [head, spouse_of(c, head)]
    mother = head if head.sex == "F" else members[1]
    if r() < 0.7:
        kids = children(c, mother.age, int(r() < 0.5), youngest_max=5)
        kids[-1].age = max(1, kids[-1].age)
        kids[-1].check_missed = "連絡なし"

        def registered(house: Household) -> None:  # 要対協 often knows such a child already
            if r() < 0.4:
                c.record(
                    kids[-1],
                    "子ども家庭",
                    "yotaikyo_registered",
                    "要支援児童",
                    max(kids[-1].birth + 1, c.past(365, 14)),
                )

        return ("single_parent" if single else "couple_children"), [*members, *kids], registered

    def finish(house: Household) -> None:
        c.record(mother, "母子保健", "specific_pregnancy", "登録", c.past(240, 7))
        arrears(c, house, 1 + (r() < 0.3), lambda: c.between(1, 8), ended_share=0.0)

    return ("single_young" if single else "couple"), members, finish


def plant_dv(c: Chunk) -> Planted:
    """A DV support measure and/or a DV consultation (often a mother who fled with children)."""
    r = c.r
    if r() < 0.65:
        head = new_head(c, 24, 45, 0.0)
        members = [head, *children(c, head.age, 1 + (r() < 0.4), youngest_max=15)]
        kind = "single_parent"
    else:
        head = new_head(c, 20, 60, 0.0)
        members, kind = [head], "single_young"

    def finish(house: Household) -> None:
        measure = r() < 0.7
        if measure:
            c.record(head, "住民記録", "dv_support_measure", "住民票等の閲覧制限", c.past(3 * 365, 14))
        if not measure or r() < 0.5:
            consultation(c, head, "DV", ended_share=0.3 if measure else 0.0)

    return kind, members, finish


def plant_foreign_household_risk(c: Chunk) -> Planted:
    """A foreign-national family with an unenrolled school-age child or a missed infant check."""
    r = c.r
    single = r() < 0.25
    head = new_head(c, 24, 48, 0.1 if single else 0.9)
    members = [head] if single else [head, spouse_of(c, head)]
    mother = head if single or head.sex == "F" else members[1]
    if r() < 0.5:
        kids = children(c, mother.age, int(r() < 0.5))
        child = Member("子", "M" if r() < 0.5 else "F", c.between(7, 15))
        child.unenrolled = True
        kids.append(child)
    else:
        kids = children(c, mother.age, int(r() < 0.4), youngest_max=5)
        kids[-1].age = max(1, kids[-1].age)
        kids[-1].check_missed = "連絡なし" if r() < 0.5 else "連絡あり"
    return ("single_parent" if single else "couple_children"), [*members, *kids], None


def plant_multi_domain(c: Chunk) -> Planted:
    """A household touching three silos: care, disability and hardship / assistance / school."""
    r = c.r
    roll = r()
    if roll < 0.4:
        parent = Member("世帯主", "F" if r() < 0.7 else "M", OLD_ELDERLY_AGE(r))
        parent.care = CARE_LEVELS(r)
        child = Member("子", "M" if r() < 0.6 else "F", max(35, parent.age - c.between(24, 36)))
        child.disability = "精神" if r() < 0.6 else "療育"
        members, kind = [parent, child], "elder_with_adult_child"
    elif roll < 0.7:
        head = new_head(c, 30, 50, 0.2)
        head.disability = "精神" if r() < 0.6 else "身体"
        child = Member("子", "M" if r() < 0.5 else "F", c.between(7, 15))
        child.absence = c.between(5, 29)
        members, kind = [head, child], "single_parent"
    else:
        head = Member("世帯主", "M", ELDERLY_AGE(r))
        head.care = CARE_LEVELS(r)
        spouse = spouse_of(c, head)
        spouse.disability = "身体"
        members, kind = [head, spouse], "couple_elderly"

    def finish(house: Household) -> None:
        if not house.assistance:
            arrears(c, house, 1, lambda: c.between(1, 8), ended_share=0.0)

    return kind, members, finish


PLANTERS: dict[str, Callable[[Chunk], Planted]] = {
    "8050": plant_8050,
    "double_care": plant_double_care,
    "young_carer": plant_young_carer,
    "isolated_elder": plant_isolated_elder,
    "self_neglect": plant_self_neglect,
    "multiple_arrears": plant_multiple_arrears,
    "child_risk": plant_child_risk,
    "dv": plant_dv,
    "foreign_household_risk": plant_foreign_household_risk,
    "multi_domain": plant_multi_domain,
}
