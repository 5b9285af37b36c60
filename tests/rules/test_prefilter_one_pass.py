"""The one-pass prefilter selects exactly the households that the per-query prefilter selected.

The oracle (tests/rules/prefilter_oracle.py) is the earlier implementation, one SQL query per
flag part. Both are run on a generated town (shipped rules, whole town, id ranges, a scope), on
random towns with the shipped and random rules, and on households large enough to overflow the
packed counts of the one statement.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from engine.demo.town import generate_town
from engine.intake.importer import import_dir
from engine.rules.model import Age, Flag, Indicator, Member, PAll, Record, RuleSet
from engine.rules.prefilter import Prefilter, Shard
from engine.rules.prefilter_pass import LIMIT
from engine.store.db import SCHEMA, connect
from tests.helpers.random_towns import rule_sets, towns
from tests.rules.prefilter_oracle import OldPrefilter
from tests.rules.test_differential import build, screening_dates

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


@pytest.mark.parametrize("on", DATES)
def test_shipped_rules_on_a_generated_town(town, rules, on):
    in_force = rules.in_force(on)
    new, old = both(town, in_force, on, Shard())
    households = town.execute("SELECT COUNT(*) FROM households").fetchone()[0]
    assert 0 < len(old) < households  # the filter narrows, and keeps some
    assert new == old


def test_id_ranges_add_up_to_the_town(town, rules):
    ids = [h for (h,) in town.execute("SELECT household_id FROM households ORDER BY household_id")]
    edges = [None, ids[700], ids[1900], None]
    whole = Prefilter(rules, ON).candidates(town, Shard())
    parts = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        new, old = both(town, rules, ON, Shard(lo=lo, hi=hi))
        assert new == old
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
    assert new == old
    assert new and new == Prefilter(rules, ON).candidates(town, Shard()) & scope


SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@SETTINGS
@given(town=towns, on=screening_dates)
def test_shipped_rules_on_random_towns(rules, town, on):
    conn, _ = build(town)
    new, old = both(conn, rules.in_force(on), on, Shard())
    assert new == old


@SETTINGS
@given(rules=rule_sets(), town=towns, on=screening_dates)
def test_random_rules_on_random_towns(rules, town, on):
    conn, _ = build(town)
    new, old = both(conn, rules, on, Shard())
    assert new == old


def _one_flag(person) -> RuleSet:
    indicator = Indicator(id="x", title="x", when=person)
    flag = Flag(id="f", title="f", severity="low", silos=("困窮",), version=1, when=Member(indicator="x"))
    return RuleSet(indicators={"x": indicator}, flags={"f": flag}, hash="t")


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
