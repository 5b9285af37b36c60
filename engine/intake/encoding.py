"""Checking a CSV file's bytes before it is read: present, text, and decodable in one encoding.

`check_bytes` decodes the whole file (in chunks) and returns the encoding to read it with: the
one given (`ENCODINGS`, any alias), else UTF-8 (with or without BOM) or CP932 as detected.
Otherwise it raises `FileRefused` naming the file, the line, column and byte offset of the first
problem, and how to fix it.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from engine.intake.refusals import FileRefused

CHUNK = 1 << 20  # bytes (or about as many characters of lines) read at a time
# a physical line longer than this is no row of an extract (its values are at most 10,000
# characters each) and more than the csv module can read as one (16 MiB a value; a shorter long
# line is one rejected row): the file is refused before anything reads such a line whole into
# memory. At least CHUNK: a line within one chunk is never too long.
MAX_LINE_BYTES = 64 * 1024 * 1024

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


def check_bytes(path: Path, encoding: str | None) -> str:
    """Refuse a file that is missing, binary or undecodable; return the encoding to read it with.

    With `encoding=None` the file is tried as UTF-8 ("utf-8-sig" is returned when it starts
    with a BOM), then as CP932. A given encoding must be one of `ENCODINGS` (any alias); its
    codec name is returned.
    """
    if not path.is_file():
        raise FileRefused.at(path, "file not found; put the silo extract there or check the folder name")
    if encoding is not None:
        encoding = _check_encoding(path, encoding)
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        raise FileRefused.at(path, "this is a ZIP file or Excel workbook (.xlsx), not CSV; save it as CSV")
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


def open_text(path: Path, encoding: str):
    """Open a checked file as text for csv (`encoding` as `check_bytes` returned it)."""
    # utf-8-sig also reads BOM-less UTF-8; newline="" lets csv see \r\n, \n and \r itself
    return open(path, encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="")


def _check_encoding(path: Path, encoding: str) -> str:
    """The codec name of an `--encoding` value, or FileRefused naming the option and the choices."""
    name = _ENCODING_ALIASES.get(encoding.strip().lower(), encoding.strip())
    shown = "".join(c if c.isprintable() else "?" for c in encoding[:40]) + ("…" if len(encoding) > 40 else "")
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        raise FileRefused.at(path, f"unknown encoding '{shown}' given with --encoding; {_ENCODINGS_HINT}") from None
    if codec in ENCODINGS:
        return codec
    if codec.startswith(("utf-16", "utf_16", "utf-32", "utf_32")):
        why = "UTF-16 and UTF-32 text is not supported; save the extract as CSV in UTF-8 (or CP932)"
    else:
        why = "it is not an encoding silo extracts are read in (a wrong one garbles names and addresses)"
    raise FileRefused.at(path, f"--encoding '{shown}' is refused: {why}; {_ENCODINGS_HINT}")


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
        reason = (
            f"cannot decode it as {ENCODINGS.get(encoding, encoding)}: {where}; "
            f"correct that character (or export the file again), or {hint}"
        )
    elif how == "cp932":
        reason = (
            f"cannot decode {path.name}: it looks like CP932 (Shift_JIS), but {where} is valid "
            "neither in CP932 nor in UTF-8; correct that character (or export the file again), "
            "or pass --encoding if the file is in another encoding"
        )
    else:
        reason = (
            f"cannot decode {path.name} as UTF-8 or CP932 (Shift_JIS), first bad {where}; convert it or pass --encoding"
        )
    return FileRefused.at(path, reason, line=line)


def _breaks(data: bytes) -> int:
    """Line breaks (\\r\\n, \\r or \\n, as csv counts them) in data."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _locate(path: Path, offset: int, encoding: str) -> tuple[int, int, int | None]:
    """(offset, line, column) of the byte at `offset`; the column (in characters) when it is cheap to tell."""
    lines = line_start = done = 0
    cr_end = False  # the chunk before ended with \r (then a \n starting the next one is the same break)
    with open(path, "rb") as f:
        while done < offset:
            chunk = f.read(min(CHUNK, offset - done))
            if not chunk:
                break
            lines += _breaks(chunk) - (1 if cr_end and chunk.startswith(b"\n") else 0)
            last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
            if last >= 0:
                line_start = done + last + 1
            cr_end = chunk.endswith(b"\r")
            done += len(chunk)
        column = None
        if offset - line_start <= CHUNK:
            f.seek(line_start)
            prefix = f.read(offset - line_start)
            for enc in dict.fromkeys((encoding, "utf-8", "cp932")):
                try:
                    column = len(prefix.decode(enc)) + 1
                    break
                except UnicodeDecodeError:
                    continue
    return offset, lines + 1, column


