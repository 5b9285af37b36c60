"""Each shipped flag (patterns 1-12) fires on a household written for it and not on near misses."""

import json

import pytest

from engine.screening.screen import screen
from tests.helpers.town import ON, add_household, person

W = "2024-04-01"  # a start date well before ON
CASES = {
    "8050": (
        [
            [person(82, "世帯主", ("care_level", "要介護2")), person(52, "子", sex="M")],
            [person(75, "世帯主", ("care_level", "要支援1")), person(64, "子", ("earned_income", "0"))],
            [person(90, "母", ("care_level", "要介護5")), person(40, "世帯主")],
        ],
        [
            [person(82, "世帯主", ("care_level", "要介護2")), person(65, "子")],
            [person(78, "世帯主", ("care_level", "要介護2"), sex="M"), person(62, "妻", ("earned_income", "0"))],
            [person(82, "世帯主", ("care_level", "要介護2")), person(52, "子", ("earned_income", "1200000"))],
            [person(74, "世帯主", ("care_level", "要介護2")), person(52, "子")],
            [person(82, "世帯主"), person(52, "子")],
            [person(82, "世帯主", ("care_level", "要介護2")), person(52, "子", ("service_use", "障害"))],
            [person(82, "世帯主", ("care_level", "要介護2", W, "2025-01-01")), person(52, "子")],
            [person(82, "世帯主", ("care_level", "要介護2")), person(39, "子")],
        ],
    ),
    "double_care": (
        [
            [
                person(38, "世帯主", ("arrears", "kokuho:2"), ("earned_income", "3000000")),
                person(3, "子"),
                person(70, "母", ("care_level", "要支援1")),
            ]
        ],
        [
            [
                person(38, "世帯主", ("earned_income", "3000000")),
                person(3, "子"),
                person(70, "母", ("care_level", "要支援1")),
            ],
            [
                person(38, "世帯主", ("arrears", "kokuho:2")),
                person(6, "子"),
                person(70, "母", ("care_level", "要支援1")),
            ],
        ],
    ),
    "young_carer": (
        [
            [person(45, "世帯主", ("disability_certificate", "精神")), person(14, "子", ("school_absence_days", "45"))],
            [person(45, "妻", ("care_level", "要介護1")), person(18, "子", ("school_absence_days", "30"))],
            [person(45, "夫", ("disability_certificate", "療育")), person(6, "子", ("school_absence_days", "30"))],
        ],
        [
            [person(45, "世帯主", ("disability_certificate", "精神")), person(14, "子", ("school_absence_days", "29"))],
            [person(45, "世帯主", ("disability_certificate", "精神")), person(19, "子", ("school_absence_days", "45"))],
            [person(45, "世帯主", ("disability_certificate", "身体")), person(14, "子", ("school_absence_days", "45"))],
            [
                person(45, "世帯主"),
                person(20, "子", ("disability_certificate", "精神")),
                person(14, "子", ("school_absence_days", "45")),
            ],
        ],
    ),
    "hikikomori": (
        [
            [person(60, "世帯主", ("earned_income", "4000000")), person(30, "子")],
            [person(30, "世帯主", ("earned_income", "2000000", "2020-04-01", "2026-03-01"))],
            [person(64, "世帯主", ("earned_income", "2000000", "2020-04-01", "2026-05-26"))],
            [person(15, "子"), person(45, "世帯主", ("earned_income", "1"))],
        ],
        [
            [person(30, "世帯主", ("earned_income", "2000000", "2020-04-01", "2026-09-01"))],
            [person(30, "世帯主", ("earned_income", "2000000", "2020-04-01", "2026-05-27"))],
            [person(30, "世帯主", ("earned_income", "0"))],
            [person(14, "子"), person(45, "世帯主", ("earned_income", "1"))],
            [person(45, "世帯主", ("earned_income", "4000000")), person(14, "子")],
            [person(65, "世帯主")],
            [person(20, "世帯主", ("school_enrollment", "大学"))],
        ],
    ),
    "isolated_elder": (
        [[person(80, "世帯主", ("dementia", "IIa"))], [person(75, "世帯主", ("dementia", "I"))]],
        [
            [person(80, "世帯主", ("dementia", "自立"))],
            [person(80, "世帯主", ("dementia", "IIa"), ("service_use", "介護"))],
            [person(80, "世帯主", ("dementia", "IIa")), person(78, "夫")],
            [person(74, "世帯主", ("care_level", "要介護1"))],
        ],
    ),
    "self_neglect": (
        [[person(55, "世帯主", ("consultation", "ごみ"), ("earned_income", "1"))]],
        [
            [person(55, "世帯主", ("consultation", "生活困窮"))],
            [person(55, "世帯主", ("consultation", "ごみ")), person(50, "妻")],
        ],
    ),
    "multiple_arrears": (
        [
            [person(50, "世帯主", ("arrears", "kokuho:3"), ("arrears", "water:5"))],
            [person(50, "世帯主", ("arrears", "rent:4")), person(48, "妻", ("arrears", "school_fee:3"))],
        ],
        [
            [person(50, "世帯主", ("arrears", "kokuho:3"), ("arrears", "kokuho:6", "2025-04-01"))],
            [person(50, "世帯主", ("arrears", "kokuho:2"), ("arrears", "water:5"))],
        ],
    ),
    "child_risk": (
        [
            [person(30, "世帯主"), person(1, "子", ("health_check_missed", "連絡なし"))],
            [person(25, "世帯主", ("specific_pregnancy", "")), person(27, "夫", ("arrears", "rent:2"))],
        ],
        [
            [person(30, "世帯主"), person(1, "子", ("health_check_missed", "連絡あり"))],
            [person(25, "世帯主", ("specific_pregnancy", "")), person(27, "夫")],
        ],
    ),
    "dv": (
        [[person(35, "世帯主", ("dv_support_measure", ""))], [person(35, "世帯主", ("consultation", "DV"))]],
        [[person(35, "世帯主", ("consultation", "子育て"))]],
    ),
    "parent_disability_child": (
        [
            [person(40, "世帯主", ("disability_certificate", "身体")), person(10, "子")],
            [person(40, "妻", ("disability_certificate", "精神")), person(17, "子")],
        ],
        [
            [person(40, "世帯主", ("disability_certificate", "身体")), person(18, "子")],
            [person(45, "世帯主"), person(20, "子", ("disability_certificate", "療育")), person(10, "子")],
        ],
    ),
    "foreign_household_risk": (
        [
            [
                person(35, "世帯主", nationality="ベトナム"),
                person(2, "子", ("health_check_missed", "連絡あり"), nationality="ベトナム"),
            ],
            [person(35, "世帯主", nationality="ブラジル"), person(8, "子", nationality="ブラジル")],
            [person(35, "世帯主", nationality="中国"), person(6, "子")],
            [person(35, "世帯主", nationality="中国"), person(15, "子")],
        ],
        [
            [person(35, "世帯主"), person(8, "子")],
            [
                person(35, "世帯主", nationality="ブラジル"),
                person(8, "子", ("school_enrollment", "小学校"), nationality="ブラジル"),
            ],
            [person(35, "世帯主", nationality="中国"), person(5, "子", ("school_enrollment", "保育所"))],
            [person(35, "世帯主", nationality="中国"), person(16, "子")],
        ],
    ),
    "multi_domain": (
        [
            [
                person(
                    70,
                    "世帯主",
                    ("care_level", "要介護1"),
                    ("disability_certificate", "身体"),
                    ("public_assistance", ""),
                )
            ],
            [
                person(70, "世帯主", ("care_level", "要支援1")),
                person(12, "孫", ("school_absence_days", "30")),
                person(35, "子", ("arrears", "rent:2")),
            ],
        ],
        [
            [
                person(
                    80,
                    "世帯主",
                    ("care_level", "要介護1"),
                    ("dementia", "I"),
                    ("service_use", "介護"),
                    ("arrears", "water:1"),
                )
            ],
            [
                person(70, "世帯主", ("care_level", "要支援1")),
                person(12, "孫", ("school_absence_days", "29")),
                person(35, "子", ("arrears", "rent:2")),
            ],
        ],
    ),
}


