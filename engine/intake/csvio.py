"""Reading one silo CSV extract robustly.

`read_csv` checks the whole file before a single row is used: it must be text (no NUL bytes),
decode in one encoding (UTF-8 with or without BOM, else CP932 / Shift_JIS; or the one given, see
`ENCODINGS`), and have a header with every required column exactly once. Otherwise it raises
`FileRefused` with a message that names the file (and the line, where there is one) and says how
to fix it.

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

import codecs
import csv
import difflib
import itertools
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


# --encoding values accepted: the encodings Japanese municipal systems write CSV text in. Other
# codecs are refused: a single-byte one such as latin-1 decodes any bytes, so it would import
# garbled names and addresses without an error; UTF-16/32 and non-text codecs cannot be read here.
ENCODINGS: dict[str, str] = {  # Python codec name -> the name shown in messages
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "cp932": "cp932",
    "shift_jis": "shift_jis",
    "euc_jp": "euc-jp",
    "iso2022_jp": "iso-2022-jp",
    "shift_jis_2004": "shift_jis_2004",  # JIS X 0213
    "euc_jis_2004": "euc_jis_2004",
}
_ENCODING_ALIASES = {"windows-31j": "cp932", "windows_31j": "cp932", "windows31j": "cp932"}  # Java/IANA name of CP932
_ENCODINGS_HINT = (
    "use one of " + ", ".join(ENCODINGS.values()) + " (cp932 for Windows Shift_JIS), "
    "or leave --encoding out to detect UTF-8 or CP932"
)


def _check_encoding(path: Path, encoding: str) -> str:
    """The codec name of an `--encoding` value, or FileRefused naming the option and the choices."""
    name = _ENCODING_ALIASES.get(encoding.strip().lower(), encoding.strip())
    shown = "".join(c if c.isprintable() else "?" for c in encoding[:40]) + ("…" if len(encoding) > 40 else "")
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        raise FileRefused(f"{path}: unknown encoding '{shown}' given with --encoding; {_ENCODINGS_HINT}") from None
    if codec in ENCODINGS:
        return codec
    if codec.startswith(("utf-16", "utf_16", "utf-32", "utf_32")):
        why = "UTF-16 and UTF-32 text is not supported; save the extract as CSV in UTF-8 (or CP932)"
    else:
        why = "it is not an encoding silo extracts are read in (a wrong one garbles names and addresses)"
    raise FileRefused(f"{path}: --encoding '{shown}' is refused: {why}; {_ENCODINGS_HINT}")


def _where(offset: int, line: int, column: int | None) -> str:
    return f"line {line}, column {column}, byte offset {offset}" if column else f"line {line}, byte offset {offset}"


def _decode_error(
    path: Path, encoding: str, how: str, offset: int, line: int, column: int | None, byte: int
) -> FileRefused:
    """Refusal of an undecodable file; `how`: "explicit" (--encoding), "cp932" (detected as CP932) or "neither"."""
    where = f"byte 0x{byte:02x} at {_where(offset, line, column)}"
    if how == "explicit":
        hint = "check --encoding"
        if encoding == "shift_jis":
            hint += " (Windows Shift_JIS files often need --encoding cp932)"
        return FileRefused(
            f"{path}: cannot decode it as {ENCODINGS.get(encoding, encoding)}: {where}; "
            f"correct that character (or export the file again), or {hint}"
        )
    if how == "cp932":
        return FileRefused(
            f"{path}: cannot decode {path.name}: it looks like CP932 (Shift_JIS), but {where} is valid "
            "neither in CP932 nor in UTF-8; correct that character (or export the file again), "
            "or pass --encoding if the file is in another encoding"
        )
    return FileRefused(
        f"{path}: cannot decode {path.name} as UTF-8 or CP932 (Shift_JIS), first bad {where}; "
        "convert it or pass --encoding"
    )


def _breaks(data: bytes) -> int:
    """Line breaks (\\r\\n, \\r or \\n, as csv counts them) in data."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _locate(path: Path, offset: int, encoding: str) -> tuple[int, int, int | None]:
    """(offset, line, column) of the byte at `offset`; the column (in characters) when it is cheap to tell."""
    lines = line_start = done = 0
    cr_end = False  # the chunk before ended with \r (then a \n starting the next one is the same break)
    with open(path, "rb") as f:
        while done < offset:
            chunk = f.read(min(_CHUNK, offset - done))
            if not chunk:
                break
            lines += _breaks(chunk) - (1 if cr_end and chunk.startswith(b"\n") else 0)
            last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
            if last >= 0:
                line_start = done + last + 1
            cr_end = chunk.endswith(b"\r")
            done += len(chunk)
        column = None
        if offset - line_start <= _CHUNK:
            f.seek(line_start)
            prefix = f.read(offset - line_start)
            for enc in dict.fromkeys((encoding, "utf-8", "cp932")):
                try:
                    column = len(prefix.decode(enc)) + 1
                    break
                except UnicodeDecodeError:
                    continue
    return offset, lines + 1, column


