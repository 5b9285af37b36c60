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

Each import says its extract's date, and a real import refuses (`ImportRefused`, nothing written)
an extract older than the last, re-opening ended records or blanking a filled column for many
rows, unless allowed (`Allow`; engine/intake/guards.py). A dry run does the whole import in its
transaction, reports what it would add, update, end, re-open and blank, and rolls it back.

How it stays fast: each file is streamed through light Python checks into a staging table
(executemany), whose unique key catches duplicates within the file; a big records.csv is staged
by a second process meanwhile. Then set-based SQL, in one write transaction, rejects unknown
references, finds the rows that differ from the database and upserts only those. The page cache stays at
SQLite's default (2,000 KiB): 256 MiB made the merge's sorts slower (on 2026-12-05, an import of
1M households took 49.0 s against 42.2 s; building persons_birth 2.6 s against 1.1 s) and staging
no faster.

The parts: reading and decoding a file (csvio, encoding), the files' columns and normalised
values (fields), row checks per file kind (checks), staging (staging), the merge (merge), what
an import reports (report) and why a file or row is refused (refusals). This module runs the
import transaction and refuses an import (`ImportRefused`).

Privacy: a reject on name, kana, address or birth_date never repeats the value.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path

from engine.intake.checks import FileChecker
from engine.intake.csvio import CsvFile, read_csv
from engine.intake.fields import COLUMNS, RELATIONSHIP_ALIASES
from engine.intake.guards import Allow, extract_date, last_extract_date, refusals
from engine.intake.merge import drop_unknown, merge
from engine.intake.refusals import FileRefused, Reject
from engine.intake.report import FileSummary, ImportResult, write_rejects_report
from engine.intake.staging import TARGETS, RecordsWorker, stage_file
from engine.store.db import current_import_seq, database_file
from engine.support import clock
from engine.support.errors import EngineError, Problem, closest
from engine.support.progress import Progress, report

__all__ = [
    "COLUMNS",
    "Allow",
    "RELATIONSHIP_ALIASES",
    "FileSummary",
    "ImportRefused",
    "ImportResult",
    "Reject",
    "import_dir",
    "import_summary",
    "write_rejects_report",
]


class ImportRefused(EngineError):
    """The whole import is refused and nothing was written; the message says how to fix it."""

    exit_code = 2  # `engine import` has always exited with 2 on a refused import

    @classmethod
    def because_of(cls, refused: FileRefused) -> ImportRefused:
        """The import refused for one unusable file: its message and located problems."""
        return cls(str(refused), refused.problems)  # `import refused, nothing was written:` is the CLI's (errors.py)


PARALLEL_MIN_BYTES = 16 << 20  # records.csv at least this big: check it in a second process
PROGRESS_LABEL = "取込"


