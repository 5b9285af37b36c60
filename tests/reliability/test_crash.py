"""20 crash trials in the test suite (the full 200: `make crash`, bench/crashtrials.py)."""

from collections import Counter

import pytest

from bench import crashtrials


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    return crashtrials.run_trials(20, 400, 7, tmp_path_factory.mktemp("crash"), serve_trials=1, log=lambda *a: None)


def test_twenty_killed_runs_lose_nothing_and_send_nothing_twice_silently(summary):
    assert (
        summary["trials"] == 21 and summary["serve_trials"] == 1 and set(summary["per_flow"]) == set(crashtrials.FLOWS)
    )
    assert summary["kills"] >= 13, summary  # most runs were still going when the SIGKILL came
    assert summary["losses"] == 0 and summary["duplicates"] == 0, summary["failed_trials"]
    assert summary["integrity_failures"] == 0 and summary["other_problems"] == 0, summary["failed_trials"]
    assert summary["orphans_killed"] == 0  # screen workers die with the run (engine.screening.screen.die_with_parent)


def test_a_killed_engine_serve_leaves_nothing_running_after_the_next_serve(summary):
    assert summary["serve_orphans"] >= 1  # its Prefect server outlived it (its own session) ...
    assert summary["serve_orphans_left"] == 0  # ... until the next `engine serve` stopped it


def _state(rows=None, dups=()):
    return crashtrials.State("ok", rows or {t: Counter() for t in crashtrials.COMPARED}, 0, [], set(dups), set())


def test_the_checker_sees_a_lost_row_an_extra_row_and_an_unreported_duplicate():
    ref = _state({t: Counter({("C-1", "open"): 1}) if t == "cases" else Counter() for t in crashtrials.COMPARED})
    lost = _state()
    losses, dups, reported, problems = crashtrials.compare(ref, lost, Counter({"a": 1}), Counter({"a": 1}))
    assert losses == ["cases: ('C-1', 'open')"] and not dups
    extra = _state({t: Counter({("C-1", "open"): 2}) if t == "cases" else Counter() for t in crashtrials.COMPARED})
    assert crashtrials.compare(ref, extra, Counter(), Counter())[1] == ["cases: ('C-1', 'open')"]
    # an e-mail delivered twice: a failure unless the engine marked it possible_duplicate
    assert crashtrials.compare(ref, ref, Counter({"a": 1}), Counter({"a": 2}))[1] == [
        "e-mail a arrived 2 times, not marked possible_duplicate"
    ]
    marked = _state(ref.rows, dups={"a"})
    assert crashtrials.compare(ref, marked, Counter({"a": 1}), Counter({"a": 2}))[1:3] == ([], 1)
    assert crashtrials.compare(ref, ref, Counter({"a": 1}), Counter())[0] == ["e-mail a never arrived"]
    # a possible duplicate the engine marks outside the window the killed run left `sending`
    assert crashtrials.compare(ref, marked, Counter({"a": 1}), Counter({"a": 2}), window={"b"})[3] == [
        "marked possible_duplicate outside the crash window: ['a']"
    ]
    assert crashtrials.compare(ref, marked, Counter({"a": 1}), Counter({"a": 2}), window={"a"})[3] == []
    broken = crashtrials.State("*** in database main ***", ref.rows, 0, [], set(), set())
    assert crashtrials.compare(ref, broken, Counter(), Counter())[3] == ["integrity_check: *** in database main ***"]
