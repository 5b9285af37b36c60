"""Evaluate rules over a workspace's households into memory: the same pre-selection and
durable_rules evaluation as a screen (engine/screening/screen.py), with nothing written."""

from __future__ import annotations

import sqlite3
from datetime import date

from engine.rules.compile import Compiled
from engine.rules.durable_eval import durable_screen
from engine.rules.facts import Context, load_households
from engine.rules.model import RuleSet
from engine.rules.prefilter import Prefilter, Shard
from engine.support.errors import EngineError

BATCH = 20_000


class NothingScreened(EngineError):
    """The workspace was never screened, so there is no screening date to compare on."""

    exit_code = 2


def last_screening_date(conn: sqlite3.Connection) -> date:
    """The workspace's last screening date (the default date of a diff)."""
    row = conn.execute("SELECT MAX(screened_on) FROM screen_runs").fetchone()
    if row is None or row[0] is None:
        raise NothingScreened(
            "this workspace has not been screened yet: run `engine screen` (or `engine run`) first, or pass --date"
        )
    return date.fromisoformat(row[0])


def scope(conn: sqlite3.Connection, rule_sets: list[RuleSet], on: date) -> list[str]:
    """Households any of the rule sets may flag on `on` (their pre-selections), and those with an open flag."""
    ids: set[str] = {h for (h,) in conn.execute("SELECT household_id FROM flags WHERE status = 'open'")}
    for rules in rule_sets:
        ids |= Prefilter(rules, on).candidates(conn, Shard())
    return sorted(ids)


def evaluate(conn: sqlite3.Connection, rules: RuleSet, on: date, household_ids: list[str]) -> dict[str, set[str]]:
    """{household id: flag ids that hold on `on`} for the given households, through durable_rules."""
    screen = durable_screen(Compiled(rules))
    ctx = Context(on)
    hits: dict[str, set[str]] = {}
    for i in range(0, len(household_ids), BATCH):
        households = [h for h in load_households(conn, household_ids[i : i + BATCH], on) if h.persons]
        for hid, rule in screen.evaluate(households, ctx):
            hits.setdefault(hid, set()).add(rule)
    return hits
