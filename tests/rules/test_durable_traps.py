"""The measured traps of durable_rules 2.0.28 (shared/engine-notes.md), each pinned by a test."""

import json
import threading

import pytest
from durable.engine import MessageNotHandledException, MessageObservedException

from engine.rules.compile import Compiled
from engine.rules.durable_eval import DurableScreen, _QuietHost, fnv1a32
from engine.rules.facts import Context, Household, Person, Rec
from tests.helpers.town import ON, born

CTX = Context(ON)


def hh(hid: str, son_income: bool = False) -> Household:
    elder = Person(
        f"{hid}-1",
        born(82),
        "F",
        "世帯主",
        "日本",
        {"care_level": [Rec("r1", "care_level", "要介護2", "2024-04-01", None)]},
    )
    son = Person(f"{hid}-2", born(52), "M", "子", "日本", {})
    if son_income:
        son.records["earned_income"] = [Rec("r2", "earned_income", "3000000", "2024-04-01", None)]
    return Household(hid, [elder, son])


def test_identical_households_are_not_deduplicated(rules):
    screen = DurableScreen(Compiled(rules))
    a, b = hh("HA"), hh("HB")  # same content, only the ids differ
    hits = screen.evaluate([a, b], CTX)
    assert {("HA", "8050"), ("HB", "8050")} <= hits


def test_a_dropped_fact_is_caught_and_the_batch_redone(rules, monkeypatch):
    screen = DurableScreen(Compiled(rules))
    real = screen.host.assert_facts
    calls = []

    def lossy(ruleset, facts):  # what a duplicate-hash collision does: one fact vanishes
        calls.append(len(facts))
        return real(ruleset, facts[1:] if len(calls) == 1 else facts)

    monkeypatch.setattr(screen.host, "assert_facts", lossy)
    hits = screen.evaluate([hh("H1"), hh("H2")], CTX)
    assert {("H1", "8050"), ("H2", "8050")} <= hits
    assert calls[0] == 4 and calls[1:5] == [2, 1, 2, 1]  # the batch, then household by household


def test_state_is_cleared_between_households_and_runs(rules):
    screen = DurableScreen(Compiled(rules))
    assert ("H1", "8050") in screen.evaluate([hh("H1")], CTX)
    assert ("H1", "8050") not in screen.evaluate([hh("H1", son_income=True)], CTX)
    assert ("H1", "8050") in screen.evaluate([hh("H1")], CTX)  # a kept fact would be a duplicate and not fire


def test_a_household_matching_no_flag_is_still_seen(rules):
    screen = DurableScreen(Compiled(rules))
    quiet = [
        Household(
            h,
            [
                Person(
                    f"{h}-1",
                    born(30),
                    "M",
                    "世帯主",
                    "日本",
                    {"earned_income": [Rec("r", "earned_income", "1", "2024-04-01", None)]},
                )
            ],
        )
        for h in ("HQ1", "HQ2")
    ]
    assert screen.evaluate(quiet, CTX) == set()


def test_a_duplicate_fact_is_redone_without_deleting_its_state(rules, monkeypatch):
    """durable raises MessageObservedException for a fact it takes for a duplicate (a 32-bit
    hash collision does the same to two distinct facts); deleting that state would abort."""
    screen = DurableScreen(Compiled(rules))
    real = screen.compiled.person_facts

    def clashing(household, ctx, sid, first_id=0):
        facts = real(household, ctx, sid, first_id)
        if household.household_id == "HV":  # clashes with itself, even alone in its state
            facts[-1]["id"] = facts[0]["id"]
        elif first_id:  # clashes with the first fact of its batch
            facts[0]["id"] = 0
        return facts

    monkeypatch.setattr(screen.compiled, "person_facts", clashing)
    hits = screen.evaluate([hh("HT"), hh("HU")], CTX)
    assert {("HT", "8050"), ("HU", "8050")} <= hits  # redone household by household
    assert screen.abandoned == 1
    with pytest.raises(RuntimeError, match="lost a fact of household HV"):
        screen.evaluate([hh("HV")], CTX)
    assert screen.abandoned == 3  # the batch, then the household alone
    assert ("H9", "8050") in screen.evaluate([hh("H9")], CTX)  # the host still works