# Python's cp932 decodes the bytes CP932 leaves unassigned (0x80, 0xA0, 0xFD-0xFF standing alone)
# to U+0080 and private-use characters, as Windows does, instead of failing: in an extract they are
# stray bytes of a broken export, and they are refused like any undecodable byte
STRAY = {
    "cp932": (
        re.compile("[\x80\uf8f0-\uf8f3]"),
        {"\x80": 0x80, "\uf8f0": 0xA0, "\uf8f1": 0xFD, "\uf8f2": 0xFE, "\uf8f3": 0xFF},
    )
}


def _scan(path: Path, encoding: str) -> tuple[int, int, int | None, int] | None:
    """Decode the whole file in chunks: None if it decodes, else (offset, line, column, bad byte).

    Refuses a file with NUL bytes, naming where the first one is: no CSV in a supported encoding has
    them (binary data, UTF-16, or a stray NUL left by a broken export).
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    stray, byte_of = STRAY.get(encoding, (None, {}))
    done = 0
    line = 0  # bytes of the line being read, up to the end of the chunk before
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            nul = chunk.find(b"\x00")
            if nul >= 0:
                raise _nul_refusal(path, chunk, done, *_locate(path, done + nul, encoding))
            breaks = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
            if line + (min(breaks) if breaks else len(chunk)) > MAX_LINE_BYTES:
                raise _long_line_refusal(path, *_locate(path, done - line, encoding))
            line = len(chunk) - 1 - max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) if breaks else line + len(chunk)
            held = len(decoder.getstate()[0])  # bytes of the previous chunk not decoded yet
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                # e.object is the bytes held back from the previous chunk, then this chunk; a stray
                # byte before the undecodable one comes first
                before = e.object[: e.start].decode(encoding, "replace") if stray is not None else ""
                if stray is not None and (found := stray.search(before)):
                    offset = done - held + len(before[: found.start()].encode(encoding, "replace"))
                    return (*_locate(path, offset, encoding), byte_of[found.group()])
                offset = min(max(done + e.start - (len(e.object) - len(chunk)), 0), done + len(chunk))
                byte = e.object[e.start] if e.start < len(e.object) else 0
                return (*_locate(path, offset, encoding), byte)
            if stray is not None and (found := stray.search(text)):
                # each character re-encodes to as many bytes as it was decoded from
                offset = done - held + len(text[: found.start()].encode(encoding, "replace"))
                return (*_locate(path, offset, encoding), byte_of[found.group()])
            if not chunk:
                return None
            done += len(chunk)


def _long_line_refusal(path: Path, offset: int, line: int, column: int | None) -> FileRefused:
    return FileRefused.at(
        path,
        f"line {line} runs on for more than {MAX_LINE_BYTES:,} bytes without a line break: this is not a "
        "CSV extract (binary data, or an export that lost its line breaks); export it again as CSV",
        line=line,
    )


def _nul_refusal(path: Path, chunk: bytes, done: int, offset: int, line: int, column: int | None) -> FileRefused:
    """Why a file with a NUL byte (the first at `offset`, in `chunk`, read at `done`) cannot be imported."""
    fix = "save or convert it as CSV in UTF-8 or CP932"
    if done == 0 and chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return FileRefused.at(
            path, f"this is UTF-16 text (it starts with a UTF-16 byte order mark and has NUL bytes); {fix}"
        )
    nuls = chunk.count(b"\x00")
    if nuls > 1 and nuls * 100 > len(chunk):  # many: not text in a supported encoding at all
        reason = (
            f"not a text CSV file: it contains NUL bytes (the first at {_where(offset, line, column)}): "
            f"binary data, or UTF-16 text; {fix}"
        )
        return FileRefused.at(path, reason, line=line)
    more = f" (and at least {nuls - 1} more after it)" if nuls > 1 else ""
    reason = (
        f"a NUL byte (0x00) at {_where(offset, line, column)}{more}; CSV text cannot contain one "
        "(it is often left by a broken export): delete it in a text editor, or export the file again, and import again"
    )
    return FileRefused.at(path, reason, line=line)
