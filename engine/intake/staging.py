"""Staging: the checked rows of each file go into a staging table whose unique key catches duplicates.

Each file is streamed through its row checks (engine/intake/checks.py) into `<schema>.stage_<table>`
with executemany; a big records.csv is checked and staged by a second process meanwhile. Nothing
here touches the workspace's own tables: the merge (engine/intake/merge.py) does, afterwards.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import NamedTuple

from engine.intake.checks import FileChecker
from engine.intake.csvio import CsvFile
from engine.intake.refusals import FileRefused

REFUSED_EXIT = 3  # the records worker found the file unusable (FileRefused)


class Target(NamedTuple):
    """How one file's rows are staged and merged into their table."""

    table: str
    key: str
    columns: tuple[str, ...]  # stored besides the key, in staging-tuple order
    compared: tuple[str, ...]  # a difference in one of these makes the row "updated"
    touched: str  # SQL: households touched by the changed rows (c = temp.changed, s = {stage})
    old_household: str = "NULL"  # SQL kept per changed row (t = the table): household before the change


TARGETS = {
    "households.csv": Target("households", "household_id", ("area", "address"), ("area", "address"), touched=""),
    "persons.csv": Target(
        "persons",
        "person_id",
        ("household_id", "name", "kana", "birth_date", "sex", "relationship", "nationality"),
        ("household_id", "name", "kana", "birth_date", "sex", "relationship", "nationality"),
        # a moving person changes both the household left and the household joined
        touched="SELECT old_household FROM temp.changed WHERE old_household IS NOT NULL"
        " UNION SELECT s.household_id FROM temp.changed c JOIN {stage} s ON s.line = c.line",
        old_household="t.household_id",
    ),
    "records.csv": Target(
        "records",
        "record_key",
        ("person_id", "source", "code", "value", "start_date", "end_date"),
        ("value", "end_date"),  # the rest is part of the key
        touched="SELECT p.household_id FROM temp.changed c JOIN {stage} s ON s.line = c.line"
        " JOIN persons p ON p.person_id = s.person_id",
    ),
}


def stage_file(conn: sqlite3.Connection, schema: str, target: Target, checker: FileChecker) -> str:
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
    # raw executemany, not sqlite-utils' insert_all: 500,000 rows in 0.99 s against 6.3 s (batch 1,000)
    # and 7.4 s (batch 100) on this project's machine (python bench/sql_paths.py, bench/results/sql-paths.json)
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


class RecordsWorker:
    """Checks and stages records.csv in a second process while this one does the other files.

    Records are the biggest file; with two cores, staging them in parallel saves about a
    third of a large import. The worker writes its own SQLite file in the workspace (owner
    only, deleted afterwards), which is attached for the merge.
    """

    SCHEMA = "records_worker"

    def __init__(self, csvfile: CsvFile, today: date, workspace: Path):
        self.path = csvfile.path
        fd, name = tempfile.mkstemp(prefix=".import-records-", suffix=".db", dir=workspace)  # mode 0600
        os.close(fd)
        self.db = Path(name)
        args = json.dumps(
            {"path": str(csvfile.path), "encoding": csvfile.encoding, "header": csvfile.header,
             "columns": csvfile.columns, "today": today.isoformat(), "db": name, "stamp": csvfile.stamp}
        )  # fmt: skip
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), env.get("PYTHONPATH")]))
        code = "import sys; from engine.intake.staging import records_worker_main; records_worker_main(sys.argv[1])"
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

    def finish(self, conn: sqlite3.Connection, checker: FileChecker) -> str:
        """Wait for the worker, attach its database, take over its rejects; return the stage name."""
        _, err = self.proc.communicate()
        if self.proc.returncode == REFUSED_EXIT:  # the worker's FileRefused, its message on the last line
            raise FileRefused.at(self.path, err.decode(errors="replace").strip().splitlines()[-1])
        if self.proc.returncode:
            detail = err.decode(errors="replace")[-3000:]
            raise RuntimeError(f"checking records.csv failed (exit {self.proc.returncode}): {detail}")
        conn.commit()  # ATTACH is not allowed inside a transaction (this one only staged TEMP tables)
        conn.execute(f"ATTACH DATABASE ? AS {self.SCHEMA}", (str(self.db),))
        for pragma in ("journal_mode = OFF", "synchronous = OFF"):
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


def records_worker_main(args_json: str) -> None:
    """Entry point of the records worker process (see RecordsWorker)."""
    args = json.loads(args_json)
    csvfile = CsvFile(Path(args["path"]), args["encoding"], args["header"], args["columns"])
    csvfile.stamp = tuple(args["stamp"]) if args.get("stamp") else None
    checker = FileChecker(csvfile, date.fromisoformat(args["today"]))
    conn = sqlite3.connect(args["db"])
    conn.execute("PRAGMA journal_mode = OFF")  # a scratch file: deleted after the import
    conn.execute("PRAGMA synchronous = OFF")
    try:
        stage_file(conn, "main", TARGETS["records.csv"], checker)
    except FileRefused as refused:
        print(refused.problems[0].message, file=sys.stderr, flush=True)
        sys.exit(REFUSED_EXIT)
    conn.execute("CREATE TABLE worker_rejects (file TEXT, line INTEGER, field TEXT, reason TEXT)")
    conn.executemany("INSERT INTO worker_rejects VALUES (?, ?, ?, ?)", checker.all_rejects())
    conn.execute("CREATE TABLE worker_counts (rows_read INTEGER, rejected INTEGER)")
    conn.execute("INSERT INTO worker_counts VALUES (?, ?)", (csvfile.rows_read, checker.rejected_total()))
    conn.commit()
    conn.close()
