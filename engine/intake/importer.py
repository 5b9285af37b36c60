"""Importing a silo extract (households.csv, persons.csv, records.csv) into the workspace.

One import is one transaction. A file that cannot be used at all (missing, binary,
undecodable, a required column missing) refuses the whole import with `ImportRefused` and
nothing is written. A row that cannot be used is rejected — with file, physical line, field
and a reason that says how to fix it — and the rest is imported.

Importing is an idempotent upsert: rows are inserted or updated, never deleted (a record ends
through its end_date), and an unchanged row is left alone. Every household whose own row, a
member's person row (old and new household when a person moves) or a member's record was
inserted or updated gets `households.changed_seq` = this import's `import_seq`, so screening
can re-evaluate only those.

How it stays fast: each file is streamed through light Python checks into a staging table
(executemany), whose unique key catches duplicates within the file; a big records.csv is staged
by a second process meanwhile. Then set-based SQL, in one write transaction, rejects unknown
references, finds the rows that differ from the database and upserts only those.

Values are normalised where rules depend on them: sex to M/F/U, 続柄 variants to the words
rules use (RELATIONSHIP_ALIASES; others are kept, with a warning), ways of writing Japan to 日本.

Privacy: a reject on name, kana, address or birth_date never repeats the value.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel

from engine.intake.csvio import CsvFile, FileRefused, Reject, did_you_mean, read_csv
from engine.rules.loader import RELATIONSHIPS
from engine.store.db import current_import_seq
from engine.support import clock
from engine.support.dates import DateError, parse_date
from engine.support.private_files import open_private
from engine.support.vocabulary import CODES, check_value, identity_part

__all__ = ["FileSummary", "ImportRefused", "ImportResult", "Reject", "import_dir", "import_summary"]

COLUMNS: dict[str, tuple[str, ...]] = {
    "households.csv": ("household_id", "area", "address"),
    "persons.csv": ("person_id", "household_id", "name", "kana", "birth_date", "sex", "relationship", "nationality"),
    "records.csv": ("person_id", "source", "code", "value", "start_date", "end_date"),
}
PRIVATE_FIELDS = frozenset({"name", "kana", "address", "birth_date"})  # never echoed in a reject
EARLIEST_BIRTH = "1900-01-01"
SEX = {
    "": "U", "男": "M", "男性": "M", "m": "M", "male": "M", "1": "M",
    "女": "F", "女性": "F", "f": "F", "female": "F", "2": "F",
    "不明": "U", "u": "U", "unknown": "U",
}  # fmt: skip
SEX.update({variant: code for key, code in list(SEX.items()) for variant in (key.upper(), key.title())})
SEX_HINT = "use 男/女/不明, M/F/U, male/female or 1/2 (empty = unknown)"

# 続柄 as registers write it -> the word rules use (engine/rules/loader.py RELATIONSHIPS).
# Looked up after NFKC and without spaces, so 妻（未届） and 妻 (未届) are 妻(未届). A value that is
# neither a rule word nor listed here is stored as it is, and the import warns about it.
RELATIONSHIP_ALIASES: dict[str, str] = {
    alias: canonical
    for canonical, aliases in {
        "世帯主": "本人",
        "子": "長男 次男 三男 四男 五男 長女 次女 三女 四女 五女 養子 養女 子供 実子 息子 娘",
        "妻": "妻(未届) 未届の妻",
        "夫": "夫(未届) 未届の夫",
        "父": "実父 養父 義父 父親",
        "母": "実母 養母 義母 母親",
        "兄弟姉妹": "兄 弟 姉 妹 兄弟 姉妹 実兄 実弟 実姉 実妹",
        "その他": "子の妻 子の夫 孫の妻 孫の夫 同居人 同居者 縁故者 甥 姪 叔父 叔母 伯父 伯母 曾孫 ひ孫",
    }.items()
    for alias in aliases.split()
} | {r: r for r in RELATIONSHIPS}
# nationality values meaning Japan, after NFKC, trimming and casefold; stored as 日本
JAPAN = frozenset({"日本", "日本国", "japan", "jp", "jpn", "nippon", "ニホン", "ニッポン", "にほん", "にっぽん"})


class ImportRefused(Exception):
    """The whole import is refused and nothing was written; the message says how to fix it."""


class FileSummary(BaseModel):
    """Row counts of one file: read = inserted + updated + unchanged + rejected."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


