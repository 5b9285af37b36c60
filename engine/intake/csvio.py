"""Reading one silo CSV extract robustly.

`read_csv` checks the whole file before a single row is used: it must be text (no NUL bytes),
decode in one encoding (UTF-8 with or without BOM, else CP932 / Shift_JIS; or the one given, see
`ENCODINGS`; those byte-level checks are in engine/intake/encoding.py), and have a header with
every required column exactly once. Otherwise it raises `FileRefused` with a message that names
the file (and the line, where there is one) and says how to fix it.

Iterating the returned `CsvFile` streams `(line, row)` pairs, where `line` is the physical line
the row starts on (header = line 1; quoted values may span lines) and `row` maps each known
column to its text (`CsvFile.tuples()` gives the values as a sequence instead, faster). Rows
that cannot be read (wrong number of fields, bad quoting, a value over `MAX_FIELD_CHARS`) are
not yielded but collected in `CsvFile.rejects`. Blank lines are skipped. Empty columns without a
name at the end of the header (a trailing comma) may be missing from rows.

A quoted value may contain line breaks. But when a row whose quoted value runs past the end of
its first line cannot be read (wrong number of fields, bad quoting, no closing quote before the
end of the file), the quote is taken for one that was never closed: that first line alone is
rejected and reading goes on with the next line, so that the rows after it are not lost.
"""

from __future__ import annotations

import csv
import itertools
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path

from engine.intake.encoding import CHUNK, ENCODINGS, check_bytes, open_text
from engine.intake.refusals import FileRefused, Reject
from engine.support.errors import closest

__all__ = [
    "ENCODINGS",
    "MAX_FIELD_CHARS",
    "CsvFile",
    "FileRefused",
    "Reject",
    "check_bytes",
    "read_csv",
]

MAX_FIELD_CHARS = 10_000  # longer values reject the row (no silo field is anywhere near this)
_CSV_FIELD_LIMIT = 16 * 1024 * 1024  # the csv module's own limit; above it a row is unreadable

csv.field_size_limit(min(sys.maxsize, max(csv.field_size_limit(), _CSV_FIELD_LIMIT)))


