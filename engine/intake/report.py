"""What an import reports: row counts per file, what it ends, re-opens and blanks, every reject,
warnings; and the rejects report file, whose cells never start a spreadsheet formula."""

from __future__ import annotations

import csv
from pathlib import Path

from pydantic import BaseModel

from engine.intake.refusals import Reject
from engine.support.private_files import open_private
from engine.support.sheets import inert_cell


class FileSummary(BaseModel):
    """Row counts of one file: read = inserted + updated + unchanged + rejected."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


class FileChanges(BaseModel):
    """Of one file's updated rows: records ended and re-opened, values emptied per column (see
    engine/intake/guards.py); `filled` = rows that had the column filled, counted when many are emptied."""

    ended: int = 0
    reopened: int = 0
    blanked: dict[str, int] = {}
    filled: dict[str, int] = {}


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
    changes: dict[str, FileChanges] = {}
    extract_date: str | None = None  # ISO
    extract_dated_by: str = ""  # "--as-of" or "the date of its files"
    last_extract_date: str | None = None  # the newest extract imported before this one
    refusals: list[str] = []  # why a real import is refused (a dry run reports them, and writes nothing)
    dry_run: bool = False

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


def write_rejects_report(path: Path, rejects: list[Reject]) -> Path:
    """Write file,line,field,reason as CSV (UTF-8 with BOM, for Excel), readable by the owner only.

    Every cell goes through `inert_cell`: a field is a header name and a reason may quote a value,
    both from the extract."""
    with open_private(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "line", "field", "reason"])
        writer.writerows(map(inert_cell, (r.file, r.line, r.field or "", r.reason)) for r in rejects)
    return path