class ImportResult(BaseModel):
    """What one import did: per-file counts, every reject (sorted by file and line), warnings."""

    import_seq: int
    source_dir: str
    encoding: dict[str, str]  # per file: utf-8, utf-8-sig, cp932, …
    files: dict[str, FileSummary]
    rejects: list[Reject]
    warnings: list[str]
    changed_households: int  # households whose changed_seq is this import
    report_path: Path | None = None  # rejects CSV, when written
    seconds: float = 0.0

    def _total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files.values())

    @property
    def total_read(self) -> int:
        return self._total("read")

    @property
    def total_inserted(self) -> int:
        return self._total("inserted")

    @property
    def total_updated(self) -> int:
        return self._total("updated")

    @property
    def total_unchanged(self) -> int:
        return self._total("unchanged")

    @property
    def total_rejected(self) -> int:
        return self._total("rejected")


# --- per-row checks -------------------------------------------------------------------------


class _Checker:
    """Turns the CSV rows of one file into staging tuples, collecting rejects on the way.

    Each row takes a fast path when every check passes on cached answers (dates and values
    repeat a lot in an extract); otherwise a `_check_*` method runs every check, notes each
    problem as a reject and says whether the row can still be used.
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
            rel, known = _relationship(rel)
            if not known:
                unknown += 1
                example = example or (line, rel)
            yield (
                line, pid, hid, name.strip() or None, kana.strip() or None, iso, sex_code,
                rel, _nationality(nat),
            )  # fmt: skip
        if example:
            line, rel = example
            rows = "1 row has" if unknown == 1 else f"{unknown:,} rows have"
            self.csvfile.warnings.append(
                f"{self.file}: {rows} a 続柄 the rules do not know (e.g. line {line}: '{rel}');"
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
                self.reject(line, "birth_date", f"birth_date is in the future (after {self.today}); {_CHECK_YEAR}")
                ok = False
            elif iso < EARLIEST_BIRTH:
                self.reject(line, "birth_date", f"birth_date is before {EARLIEST_BIRTH}; {_CHECK_YEAR}")
                ok = False
        sex = sex.strip()
        sex_code = SEX.get(sex) or SEX.get(sex.lower())
        if sex_code is None:
            self.reject(line, "sex", f"unrecognised sex '{sex}': {SEX_HINT}")
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
            self.reject(line, "code", _unknown_code(code))
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


_CHECK_YEAR = "check the year, or the era of a 和暦 date"


@lru_cache(maxsize=4096)
def _relationship(text: str) -> tuple[str | None, bool]:
    """(続柄 to store, whether rules know it): a known variant becomes its rule word, else kept."""
    text = text.strip()
    canonical = RELATIONSHIP_ALIASES.get("".join(unicodedata.normalize("NFKC", text).split()))
    return canonical or text or None, bool(canonical or not text)


@lru_cache(maxsize=4096)
def _nationality(text: str) -> str | None:
    """The nationality to store: any way of writing Japan becomes 日本, others are kept."""
    text = text.strip()
    return "日本" if unicodedata.normalize("NFKC", text).strip().casefold() in JAPAN else text or None


@lru_cache(maxsize=1024)
def _unknown_code(code: str) -> str:
    close = did_you_mean(code, list(CODES))
    if close:
        return f"unknown code '{code}' — did you mean '{close}'?"
    return f"unknown code '{code}'; known codes: {', '.join(CODES)}"


# --- staging: checked rows into a table, duplicates caught by its unique key -----------------


class _Target(NamedTuple):
    """How one file's rows are staged and merged into their table."""

    table: str
    key: str
    columns: tuple[str, ...]  # stored besides the key, in staging-tuple order
    compared: tuple[str, ...]  # a difference in one of these makes the row "updated"
    touched: str  # SQL: households touched by the changed rows (c = temp.changed, s = {stage})
    old_household: str = "NULL"  # SQL kept per changed row (t = the table): household before the change