class CsvFile:
    """A checked CSV file: iterate it for `(line, {column: text})` of the known columns."""

    def __init__(self, path: Path, encoding: str, header: list[str], columns: list[str]):
        self.path = path
        self.name = path.name
        self.encoding = encoding  # as detected or given: utf-8, utf-8-sig, cp932, …
        self.header = header
        self.columns = columns  # the known columns present, in the order rows are given
        self.warnings: list[str] = []
        self.rejects: list[Reject] = []
        self.rows_read = 0  # rows seen, including rejected ones; blank lines excluded
        self.on_chunk: Callable[[int], None] | None = None  # told the bytes read so far, per chunk of lines
        self.stamp: tuple[int, int, int] | None = None  # file_stamp when it was checked

    def _open(self):
        return open_text(self.path, self.encoding)

    def _reject(self, line: int, end: int, field: str | None, reason: str) -> None:
        if end > line:
            reason += f" (the row runs from line {line} to line {end}"
            if "quote" not in reason:
                reason += " as a quoted value contains line breaks; if not intended, look for a missing closing quote"
            reason += ")"
        self.rejects.append(Reject(file=self.name, line=line, field=field, reason=reason))
        self.rows_read += 1

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        names = self.columns
        for line, values in self.tuples():
            yield line, dict(zip(names, values))

    def tuples(self) -> Iterator[tuple[int, Sequence[str]]]:
        """Like iterating, but each row is a sequence of values in `columns` order (faster).
        FileRefused when the file is no longer the one checked (a transfer job wrote the next
        extract over it meanwhile): it no longer decodes, or its size, time or inode changed."""
        try:
            yield from self._tuples()
        except UnicodeDecodeError:
            raise FileRefused.at(self.path, CHANGED) from None
        if self.stamp is not None and file_stamp(self.path) != self.stamp:
            raise FileRefused.at(self.path, CHANGED)

    def _tuples(self) -> Iterator[tuple[int, Sequence[str]]]:
        width = len(self.header)
        narrowest = width  # rows may lack the empty, unnamed columns at the end of the header
        while narrowest > 1 and not self.header[narrowest - 1]:
            narrowest -= 1
        positions = [self.header.index(c) for c in self.columns]
        unnamed = [i for i, name in enumerate(self.header) if not name]  # ignored, so they must stay empty
        if positions == list(range(width)):
            pick = None
        elif len(positions) == 1:
            pick = lambda row, i=positions[0]: (row[i],)  # noqa: E731 - itemgetter(i) gives a scalar
        else:
            pick = itemgetter(*positions)
        limit = MAX_FIELD_CHARS
        good = 0
        # The lines read are kept (in chunks) from the first line of the row being read on, so that
        # reading can start again at the line after a row whose quote was never closed.
        kept: list[list[str]] = []
        kept_first = 1  # line number of kept[0][0]
        prev = 0  # last physical line of the last row read

        def chunks() -> Iterator[list[str]]:
            nonlocal kept_first
            while True:
                while kept and kept_first + len(kept[0]) <= prev + 1:  # only lines of rows already read
                    kept_first += len(kept.pop(0))
                lines = f.readlines(CHUNK)
                if not lines:
                    return
                kept.append(lines)
                if self.on_chunk is not None:
                    self.on_chunk(f.buffer.tell())
                yield lines

        def restart(line: int):
            """A reader from physical line `line` on (at most the lines of one row back)."""
            nonlocal kept, kept_first
            rest: list[str] = []
            first = kept_first
            for lines in kept:
                if first + len(lines) > line:
                    rest.extend(lines[max(line - first, 0) :])
                first += len(lines)
            kept, kept_first = [rest], line
            return csv.reader(itertools.chain(rest, itertools.chain.from_iterable(chunks())), strict=True)

        with self._open() as f:
            reader = csv.reader(itertools.chain.from_iterable(chunks()), strict=True)
            _header_row(reader)
            base = 0  # physical line = base + reader.line_num
            prev = reader.line_num
            try:
                while True:
                    try:
                        for row in reader:
                            start, prev = prev + 1, base + reader.line_num
                            if len(row) != width or not row[0]:
                                if not any(v.strip() for v in row):
                                    continue  # blank line
                                if not narrowest <= len(row) <= width:
                                    if prev > start:  # a quote opened on line `start` and not closed there
                                        reason = f"read on to line {prev}, it gives {len(row)} fields instead of {_fields(narrowest, width)}"
                                        self._reject(start, start, None, _unclosed_reason(reason))
                                        reader, base, prev = restart(start + 1), start, start
                                        break
                                    self._reject(start, prev, None, _count_reason(narrowest, width, len(row)))
                                    continue
                            if max(map(len, row)) > limit:
                                if prev > start:  # read on over many lines: most likely a quote never closed
                                    reason = f"read on to line {prev}, a value grows to {max(map(len, row)):,} characters (the limit is {limit:,})"
                                    self._reject(start, start, None, _unclosed_reason(reason))
                                    reader, base, prev = restart(start + 1), start, start
                                    break
                                self._too_long(start, prev, row)
                                continue
                            if unnamed and any(i < len(row) and row[i].strip() for i in unnamed):
                                self._reject(start, prev, None, UNNAMED_VALUE)
                                continue
                            good += 1
                            yield start, row if pick is None else pick(row)
                        else:
                            return
                    except csv.Error as e:  # bad quoting, or a value over the csv module's size limit
                        start, end = prev + 1, base + reader.line_num
                        if end > start:  # a quote opened on line `start` and not closed there
                            self._reject(start, start, None, _unclosed_reason(_csv_error_reason(e, end)))
                            reader, base, prev = restart(start + 1), start, start
                        else:
                            self._reject(start, end, None, _csv_error_reason(e))
                            prev = end
            finally:
                self.rows_read += good

    def _too_long(self, line: int, end: int, row: list[str]) -> None:
        i = next(i for i, v in enumerate(row) if len(v) > MAX_FIELD_CHARS)
        column = self.header[i] or f"column {i + 1}"
        reason = f"value too long: {len(row[i]):,} characters in '{column}' (the limit is {MAX_FIELD_CHARS:,})"
        self._reject(line, end, column, reason)


def _header_row(reader) -> list[str] | None:
    """The first non-blank row (the header), or None for a file without one."""
    for row in reader:
        if any(v.strip() for v in row):
            return row
    return None


def read_csv(
    path: Path | str,
    required: Sequence[str],
    optional: Sequence[str] = (),
    encoding: str | None = None,
) -> CsvFile:
    """Check a CSV file (bytes, encoding, header) and return it ready to iterate.

    `encoding=None` detects UTF-8 (BOM stripped) or else CP932. Raises FileRefused when the
    file is missing, binary, undecodable, empty, lacks a required column or repeats one.
    Unknown columns are ignored with a warning in `CsvFile.warnings`.
    """
    path = Path(path)
    stamp = file_stamp(path) if path.is_file() else None
    enc = check_bytes(path, encoding)
    with open_text(path, enc) as f:
        try:
            raw = _header_row(csv.reader(f, strict=True))
        except csv.Error as e:
            raise FileRefused.at(path, f"the header line cannot be read as CSV ({e}); fix line 1", line=1) from None
    if raw is None:
        expected = ", ".join([*required, *optional])
        raise FileRefused.at(path, f"the file is empty; it needs a header line ({expected}) and one row per line")
    header = [h.strip().lstrip("\ufeff").strip() for h in raw]

    known = [*required, *optional]
    first_seen: dict[str, int] = {}
    repeated: list[tuple[str, str]] = []  # (column name, where)
    for i, h in enumerate(header, start=1):
        if h in first_seen and h in known:  # only column names are echoed, never other cells
            repeated.append((h, f"'{h}' (columns {first_seen[h]} and {i})"))
        elif h and h not in first_seen:
            first_seen[h] = i
    if repeated:
        where = ", ".join(w for _, w in repeated)
        reason = f"duplicated column name {where} in the header; rename or remove one and import again"
        raise FileRefused.at(path, reason, line=1, field=", ".join(dict.fromkeys(h for h, _ in repeated)))

    unknown = [h for h in first_seen if h not in known]
    missing = [c for c in required if c not in first_seen]
    if missing:
        raise FileRefused.at(path, _missing_reason(header, missing, known), line=1, field=", ".join(missing))

    result = CsvFile(path, enc, header, [c for c in known if c in first_seen])
    result.stamp = stamp
    for u in unknown:
        close = closest(u, [c for c in known if c not in first_seen])
        hint = f" — did you mean '{close}'?" if close else ""
        result.warnings.append(f"{path.name}: column '{u}' is not used and was ignored{hint}")
    unnamed = header.count("")
    if unnamed:
        result.warnings.append(f"{path.name}: {unnamed} column(s) without a name were ignored")
    return result


