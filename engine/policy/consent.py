"""本人同意: whose consent a case needs, and when a consent record counts.

A consent is a record of code `consent`. It counts on a day when it began by that day and has not
ended before it; it lasts through a later day (the meeting's) when it has not ended before that
day either. The persons a case concerns are the members its flags name in their evidence (every
flag names the members whose records raised it, `multi_domain` included); a flag that names
nobody concerns the whole household. A 重層的支援会議 needs all of them to consent, and an agency
that is not a member of the 支援会議 hears of a case only when they all do (see members.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from engine.rules.facts import Household, Person

CODE = "consent"


def valid(start: str, end: str | None, on_iso: str, through_iso: str | None = None) -> bool:
    """A consent record given by `on_iso` that has not ended before `through_iso` (by default the
    same day). Dates are ISO text: comparing them as text compares them as dates."""
    return start <= on_iso and (end is None or end >= (through_iso or on_iso))


def consents(person: Person, on_iso: str, through_iso: str | None = None) -> bool:
    return any(valid(r.start, r.end, on_iso, through_iso) for r in person.records.get(CODE, ()))


def consenting(hh: Household, on_iso: str) -> set[str]:
    """The members of the household whose consent counts on the day."""
    return {p.person_id for p in hh.persons if consents(p, on_iso)}


def consent_lasts(hh: Household, persons: set[str], on_iso: str, through_iso: str) -> bool:
    """Every one of `persons` has a consent record valid from `on_iso` through `through_iso` (the meeting day)."""
    by_id = {p.person_id: p for p in hh.persons}
    return all(pid in by_id and consents(by_id[pid], on_iso, through_iso) for pid in persons)


def concerned(flag_members: Iterable[Iterable[str]], household: Iterable[str]) -> set[str]:
    """The persons a case concerns: every member any of its flags names; a flag that names nobody
    (evidence stored before it named members, a rule of household conditions only) concerns the
    whole household, also next to other flags; no flag at all: the whole household."""
    everyone = set(household)
    out: set[str] = set()
    for members in flag_members:
        out |= set(members) or everyone
    return out or everyone


def case_consented(conn: sqlite3.Connection, case_id: str, on_iso: str, through_iso: str | None = None) -> bool:
    """Every person the case concerns has a consent record valid on the day (and, with `through_iso`,
    through that day: a 重層的支援会議's, as its booking asks, consent_lasts)."""
    flag_members = [
        json.loads(evidence).get("members", [])
        for (evidence,) in conn.execute(
            "SELECT f.evidence FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id WHERE c.case_id = ?", (case_id,)
        )
    ]
    household = [
        p
        for (p,) in conn.execute(
            "SELECT p.person_id FROM persons p JOIN cases c ON c.household_id = p.household_id WHERE c.case_id = ?",
            (case_id,),
        )
    ]
    persons = concerned(flag_members, household)
    if not persons:
        return False
    marks = ",".join("?" * len(persons))
    agreed = {
        pid
        for pid, start, end in conn.execute(
            f"SELECT person_id, start_date, end_date FROM records WHERE code = ? AND person_id IN ({marks})",
            (CODE, *sorted(persons)),
        )
        if valid(start, end, on_iso, through_iso)
    }
    return persons <= agreed
