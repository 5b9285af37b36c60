"""The one statement that reads a shard for the prefilter (engine/rules/prefilter.py).

It reads the persons of the shard born by the screening date, each LEFT JOINed with its records
started by that date, once, from the inside out:
1. per person (GROUP BY p.rowid, which the scan already follows): how many of its records
   pass each record test the rules use (`atoms`);
2. per household: the size, how many members meet each indicator that needs more than a
   record (`members`), and how many of its records pass each test;
3. the households whose row meets at least one flag's necessary condition.

Each SQLite aggregate costs about as much per row as the join itself (17 MAX columns took
longer than the 22 separate queries), so counts are packed: FIELD_BITS bits per count, PER_SUM
counts in one SUM. A field cannot carry into its neighbour while it counts fewer than
2**FIELD_BITS rows, so a household with that many members or records is taken as a candidate
without looking (never missed: the rule engine decides it). The top field starts at bit 36:
a SUM would overflow only past 2**26 records of one household.
"""

from __future__ import annotations

from engine.support.vocabulary import CODES, SILOS

FIELD_BITS = 12
PER_SUM = 4  # 4 x 12 = 48 bits, well within SQLite's signed 64-bit integers
LIMIT = 1 << FIELD_BITS
MASK = LIMIT - 1

Sql = tuple[str, list]
Test = tuple[str, str, tuple]  # a record of this code passes this SQL over r (with its parameters)
ACTIVE = "(r.end_date IS NULL OR r.end_date >= ?)"  # not ended before the parameter


class Pass:
    """The columns one statement needs, registered while the flags' conditions are translated."""

    def __init__(self, on_iso: str):
        self.iso = on_iso
        self.atoms: dict[tuple[Test, ...], int] = {}  # record tests (any of) -> person-level field
        self.members: dict[tuple, int] = {}  # person condition -> household-level field
        self.member_sql: list[Sql] = []

    # --- registration, and the SQL that reads what was registered ---------------------------
    def atom(self, tests: tuple[Test, ...]) -> int:
        """A record test on one person: some of its records (started by the screening date)
        is of one of these codes and passes that code's condition."""
        return self.atoms.setdefault(tests, len(self.atoms))

    def has(self, atom: int, positive: bool = True) -> str:
        """SQL over the per-person row p: the person has (or has no) record passing the atom."""
        return f"{_field('p.f', atom)} {'>' if positive else '='} 0"

    def some_member(self, person: Sql) -> str:
        """SQL over the per-household row h: some member meets `person` (SQL over p)."""
        key = (person[0], tuple(person[1]))
        if key not in self.members:
            self.members[key] = len(self.members)
            self.member_sql.append(person)
        return f"{_field('h.g', self.members[key])} > 0"

    def records_passing(self, atom: int) -> str:
        """SQL over the per-household row h: how many of its records pass the atom."""
        return _field("h.a", atom)

    def silos_touched(self) -> str:
        """SQL over h: how many silos the household's records touch on the screening date."""
        touched = [f"({self.records_passing(self.atom(tests))} > 0)" for tests in silo_tests(self.iso)]
        return "(" + " + ".join(touched) + ")"

    # --- the statement -----------------------------------------------------------------------
    def statement(self, persons_from: str, where: str, wparams: list, condition: Sql) -> Sql:
        """SELECT household_id of the households meeting `condition` (SQL over h)."""
        persons, pparams = self._persons(persons_from, where, wparams)
        columns, params = ["p.household_id", "COUNT(*) AS size"], []
        guard = "h.size >= ?"
        if self.atoms:
            columns.append("SUM(p.n) AS records")
            columns += [f"SUM(p.f{g}) AS a{g}" for g in range(0, (len(self.atoms) + PER_SUM - 1) // PER_SUM)]
            guard += " OR h.records >= ?"
        for g in range(0, len(self.member_sql), PER_SUM):
            terms = []
            for k, (sql, sparams) in enumerate(self.member_sql[g : g + PER_SUM]):
                terms.append(f"CASE WHEN {sql} THEN {1 << (FIELD_BITS * k)} ELSE 0 END")
                params += sparams
            columns.append(f"SUM({' + '.join(terms)}) AS g{g // PER_SUM}")
        households = f"SELECT {', '.join(columns)} FROM ({persons}) p GROUP BY p.household_id"
        sql = f"SELECT h.household_id FROM ({households}) h WHERE {guard} OR ({condition[0]})"
        return sql, params + pparams + [LIMIT] * guard.count("?") + condition[1]

    def _persons(self, persons_from: str, where: str, wparams: list) -> Sql:
        """One row per person of the shard born by the screening date, with its atom fields."""
        base = "p.household_id, p.birth_date, p.sex, p.relationship, p.nationality"
        if not self.atoms:
            return f"SELECT {base} FROM {persons_from} WHERE {where}", wparams
        columns, params = [base, "COUNT(r.code) AS n"], []
        ordered = sorted(self.atoms.items(), key=lambda item: item[1])
        for g in range(0, len(ordered), PER_SUM):
            by_code: dict[str, list[str]] = {}
            by_code_params: dict[str, list] = {}
            for k, (tests, _) in enumerate(ordered[g : g + PER_SUM]):
                for code, sql, tparams in tests:
                    by_code.setdefault(code, []).append(f"CASE WHEN {sql} THEN {1 << (FIELD_BITS * k)} ELSE 0 END")
                    by_code_params.setdefault(code, []).extend(tparams)
            whens = []
            for code, terms in by_code.items():
                whens.append(f"WHEN ? THEN {' + '.join(terms)}")
                params += [code, *by_code_params[code]]
            columns.append(f"COALESCE(SUM(CASE r.code {' '.join(whens)} END), 0) AS f{g // PER_SUM}")
        # every record test is of a record started by the screening date
        sql = (
            f"SELECT {', '.join(columns)} FROM {persons_from} "
            f"LEFT JOIN records r ON r.person_id = p.person_id AND r.start_date <= ? "
            f"WHERE {where} GROUP BY p.rowid"
        )
        return sql, params + [self.iso] + wparams


def silo_tests(on_iso: str) -> list[tuple[Test, ...]]:
    """Per silo, the record tests that touch it on the screening date, as
    engine.support.vocabulary.record_silos."""
    silos = list(dict.fromkeys([*SILOS, *(spec.silo for spec in CODES.values() if spec.silo)]))
    tests: dict[str, list[Test]] = {silo: [] for silo in silos}
    for code, spec in CODES.items():
        if spec.silo_from_value:
            for silo in SILOS:
                tests[silo].append((code, f"{ACTIVE} AND r.value = ?", (on_iso, silo)))
        elif spec.silo and spec.silo_min is not None:
            # as record_silos: digits only (value.isdigit()) and at least silo_min
            digits = "r.value <> '' AND r.value NOT GLOB '*[^0-9]*' AND CAST(r.value AS INTEGER) >= ?"
            tests[spec.silo].append((code, f"{ACTIVE} AND {digits}", (on_iso, spec.silo_min)))
        elif spec.silo:
            tests[spec.silo].append((code, ACTIVE, (on_iso,)))
    return [tuple(t) for t in tests.values() if t]


def _field(prefix: str, index: int) -> str:
    """The count packed at `index` in columns prefix0, prefix1, ..."""
    shift = FIELD_BITS * (index % PER_SUM)
    return f"(({prefix}{index // PER_SUM} >> {shift}) & {MASK})"
