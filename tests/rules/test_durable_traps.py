"""The measured traps of durable_rules 2.0.28 (shared/engine-notes.md), each pinned by a test."""

import threading

import pytest
from durable.engine import MessageNotHandledException

from engine.rules.compile import Compiled
from engine.rules.durable_eval import DurableScreen, _QuietHost
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


def test_a_duplicate_fact_is_redone_without_deleting_its_state(rules):
    """durable raises MessageObservedException for a fact it takes for a duplicate (a 32-bit
    hash collision does the same to two distinct facts); deleting that state would abort."""
    screen = DurableScreen(Compiled(rules))
    twin = hh("HT")
    clash = Household("HU", [twin.persons[0], hh("HU").persons[1]])  # one person id twice in a batch
    hits = screen.evaluate([twin, clash], CTX)
    assert {("HT", "8050"), ("HU", "8050")} <= hits  # redone household by household
    assert screen.abandoned == 1
    inner = Household("HV", [twin.persons[0], twin.persons[0]])  # the same fact twice in one household
    with pytest.raises(RuntimeError, match="lost a fact of household HV"):
        screen.evaluate([inner], CTX)
    assert ("H9", "8050") in screen.evaluate([hh("H9")], CTX)  # the host still works


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
    fact = Compiled(rules).person_facts(hh("HN"), CTX, "s")[0]
    assert all(isinstance(v, int) for k, v in fact.items() if k.startswith("k") or k in ("a", "f"))
