"""The households to convene and their flags: new flags at or above the threshold that are in no
case yet, the flags of a case already open, and the silos that already serve a household."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from engine.config import SEVERITY_ORDER, Config
from engine.rules.facts import Household, current, load_households
from engine.rules.model import RuleSet
from engine.support.vocabulary import CODES

Flag = tuple[int, str, str, list[str]]  # flag_id, rule_id, severity, members


@dataclass
class Candidate:
    household_id: str
    area: str
    flags: list[Flag] = field(default_factory=list)

    @property
    def flag_ids(self) -> set[str]:
        return {f[1] for f in self.flags}

    @property
    def urgent(self) -> bool:
        return any(f[2] == "urgent" for f in self.flags)

    @property
    def severity(self) -> str:
        return max((f[2] for f in self.flags), key=SEVERITY_ORDER.index, default="low")


def severities_from(minimum: str) -> tuple[str, ...]:
    return SEVERITY_ORDER[SEVERITY_ORDER.index(minimum) :]


def unhandled_flags(conn: sqlite3.Connection, config: Config) -> dict[str, Candidate]:
    """Open flags at or above the threshold that are in no case yet, grouped by household."""
    sev = severities_from(config.conference.min_severity)
    rows = conn.execute(
        f"SELECT f.flag_id, f.household_id, f.rule_id, f.severity, f.evidence, h.area FROM flags f "
        f"JOIN households h ON h.household_id = f.household_id "
        f"WHERE f.status = 'open' AND f.severity IN ({','.join('?' * len(sev))}) "
        f"AND NOT EXISTS (SELECT 1 FROM case_flags c WHERE c.flag_id = f.flag_id) ORDER BY f.household_id, f.rule_id",
        sev,
    )
    out: dict[str, Candidate] = {}
    for flag_id, hid, rule_id, severity, evidence, area in rows:
        members = json.loads(evidence).get("members", [])
        out.setdefault(hid, Candidate(hid, area)).flags.append((flag_id, rule_id, severity, members))
    return out


def served_silos(hh: Household, on_iso: str, persons: set[str] | None = None) -> set[str]:
    """Silos whose agencies already serve a member (service use, 生活保護, 要対協 registration);
    with `persons`, only one of these members."""
    out = set()
    for p in hh.persons:
        if persons is not None and p.person_id not in persons:
            continue
        for code, recs in p.records.items():
            spec = CODES[code]
            if not spec.served:
                continue
            for r in recs:
                if current(r, on_iso):
                    out.add(r.value if spec.silo_from_value else spec.silo)
    return out


def case_flags(conn: sqlite3.Connection, rules: RuleSet, case_id: str, *, open_only: bool = True) -> list[Flag]:
    """The case's flags (open ones by default) whose rule still exists: a rule renamed or
    removed from the rule set must not stop the night."""
    return [
        (fid, rule_id, sev, json.loads(ev).get("members", []))
        for fid, rule_id, sev, ev in conn.execute(
            "SELECT f.flag_id, f.rule_id, f.severity, f.evidence FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id "
            "WHERE c.case_id = ? AND (? = 0 OR f.status = 'open') ORDER BY f.rule_id",
            (case_id, int(open_only)),
        )
        if rule_id in rules.flags
    ]


def case_candidates(
    conn: sqlite3.Connection, rules: RuleSet, on: date, sql: str, params: tuple = (), *, open_only: bool = True
) -> Iterator[tuple[str, Candidate, Household]]:
    """The cases selected by `sql` (columns case_id, household_id, area) as (case id, candidate
    with the case's flags — open ones only unless open_only=False — household)."""
    rows = conn.execute(sql, params).fetchall()
    loaded = {hh.household_id: hh for hh in load_households(conn, [r[1] for r in rows], on)} if rows else {}
    for case_id, hid, area in rows:
        yield case_id, Candidate(hid, area, case_flags(conn, rules, case_id, open_only=open_only)), loaded[hid]