_TARGETS = {
    "households.csv": _Target("households", "household_id", ("area", "address"), ("area", "address"), touched=""),
    "persons.csv": _Target(
        "persons",
        "person_id",
        ("household_id", "name", "kana", "birth_date", "sex", "relationship", "nationality"),
        ("household_id", "name", "kana", "birth_date", "sex", "relationship", "nationality"),
        # a moving person changes both the household left and the household joined
        touched="SELECT old_household FROM temp.changed WHERE old_household IS NOT NULL"
        " UNION SELECT s.household_id FROM temp.changed c JOIN {stage} s ON s.line = c.line",
        old_household="t.household_id",
    ),
    "records.csv": _Target(
        "records",
        "record_key",
        ("person_id", "source", "code", "value", "start_date", "end_date"),
        ("value", "end_date"),  # the rest is part of the key
        touched="SELECT p.household_id FROM temp.changed c JOIN {stage} s ON s.line = c.line"
        " JOIN persons p ON p.person_id = s.person_id",
    ),
}


def _stage(conn: sqlite3.Connection, schema: str, target: _Target, checker: _Checker) -> str:
    """Check the file's rows into `<schema>.stage_<table>`; the first of duplicate keys wins.

    Returns the staging table's qualified name.
    """
    stage = f"{schema}.stage_{target.table}"
    conn.execute(f"DROP TABLE IF EXISTS {stage}")
    columns = ", ".join(f"{c} TEXT" for c in target.columns)
    conn.execute(
        f"CREATE TABLE {stage} (line INTEGER PRIMARY KEY, {target.key} TEXT NOT NULL UNIQUE, {columns}, dups TEXT)"
    )
    conn.execute(f"CREATE INDEX {stage}_dups ON stage_{target.table}(dups) WHERE dups IS NOT NULL")
    conn.executemany(
        f"INSERT INTO {stage} VALUES (?, ?, {', '.join('?' * len(target.columns))}, NULL)"
        f" ON CONFLICT({target.key}) DO UPDATE SET dups = coalesce(dups || ' ', '') || excluded.line",
        getattr(checker, target.table)(),
    )
    is_record = target.table == "records"
    detail = ", person_id, code, start_date" if is_record else ""
    duplicated = conn.execute(f"SELECT line, {target.key}, dups{detail} FROM {stage} WHERE dups IS NOT NULL")
    for first, ident, dups, *rec in duplicated:
        for dup in map(int, dups.split()):
            checker.rejected_rows += 1
            seen = f"(first seen on line {first}); keep one row"
            if is_record:
                what = f"person_id '{rec[0]}', code '{rec[1]}', start_date {rec[2]}"
                checker.reject(dup, None, f"duplicate record for {what} {seen}")
            else:
                checker.reject(dup, target.key, f"duplicate {target.key} '{ident}' {seen}")
    return stage


class _RecordsWorker:
    """Checks and stages records.csv in a second process while this one does the other files.

    Records are the biggest file; with two cores, staging them in parallel saves about a
    third of a large import. The worker writes its own SQLite file in the workspace (owner
    only, deleted afterwards), which is attached for the merge.
    """

    SCHEMA = "records_worker"

    def __init__(self, csvfile: CsvFile, today: date, workspace: Path):
        fd, name = tempfile.mkstemp(prefix=".import-records-", suffix=".db", dir=workspace)  # mode 0600
        os.close(fd)
        self.db = Path(name)
        args = json.dumps(
            {"path": str(csvfile.path), "encoding": csvfile.encoding, "header": csvfile.header,
             "columns": csvfile.columns, "today": today.isoformat(), "db": name}
        )  # fmt: skip
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), env.get("PYTHONPATH")]))
        code = "import sys; from engine.intake.importer import _records_worker_main; _records_worker_main(sys.argv[1])"
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
        except BaseException:
            self.db.unlink(missing_ok=True)
            raise

    def finish(self, conn: sqlite3.Connection, checker: _Checker) -> str:
        """Wait for the worker, attach its database, take over its rejects; return the stage name."""
        _, err = self.proc.communicate()
        if self.proc.returncode:
            detail = err.decode(errors="replace")[-3000:]
            raise RuntimeError(f"checking records.csv failed (exit {self.proc.returncode}): {detail}")
        conn.commit()  # ATTACH is not allowed inside a transaction (this one only staged TEMP tables)
        conn.execute(f"ATTACH DATABASE ? AS {self.SCHEMA}", (str(self.db),))
        for pragma in (f"cache_size = {CACHE_SIZE}", "journal_mode = OFF", "synchronous = OFF"):
            conn.execute(f"PRAGMA {self.SCHEMA}.{pragma}")  # a scratch file
        checker.rejects = conn.execute(f"SELECT file, line, field, reason FROM {self.SCHEMA}.worker_rejects").fetchall()
        checker.csvfile.rows_read, checker.rejected_rows = conn.execute(
            f"SELECT rows_read, rejected FROM {self.SCHEMA}.worker_counts"
        ).fetchone()
        return f"{self.SCHEMA}.stage_records"

    def close(self, conn: sqlite3.Connection) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.SCHEMA in {row[1] for row in conn.execute("PRAGMA database_list")}:
            conn.execute(f"DETACH DATABASE {self.SCHEMA}")
        for suffix in ("", "-journal"):
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)


