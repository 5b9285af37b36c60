"""Reading one silo CSV extract robustly.

`read_csv` checks the whole file before a single row is used: it must be text (no NUL bytes),
decode in one encoding (UTF-8 with or without BOM, else CP932 / Shift_JIS), and have a header
with every required column exactly once. Otherwise it raises `FileRefused` with a message that
names the file and says how to fix it.

Iterating the returned `CsvFile` streams `(line, row)` pairs, where `line` is the physical line
the row starts on (header = line 1; quoted values may span lines) and `row` maps each known
column to its text (`CsvFile.tuples()` gives the values as a sequence instead, faster). Rows
that cannot be read (wrong number of fields, bad quoting, a value over `MAX_FIELD_CHARS`) are
not yielded but collected in `CsvFile.rejects`. Blank lines are skipped.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import re
import sys
from collections.abc import Iterator, Sequence
from operator import itemgetter
from pathlib import Path

from pydantic import BaseModel

MAX_FIELD_CHARS = 10_000  # longer values reject the row (no silo field is anywhere near this)
_CSV_FIELD_LIMIT = 16 * 1024 * 1024  # the csv module's own limit; above it a row is unreadable
_CHUNK = 1 << 20

csv.field_size_limit(min(sys.maxsize, max(csv.field_size_limit(), _CSV_FIELD_LIMIT)))


class FileRefused(Exception):
    """The whole file cannot be used; the message names the file and says how to fix it."""


class Reject(BaseModel):
    """One row that was not imported, and why (`field` is None for whole-row problems)."""

    file: str
    line: int
    field: str | None = None
    reason: str


def did_you_mean(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to `name`, if any is close enough."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _decode_error(path: Path, encoding: str, explicit: bool, offset: int, line: int, byte: int) -> FileRefused:
    where = f"byte 0x{byte:02x} at offset {offset} (line {line})"
    if explicit:
        hint = "check --encoding"
        if codecs.lookup(encoding).name == "shift_jis":
            hint += " (Windows Shift_JIS files often need --encoding cp932)"
        return FileRefused(f"{path}: cannot decode it as {encoding}: {where}; {hint}")
    return FileRefused(
        f"{path}: cannot decode {path.name} as UTF-8 or CP932 (Shift_JIS), first bad {where}; "
        "convert it or pass --encoding"
    )


def _scan(path: Path, encoding: str) -> tuple[int, int, int] | None:
    """Decode the whole file in chunks: None if it decodes, else (offset, line, bad byte).

    Refuses a file with NUL bytes: no CSV in UTF-8 or CP932 has them (binary data, UTF-16).
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    done = newlines = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if b"\x00" in chunk:
                raise FileRefused(
                    f"{path}: not a text CSV file (it contains NUL bytes: binary data, or UTF-16 text); "
                    "save or convert it as CSV in UTF-8 or CP932"
                )
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                # the bad byte may sit in bytes held back from the previous chunk
                pos = min(max(e.start - (len(e.object) - len(chunk)), 0), len(chunk))
                byte = e.object[e.start] if e.start < len(e.object) else 0
                return done + pos, newlines + chunk.count(b"\n", 0, pos) + 1, byte
            if not chunk:
                return None
            done += len(chunk)
            newlines += chunk.count(b"\n")


def check_bytes(path: Path, encoding: str | None) -> str:
    """Refuse a file that is missing, binary or undecodable; return the encoding to read it with.

    With `encoding=None` the file is tried as UTF-8 ("utf-8-sig" is returned when it starts
    with a BOM), then as CP932.
    """
    if not path.is_file():
        raise FileRefused(f"{path}: file not found; put the silo extract there or check the folder name")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        raise FileRefused(f"{path}: this is a ZIP file or Excel workbook (.xlsx), not CSV; save it as CSV")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise FileRefused(f"{path}: unknown encoding '{encoding}'; use utf-8, utf-8-sig or cp932") from None
        bad = _scan(path, encoding)
        if bad:
            raise _decode_error(path, encoding, True, *bad)
        return encoding
    first_bad = _scan(path, "utf-8-sig")
    if first_bad is None:
        return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    if _scan(path, "cp932") is None:
        return "cp932"
    raise _decode_error(path, "utf-8", False, *first_bad)


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

    def _open(self):
        return _open_text(self.path, self.encoding)

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
        """Like iterating, but each row is a sequence of values in `columns` order (faster)."""
        width = len(self.header)
        positions = [self.header.index(c) for c in self.columns]
        if positions == list(range(width)):
            pick = None
        elif len(positions) == 1:
            pick = lambda row, i=positions[0]: (row[i],)  # noqa: E731 - itemgetter(i) gives a scalar
        else:
            pick = itemgetter(*positions)
        limit = MAX_FIELD_CHARS
        good = 0
        with self._open() as f:
            reader = csv.reader(f, strict=True)
            _header_row(reader)
            prev = reader.line_num  # last physical line consumed
            try:
                while True:
                    try:
                        for row in reader:
                            start, prev = prev + 1, reader.line_num
                            if len(row) != width or not row[0]:
                                if not any(v.strip() for v in row):
                                    continue  # blank line
                                if len(row) != width:
                                    self._reject(start, prev, None, _count_reason(width, len(row)))
                                    continue
                            if max(map(len, row)) > limit:
                                self._too_long(start, prev, row)
                                continue
                            good += 1
                            yield start, row if pick is None else pick(row)
                        return
                    except csv.Error as e:  # bad quoting, or a value over the csv module's size limit
                        self._reject(prev + 1, reader.line_num, None, _csv_error_reason(e))
                        prev = reader.line_num
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


