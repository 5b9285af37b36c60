"""Tables written for people who open them in Excel or LibreOffice: CSV (UTF-8 with a BOM, so that
Excel reads the Japanese) and XLSX (xlsxwriter), one sheet per table. A table is a header row and
data rows; numbers stay numbers, None is an empty cell. The file is written owner-only, like every
file the engine writes (engine/support/private_files.py), replacing what was there."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from engine.support.private_files import private_dir, write_private

Cell = str | int | float | None
Table = Sequence[Sequence[Cell]]  # the header row first
SHEET_NAME_MAX = 31  # Excel's limit
BAD_SHEET_CHARS = set("[]:*?/\\")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a text cell Excel would run as a formula


def inert_cell(c: Cell) -> Cell:
    """A cell no spreadsheet runs as a formula: text starting with = + - @ (or a tab or carriage
    return) gets a leading apostrophe, the usual guard against CSV injection. Every CSV the engine
    writes for people (rejects report, report, area view, export) goes through it."""
    if c is None:
        return ""
    if isinstance(c, str) and c.startswith(FORMULA_START):
        return "'" + c  # shown as text, never run (CSV injection)
    return c


def csv_text(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in table:
        writer.writerow([inert_cell(c) for c in row])
    return out.getvalue()


def write_csv(path: Path, table: Table) -> Path:
    write_private(Path(path), "\ufeff" + csv_text(table))
    return Path(path)


def sheet_name(name: str) -> str:
    """A name Excel accepts: at most 31 characters, none of []:*?/\\."""
    clean = "".join("_" if ch in BAD_SHEET_CHARS else ch for ch in name).strip("'") or "sheet"
    return clean[:SHEET_NAME_MAX]


def write_xlsx(path: Path, tables: Mapping[str, Table]) -> Path:
    """One sheet per table (in order), the header row bold and frozen, columns sized to their text."""
    import xlsxwriter

    path = Path(path)
    private_dir(path.parent)  # as write_csv (write_private) does
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".xlsx")
    os.close(fd)
    try:
        book = xlsxwriter.Workbook(tmp, {"strings_to_numbers": False, "strings_to_formulas": False})
        bold = book.add_format({"bold": True})
        for name, table in tables.items():
            sheet = book.add_worksheet(sheet_name(name))
            widths: dict[int, int] = {}
            for r, row in enumerate(table):
                for c, cell in enumerate(row):
                    if cell is None:
                        continue
                    sheet.write(r, c, cell, bold if r == 0 else None)
                    widths[c] = max(widths.get(c, 0), len(str(cell)) * (2 if not str(cell).isascii() else 1))
            for c, w in widths.items():
                sheet.set_column(c, c, min(max(w + 2, 6), 60))
            if table:
                sheet.freeze_panes(1, 0)
        book.close()
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
