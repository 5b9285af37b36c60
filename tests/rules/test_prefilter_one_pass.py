"""The one-pass prefilter selects no household that the per-query prefilter did not, and every
household that some flag holds for.

The oracle (tests/rules/prefilter_oracle.py) is the earlier implementation, one SQL query per
flag part; the one pass is tighter only where it compares record values and bounds in SQL
(prefilter.value_tests). Both are run on a generated town (shipped rules, whole town, id ranges, a
scope), on random towns with the shipped and random rules, and on households large enough to
overflow the packed counts of the one statement. What a flag holds for is the engine's own trace
evaluator on every household, without any prefilter (test_differential.trace_path).
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from engine.demo.town import generate_town
from engine.intake.importer import import_dir
from engine.rules.model import Age, Flag, Indicator, Member, PAll, PAny, PNot, Record, RuleSet
from engine.rules.prefilter import Prefilter, Shard
from engine.rules.prefilter_pass import LIMIT
from engine.store.db import SCHEMA, connect
from tests.helpers.random_towns import rule_sets, towns
from tests.rules.prefilter_oracle import OldPrefilter
from tests.rules.test_differential import build, durable_path, screening_dates, trace_path

ON = date(2026, 11, 27)
DATES = [ON, ON - timedelta(days=300), ON + timedelta(days=400), date(2028, 2, 29)]


@pytest.fixture(scope="module")
def town(tmp_path_factory) -> sqlite3.Connection:
    base = tmp_path_factory.mktemp("one-pass")
    generate_town(base / "csv", 3000, seed=19, today=ON)
    conn = connect(Path(base / "workspace"))
    import_dir(conn, base / "csv", today=ON)
    return conn


def both(conn, rules: RuleSet, on: date, shard: Shard) -> tuple[set[str], set[str]]:
    return Prefilter(rules, on).candidates(conn, shard), OldPrefilter(rules, on).candidates(conn, shard)


def flagged(conn, rules: RuleSet, on: date) -> set[str]:
    return {h for h, _ in trace_path(conn, rules, on)}


def narrower_and_safe(conn, rules: RuleSet, on: date) -> tuple[set[str], set[str]]:
    """(new, old) on the whole town, after checking new ⊆ old and flagged ⊆ new."""
    new, old = both(conn, rules, on, Shard())
    assert new <= old
    assert flagged(conn, rules, on) <= new
    return new, old


@pytest.mark.parametrize("on", DATES)
def test_shipped_rules_on_a_generated_town(town, rules, on):
    new, old = narrower_and_safe(town, rules.in_force(on), on)
    households = town.execute("SELECT COUNT(*) FROM households").fetchone()[0]
    assert 0 < len(new) <= len(old) < households  # the filter narrows, and keeps some
    if on == ON:  # 8050's "no earned income of 1 yen or more" is now told in SQL
        assert len(new) < len(old)


def test_id_ranges_add_up_to_the_town(town, rules):
    ids = [h for (h,) in town.execute("SELECT household_id FROM households ORDER BY household_id")]
    edges = [None, ids[700], ids[1900], None]
    whole = Prefilter(rules, ON).candidates(town, Shard())
    parts = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        new, old = both(town, rules, ON, Shard(lo=lo, hi=hi))
        assert new <= old
        parts.append(new)
    assert set().union(*parts) == whole
    assert all(a.isdisjoint(b) for a, b in zip(parts, parts[1:], strict=False))


def test_a_scope_selects_within_the_scope(town, rules):
    ids = [h for (h,) in town.execute("SELECT household_id FROM households ORDER BY household_id")]
    scope = set(ids[::7])
    town.execute("CREATE TEMP TABLE IF NOT EXISTS scope_ids (household_id TEXT PRIMARY KEY)")
    town.execute("DELETE FROM scope_ids")
    town.executemany("INSERT INTO scope_ids VALUES (?)", ((h,) for h in scope))
    try:
        new, old = both(town, rules, ON, Shard(scoped=True))
    finally:
        town.execute("DROP TABLE scope_ids")
    assert new <= old
    assert new and new == Prefilter(rules, ON).candidates(town, Shard()) & scope


SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@SETTINGS
@given(town=towns, on=screening_dates)
def test_shipped_rules_on_random_towns(rules, town, on):
    conn, _ = build(town)
    narrower_and_safe(conn, rules.in_force(on), on)


@SETTINGS
@given(rules=rule_sets(), town=towns, on=screening_dates)
def test_random_rules_on_random_towns(rules, town, on):
    conn, _ = build(town)
    narrower_and_safe(conn, rules, on)


def _one_flag(person) -> RuleSet:
    indicator = Indicator(id="x", title="x", when=person)
    flag = Flag(id="f", title="f", severity="low", silos=("困窮",), version=1, when=Member(indicator="x"))
    # durable_rules keeps a ruleset by its hash for the whole process: one hash a condition
    return RuleSet(
        indicators={"x": indicator}, flags={"f": flag}, hash=hashlib.sha256(repr(person).encode()).hexdigest()
    )


@pytest.mark.parametrize(
    "person",
    [Record(code="arrears"), PAll(items=(Age(min=0), Record(code="arrears")))],
    ids=["counted-per-household", "counted-per-person"],
)
def test_counts_too_large_to_pack_still_select(person):
    """A person with 2**FIELD_BITS records of one kind would read as none: taken without looking."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    for hid, records in (("H1", LIMIT), ("H2", 1), ("H3", 0)):
        conn.execute("INSERT INTO households VALUES (?, '中央', '', 0)", (hid,))
        conn.execute("INSERT INTO persons VALUES (?, ?, '', '', '1980-01-01', 'F', '世帯主', '日本')", (hid + "P", hid))
        conn.executemany(
            "INSERT INTO records VALUES (?, ?, 't', 'arrears', ?, '2026-01-01', NULL)",
            ((f"{hid}|{i}", hid + "P", f"water:{i}") for i in range(records)),
        )
    rules = _one_flag(person)
    new, old = both(conn, rules, ON, Shard())
    assert new == old == {"H1", "H2"}