def _open_text(path: Path, encoding: str):
    # utf-8-sig also reads BOM-less UTF-8; newline="" lets csv see \r\n, \n and \r itself
    return open(path, encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="")


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
    enc = check_bytes(path, encoding)
    with _open_text(path, enc) as f:
        try:
            raw = _header_row(csv.reader(f, strict=True))
        except csv.Error as e:
            raise FileRefused(f"{path}: the header line cannot be read as CSV ({e}); fix line 1") from None
    if raw is None:
        expected = ", ".join([*required, *optional])
        raise FileRefused(f"{path}: the file is empty; it needs a header line ({expected}) and one row per line")
    header = [h.strip().lstrip("\ufeff").strip() for h in raw]

    known = [*required, *optional]
    first_seen: dict[str, int] = {}
    repeated = []
    for i, h in enumerate(header, start=1):
        if h in first_seen and h in known:  # only column names are echoed, never other cells
            repeated.append(f"'{h}' (columns {first_seen[h]} and {i})")
        elif h and h not in first_seen:
            first_seen[h] = i
    if repeated:
        raise FileRefused(
            f"{path}: duplicated column name {', '.join(repeated)} in the header; rename or remove one and import again"
        )

    unknown = [h for h in first_seen if h not in known]
    missing = [c for c in required if c not in first_seen]
    if missing:
        raise FileRefused(_missing_message(path, header, missing, known))

    result = CsvFile(path, enc, header, [c for c in known if c in first_seen])
    for u in unknown:
        close = did_you_mean(u, [c for c in known if c not in first_seen])
        hint = f" — did you mean '{close}'?" if close else ""
        result.warnings.append(f"{path.name}: column '{u}' is not used and was ignored{hint}")
    unnamed = header.count("")
    if unnamed:
        result.warnings.append(f"{path.name}: {unnamed} column(s) without a name were ignored")
    return result


def _missing_message(path: Path, header: list[str], missing: list[str], known: list[str]) -> str:
    """Why a header lacks required columns, echoing only cells that are (or resemble) column names.

    Without a header line, line 1 is a data row (names, birth dates, addresses): none of its
    values may be printed. Line 1 counts as a header when at least half of its non-empty cells
    are or resemble column names; even then, other cells are not shown (a romanised given name
    such as 'Kana' can resemble a column name, so one resembling cell is not enough).
    """
    separated = len(header) == 1 and ("\t" in header[0] or ";" in header[0])
    cells = [c.strip() for c in re.split("[\t;]", header[0])] if separated else header
    names = [c for c in cells if c and (c in known or did_you_mean(c, known))]
    parts = [f"{path}: missing required column(s): {', '.join(missing)}."]
    if names and 2 * len(names) >= sum(1 for c in cells if c):
        parts.append(f"Found: {', '.join(repr(c) for c in names)}.")
        for m in missing:
            close = did_you_mean(m, [c for c in names if c not in known])
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


def _csv_error_reason(error: csv.Error) -> str:
    text = str(error)
    if "unexpected end of data" in text:
        return "a quoted value starting in this row is never closed: add the missing closing double quote (\")"
    if "expected after" in text:
        return f"malformed quoting ({text}): a double quote inside a quoted value must be doubled (\"\")"
    if "field larger than field limit" in text:
        return f"a value is far too long (over {csv.field_size_limit():,} characters; the limit is {MAX_FIELD_CHARS:,})"
    return f"unreadable CSV row: {text}"


def _count_reason(expected: int, found: int) -> str:
    reason = f"wrong column count: expected {expected} fields, found {found}"
    if found > expected:
        reason += " (a value containing a comma must be in double quotes)"
    return reason
