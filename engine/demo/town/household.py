"""One household from start to finish: a natural household or a planted scenario, its members,
address, identities, and all its records."""

from __future__ import annotations

from engine.demo.town.chunk import Chunk, Household
from engine.demo.town.compose import address, compose, identify
from engine.demo.town.household_records import consultation, household_records
from engine.demo.town.names import AREAS, FOREIGN_HOUSEHOLD_SHARE, NATIONALITIES
from engine.demo.town.person_records import person_records
from engine.demo.town.planting import PLANTERS, plant_hikikomori
from engine.demo.town.population import (
    ASSISTANCE_RATE,
    FOREIGN_HOUSEHOLD_TYPES,
    HOUSEHOLD_TYPES,
    SCENARIOS_WITH_ARREARS,
)


def household(c: Chunk, index: int, next_pid: int) -> int:
    """Generate household number `index` (0-based) with its members and records."""
    r = c.r
    scenario = c.scenario_pick(r)
    finish = None
    foreign = None
    if scenario is None:
        if r() < FOREIGN_HOUSEHOLD_SHARE:
            foreign = NATIONALITIES(r)
            kind = FOREIGN_HOUSEHOLD_TYPES(r)
        else:
            kind = HOUSEHOLD_TYPES(r)
        members = compose(c, kind)
    else:
        kind, members, finish = PLANTERS[scenario](c)
        c.planted[scenario] += 1
        if scenario == "foreign_household_risk":
            foreign = NATIONALITIES(r)
    c.seen.clear()
    house = Household(f"H{index + 1:07d}", members, kind)
    house.foreign = foreign
    house.arrears_planted = scenario in SCENARIOS_WITH_ARREARS
    house.tenant = r() < (0.2 if kind in ("single_elderly", "single_parent") else 0.06)
    if scenario == "8050":
        c.planted["hikikomori"] += 1
    elif scenario == "multi_domain":
        house.assistance = r() < 0.4
    else:
        house.assistance = r() < ASSISTANCE_RATE.get(kind, 0.005)
    if scenario != "8050" and plant_hikikomori(c, house):
        c.planted["hikikomori"] += 1
    area = AREAS(r)
    c.households.append([house.hid, area, address(c, area, house.tenant)])
    next_pid = identify(c, house, next_pid)
    for m in members:
        person_records(c, m, house)
    household_records(c, house)
    if finish is not None:
        finish(house)
    if any(m.hikikomori for m in members) and scenario != "8050" and r() < 0.2:
        withdrawn = next(m for m in members if m.hikikomori)
        consultation(c, withdrawn if r() < 0.4 else members[0], "ひきこもり", ended_share=0.4)
    return next_pid
