"""A plain-Python reference evaluator of the rule semantics, written independently of engine/.

It reads raw rows (as they are in the database), uses datetime.date arithmetic rather than the
engine's ISO-text shortcuts, and evaluates every household with no pre-selection. The tests
and the benchmark compare the durable_rules path against it.

Semantics (docs/rules.md): age = full years on the screening date; a record is active when
start <= date and (no end or end >= date - within_months); `value` matches the arrears kind
or the value; min/max compare the level rank, the amount, or the arrears months.
"""

from __future__ import annotations

import calendar
from datetime import date

from engine.rules.model import (
    Age,
    DistinctValues,
    Foreign,
    HAll,
    HAny,
    HNot,
    HouseholdSize,
    Member,
    PAll,
    PAny,
    PNot,
    Record,
    Relationship,
    RuleSet,
    Sex,
    SilosTouched,
)
from engine.support.vocabulary import CODES, SILOS

NOT_FOREIGN = {"日本", "日本国", "JP", "JPN", ""}


def _age(birth: date, on: date) -> int:
    years = on.year - birth.year
    if (on.month, on.day) < (birth.month, birth.day):
        years -= 1
    return years


def _minus_months(on: date, months: int) -> date:
    total = on.year * 12 + (on.month - 1) - months
    year, month = total // 12, total % 12 + 1
    return date(year, month, min(on.day, calendar.monthrange(year, month)[1]))


def _number(code: str, value: str):
    spec = CODES[code]
    if spec.value_type == "level":
        return spec.values.index(value) if value in spec.values else None
    if spec.value_type == "amount":
        return int(value) if value.lstrip("-").isdigit() else None
    if spec.value_type == "arrears":
        kind, _, months = value.partition(":")
        return int(months) if months.isdigit() else None
    return None


def _kind(code: str, value: str) -> str:
    return value.partition(":")[0] if CODES[code].value_type == "arrears" else value


def record_active(rec: dict, on: date, within: int) -> bool:
    start = date.fromisoformat(rec["start_date"])
    end = date.fromisoformat(rec["end_date"]) if rec.get("end_date") else None
    since = _minus_months(on, within) if within else on
    return start <= on and (end is None or end >= since)


def record_fits(cond: Record, rec: dict, on: date) -> bool:
    if rec["code"] != cond.code or not record_active(rec, on, cond.within_months):
        return False
    if cond.values and _kind(rec["code"], rec["value"]) not in cond.values:
        return False
    if cond.min is not None or cond.max is not None:
        n = _number(rec["code"], rec["value"])
        if n is None:
            return False
        if cond.min is not None and n < cond.min:
            return False
        if cond.max is not None and n > cond.max:
            return False
    return True


def person_meets(cond, person: dict, records: list[dict], on: date) -> bool:
    if isinstance(cond, PAll):
        return all(person_meets(c, person, records, on) for c in cond.items)
    if isinstance(cond, PAny):
        return any(person_meets(c, person, records, on) for c in cond.items)
    if isinstance(cond, PNot):
        return not person_meets(cond.item, person, records, on)
    if isinstance(cond, Age):
        age = _age(date.fromisoformat(person["birth_date"]), on)
        return (cond.min is None or age >= cond.min) and (cond.max is None or age <= cond.max)
    if isinstance(cond, Record):
        found = any(record_fits(cond, r, on) for r in records)
        return found != cond.negate
    if isinstance(cond, Relationship):
        return ((person.get("relationship") or "") in cond.values) != cond.negate
    if isinstance(cond, Sex):
        return ((person.get("sex") or "U") == cond.value) != cond.negate
    if isinstance(cond, Foreign):
        return ((person.get("nationality") or "").strip(" ") not in NOT_FOREIGN) == cond.value
    raise TypeError(cond)


def household_meets(cond, hh: dict, rules: RuleSet, on: date) -> bool:
    persons = hh["persons"]
    recs = hh["records"]
    if isinstance(cond, HAll):
        return all(household_meets(c, hh, rules, on) for c in cond.items)
    if isinstance(cond, HAny):
        return any(household_meets(c, hh, rules, on) for c in cond.items)
    if isinstance(cond, HNot):
        return not household_meets(cond.item, hh, rules, on)
    if isinstance(cond, Member):
        ind = rules.indicators[cond.indicator].when
        some = any(person_meets(ind, p, [r for r in recs if r["person_id"] == p["person_id"]], on) for p in persons)
        return some != cond.negate
    if isinstance(cond, HouseholdSize):
        n = len(persons)
        return (cond.min is None or n >= cond.min) and (cond.max is None or n <= cond.max)
    if isinstance(cond, SilosTouched):
        silos = set()
        for r in recs:
            if record_active(r, on, 0):
                spec = CODES[r["code"]]
                if spec.silo_from_value:
                    if r["value"] in SILOS:
                        silos.add(r["value"])
                elif spec.silo_min is not None:
                    if r["value"].isdigit() and int(r["value"]) >= spec.silo_min:
                        silos.add(spec.silo)
                elif spec.silo:
                    silos.add(spec.silo)
        n = len(silos)
        return (cond.min is None or n >= cond.min) and (cond.max is None or n <= cond.max)
    if isinstance(cond, DistinctValues):
        kinds = {_kind(r["code"], r["value"]) for r in recs if record_fits(cond.record, r, on)}
        return len(kinds) >= cond.at_least
    raise TypeError(cond)


def reference_flags(households: list[dict], rules: RuleSet, on: date) -> set[tuple[str, str]]:
    """{(household_id, flag_id)} for households given as {household_id, persons, records}.

    Members born after `on` do not exist yet on that date."""
    out = set()
    for hh in households:
        born = [p for p in hh["persons"] if date.fromisoformat(p["birth_date"]) <= on]
        ids = {p["person_id"] for p in born}
        hh = {**hh, "persons": born, "records": [r for r in hh["records"] if r["person_id"] in ids]}
        if not hh["persons"]:
            continue
        for flag in rules.flags.values():
            if household_meets(flag.when, hh, rules, on):
                out.add((hh["household_id"], flag.id))
    return out


def iter_households(conn, chunk: int = 50_000):
    """Households in id order, `chunk` at a time (for large towns)."""
    ids = [h for (h,) in conn.execute("SELECT household_id FROM households ORDER BY household_id")]
    for i in range(0, len(ids), chunk):
        lo, hi = ids[i], ids[min(i + chunk, len(ids)) - 1]
        hhs = {h: {"household_id": h, "persons": [], "records": []} for h in ids[i : i + chunk]}
        owner = {}
        for pid, hid, birth, sex, rel, nat in conn.execute(
            "SELECT person_id, household_id, birth_date, sex, relationship, nationality FROM persons WHERE household_id BETWEEN ? AND ?",
            (lo, hi),
        ):
            hhs[hid]["persons"].append(
                {"person_id": pid, "birth_date": birth, "sex": sex, "relationship": rel, "nationality": nat}
            )
            owner[pid] = hid
        for pid, code, value, start, end in conn.execute(
            "SELECT r.person_id, r.code, r.value, r.start_date, r.end_date FROM records r JOIN persons p ON p.person_id = r.person_id "
            "WHERE p.household_id BETWEEN ? AND ?",
            (lo, hi),
        ):
            hhs[owner[pid]]["records"].append(
                {"person_id": pid, "code": code, "value": value or "", "start_date": start, "end_date": end}
            )
        yield list(hhs.values())