def test_fact_ids_have_distinct_durable_hashes():
    """Fact ids are positions in the batch; durable's duplicate check hashes the id text with
    FNV-1a 32. Below 797,186 those hashes are distinct, so facts of a batch cannot collide."""
    assert len({fnv1a32(str(i)) for i in range(100_000)}) == 100_000
    assert fnv1a32("40189") == fnv1a32("797186")  # the first collision
    host = _QuietHost({"s": lambda c: None})
    host.set_rulesets({"trap_fnv": {"s": {"all": [{"m": {"t": 1}}], "run": "s", "cap": 10}}})
    host.assert_facts("trap_fnv", [{"id": 40188, "sid": "a", "t": 1}, {"id": 797186, "sid": "a", "t": 1}])
    with pytest.raises(MessageObservedException):  # durable's hash is the one modelled
        host.assert_facts("trap_fnv", [{"id": 40189, "sid": "b", "t": 1}, {"id": 797186, "sid": "b", "t": 1}])


def test_facts_carry_only_what_the_rules_read(rules):
    c = Compiled(rules)
    person_fields = {"id", "sid", "t", "a", "r", "s", "f", *c.atoms.values()}
    facts = [f for h in ("HA", "HB") for f in c.person_facts(hh(h, son_income=True), CTX, "s")]
    assert all(set(f) <= person_fields for f in facts)
    assert "s" not in c.person_reads and all("s" not in f for f in facts)  # no shipped rule reads sex
    for field in c.atoms.values():  # a field some rule tests for 0 is in every fact, others only when 1
        if field in c.zero_tested:
            assert all(f[field] in (0, 1) for f in facts)
        else:
            assert all(f.get(field, 1) == 1 for f in facts)
    fact = c.household_fact(hh("HA"), CTX, {"i0"}, "s", 7)
    assert fact["id"] == 7 and fact["i0"] == 1 and not any(isinstance(v, (list, dict)) for v in fact.values())
    assert "$nex" not in json.dumps(c.definition)  # never returns alone (measured)


def test_raw_durable_raises_on_unmatched_fact():
    host = _QuietHost({"a": lambda c: None})
    host.set_rulesets({"trap_unmatched": {"a": {"all": [{"m": {"t": "x"}}], "run": "a"}}})
    with pytest.raises(MessageNotHandledException):
        host.assert_fact("trap_unmatched", {"id": 1, "sid": "s", "t": "y"})


def test_raw_durable_or_over_two_fields_inside_iany_never_matches():
    """Why person logic runs on person facts: if this starts passing, durable_rules changed."""
    fired = []
    host = _QuietHost({"a": lambda c: fired.append(1), "s": lambda c: None})
    cond = {"$iany": {"m": {"$or": [{"$gt": {"$i.x": 0}}, {"$gt": {"$i.y": 0}}]}}}
    host.set_rulesets(
        {
            "trap_or": {
                "a": {"all": [{"m": cond}], "run": "a"},
                "s": {"all": [{"m": {"t": "hh"}}], "run": "s", "pri": 1000},
            }
        }
    )
    host.assert_fact("trap_or", {"id": "h", "sid": "h", "t": "hh", "m": [{"x": 1, "y": 0}]})
    assert fired == []


def test_no_timer_threads(rules):
    before = threading.active_count()
    DurableScreen(Compiled(rules))
    assert threading.active_count() == before


def test_mixed_types_compare_as_strings_so_facts_carry_numbers(rules):
    c = Compiled(rules)
    for fact in c.person_facts(hh("HN"), CTX, "s") + [c.household_fact(hh("HN"), CTX, {"i1"}, "s")]:
        assert all(isinstance(v, int) for k, v in fact.items() if k != "sid")
