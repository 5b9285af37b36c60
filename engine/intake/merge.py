"""The merge: set-based SQL, inside the import transaction, from the staging tables into the workspace.

Staged rows that reference an unknown id are rejected; of the rest, only the rows that are new or
differ from the database are upserted, and their households get this import's `changed_seq`. Before
they are, the guards (engine/intake/guards.py) count what they would end, re-open or blank.
A table's first import skips the comparison when the table is empty (households.csv), or empty
with every household already changed by this import (persons.csv, records.csv): all its staged rows
are new, and there is no household left to mark.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from engine.intake.checks import FileChecker
from engine.intake.guards import count_changes
from engine.intake.report import FileChanges
from engine.intake.staging import Target


def drop_unknown(
    conn: sqlite3.Connection, stage: str, target: Target, column: str, checker: FileChecker, referenced: FileChecker
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


def merge(conn: sqlite3.Connection, target: Target, stage: str, seq: int, today: date) -> tuple[int, int, FileChanges]:
    """Upsert the staged rows that are new or differ; mark their households changed.
    -> (inserted, updated, what the updates end, re-open and blank)"""
    t, key = target.table, target.key
    conn.execute("DROP TABLE IF EXISTS temp.changed")
    first = conn.execute(f"SELECT NOT EXISTS (SELECT 1 FROM main.{t})").fetchone()[0]
    mark = bool(target.touched) and not _all_changed(conn, seq)  # households left to mark
    if first and not mark:
        # the table's first import: every staged row is new, and no household left to mark
        inserted = changed = conn.execute(f"SELECT count(*) FROM {stage}").fetchone()[0]
        changes, rows = FileChanges(), f"{stage} s"
    else:
        inserted, changed, changes = _compare(conn, target, stage, seq, today, mark)
        rows = f"temp.changed c JOIN {stage} s ON s.line = c.line"
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
            f" FROM {rows} WHERE true ORDER BY s.{key}"
            f" ON CONFLICT({key}) DO UPDATE SET {', '.join(updates)}"
        )
    conn.execute("DROP TABLE IF EXISTS temp.changed")
    return inserted, changed - inserted, changes


def _compare(
    conn: sqlite3.Connection, target: Target, stage: str, seq: int, today: date, mark: bool
) -> tuple[int, int, FileChanges]:
    """Put the staged rows that are new or differ in temp.changed, count what they would end, re-open
    and blank, and (with `mark`) mark the households they touch. -> (inserted, changed, the counts)"""
    t, key = target.table, target.key
    differs = " OR ".join(f"t.{c} IS NOT s.{c}" for c in target.compared)
    conn.execute("CREATE TEMP TABLE changed (line INTEGER PRIMARY KEY, is_new INTEGER, old_household TEXT)")
    conn.execute(
        f"INSERT INTO temp.changed SELECT s.line, t.{key} IS NULL, {target.old_household} FROM {stage} s"
        f" LEFT JOIN main.{t} t ON t.{key} = s.{key} WHERE t.{key} IS NULL OR {differs}"
    )
    changes = count_changes(conn, target, stage, today)
    if mark:
        conn.execute(
            "UPDATE households SET changed_seq = ? WHERE changed_seq <> ?"
            f" AND household_id IN ({target.touched.format(stage=stage)})",
            (seq, seq),
        )
    changed, inserted = conn.execute("SELECT count(*), coalesce(sum(is_new), 0) FROM temp.changed").fetchone()
    return inserted, changed, changes


def _all_changed(conn: sqlite3.Connection, seq: int) -> bool:
    """Every household already has this import's changed_seq (a first import: all were inserted), so
    marking the households its persons or records touch would change nothing. min and max come from
    the index households_changed, without a scan."""
    low, high = conn.execute(
        "SELECT (SELECT min(changed_seq) FROM households), (SELECT max(changed_seq) FROM households)"
    ).fetchone()
    return low == high == seq


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
