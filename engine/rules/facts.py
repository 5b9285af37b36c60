"""Household data as the rules see it, loaded from the workspace without personal data.

Only pseudonymous ids, birth dates (to compute ages, never copied out), sex, 続柄, nationality
and records are read; names, kana and addresses never leave SQLite through this module.
Dates are kept as ISO strings: comparing them as text is comparing them as dates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from engine.rules.model import FOREIGN_EXCLUDED, Record
from engine.support.vocabulary import CODES, level_rank, parse_arrears, record_silos


@dataclass(slots=True)
class Rec:
    key: str
    code: str
    value: str
    start: str
    end: str | None


@dataclass(slots=True)
class Person:
    person_id: str
    birth: str
    sex: str
    relationship: str
    nationality: str
    records: dict[str, list[Rec]] = field(default_factory=dict)


@dataclass(slots=True)
class Household:
    household_id: str
    persons: list[Person] = field(default_factory=list)


def current(rec: Rec, on_iso: str) -> bool:
    """The record is valid on that day (started, and not ended before it)."""
    return rec.start <= on_iso and (rec.end is None or rec.end >= on_iso)


def months_before(d: date, months: int) -> date:
    """The same day `months` earlier (clamped to the month's last day)."""
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    m += 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(y, m, day)
        except ValueError:
            continue
    raise ValueError(d)


def age_on(birth_iso: str, on_iso: str) -> int:
    """Full years on `on_iso` for someone born on `birth_iso` (both yyyy-mm-dd)."""
    return int(on_iso[:4]) - int(birth_iso[:4]) - (on_iso[5:] < birth_iso[5:])


def birth_cutoff(on: date, years: int) -> str:
    """Persons born on or before this ISO text are at least `years` old on `on`."""
    return f"{on.year - years:04d}-{on.month:02d}-{on.day:02d}"


def is_foreign(nationality: str) -> bool:
    return nationality.strip(" ") not in FOREIGN_EXCLUDED  # as SQL TRIM() in the prefilter


def record_number(code: str, value: str) -> int | None:
    """The comparable number of a record: level rank, amount, or arrears months."""
    spec = CODES[code]
    if spec.value_type == "level":
        return level_rank(spec, value)
    if spec.value_type == "amount":
        try:
            return int(value)
        except ValueError:
            return None
    if spec.value_type == "arrears":
        parsed = parse_arrears(value)
        return parsed[1] if parsed else None
    return None


def record_value_key(code: str, value: str) -> str:
    """The value a rule's `value:` matches: the arrears kind, else the value itself."""
    if CODES[code].value_type == "arrears":
        parsed = parse_arrears(value)
        return parsed[0] if parsed else value
    return value


class Context:
    """Everything that depends on the screening date, computed once per run."""

    def __init__(self, on: date):
        self.on = on
        self.iso = on.isoformat()
        self._since: dict[int, str] = {}

    def since(self, within_months: int) -> str:
        if within_months not in self._since:
            self._since[within_months] = (
                months_before(self.on, within_months).isoformat() if within_months else self.iso
            )
        return self._since[within_months]

    def matcher(self, atom: Record) -> Callable[[Rec], bool]:
        """A fast test 'does this record satisfy the atom on the screening date'."""
        on, since = self.iso, self.since(atom.within_months)
        code, values, lo, hi = atom.code, frozenset(atom.values), atom.min, atom.max

        def match(rec: Rec) -> bool:
            if rec.start > on or (rec.end is not None and rec.end < since):
                return False
            if values and record_value_key(code, rec.value) not in values:
                return False
            if lo is not None or hi is not None:
                n = record_number(code, rec.value)
                if n is None or (lo is not None and n < lo) or (hi is not None and n > hi):
                    return False
            return True

        return match

    def matching(self, atom: Record, person: Person) -> list[Rec]:
        m = self.matcher(atom)
        return [r for r in person.records.get(atom.code, ()) if m(r)]

    def active_silos(self, household: Household) -> list[str]:
        out: set[str] = set()
        for p in household.persons:
            for recs in p.records.values():
                for r in recs:
                    if current(r, self.iso):
                        out.update(record_silos(r.code, r.value))
        return sorted(out)

    def silo_records(self, household: Household) -> list[tuple[str, Rec]]:
        """(member, record) of every current record that touches a silo: whose records
        `silos_touched` counts (the evidence names these members, see trace.py)."""
        return [
            (p.person_id, r)
            for p in household.persons
            for recs in p.records.values()
            for r in recs
            if current(r, self.iso) and record_silos(r.code, r.value)
        ]


def _chunks(items: list[str], size: int = 50_000) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def load_households(conn: sqlite3.Connection, household_ids: Iterable[str], on: date) -> list[Household]:
    """Load households (members born by `on`, records that started by `on`), in household id order.

    The joins are forced (CROSS JOIN, +column) to start from the wanted ids: left to itself
    SQLite walks the whole records table in key order (15x slower at 1M households)."""
    ids = sorted(set(household_ids))
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS load_ids (household_id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM load_ids")
    for chunk in _chunks(ids):
        conn.executemany("INSERT OR IGNORE INTO load_ids VALUES (?)", ((h,) for h in chunk))
    households: dict[str, Household] = {h: Household(h) for h in ids}
    persons: dict[str, Person] = {}
    for hid, pid, birth, sex, rel, nat in conn.execute(
        "SELECT p.household_id, p.person_id, p.birth_date, p.sex, p.relationship, p.nationality "
        "FROM load_ids t CROSS JOIN persons p ON p.household_id = t.household_id WHERE p.birth_date <= ? "
        "ORDER BY p.household_id, p.person_id",
        (on.isoformat(),),
    ):
        person = Person(pid, birth, sex or "U", rel or "", nat or "")
        persons[pid] = person
        households[hid].persons.append(person)
    for pid, key, code, value, start, end in conn.execute(
        "SELECT r.person_id, r.record_key, r.code, r.value, r.start_date, r.end_date "
        "FROM load_ids t CROSS JOIN persons p ON p.household_id = t.household_id "
        "CROSS JOIN records r ON r.person_id = p.person_id WHERE +r.start_date <= ? AND p.birth_date <= ? "
        "ORDER BY r.person_id, r.code, r.record_key",
        (on.isoformat(), on.isoformat()),
    ):
        person = persons[pid]
        person.records.setdefault(code, []).append(Rec(key, code, value or "", start, end or None))
    conn.execute("DELETE FROM load_ids")
    return [households[h] for h in ids]
