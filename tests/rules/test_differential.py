"""The durable_rules path (SQL pre-selection + two rulesets) agrees with the reference evaluator.

Thousands of random households, with the shipped rules and with random rules, so that every
shape the compiler can emit is exercised (this is how an `$or` inside `$iany` was caught).
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rules.facts import Context, load_households
from engine.rules.model import (
    RuleSet,
)
from engine.rules.prefilter import Prefilter, Shard
from engine.rules.trace import eval_person, person_holds, trace_flag
from engine.screening.screen import evaluate_households
from engine.store.db import SCHEMA
from tests.helpers.random_towns import rule_sets, towns
from tests.helpers.reference import reference_flags
from tests.helpers.town import ON


def build(town: list[list[dict]]) -> tuple[sqlite3.Connection, list[dict]]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    plain = []
    for h, members in enumerate(town):
        hid = f"H{h:04d}"
        conn.execute("INSERT INTO households VALUES (?,?,?,0)", (hid, "中央", ""))
        hh = {"household_id": hid, "persons": [], "records": []}
        for p, m in enumerate(members):
            pid = f"{hid}P{p}"
            conn.execute(
                "INSERT INTO persons VALUES (?,?,?,?,?,?,?,?)",
                (pid, hid, "", "", m["birth"], m["sex"], m["rel"], m["nat"]),
            )
            hh["persons"].append(
                {
                    "person_id": pid,
                    "birth_date": m["birth"],
                    "sex": m["sex"],
                    "relationship": m["rel"],
                    "nationality": m["nat"],
                }
            )
            for i, (code, value, start, end) in enumerate(m["records"]):
                conn.execute(
                    "INSERT INTO records VALUES (?,?,?,?,?,?,?)", (f"{pid}|{i}", pid, "t", code, value, start, end)
                )
                hh["records"].append(
                    {"person_id": pid, "code": code, "value": value, "start_date": start, "end_date": end}
                )
        plain.append(hh)
    return conn, plain


def durable_path(conn, rules: RuleSet, on: date) -> set[tuple[str, str]]:
    ids = Prefilter(rules, on).candidates(conn, Shard())
    result = evaluate_households(conn, rules, on, sorted(ids))
    return {(h, rule) for h, per in result.hits.items() for rule in per}


def trace_path(conn, rules: RuleSet, on: date) -> set[tuple[str, str]]:
    ids = [h for (h,) in conn.execute("SELECT household_id FROM households")]
    ctx = Context(on)
    return {
        (hh.household_id, f.id)
        for hh in load_households(conn, ids, on)
        if hh.persons
        for f in rules.flags.values()
        if trace_flag(f, hh, ctx, rules).ok
    }


screening_dates = st.sampled_from(
    [ON, date(2024, 2, 29), date(2028, 2, 29), date(2026, 1, 31), date(2025, 3, 31), date(2027, 12, 31)]
) | st.integers(-800, 800).map(lambda d: ON + timedelta(days=d))
SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@SETTINGS
@given(town=towns, on=screening_dates)
def test_shipped_rules_agree_with_reference(rules, town, on):
    conn, plain = build(town)
    expected = reference_flags(plain, rules, on)
    assert durable_path(conn, rules, on) == expected
    assert trace_path(conn, rules, on) == expected


@SETTINGS
@given(rules=rule_sets(), town=towns, on=screening_dates)
def test_random_rules_agree_with_reference(rules, town, on):
    conn, plain = build(town)
    expected = reference_flags(plain, rules, on)
    assert durable_path(conn, rules, on) == expected
    assert trace_path(conn, rules, on) == expected


def persons_path(conn, rules: RuleSet, on: date, holds) -> set[tuple[str, str]]:
    ids = [h for (h,) in conn.execute("SELECT household_id FROM households")]
    ctx = Context(on)
    return {
        (p.person_id, i.id)
        for hh in load_households(conn, ids, on)
        for p in hh.persons
        for i in rules.indicators.values()
        if holds(i.when, p, ctx)
    }


@SETTINGS
@given(rules=rule_sets(), town=towns, on=screening_dates)
def test_person_holds_agrees_with_the_trace_on_every_indicator(rules, town, on):
    """person_holds (the papers' fast check of which indicators hold for a member) is the trace
    without its record keeping: the same answer for every person and indicator."""
    conn, _ = build(town)
    traced = persons_path(conn, rules, on, lambda cond, p, ctx: eval_person(cond, p, ctx).ok)
    assert persons_path(conn, rules, on, person_holds) == traced