def _scan(path: Path, encoding: str) -> tuple[int, int, int | None, int] | None:
    """Decode the whole file in chunks: None if it decodes, else (offset, line, column, bad byte).

    Refuses a file with NUL bytes, naming where the first one is: no CSV in a supported encoding has
    them (binary data, UTF-16, or a stray NUL left by a broken export).
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    done = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            nul = chunk.find(b"\x00")
            if nul >= 0:
                raise _nul_refusal(path, chunk, done, *_locate(path, done + nul, encoding))
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                # e.object is the bytes held back from the previous chunk, then this chunk
                offset = min(max(done + e.start - (len(e.object) - len(chunk)), 0), done + len(chunk))
                byte = e.object[e.start] if e.start < len(e.object) else 0
                return (*_locate(path, offset, encoding), byte)
            if not chunk:
                return None
            done += len(chunk)


def _nul_refusal(path: Path, chunk: bytes, done: int, offset: int, line: int, column: int | None) -> FileRefused:
    """Why a file with a NUL byte (the first at `offset`, in `chunk`, read at `done`) cannot be imported."""
    fix = "save or convert it as CSV in UTF-8 or CP932"
    if done == 0 and chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return FileRefused(
            f"{path}: this is UTF-16 text (it starts with a UTF-16 byte order mark and has NUL bytes); {fix}"
        )
    nuls = chunk.count(b"\x00")
    if nuls > 1 and nuls * 100 > len(chunk):  # many: not text in a supported encoding at all
        return FileRefused(
            f"{path}: not a text CSV file: it contains NUL bytes (the first at {_where(offset, line, column)}): "
            f"binary data, or UTF-16 text; {fix}"
        )
    more = f" (and at least {nuls - 1} more after it)" if nuls > 1 else ""
    return FileRefused(
        f"{path}: a NUL byte (0x00) at {_where(offset, line, column)}{more}; CSV text cannot contain one "
        "(it is often left by a broken export): delete it in a text editor, or export the file again, and import again"
    )


def check_bytes(path: Path, encoding: str | None) -> str:
    """Refuse a file that is missing, binary or undecodable; return the encoding to read it with.

    With `encoding=None` the file is tried as UTF-8 ("utf-8-sig" is returned when it starts
    with a BOM), then as CP932. A given encoding must be one of `ENCODINGS` (any alias); its
    codec name is returned.
    """
    if not path.is_file():
        raise FileRefused(f"{path}: file not found; put the silo extract there or check the folder name")
    if encoding is not None:
        encoding = _check_encoding(path, encoding)
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        raise FileRefused(f"{path}: this is a ZIP file or Excel workbook (.xlsx), not CSV; save it as CSV")
    if encoding is not None:
        bad = _scan(path, encoding)
        if bad:
            raise _decode_error(path, encoding, "explicit", *bad)
        return encoding
    first_bad = _scan(path, "utf-8-sig")
    if first_bad is None:
        return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    cp932_bad = _scan(path, "cp932")
    if cp932_bad is None:
        return "cp932"
    if cp932_bad[0] > first_bad[0]:  # it reads further as CP932: a CP932 file with one broken character
        raise _decode_error(path, "cp932", "cp932", *cp932_bad)
    raise _decode_error(path, "utf-8", "neither", *first_bad)


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
        narrowest = width  # rows may lack the empty, unnamed columns at the end of the header
        while narrowest > 1 and not self.header[narrowest - 1]:
            narrowest -= 1
        positions = [self.header.index(c) for c in self.columns]
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
                lines = f.readlines(_CHUNK)
                if not lines:
                    return
                kept.append(lines)
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


def _fields(narrowest: int, expected: int) -> str:
    return str(expected) if narrowest == expected else f"{narrowest} to {expected}"


def _count_reason(narrowest: int, expected: int, found: int) -> str:
    reason = f"wrong column count: expected {_fields(narrowest, expected)} fields, found {found}"
    if found > expected:
        reason += " (a value containing a comma must be in double quotes)"
    return reason
