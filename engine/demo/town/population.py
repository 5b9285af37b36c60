"""The population model: household types, ages, care and disability, arrears, public assistance,
and the planted scenarios with their rates per household."""

from __future__ import annotations

from engine.demo.town.picker import Picker

PATTERNS = (
    "8050",
    "double_care",
    "young_carer",
    "hikikomori",
    "isolated_elder",
    "self_neglect",
    "multiple_arrears",
    "child_risk",
    "dv",
    "parent_disability_child",
    "foreign_household_risk",
    "multi_domain",
)

# Household types of Japanese households (per mille), ~2.26 persons per household.
HOUSEHOLD_TYPES = Picker(
    [
        ("single_young", 118),
        ("single_middle", 92),
        ("single_elderly", 145),
        ("couple", 75),
        ("couple_elderly", 135),
        ("couple_children", 235),
        ("single_parent", 70),
        ("three_generation", 64),
        ("elder_with_adult_child", 50),
        ("other", 16),
    ]
)
FOREIGN_HOUSEHOLD_TYPES = Picker([("single_young", 45), ("couple", 15), ("couple_children", 32), ("single_parent", 8)])


def elderly_weight(age: int) -> float:
    """Relative number of people of `age` (65+) in a Japanese town (baby boomers ~75-79)."""
    if age < 70:
        return 7.4
    if age < 75:
        return 9.0
    if age < 80:
        return 7.5
    if age < 85:
        return 5.8
    if age < 90:
        return 3.8
    if age < 95:
        return 1.8
    return 0.5 if age < 100 else 0.1


ELDERLY_AGE = Picker((a, elderly_weight(a)) for a in range(65, 101))
# Living alone grows with age (widowhood).
SINGLE_ELDERLY_AGE = Picker((a, elderly_weight(a) * (1 + (a - 65) / 12)) for a in range(65, 101))
OLD_ELDERLY_AGE = Picker((a, elderly_weight(a)) for a in range(75, 96))

CARE_LEVELS = Picker(
    [
        ("要支援1", 14),
        ("要支援2", 14),
        ("要介護1", 20),
        ("要介護2", 17),
        ("要介護3", 13),
        ("要介護4", 12),
        ("要介護5", 10),
    ]
)
HEAVY_CARE = frozenset(("要介護3", "要介護4", "要介護5"))
DEMENTIA = Picker([("自立", 5), ("I", 20), ("IIa", 18), ("IIb", 20), ("IIIa", 15), ("IIIb", 9), ("IV", 9), ("M", 4)])
DISABILITY_CHILD = Picker([("療育", 75), ("身体", 20), ("精神", 5)])
DISABILITY_YOUNG = Picker([("身体", 25), ("療育", 30), ("精神", 45)])
DISABILITY_MIDDLE = Picker([("身体", 50), ("療育", 10), ("精神", 40)])
DISABILITY_OLD = Picker([("身体", 92), ("精神", 6), ("療育", 2)])
ARREARS_MONTHS = Picker(
    [(1, 25), (2, 20), (3, 15), (4, 10), (5, 8), (6, 7), (7, 3), (8, 3), (9, 3), (10, 2), (11, 2), (12, 2)]
)
ARREARS_KIND_COUNT = Picker([(1, 70), (2, 22), (3, 8)])
ARREARS_SOURCE = {"resident_tax": "住民税", "kokuho": "国保", "water": "水道", "rent": "市営住宅", "school_fee": "学校"}

# Planted scenarios: probability per household. Rates are net of what occurs naturally, so that
# each pattern's total prevalence lands near its target (see tests/demo/test_generate.py's docstring).
SCENARIOS = (
    ("8050", 0.0036),
    ("double_care", 0.0016),
    ("young_carer", 0.0010),
    ("isolated_elder", 0.0020),
    ("self_neglect", 0.0012),
    ("multiple_arrears", 0.0025),
    ("child_risk", 0.0015),
    ("dv", 0.0010),
    ("foreign_household_risk", 0.0007),
    ("multi_domain", 0.0035),
)
SCENARIOS_WITH_ARREARS = ("multiple_arrears", "child_risk", "double_care", "multi_domain")
# 生活保護 by household type (~1.7% of households overall).
ASSISTANCE_RATE = {
    "single_elderly": 0.04,
    "single_parent": 0.06,
    "single_middle": 0.025,
    "elder_with_adult_child": 0.025,
}
# ひきこもり is planted per person aged 15-64, by 続柄 (young adults living with parents most).
HIKIKOMORI_RATE = {"子": 0.056, "世帯主": 0.029}
HIKIKOMORI_RATE_OTHER = 0.009