def _missing_reason(header: list[str], missing: list[str], known: list[str]) -> str:
    """Why a header lacks required columns, echoing only cells that are (or resemble) column names.

    Without a header line, line 1 is a data row (names, birth dates, addresses): none of its
    values may be printed. Line 1 counts as a header when at least half of its non-empty cells
    are or resemble column names; even then, other cells are not shown (a romanised given name
    such as 'Kana' can resemble a column name, so one resembling cell is not enough).
    """
    separated = len(header) == 1 and ("\t" in header[0] or ";" in header[0])
    cells = [c.strip() for c in re.split("[\t;]", header[0])] if separated else header
    names = [c for c in cells if c and (c in known or closest(c, known))]
    parts = [f"missing required column(s): {', '.join(missing)}."]
    if names and 2 * len(names) >= sum(1 for c in cells if c):
        parts.append(f"Found: {', '.join(repr(c) for c in names)}.")
        for m in missing:
            close = closest(m, [c for c in names if c not in known])
            if close:
                parts.append(f"column '{close}' — did you mean '{m}'?")
        if separated:
            parts.append("The header looks tab- or semicolon-separated; save the file as comma-separated CSV.")
        parts.append(f"The header (line 1) must name the columns {', '.join(known)}; fix it and import again.")
    else:
        parts.append(
            f"Line 1 looks like data rather than a header (its {len(cells)} values are not shown);"
            f" the first line must be the header: {','.join(known)}."
        )
        if separated:
            parts.append("The file also looks tab- or semicolon-separated; save it as comma-separated CSV.")
    return " ".join(parts)


def _csv_error_reason(error: csv.Error, end: int | None = None) -> str:
    """Why the csv module could not read a row; with `end`, as the detail of `_unclosed_reason`."""
    text = str(error)
    if end is not None:
        if "unexpected end of data" in text:
            return "read on, it runs to the end of the file"
        if "expected after" in text:
            return f"read on, it ends on line {end} with a closing quote followed by other text"
        if "field larger than field limit" in text:
            return f"read on, its value grows over {csv.field_size_limit():,} characters by line {end}"
        return f"read on to line {end}: {text}"
    if "unexpected end of data" in text:
        return 'a quoted value starting in this row is never closed: add the missing closing double quote (")'
    if "expected after" in text:
        return f'malformed quoting ({text}): a double quote inside a quoted value must be doubled ("")'
    if "field larger than field limit" in text:
        return f"a value is far too long (over {csv.field_size_limit():,} characters; the limit is {MAX_FIELD_CHARS:,})"
    return f"unreadable CSV row: {text}"


def _unclosed_reason(detail: str) -> str:
    """Why a row whose quoted value runs past its first line was cut back to that line."""
    return (
        f"a quoted value opened on this line is never closed on it ({detail}): add the missing closing"
        ' double quote (") — or, if the value really contains line breaks, correct the rest of the row;'
        " the following lines were read as rows of their own"
    )


CHANGED = (
    "the file changed while it was read (its contents are not the ones checked before the import began); "
    "nothing was imported: import again once the extract has been written completely"
)


def file_stamp(path: Path) -> tuple[int, int, int]:
    """Size, modification time and inode: another file, or the same one rewritten, has others."""
    info = path.stat()
    return info.st_size, info.st_mtime_ns, info.st_ino


UNNAMED_VALUE = (
    "a value in a column without a name in the header: most likely a comma inside a value that is not quoted "
    '(write "東町1-1, 101号室" in double quotes), or a column missing its name'
)


def _fields(narrowest: int, expected: int) -> str:
    return str(expected) if narrowest == expected else f"{narrowest} to {expected}"


def _count_reason(narrowest: int, expected: int, found: int) -> str:
    reason = f"wrong column count: expected {_fields(narrowest, expected)} fields, found {found}"
    if found > expected:
        reason += " (a value containing a comma must be in double quotes)"
    return reason