# values Python's int() reads although they are not plain ASCII digits: never told in SQL
ODD_AMOUNTS = [
    "+5",
    "１２",
    "1_000",
    "007",
    "0",
    "1",
    "30",
    "99999999999999999999",
    "-0",
    "-5",
    " 7",
    "1e3",
    "12abc",
    "5\x00x",
]
ODD_ARREARS = [
    "kokuho:+4",
    "kokuho:０４",
    "kokuho:04",
    "kokuho:2",
    "water:3",
    "rent:12",
    "water: 5",
    "water:1_0",
    "kokuho:",
    "kokuho:-1",
    "rent:007",
    "school_fee:9223372036854775808",
    "kokuho:5\x00x",  # the import refuses a NUL; SQLite's substr() would stop at it
]


@pytest.mark.parametrize(
    "person",
    [
        Record(code="earned_income", min=1),
        Record(code="earned_income", min=1, negate=True),
        Record(code="earned_income", max=6),
        Record(code="earned_income", min=2, max=12, negate=True),
        Record(code="earned_income", max=6, negate=True),  # SQLite reads '1_000' as 1, Python as 1000
        Record(code="arrears", max=3, negate=True),
        Record(code="earned_income", values=("007", "+5")),
        Record(code="school_absence_days", min=30),
        Record(code="arrears", min=3),
        Record(code="arrears", min=3, negate=True),
        Record(code="arrears", max=3, values=("kokuho",)),
        Record(code="arrears", min=4, values=("kokuho", "rent"), negate=True),
        Record(code="arrears", values=("water",), negate=True),
        Record(code="care_level", min=3, max=5),
        Record(code="care_level", min=3, negate=True),
        Record(code="care_level", min=9),  # above the scale: no record passes
        Record(code="care_level", min=9, negate=True),
        Record(code="public_assistance", min=1),  # a flag-type code has no rank: no record passes
        Record(code="public_assistance", min=1, negate=True),
        PNot(item=Record(code="arrears", max=9)),
        PAny(items=(Record(code="arrears", min=1, negate=True), Age(max=5))),
    ],
    ids=lambda c: (
        f"{'no_' if c.negate else ''}{c.code}{list(c.values)}[{c.min},{c.max}]"
        if isinstance(c, Record)
        else type(c).__name__
    ),
)
def test_values_told_in_sql_agree_with_the_rule_engine(person):
    """One household a value, written every way the import accepts: the prefilter keeps each
    household the condition holds for, and the pipeline flags exactly what the trace flags."""
    town = [
        [
            {
                "birth": "1970-05-05",
                "sex": "M",
                "rel": "世帯主",
                "nat": "日本",
                "records": [(code, v, "2026-01-01", None)],
            }
        ]
        for code, values in (
            ("earned_income", ODD_AMOUNTS),
            ("school_absence_days", ODD_AMOUNTS),
            ("arrears", ODD_ARREARS),
            ("care_level", ["要支援1", "要介護1", "要介護3", "要介護5"]),
            ("public_assistance", ["1"]),
        )
        for v in values
    ] + [[{"birth": "1970-05-05", "sex": "F", "rel": "世帯主", "nat": "日本", "records": []}]]
    conn, _ = build(town)
    rules = _one_flag(PAll(items=(Age(min=18), person)))
    truth = trace_path(conn, rules, ON)
    assert Prefilter(rules, ON).candidates(conn, Shard()) >= {h for h, _ in truth}
    assert durable_path(conn, rules, ON) == truth