def _records_worker_main(args_json: str) -> None:
    """Entry point of the records worker process (see _RecordsWorker)."""
    args = json.loads(args_json)
    csvfile = CsvFile(Path(args["path"]), args["encoding"], args["header"], args["columns"])
    checker = _Checker(csvfile, date.fromisoformat(args["today"]))
    conn = sqlite3.connect(args["db"])
    conn.execute("PRAGMA journal_mode = OFF")  # a scratch file: deleted after the import
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute(f"PRAGMA cache_size = {CACHE_SIZE}")
    _stage(conn, "main", _TARGETS["records.csv"], checker)
    conn.execute("CREATE TABLE worker_rejects (file TEXT, line INTEGER, field TEXT, reason TEXT)")
    conn.executemany("INSERT INTO worker_rejects VALUES (?, ?, ?, ?)", checker.all_rejects())
    conn.execute("CREATE TABLE worker_counts (rows_read INTEGER, rejected INTEGER)")
    conn.execute("INSERT INTO worker_counts VALUES (?, ?)", (csvfile.rows_read, checker.rejected_total()))
    conn.commit()
    conn.close()


# --- merge: set-based SQL inside the import transaction ---------------------------------------


def _drop_unknown(
    conn: sqlite3.Connection, stage: str, target: _Target, column: str, checker: _Checker, referenced: _Checker
) -> None:
    """Reject staged rows whose `column` is no id in the table `referenced` checked (now merged)."""
    missing = conn.execute(
        f"SELECT s.line, s.{target.key}, s.{column} FROM {stage} s"
        f" WHERE NOT EXISTS (SELECT 1 FROM main.{referenced.table} t WHERE t.{column} = s.{column})"
    ).fetchall()
    source = referenced.file
    for line, own_id, ident in missing:
        checker.rejected(line, own_id if target.table == "persons" else "")
        if ident in referenced.rejected_ids:
            where = f"its row in {source} was rejected (line {referenced.rejected_ids[ident]})"
        else:
            where = f"it is neither in {source} nor in the database"
        checker.reject(line, column, f"unknown {column} '{ident}': {where}; fix the id or add the row to {source}")
    conn.executemany(f"DELETE FROM {stage} WHERE line = ?", ((line,) for line, *_ in missing))


BULK_MIN_ROWS = 50_000  # inserting at least this many rows, and at least half the table: rebuild its indexes


def _merge(conn: sqlite3.Connection, target: _Target, stage: str, seq: int) -> tuple[int, int]:
    """Upsert the staged rows that are new or differ; mark their households changed. -> (inserted, updated)"""
    t, key = target.table, target.key
    differs = " OR ".join(f"t.{c} IS NOT s.{c}" for c in target.compared)
    conn.execute("DROP TABLE IF EXISTS temp.changed")
    conn.execute("CREATE TEMP TABLE changed (line INTEGER PRIMARY KEY, is_new INTEGER, old_household TEXT)")
    conn.execute(
        f"INSERT INTO temp.changed SELECT s.line, t.{key} IS NULL, {target.old_household} FROM {stage} s"
        f" LEFT JOIN main.{t} t ON t.{key} = s.{key} WHERE t.{key} IS NULL OR {differs}"
    )
    if target.touched:
        conn.execute(
            "UPDATE households SET changed_seq = ? WHERE changed_seq <> ?"
            f" AND household_id IN ({target.touched.format(stage=stage)})",
            (seq, seq),
        )
    changed, inserted = conn.execute("SELECT count(*), coalesce(sum(is_new), 0) FROM temp.changed").fetchone()
    columns = [key, *target.columns]
    values = [f"s.{c}" for c in columns]
    updates = [f"{c} = excluded.{c}" for c in target.compared]
    if t == "households":  # a household's own row changed: it is changed
        columns.append("changed_seq")
        values.append(str(int(seq)))
        updates.append("changed_seq = excluded.changed_seq")
    existing = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM main.{t}").fetchone()[0]  # rows are never deleted
    with _indexes_rebuilt(conn, t, inserted >= BULK_MIN_ROWS and 2 * inserted >= existing):
        conn.execute(
            f"INSERT INTO main.{t} ({', '.join(columns)}) SELECT {', '.join(values)}"
            f" FROM temp.changed c JOIN {stage} s ON s.line = c.line WHERE true ORDER BY s.{key}"
            f" ON CONFLICT({key}) DO UPDATE SET {', '.join(updates)}"
        )
    conn.execute("DROP TABLE temp.changed")
    return inserted, changed - inserted


