"""Who lives in a household: its members by household type, then ids, names and birth dates, and
the household's address."""

from __future__ import annotations

from engine.demo.town.chunk import Chunk, Household, Member
from engine.demo.town.names import CITY, FAMILY, FOREIGN_NAMES, GIVEN_NAMES
from engine.demo.town.population import ELDERLY_AGE, OLD_ELDERLY_AGE, SINGLE_ELDERLY_AGE


def spouse_of(c: Chunk, head: Member) -> Member:
    if head.sex == "M":
        return Member("妻", "F", max(18, min(100, head.age - c.between(-2, 6))))
    return Member("夫", "M", max(18, min(100, head.age + c.between(-2, 6))))


def new_head(c: Chunk, lo: int, hi: int, male: float = 0.5) -> Member:
    return Member("世帯主", "M" if c.r() < male else "F", c.between(lo, hi))


def children(c: Chunk, mother_age: int, count: int, rel: str = "子", youngest_max: int | None = None) -> list[Member]:
    """Children born when the mother was 20-42; adult children over 35 have moved out."""
    kids = []
    for _ in range(count):
        age = mother_age - c.between(20, 42)
        if age < 0 or age > 35:
            continue
        kids.append(Member(rel, "M" if c.r() < 0.51 else "F", age))
    if youngest_max is not None and (not kids or min(k.age for k in kids) > youngest_max):
        # ensure a child of at most `youngest_max`, born when the mother was 18-44
        hi = min(youngest_max, max(0, mother_age - 18))
        kids.append(Member(rel, "M" if c.r() < 0.51 else "F", c.between(min(hi, max(0, mother_age - 44)), hi)))
    kids.sort(key=lambda k: -k.age)
    return kids


def compose(c: Chunk, kind: str) -> list[Member]:
    """Members of a natural household of `kind`, head first."""
    r = c.r
    if kind == "single_young":
        return [new_head(c, 18, 39, 0.55)]
    if kind == "single_middle":
        return [new_head(c, 40, 64, 0.6)]
    if kind == "single_elderly":
        return [Member("世帯主", "M" if r() < 0.32 else "F", SINGLE_ELDERLY_AGE(r))]
    if kind == "couple":
        head = new_head(c, 24, 64, 0.88)
        return [head, spouse_of(c, head)]
    if kind == "couple_elderly":
        head = Member("世帯主", "M" if r() < 0.9 else "F", ELDERLY_AGE(r))
        return [head, spouse_of(c, head)]
    if kind == "couple_children":
        head = new_head(c, 25, 62, 0.9)
        spouse = spouse_of(c, head)
        mother = spouse if spouse.sex == "F" else head
        kids = children(c, mother.age, 1 + (r() < 0.62) + (r() < 0.2))
        return [head, spouse, *(kids or children(c, mother.age, 0, youngest_max=35))]
    if kind == "single_parent":
        head = new_head(c, 22, 58, 0.13)
        kids = children(c, head.age, 1 + (r() < 0.4), youngest_max=19)
        return [head, *kids]
    if kind == "three_generation":
        head = new_head(c, 32, 58, 0.9)
        spouse = spouse_of(c, head)
        mother = spouse if spouse.sex == "F" else head
        elders = []
        parent_age = min(100, head.age + c.between(24, 36))
        if r() < 0.6:
            elders.append(Member("母", "F", parent_age - c.between(0, 4)))
        if r() < 0.55 or not elders:
            elders.append(Member("父", "M", parent_age))
        kids = children(c, mother.age, 1 + (r() < 0.6) + (r() < 0.25), youngest_max=20)
        return [head, spouse, *kids, *elders]
    if kind == "elder_with_adult_child":
        parent_age = OLD_ELDERLY_AGE(r) if r() < 0.7 else c.between(65, 74)
        parent_sex = "F" if r() < 0.7 else "M"
        child_age = max(30, parent_age - c.between(24, 38))
        child_sex = "M" if r() < 0.6 else "F"
        if r() < 0.6:
            return [Member("世帯主", parent_sex, parent_age), Member("子", child_sex, child_age)]
        return [
            Member("世帯主", child_sex, child_age),
            Member("母" if parent_sex == "F" else "父", parent_sex, parent_age),
        ]
    # other: siblings, or an unrelated cohabitant
    head = new_head(c, 25, 80, 0.5)
    if r() < 0.6:
        other = Member("兄弟姉妹", "M" if r() < 0.5 else "F", max(18, min(100, head.age + c.between(-8, 8))))
    else:
        other = Member("その他", "M" if r() < 0.5 else "F", c.between(22, 70))
    return [head, other]


# ---- identity: ids, names, birth dates


def identify(c: Chunk, house: Household, next_pid: int) -> int:
    """Give every member an id, a birth date and (shared family) name; return the next id."""
    r = c.r
    cal = c.cal
    foreign = house.foreign
    if foreign:
        families, males, females, sep = FOREIGN_NAMES[foreign]
        family = families[int(r() * len(families))]
    else:
        family = FAMILY(r)
    rows = c.persons
    for m in house.members:
        age = m.age
        lo = cal.birth_lo[age]
        m.birth = birth = lo + int(r() * (cal.birth_hi[age] - lo + 1))
        m.school_age = age if birth <= cal.school_cut[age] else age - 1
        m.pid = f"P{next_pid:08d}"
        next_pid += 1
        if foreign:
            pool = males if m.sex == "M" else females
            given = pool[int(r() * len(pool))]
            name, kana = f"{family[0]}{sep}{given[0]}", f"{family[1]}{sep}{given[1]}"
            nationality = foreign
        else:
            born = cal.today_year - age
            cohort = 0 if born < 1965 else (1 if born < 1995 else 2)
            pool = GIVEN_NAMES[(m.sex, cohort)]
            given = pool[int(r() * len(pool))]
            name, kana = f"{family[0]} {given[0]}", f"{family[1]} {given[1]}"
            nationality = "日本"
        rows.append([m.pid, house.hid, name, kana, c.fmt(birth), m.sex, m.rel, nationality])
    return next_pid


def address(c: Chunk, area: str, tenant: bool) -> str:
    """'みどり市中央2丁目14-3', sometimes with a flat number, or a 市営住宅 flat for tenants."""
    chome, block, number = c.between(1, 5), c.between(1, 30), c.between(1, 20)
    if tenant:
        return f"{CITY}{area}{chome}丁目{block}-{number} 市営{area}団地{c.between(1, 8)}号棟{c.between(1, 5)}0{c.between(1, 8)}"
    if c.r() < 0.3:
        return f"{CITY}{area}{chome}丁目{block}-{number}-{c.between(1, 4)}0{c.between(1, 9)}"
    return f"{CITY}{area}{chome}丁目{block}-{number}"