def test_every_shipped_flag_has_cases(rules):
    assert set(CASES) == set(rules.flags)
    assert sorted(f.pattern for f in rules.flags.values()) == list(range(1, 13))


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_flag_fires_only_where_it_should(rule_id, rules, conn, workspace):
    positives, negatives = CASES[rule_id]
    want = set()
    for i, members in enumerate(positives):
        want.add(add_household(conn, f"POS{i}", *members))
    for i, members in enumerate(negatives):
        add_household(conn, f"NEG{i}", *members)
    screen(conn, workspace, rules, ON, full=True)
    got = {
        h for (h,) in conn.execute("SELECT household_id FROM flags WHERE rule_id = ? AND status = 'open'", (rule_id,))
    }
    assert got == want


def test_evidence_names_members_records_version_and_date(rules, conn, workspace):
    elder = person(82, "世帯主", ("care_level", "要介護2"))
    son = person(52, "子")
    add_household(conn, "H8050", elder, son)
    screen(conn, workspace, rules, ON, full=True)
    (raw, version) = conn.execute(
        "SELECT evidence, rule_version FROM flags WHERE household_id = 'H8050' AND rule_id = '8050'"
    ).fetchone()
    ev = json.loads(raw)
    assert version == rules.flags["8050"].version == ev["rule_version"]
    assert ev["screened_on"] == ON.isoformat()
    assert ev["members"] == sorted([elder["pid"], son["pid"]])
    first, second = ev["trace"]["conditions"]
    assert first["members"] == [elder["pid"]] and first["records"][0]["value"] == "要介護2"
    assert second["members"] == [son["pid"]]


@pytest.mark.regression("issue 12: multi_domain named no members")
def test_every_flag_names_the_members_whose_records_raised_it(rules, conn, workspace):
    for rule_id, (positives, _) in CASES.items():
        for i, members in enumerate(positives):
            add_household(conn, f"POS-{rule_id}-{i}", *members)
    screen(conn, workspace, rules, ON, full=True)
    unnamed = [
        (hid, rule_id)
        for hid, rule_id, raw in conn.execute("SELECT household_id, rule_id, evidence FROM flags")
        if not json.loads(raw)["members"]
    ]
    assert unnamed == []


@pytest.mark.regression("issue 12: multi_domain named no members")
def test_multi_domain_names_the_members_whose_records_touch_the_silos(rules, conn, workspace):
    elder = person(82, "世帯主", ("care_level", "要介護2"), sex="M")
    wife = person(78, "妻", ("disability_certificate", "精神"), ("public_assistance", ""))
    grandson = person(20, "孫", ("earned_income", "1800000"))  # no record of any silo
    add_household(conn, "HMD", elder, wife, grandson)
    screen(conn, workspace, rules, ON, full=True)
    (raw,) = conn.execute(
        "SELECT evidence FROM flags WHERE household_id = 'HMD' AND rule_id = 'multi_domain'"
    ).fetchone()
    ev = json.loads(raw)
    assert ev["members"] == sorted([elder["pid"], wife["pid"]])
    assert {r["code"] for r in ev["trace"]["records"]} == {"care_level", "disability_certificate", "public_assistance"}
