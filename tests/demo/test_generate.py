"""The synthetic town: files, determinism, validity, broken rows, and pattern prevalence.

The pattern checker below is written independently of engine/demo/town/, straight from the
rule semantics (age = full years on `today`; a record is active when start <= today and
(no end or end >= today); "within 6 months" = active at some point in the last 6 months).
The test at 20,000 households asserts that every pattern is present and that most households
match none. Measured with this checker at 100,000 households, seed 42 (target in brackets):

    8050 0.38% [0.4]            double_care 0.16% [0.15]      young_carer 0.09% [0.1]
    hikikomori 2.65% of households = 1.94% of persons aged 15-64 [2%]
    isolated_elder 0.48% [0.5]  self_neglect 0.12% [0.1]      multiple_arrears 0.55% [0.5]
    child_risk 0.32% [0.3]      dv 0.10% [0.1]                parent_disability_child 0.94% [0.5-1]
    foreign_household_risk 0.09% [0.1]                        multi_domain 0.53% [0.5]
    none 94.3%, exactly one 5.0%, several 0.7%

The same town imported and screened with configs/rules gives exactly the same (household,
pattern) pairs as this checker.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest

from engine.demo.town import PATTERNS, generate_town
from engine.support import dates
from engine.support.vocabulary import CODES, check_value, identity_part

TODAY = date(2026, 11, 27)
SIX_MONTHS_AGO = date(2026, 5, 27)
FILES = ("households.csv", "persons.csv", "records.csv")

ERAS = {"令和": 2018, "平成": 1988, "昭和": 1925, "大正": 1911, "R": 2018, "H": 1988, "S": 1925, "T": 1911}
KANJI = re.compile(r"(令和|平成|昭和|大正)(元|\d+)年(\d+)月(\d+)日")
ABBR = re.compile(r"([RHST])(元|\d+)[./](\d+)[./](\d+)")

PARENT_RELS = ("世帯主", "妻", "夫")
SILO_OF = {
    "care_level": "介護",
    "dementia": "介護",
    "disability_certificate": "障害",
    "public_assistance": "保護",
    "arrears": "困窮",
    "school_absence_days": "教育",
    "health_check_missed": "子ども",
    "specific_pregnancy": "子ども",
    "yotaikyo_registered": "子ども",
    "dv_support_measure": "DV",
}


def parse_date(text: str) -> date | None:
    """ISO or 和暦 (kanji or abbreviated); None when the text is not a real date."""
    try:
        if m := KANJI.fullmatch(text) or ABBR.fullmatch(text):
            era, year, month, day = m.groups()
            return date(ERAS[era] + (1 if year == "元" else int(year)), int(month), int(day))
        return date.fromisoformat(text)
    except ValueError:
        return None


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def read(out: Path, name: str, encoding: str = "utf-8") -> list[list[str]]:
    with open(out / name, encoding=encoding, newline="") as f:
        return list(csv.reader(f))[1:]


# --------------------------------------------------------------------------- independent checker


class Person:
    def __init__(self, row: list[str]):
        self.pid, self.hid, self.rel, self.nationality = row[0], row[1], row[6], row[7]
        self.age = age_on(parse_date(row[4]), TODAY)
        self.records: list[tuple[str, str, date, date | None]] = []

    def active(self, code: str, since: date = TODAY) -> list[str]:
        """Values of records of `code` valid at some point between `since` and today."""
        return [v for c, v, s, e in self.records if c == code and s <= TODAY and (e is None or e >= since)]

    def has(self, code: str, since: date = TODAY) -> bool:
        return bool(self.active(code, since))


def load_town(out: Path, encoding: str = "utf-8") -> dict[str, list[Person]]:
    """Households -> members with their records (valid rows only)."""
    people: dict[str, Person] = {}
    town: dict[str, list[Person]] = {row[0]: [] for row in read(out, "households.csv", encoding) if len(row) == 3}
    for row in read(out, "persons.csv", encoding):
        if len(row) == 8 and row[1] in town and row[0] not in people and parse_date(row[4]):
            people[row[0]] = p = Person(row)
            town[row[1]].append(p)
    for row in read(out, "records.csv", encoding):
        if len(row) == 6 and row[0] in people and row[2] in CODES and (start := parse_date(row[4])):
            people[row[0]].records.append((row[2], row[3], start, parse_date(row[5]) if row[5] else None))
    return town


def arrears_months(p: Person) -> list[tuple[str, int]]:
    return [(kind, int(months)) for kind, _, months in (v.partition(":") for v in p.active("arrears"))]


def patterns_of(members: list[Person]) -> set[str]:
    """Which of the twelve patterns a household matches."""
    found = set()
    any_ = lambda pred: any(pred(p) for p in members)  # noqa: E731
    if any_(lambda p: p.age >= 75 and p.has("care_level")) and any_(
        lambda p: 40 <= p.age <= 64 and not p.has("earned_income") and not p.has("service_use")
    ):
        found.add("8050")
    if (
        any_(lambda p: p.age <= 5)
        and any_(lambda p: p.has("care_level"))
        and any_(lambda p: p.has("arrears") or p.has("waiting_list"))
    ):
        found.add("double_care")
    if any_(lambda p: 6 <= p.age <= 18 and any(int(v) >= 30 for v in p.active("school_absence_days"))) and any_(
        lambda p: (
            p.rel in PARENT_RELS and (p.has("care_level") or {"精神", "療育"} & set(p.active("disability_certificate")))
        )
    ):
        found.add("young_carer")
    if any_(
        lambda p: (
            15 <= p.age <= 64
            and not p.has("earned_income", SIX_MONTHS_AGO)
            and not p.has("school_enrollment", SIX_MONTHS_AGO)
        )
    ):
        found.add("hikikomori")
    if len(members) == 1:
        (p,) = members
        if p.age >= 75 and (p.has("care_level") or p.has("dementia")) and not p.has("service_use"):
            found.add("isolated_elder")
        if {"ごみ", "セルフネグレクト"} & set(p.active("consultation")):
            found.add("self_neglect")
    if len({kind for p in members for kind, months in arrears_months(p) if months >= 3}) >= 2:
        found.add("multiple_arrears")
    if any_(lambda p: p.age <= 5 and "連絡なし" in p.active("health_check_missed")) or (
        any_(lambda p: p.has("specific_pregnancy")) and any_(lambda p: p.has("arrears"))
    ):
        found.add("child_risk")
    if any_(lambda p: p.has("dv_support_measure") or "DV" in p.active("consultation")):
        found.add("dv")
    if any_(lambda p: p.age >= 18 and p.rel in PARENT_RELS and p.has("disability_certificate")) and any_(
        lambda p: p.age <= 17 and p.rel == "子"
    ):
        found.add("parent_disability_child")
    if any_(lambda p: p.nationality != "日本") and any_(
        lambda p: (p.age <= 5 and p.has("health_check_missed")) or (6 <= p.age <= 15 and not p.has("school_enrollment"))
    ):
        found.add("foreign_household_risk")
    silos = set()
    for p in members:
        for code, value, start, end in p.records:
            if start <= TODAY and (end is None or end >= TODAY):
                silos.add(value if code == "service_use" else SILO_OF.get(code))
    if len(silos - {None}) >= 3:
        found.add("multi_domain")
    return found


def prevalence(town: dict[str, list[Person]]) -> dict[str, float]:
    """Share of households matching each pattern, plus 'none' and 'several'."""
    counts: dict[str, int] = defaultdict(int)
    for members in town.values():
        found = patterns_of(members)
        for name in found:
            counts[name] += 1
        counts["none" if not found else "one" if len(found) == 1 else "several"] += 1
    return {name: counts[name] / len(town) for name in (*PATTERNS, "none", "one", "several")}


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def town_20k(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("town20k")
    return out, generate_town(out, 20_000, seed=7)


@pytest.fixture(scope="module")
def households_20k(town_20k) -> dict[str, list[Person]]:
    return load_town(town_20k[0])


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    results = [generate_town(tmp_path / name, 300, seed=s, bad_rows=5) for name, s in (("a", 1), ("b", 1), ("c", 2))]
    for name in FILES:
        a, b, c = ((tmp_path / d / name).read_bytes() for d in "abc")
        assert a == b
        assert a != c
    assert results[0] == results[1].model_copy(update={"out_dir": results[0].out_dir})


def test_progress_counts_up_to_all_households_and_changes_nothing(tmp_path, monkeypatch):
    from engine.demo.town import write

    plain = generate_town(tmp_path / "plain", 1_000, seed=11, bad_rows=3)
    monkeypatch.setattr(write, "PROGRESS_EVERY", 300)
    heard: list[tuple[int, int, str]] = []
    told = generate_town(tmp_path / "told", 1_000, seed=11, bad_rows=3, progress=lambda *call: heard.append(call))
    done = [d for d, _, _ in heard]
    assert done == sorted(set(done)) and done[0] == 0 and done[-1] == 1_000 and len(done) == 5
    assert {(total, what) for _, total, what in heard} == {(1_000, "町を生成")}
    assert told.model_dump(exclude={"out_dir"}) == plain.model_dump(exclude={"out_dir"})
    for name in FILES:
        assert (tmp_path / "told" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()


def test_files_are_private_and_replaced(tmp_path):
    generate_town(tmp_path / "t", 50, seed=1)
    generate_town(tmp_path / "t", 20, seed=1)
    for name in FILES:
        assert (tmp_path / "t" / name).stat().st_mode & 0o777 == 0o600
    assert len(read(tmp_path / "t", "households.csv")) == 20


def test_counts_and_references(town_20k):
    out, result = town_20k
    households = read(out, "households.csv")
    persons = read(out, "persons.csv")
    records = read(out, "records.csv")
    assert len(households) == result.households == 20_000
    assert len(persons) == result.persons and len(records) == result.records
    household_ids = {row[0] for row in households}
    person_ids = [row[0] for row in persons]
    assert len(set(person_ids)) == len(person_ids)
    assert all(row[1] in household_ids for row in persons)
    assert set(row[0] for row in records) <= set(person_ids)
    assert 2.1 <= len(persons) / len(households) <= 2.45
    assert households[0][0] == "H0000001" and persons[0][0] == "P00000001"
    foreign = sum(row[7] != "日本" for row in persons) / len(persons)
    assert 0.015 <= foreign <= 0.035


def test_codes_values_and_dates_are_valid(town_20k):
    out, _ = town_20k
    births = {}
    for row in read(out, "persons.csv"):
        births[row[0]] = parse_date(row[4])
        assert births[row[0]] == dates.parse_date(row[4])  # the importer reads what we read
        assert row[5] in ("M", "F")
        assert row[6] in ("世帯主", "妻", "夫", "子", "父", "母", "孫", "兄弟姉妹", "その他")
    wareki = 0
    records = read(out, "records.csv")
    keys = set()
    for person_id, source, code, value, start, end in records:
        assert code in CODES and source
        assert check_value(code, value) is None, (code, value)
        started = parse_date(start)
        assert started and births[person_id] <= started <= TODAY, start
        if end:
            assert started <= parse_date(end) < TODAY, (start, end)
        wareki += not start[0].isdigit()
        # the workspace keys a record by person|source|code|start|identity: no two may collide
        key = (person_id, source, code, started, identity_part(code, value))
        assert key not in keys, key
        keys.add(key)
    assert dates.parse_date(records[-1][4]) == parse_date(records[-1][4])
    assert 0.15 <= wareki / len(records) <= 0.25  # wareki_share=0.2


def test_cp932_and_no_wareki(tmp_path):
    generate_town(tmp_path, 2_000, seed=3, encoding="cp932", wareki_share=0.0)
    for name in FILES:
        text = (tmp_path / name).read_bytes().decode("cp932")
        assert "みどり市" in text or name != "households.csv"
    assert all(row[4][:4].isdigit() for row in read(tmp_path, "records.csv", "cp932"))


@pytest.mark.parametrize("bad_rows", [0, 1, 9, 40])
def test_bad_rows_are_counted_exactly(tmp_path, bad_rows):
    result = generate_town(tmp_path, 500, seed=5, bad_rows=bad_rows)
    households = read(tmp_path, "households.csv")
    persons = read(tmp_path, "persons.csv")
    records = read(tmp_path, "records.csv")
    broken = sum(len(row) != 3 for row in households)
    household_ids = {row[0] for row in households if len(row) == 3}
    seen: set[str] = set()
    for row in persons:
        bad = len(row) != 8 or row[1] not in household_ids or not parse_date(row[4]) or row[0] in seen
        broken += bad
        if not bad:
            seen.add(row[0])
    for row in records:
        broken += (
            len(row) != 6
            or row[0] not in seen
            or row[2] not in CODES
            or check_value(row[2], row[3]) is not None
            or not parse_date(row[4])
            or (row[5] != "" and not parse_date(row[5]))
        )
    assert broken == bad_rows == result.bad_rows
    assert len(households) - sum(len(row) != 3 for row in households) == result.households


def test_every_pattern_is_present_and_most_households_match_none(town_20k, households_20k):
    """Prevalence at 100,000 households, seed 42, is in the module docstring."""
    shares = prevalence(households_20k)
    missing = [name for name in PATTERNS if shares[name] == 0]
    assert not missing, missing
    assert shares["none"] > 0.85
    assert shares["several"] < shares["one"]
    assert set(town_20k[1].planted) == set(PATTERNS)


def test_hikikomori_is_about_two_percent_of_working_age(households_20k):
    """内閣府 2022: 2.05% of ages 15-39, 2.02% of 40-64."""
    members = [p for people in households_20k.values() for p in people if 15 <= p.age <= 64]
    withdrawn = [
        p
        for p in members
        if not p.has("earned_income", SIX_MONTHS_AGO) and not p.has("school_enrollment", SIX_MONTHS_AGO)
    ]
    assert 0.015 <= len(withdrawn) / len(members) <= 0.025
