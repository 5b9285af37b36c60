"""What an import may not do unless told to: import an older extract, re-open ended records, blank a column.

An extract's date is the day the silo took it when the operator states it (`as_of`; `engine import
--as-of`), else the day (in Japan) its newest file was last written, or the import day if that is
later. File dates travel with the files when they are copied by Explorer, robocopy, rsync -t, cp -p
or unzip; a copy that does not keep them dates the extract on the day of the copy, and then only
--as-of says how old it is. The data's own dates were tried and refused good extracts: a partial
extract (only some people's new records) or a small one has no recent date. Each import keeps its
extract's date in its summary (imports.summary: extract_date, extract_dated_by).

A real import is refused, and nothing is written, when (each has its own override, `Allow`):
- its extract is older than the newest extract already imported (`older`, --allow-older);
- it would re-open records the workspace has ended: an end_date set there and none in the extract,
  or an end_date on or before the import day moved after it (`reopen`, --allow-reopen);
- it would blank a filled column (BLANKABLE) for more than BLANK_SHARE of the rows that have it
  filled and more than BLANK_MIN_ROWS rows (`blank`, --allow-blank): a column left empty in an
  extract must not wipe it for everyone.

The counts are taken in the merge (engine/intake/merge.py) over the rows that differ only, with SQL.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from pathlib import Path

from pydantic import BaseModel

from engine.intake.report import FileChanges
from engine.intake.staging import Target
from engine.support import clock
from engine.support.errors import Problem

BLANK_SHARE = 0.05  # more than this share of the rows that have a column filled …
BLANK_MIN_ROWS = 3  # … and more than this many rows blanked: refused
# column -> the value that means "empty" once normalised (an empty sex is stored as U)
BLANKABLE: dict[str, dict[str, str]] = {
    "households": {"address": ""},
    "persons": {"name": "", "kana": "", "sex": "U", "relationship": "", "nationality": ""},
}
DATED_BY_FILES = "the date of its files"
DATED_BY_OPTION = "--as-of"


class Allow(BaseModel):
    """What the operator allowed an import to do that is refused by default."""

    older: bool = False  # --allow-older
    reopen: bool = False  # --allow-reopen
    blank: bool = False  # --allow-blank


def _empty(alias: str, column: str, empty: str) -> str:
    """SQL: the column is empty (NULL or its normalised empty value) in the row `alias`."""
    return f"coalesce({alias}.{column}, '{empty}') = '{empty}'"


def count_changes(conn: sqlite3.Connection, target: Target, stage: str, today: date) -> FileChanges:
    """Records ended and re-opened, values blanked per column, among the rows in temp.changed (the
    staged rows that differ from the workspace), before they are merged."""
    t, key = target.table, target.key
    terms = {}
    if t == "records":
        terms["ended"] = "t.end_date IS NULL AND s.end_date IS NOT NULL"
        terms["reopened"] = (
            "t.end_date IS NOT NULL AND (s.end_date IS NULL OR (t.end_date <= :today AND s.end_date > :today))"
        )
    columns = BLANKABLE.get(t, {})
    terms |= {f"blank_{c}": f"{_empty('s', c, e)} AND NOT {_empty('t', c, e)}" for c, e in columns.items()}
    if not terms or conn.execute("SELECT 1 FROM temp.changed WHERE NOT is_new LIMIT 1").fetchone() is None:
        return FileChanges()  # nothing updated (a first import: nothing to look up)
    sums = ", ".join(f"coalesce(sum({sql}), 0)" for sql in terms.values())
    row = conn.execute(
        f"SELECT {sums} FROM temp.changed c JOIN {stage} s ON s.line = c.line JOIN main.{t} t ON t.{key} = s.{key}"
        " WHERE NOT c.is_new",
        {"today": today.isoformat()},
    ).fetchone()
    counts = dict(zip(terms, row))
    blanked = {c: counts[f"blank_{c}"] for c in columns if counts[f"blank_{c}"]}
    filled = {}
    if any(n > BLANK_MIN_ROWS for n in blanked.values()):  # the share needs the filled rows: one scan, rarely
        many = [c for c, n in blanked.items() if n > BLANK_MIN_ROWS]
        sums = ", ".join(f"sum(NOT {_empty('t', c, columns[c])})" for c in many)
        row = conn.execute(f"SELECT {sums} FROM main.{t} t").fetchone()
        filled = dict(zip(many, row))
    return FileChanges(ended=counts.get("ended", 0), reopened=counts.get("reopened", 0), blanked=blanked, filled=filled)


def extract_date(paths: list[Path], as_of: date | None, today: date) -> tuple[str, str]:
    """(the extract's date, ISO; how it is known): `as_of`, else its newest file's date up to `today`."""
    if as_of is not None:
        return as_of.isoformat(), DATED_BY_OPTION
    written = datetime.fromtimestamp(max(p.stat().st_mtime for p in paths), clock.TOKYO).date()
    return min(written, today).isoformat(), DATED_BY_FILES


def last_extract_date(conn: sqlite3.Connection) -> str | None:
    """The newest extract date of the imports so far (imports made before extracts were dated have none)."""
    return conn.execute("SELECT max(json_extract(summary, '$.extract_date')) FROM imports").fetchone()[0]


def refusals(
    source: str,
    changes: dict[str, FileChanges],
    dated: tuple[str, str, str | None],
    allow: Allow,
    today: date,
) -> list[Problem]:
    """What a real import refuses, one problem each; `dated` = (extract date, dated by, last extract date)."""
    problems = []
    when, dated_by, last = dated
    if when and last and when < last and not allow.older:
        problems.append(
            Problem(
                file=source,
                field="--as-of" if dated_by == DATED_BY_OPTION else "",
                message=f"the extract is dated {when} ({dated_by}), older than the last imported extract"
                f" ({last}); import the newer extract, state this one's date with --as-of, or use"
                " --allow-older to import it anyway",
            )
        )
    for name, c in changes.items():
        if c.reopened and not allow.reopen:
            problems.append(
                Problem(
                    file=name,
                    field="end_date",
                    message=f"{c.reopened:,} record(s) the workspace has ended would be re-opened (no end_date in"
                    f" the extract, or one moved after {today}); check that the extract is not an older one,"
                    " or use --allow-reopen if the silo really re-opened them",
                )
            )
        for column, n in c.blanked.items():
            filled = c.filled.get(column)
            if allow.blank or filled is None or n <= BLANK_SHARE * filled:
                continue
            problems.append(
                Problem(
                    file=name,
                    field=column,
                    message=f"{column} would be emptied in {n:,} of the {filled:,} rows that have one (the limit"
                    f" is {BLANK_SHARE:.0%} of them, and at least {BLANK_MIN_ROWS} rows); is the column empty in"
                    " the extract? Fix the extract, or use --allow-blank if the values were really removed",
                )
            )
    return problems