@contextmanager
def _indexes_rebuilt(conn: sqlite3.Connection, table: str, rebuild: bool) -> Iterator[None]:
    """For a bulk insert: drop the table's secondary indexes and create them again afterwards.

    Building an index by sorting is several times faster than inserting millions of rows into
    it one by one. This runs inside the import transaction: a failure rolls the drop back too.
    """
    indexes = []
    if rebuild:
        indexes = conn.execute(
            "SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (table,),
        ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX main."{name}"')
    yield
    for _, sql in indexes:
        conn.execute(sql)


# --- the import ------------------------------------------------------------------------------

CACHE_SIZE = -262_144  # KiB (256 MiB) of page cache per database while importing
PARALLEL_MIN_BYTES = 16 << 20  # records.csv at least this big: check it in a second process


def _open_files(source_dir: Path, encoding: str | None) -> dict[str, CsvFile]:
    """Check every file before anything is written; refuse the import if one is unusable."""
    if not source_dir.is_dir():
        raise ImportRefused(f"{source_dir}: no such folder; give the folder holding {', '.join(COLUMNS)}")
    missing = [name for name in COLUMNS if not (source_dir / name).is_file()]
    if missing:
        present = sorted(p.name for p in source_dir.iterdir() if p.suffix.lower() == ".csv")
        hints = [f"'{close}' — did you mean '{m}'?" for m in missing if (close := did_you_mean(m, present))]
        raise ImportRefused(
            f"{source_dir}: missing file(s) {', '.join(missing)}; an import needs {', '.join(COLUMNS)}"
            f" (found: {', '.join(present) or 'no CSV files'}). {' '.join(hints)}".rstrip()
        )
    files = {}
    for name, columns in COLUMNS.items():
        try:
            files[name] = read_csv(source_dir / name, columns, encoding=encoding)
        except FileRefused as e:
            raise ImportRefused(f"import refused, nothing was written: {e}") from e
    return files


def _workspace(conn: sqlite3.Connection) -> Path | None:
    """Folder of the main database file (None for an in-memory database)."""
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main" and file:
            return Path(file).parent
    return None


def import_dir(
    conn: sqlite3.Connection,
    source_dir: Path,
    *,
    encoding: str | None = None,
    today: date | None = None,
    report_dir: Path | None = None,
) -> ImportResult:
    """Import households.csv, persons.csv and records.csv from `source_dir` in one transaction.

    `encoding=None` detects UTF-8 / CP932 per file. `today` (default: the real today) is the
    limit for birth dates. Rejected rows are stored in `rejects` and, with `report_dir`,
    written to `report_dir/rejects-<import_seq>.csv` (mode 0600). Any pending transaction on
    `conn` is committed first. Raises ImportRefused (nothing written) for an unusable file.
    """
    started = clock.monotonic()
    source_dir = Path(source_dir)
    files = _open_files(source_dir, encoding)
    today = today or clock.today()
    checkers = {name: _Checker(f, today) for name, f in files.items()}
    if conn.in_transaction:
        conn.commit()
    cache = {db: conn.execute(f"PRAGMA {db}.cache_size").fetchone()[0] for db in ("main", "temp")}
    workspace = _workspace(conn)
    worker = None
    if workspace is not None and files["records.csv"].path.stat().st_size >= PARALLEL_MIN_BYTES:
        worker = _RecordsWorker(files["records.csv"], today, workspace)
    try:
        for db in cache:
            conn.execute(f"PRAGMA {db}.cache_size = {CACHE_SIZE}")
        # 1. check and stage: TEMP tables only, the database itself is not touched
        conn.execute("BEGIN")
        stages = {}
        for name in files:
            if name == "records.csv" and worker:
                stages[name] = worker.finish(conn, checkers[name])
            else:
                stages[name] = _stage(conn, "temp", _TARGETS[name], checkers[name])
        if conn.in_transaction:
            conn.commit()
        # 2. merge, in one write transaction
        conn.execute("BEGIN IMMEDIATE")
        result = _merge_all(conn, source_dir, files, checkers, stages)
        _record_import(conn, result)
        conn.commit()
    finally:
        if conn.in_transaction:
            conn.rollback()
        if worker:
            worker.close(conn)
        for table in ("households", "persons", "records"):
            conn.execute(f"DROP TABLE IF EXISTS temp.stage_{table}")
        for db, size in cache.items():
            conn.execute(f"PRAGMA {db}.cache_size = {size}")
    if report_dir is not None and result.rejects:
        report = Path(report_dir) / f"rejects-{result.import_seq}.csv"
        result.report_path = write_rejects_report(report, result.rejects)
    result.seconds = round(clock.monotonic() - started, 3)
    return result


def _merge_all(
    conn: sqlite3.Connection,
    source_dir: Path,
    files: dict[str, CsvFile],
    checkers: dict[str, _Checker],
    stages: dict[str, str],
) -> ImportResult:
    """Merge the staged files in order (households, persons, records) and sum up."""
    seq = current_import_seq(conn) + 1
    summaries = {}
    for name, csvfile in files.items():
        checker, stage = checkers[name], stages[name]
        if name == "persons.csv":
            _drop_unknown(conn, stage, _TARGETS[name], "household_id", checker, checkers["households.csv"])
        elif name == "records.csv":
            _drop_unknown(conn, stage, _TARGETS[name], "person_id", checker, checkers["persons.csv"])
        inserted, updated = _merge(conn, _TARGETS[name], stage, seq)
        staged = conn.execute(f"SELECT count(*) FROM {stage}").fetchone()[0]
        summaries[name] = FileSummary(
            read=csvfile.rows_read,
            inserted=inserted,
            updated=updated,
            unchanged=staged - inserted - updated,
            rejected=checker.rejected_total(),
        )
    order = list(COLUMNS)
    rejects = sorted((r for c in checkers.values() for r in c.all_rejects()), key=lambda r: (order.index(r[0]), r[1]))
    changed = conn.execute("SELECT count(*) FROM households WHERE changed_seq = ?", (seq,)).fetchone()[0]
    return ImportResult(
        import_seq=seq,
        source_dir=str(source_dir),
        encoding={name: f.encoding for name, f in files.items()},
        files=summaries,
        rejects=[Reject(file=f, line=line, field=field, reason=reason) for f, line, field, reason in rejects],
        warnings=[w for f in files.values() for w in f.warnings],
        changed_households=changed,
    )


def _record_import(conn: sqlite3.Connection, result: ImportResult) -> None:
    encodings = set(result.encoding.values())
    encoding = encodings.pop() if len(encodings) == 1 else "; ".join(f"{k}: {v}" for k, v in result.encoding.items())
    summary = {
        "files": {name: s.model_dump() for name, s in result.files.items()},
        "rejected": result.total_rejected,
        "changed_households": result.changed_households,
        "warnings": result.warnings,
    }
    conn.execute(
        "INSERT INTO imports (import_seq, imported_at, source_dir, encoding, summary) VALUES (?, ?, ?, ?, ?)",
        (
            result.import_seq,
            clock.local_now().isoformat(timespec="seconds"),
            result.source_dir,
            encoding,
            json.dumps(summary, ensure_ascii=False),
        ),
    )
    conn.executemany(
        "INSERT INTO rejects (import_seq, file, line, field, reason) VALUES (?, ?, ?, ?, ?)",
        ((result.import_seq, r.file, r.line, r.field, r.reason) for r in result.rejects),
    )


def write_rejects_report(path: Path, rejects: list[Reject]) -> Path:
    """Write file,line,field,reason as CSV (UTF-8 with BOM, for Excel), readable by the owner only."""
    with open_private(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "line", "field", "reason"])
        writer.writerows((r.file, r.line, r.field or "", r.reason) for r in rejects)
    return path


def import_summary(conn: sqlite3.Connection) -> dict[str, int]:
    """Row counts in the workspace: households, persons, records, imports."""
    return {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("households", "persons", "records", "imports")
    }