def import_dir(
    conn: sqlite3.Connection,
    source_dir: Path,
    *,
    encoding: str | None = None,
    today: date | None = None,
    report_dir: Path | None = None,
    progress: Progress | None = None,
    as_of: date | None = None,
    allow: Allow | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Import households.csv, persons.csv and records.csv from `source_dir` in one transaction.

    `encoding=None` detects UTF-8 / CP932 per file. `today` (default: the real today) is the
    limit for birth dates. Rejected rows are stored in `rejects` and, with `report_dir`,
    written to `report_dir/rejects-<import_seq>.csv` (mode 0600). Any pending transaction on
    `conn` is committed first. Raises ImportRefused (nothing written) for an unusable file.
    `progress` is told how far the import is, per chunk of lines read and per file merged
    (in bytes of the files: each is counted once staged, once merged).
    `as_of` is the day the silo took the extract (default: the day its newest file was written,
    up to `today`). Raises ImportRefused (nothing written) for what `allow` does not allow (guards.py).
    `dry_run` writes nothing (no rejects report either): the result says what the import would do,
    and in `refusals` what a real import would refuse.
    """
    started = clock.monotonic()
    source_dir = Path(source_dir)
    files = _open_files(source_dir, encoding)
    today = today or clock.today()
    checkers = {name: FileChecker(f, today) for name, f in files.items()}
    advance = _progress_in_bytes(progress, files)
    if conn.in_transaction:
        conn.commit()
    workspace = _workspace(conn)
    worker = None
    if workspace is not None and files["records.csv"].path.stat().st_size >= PARALLEL_MIN_BYTES:
        worker = RecordsWorker(files["records.csv"], today, workspace)
    try:
        # 1. check and stage: TEMP tables only, the database itself is not touched
        conn.execute("BEGIN")
        stages = {}
        for name in files:
            try:
                if name == "records.csv" and worker:
                    stages[name] = worker.finish(conn, checkers[name])
                else:
                    stages[name] = stage_file(conn, "temp", TARGETS[name], checkers[name])
            except FileRefused as refused:  # changed while it was read: nothing is written
                raise ImportRefused.because_of(refused) from None
            advance(name)
        if conn.in_transaction:
            conn.commit()
        # 2. merge, in one write transaction
        conn.execute("BEGIN IMMEDIATE")
        result = _merge_all(conn, source_dir, files, checkers, stages, advance, today)
        result.dry_run = dry_run
        result.extract_date, result.extract_dated_by = extract_date([f.path for f in files.values()], as_of, today)
        result.last_extract_date = last_extract_date(conn)
        dated = (result.extract_date, result.extract_dated_by, result.last_extract_date)
        problems = refusals(str(source_dir), result.changes, dated, allow or Allow(), today)
        result.refusals = [str(p) for p in problems]
        if problems and not dry_run:
            raise ImportRefused("\n".join(result.refusals), problems)  # the transaction is rolled back
        if not dry_run:
            _record_import(conn, result)
            conn.commit()
    finally:
        if conn.in_transaction:
            conn.rollback()
        if worker:
            worker.close(conn)
        for table in ("households", "persons", "records"):
            conn.execute(f"DROP TABLE IF EXISTS temp.stage_{table}")
    if report_dir is not None and result.rejects and not dry_run:
        report_path = Path(report_dir) / f"rejects-{result.import_seq}.csv"
        result.report_path = write_rejects_report(report_path, result.rejects)
    result.seconds = round(clock.monotonic() - started, 3)
    return result


def _progress_in_bytes(progress: Progress | None, files: dict[str, CsvFile]) -> Callable[[str], None]:
    """Report none of the files' bytes done (each counts twice: staged, then merged); return
    `advance(name)`, called when a file is staged or merged. A file staged in this process also
    reports each chunk of lines it reads (the records worker cannot)."""
    sizes = {name: f.path.stat().st_size for name, f in files.items()}
    total, done = 2 * sum(sizes.values()), 0
    report(progress, done, total, PROGRESS_LABEL)
    if progress is None:
        return lambda name: None

    def advance(name: str) -> None:
        nonlocal done
        done += sizes[name]
        progress(done, total, PROGRESS_LABEL)

    for name, csvfile in files.items():  # files are staged one after the other: `done` is the bytes before
        csvfile.on_chunk = lambda read, size=sizes[name]: progress(done + min(read, size), total, PROGRESS_LABEL)
    return advance


def _open_files(source_dir: Path, encoding: str | None) -> dict[str, CsvFile]:
    """Check every file before anything is written; refuse the import if one is unusable."""
    if not source_dir.is_dir():
        what = "a file, not a folder" if source_dir.exists() else "no such folder"
        reason = f"{what}; give the folder holding {', '.join(COLUMNS)}"
        raise ImportRefused(f"{source_dir}: {reason}", [Problem(file=str(source_dir), message=reason)])
    folders = [name for name in COLUMNS if (source_dir / name).is_dir()]
    if folders:
        reason = "is a folder, not a file; put the CSV file itself under this name"
        raise ImportRefused(
            "; ".join(f"{source_dir / name}: {reason}" for name in folders),
            [Problem(file=str(source_dir / name), message=reason) for name in folders],
        )
    missing = [name for name in COLUMNS if not (source_dir / name).is_file()]
    if missing:
        present = sorted(p.name for p in source_dir.iterdir() if p.suffix.lower() == ".csv")
        close = {m: c for m in missing if (c := closest(m, present))}
        hints = [f"'{c}' — did you mean '{m}'?" for m, c in close.items()]
        raise ImportRefused(
            f"{source_dir}: missing file(s) {', '.join(missing)}; an import needs {', '.join(COLUMNS)}"
            f" (found: {', '.join(present) or 'no CSV files'}). {' '.join(hints)}".rstrip(),
            [
                Problem(
                    file=str(source_dir / m),
                    message=f"file not found; an import needs {', '.join(COLUMNS)}",
                    suggestion=f"'{close[m]}' — did you mean '{m}'?" if m in close else None,
                )
                for m in missing
            ],
        )
    files = {}
    for name, columns in COLUMNS.items():
        try:
            files[name] = read_csv(source_dir / name, columns, encoding=encoding)
        except FileRefused as e:
            raise ImportRefused.because_of(e) from e
    return files


def _workspace(conn: sqlite3.Connection) -> Path | None:
    """Folder of the main database file (None for an in-memory database)."""
    file = database_file(conn)
    return Path(file).parent if file else None


def _merge_all(
    conn: sqlite3.Connection,
    source_dir: Path,
    files: dict[str, CsvFile],
    checkers: dict[str, FileChecker],
    stages: dict[str, str],
    merged: Callable[[str], None],
    today: date,
) -> ImportResult:
    """Merge the staged files in order (households, persons, records) and sum up."""
    seq = current_import_seq(conn) + 1
    summaries, changes = {}, {}
    for name, csvfile in files.items():
        checker, stage = checkers[name], stages[name]
        if name == "persons.csv":
            drop_unknown(conn, stage, TARGETS[name], "household_id", checker, checkers["households.csv"])
        elif name == "records.csv":
            drop_unknown(conn, stage, TARGETS[name], "person_id", checker, checkers["persons.csv"])
        inserted, updated, changes[name] = merge(conn, TARGETS[name], stage, seq, today)
        staged = conn.execute(f"SELECT count(*) FROM {stage}").fetchone()[0]
        summaries[name] = FileSummary(
            read=csvfile.rows_read,
            inserted=inserted,
            updated=updated,
            unchanged=staged - inserted - updated,
            rejected=checker.rejected_total(),
        )
        merged(name)
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
        changes=changes,
    )


def _record_import(conn: sqlite3.Connection, result: ImportResult) -> None:
    encodings = set(result.encoding.values())
    encoding = encodings.pop() if len(encodings) == 1 else "; ".join(f"{k}: {v}" for k, v in result.encoding.items())
    summary = {
        "files": {name: s.model_dump() for name, s in result.files.items()},
        "rejected": result.total_rejected,
        "changed_households": result.changed_households,
        "warnings": result.warnings,
        "extract_date": result.extract_date,
        "extract_dated_by": result.extract_dated_by,
        "changes": {name: c.model_dump(exclude_defaults=True) for name, c in result.changes.items()},
    }
    conn.execute(
        "INSERT INTO imports (import_seq, imported_at, source_dir, encoding, summary) VALUES (?, ?, ?, ?, ?)",
        (
            result.import_seq,
            clock.stamp(),
            result.source_dir,
            encoding,
            json.dumps(summary, ensure_ascii=False),
        ),
    )
    conn.executemany(
        "INSERT INTO rejects (import_seq, file, line, field, reason) VALUES (?, ?, ?, ?, ?)",
        ((result.import_seq, r.file, r.line, r.field, r.reason) for r in result.rejects),
    )


def import_summary(conn: sqlite3.Connection) -> dict[str, int]:
    """Row counts in the workspace: households, persons, records, imports."""
    return {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("households", "persons", "records", "imports")
    }
