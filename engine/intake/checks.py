"""Row checks per file kind: the CSV rows of one file become staging tuples, the bad ones rejects.

Each row takes a fast path when every check passes on cached answers (dates and values repeat a
lot in an extract); otherwise a `_check_*` method runs every check, notes each problem as a
reject (file, physical line, field, a reason that says how to fix it) and says whether the row
can still be used.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from engine.intake.csvio import CsvFile
from engine.intake.fields import (
    CHECK_YEAR,
    EARLIEST_BIRTH,
    PRIVATE_FIELDS,
    SEX,
    SEX_HINT,
    nationality,
    relationship,
    unknown_code,
)
from engine.rules.conditions import RELATIONSHIPS
from engine.support.dates import DateError, parse_date
from engine.support.vocabulary import CODES, check_value, identity_part


class FileChecker:
    """Turns the CSV rows of one file into staging tuples, collecting rejects on the way.

    `households()`, `persons()` and `records()` stream the rows of that file kind.
    """

    def __init__(self, csvfile: CsvFile, today: date):
        self.file = csvfile.name
        self.table = self.file.removesuffix(".csv")  # households, persons or records
        self.csvfile = csvfile
        self.rejects: list[tuple[str, int, str | None, str]] = []
        self.rejected_rows = 0
        self.rejected_ids: dict[str, int] = {}  # id -> line, to explain later unknown references
        self.today = today.isoformat()
        self._dates: dict[str, str | DateError] = {}
        self._values: dict[tuple[str, str], tuple[str | None, str]] = {}

    def reject(self, line: int, field: str | None, reason: str) -> None:
        self.rejects.append((self.file, line, field, reason))

    def rejected(self, line: int, ident: str) -> None:
        """Count a rejected row; remember its id to explain references to it."""
        self.rejected_rows += 1
        if ident:
            self.rejected_ids.setdefault(ident, line)

    def date(self, line: int, field: str, text: str) -> str | None:
        """ISO form of a date, or None after rejecting it."""
        iso = self._dates.get(text)
        if iso is None:
            try:
                iso = parse_date(text).isoformat()
            except DateError as e:
                iso = e
            if len(self._dates) < 500_000:
                self._dates[text] = iso
        if iso.__class__ is str:
            return iso
        shown = "" if field in PRIVATE_FIELDS else f" '{text}'"
        self.reject(line, field, f"unparseable date{shown}: {iso}")
        return None

    def value_info(self, code: str, value: str) -> tuple[str | None, str]:
        """(problem or None, identity part) of a record value; `code` must be known."""
        info = self._values.get((code, value))
        if info is None:
            problem = check_value(code, value)
            info = (problem, "" if problem else identity_part(code, value))
            if len(self._values) < 100_000:
                self._values[(code, value)] = info
        return info

    def all_rejects(self) -> list[tuple[str, int, str | None, str]]:
        """(file, line, field, reason) of every reject: unreadable CSV rows and failed checks."""
        return [(r.file, r.line, r.field, r.reason) for r in self.csvfile.rejects] + self.rejects

    def rejected_total(self) -> int:
        return self.rejected_rows + len(self.csvfile.rejects)

    def required(self, line: int, **values: str) -> bool:
        """Reject each empty value; True when none is empty."""
        for field, value in values.items():
            if not value:
                self.reject(line, field, f"{field} is empty; it is required — fill it in")
        return all(values.values())

    # households.csv

    def households(self) -> Iterator[tuple]:
        for line, (hid, area, address) in self.csvfile.tuples():
            hid, area = hid.strip(), area.strip()
            if hid and area:
                yield (line, hid, area, address.strip() or None)
            else:
                self.required(line, household_id=hid, area=area)
                self.rejected(line, hid)

    # persons.csv

    def persons(self) -> Iterator[tuple]:
        dates, today = self._dates, self.today
        unknown, example = 0, None  # rows whose 続柄 the rules do not know, and the first (line, 続柄)
        for line, (pid, hid, name, kana, birth, sex, rel, nat) in self.csvfile.tuples():
            pid, hid, birth = pid.strip(), hid.strip(), birth.strip()
            iso, sex_code = dates.get(birth), SEX.get(sex)
            if not (pid and hid and iso.__class__ is str and EARLIEST_BIRTH <= iso <= today and sex_code):
                checked = self._check_person(line, pid, hid, birth, sex)
                if checked is None:
                    self.rejected(line, pid)
                    continue
                iso, sex_code = checked
            rel, known = relationship(rel)
            if not known:
                unknown += 1
                example = example or (line, rel)
            yield (
                line, pid, hid, name.strip() or None, kana.strip() or None, iso, sex_code,
                rel, nationality(nat),
            )  # fmt: skip
        if example:
            line, rel = example
            rows = "1 row has" if unknown == 1 else f"{unknown:,} rows have"
            self.csvfile.warnings.append(
                f"{self.file}: {rows} a 続柄 the rules do not know (e.g. line {line}; the value is not shown: it may hold a name);"
                f" rules about 続柄 will not match them — use one of {', '.join(RELATIONSHIPS)}"
            )

    def _check_person(self, line: int, pid: str, hid: str, birth: str, sex: str) -> tuple[str, str] | None:
        ok = self.required(line, person_id=pid, household_id=hid, birth_date=birth)
        iso = None
        if birth:
            iso = self.date(line, "birth_date", birth)
            if iso is None:
                ok = False
            elif iso > self.today:
                self.reject(line, "birth_date", f"birth_date is in the future (after {self.today}); {CHECK_YEAR}")
                ok = False
            elif iso < EARLIEST_BIRTH:
                self.reject(line, "birth_date", f"birth_date is before {EARLIEST_BIRTH}; {CHECK_YEAR}")
                ok = False
        sex = sex.strip()
        sex_code = SEX.get(sex) or SEX.get(sex.lower())
        if sex_code is None:
            # the value is not echoed: in a row shifted by an unquoted comma it is a birth date or a name
            self.reject(line, "sex", f"unrecognised sex: {SEX_HINT}")
            ok = False
        return (iso, sex_code) if ok else None  # type: ignore[return-value]

    # records.csv

    def records(self) -> Iterator[tuple]:
        dates, values = self._dates, self._values
        for line, (pid, source, code, value, start, end) in self.csvfile.tuples():
            pid, source, code, value = pid.strip(), source.strip(), code.strip(), value.strip()
            start, end = start.strip(), end.strip()
            start_iso, info = dates.get(start), values.get((code, value))
            end_iso = dates.get(end) if end else None
            if not (
                pid and source and start_iso.__class__ is str and info is not None and info[0] is None
                and (not end or (end_iso.__class__ is str and end_iso >= start_iso))
            ):  # fmt: skip
                checked = self._check_record(line, pid, source, code, value, start, end)
                if checked is None:
                    self.rejected(line, "")
                    continue
                start_iso, end_iso, info = checked
            key = f"{pid}|{source}|{code}|{start_iso}|{info[1]}"
            yield (line, key, pid, source, code, value, start_iso, end_iso)

    def _check_record(
        self, line: int, pid: str, source: str, code: str, value: str, start: str, end: str
    ) -> tuple[str, str | None, tuple[str | None, str]] | None:
        ok = self.required(line, person_id=pid, source=source, code=code, start_date=start)
        start_iso = self.date(line, "start_date", start) if start else None
        ok = ok and start_iso is not None
        info = None
        if code and code not in CODES:
            self.reject(line, "code", unknown_code(code))
            ok = False
        elif code:
            info = self.value_info(code, value)
            if info[0]:
                self.reject(line, "value", f"{code}: {info[0]}")
                ok = False
        end_iso = None
        if end:
            end_iso = self.date(line, "end_date", end)
            if end_iso is None:
                ok = False
            elif start_iso is not None and end_iso < start_iso:
                self.reject(line, "end_date", f"end_date {end_iso} is before start_date {start_iso}; fix one of them")
                ok = False
        return (start_iso, end_iso, info) if ok else None  # type: ignore[return-value]
