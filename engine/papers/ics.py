"""Calendar invitations as RFC 5545 wants them: every value the .ics template sees is already
escaped as TEXT (backslash, `;`, `,` and line breaks, so a place or a name cannot end a property
and start another), parameter values are quoted, and the rendered invitation has CRLF line ends
with each line folded at 75 octets without cutting a UTF-8 character.

The organizer is the engine's sender (the 事務局 of the type); the attendee is the receiving agency's address
only: an agency's invitation does not tell it which other agencies come to the meeting (the DV
centre's presence would hint at a case its agenda only counts). No person's name or address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

LIMIT = 75  # octets per line, CRLF not counted (RFC 5545 3.1)


def _safe(ch: str) -> bool:
    return ch == "\t" or (ord(ch) >= 32 and ord(ch) != 127)


_UNSAFE = {c: None for c in (*range(32), 127) if not _safe(chr(c))}  # for str.translate: what _safe refuses


def text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11)."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    value = "\\n".join(value.splitlines())  # CRLF, CR, LF and the Unicode line breaks
    return value.translate(_UNSAFE)  # every character _safe refuses, dropped


def param(value: str) -> str:
    """A quoted parameter value (RFC 5545 3.2: no DQUOTE, no control character inside)."""
    return '"' + "".join(ch if _safe(ch) and ch != '"' else " " for ch in value) + '"'


def escaped(value):
    """The same structure with every string escaped as TEXT (what `{{ }}` in agenda.ics.j2 prints).
    Mappings and lists are read-only views that escape what is read from them, when it is read: an
    invitation reads a few fields of an agenda whose cases it only counts."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return _EscapedMapping(value)
    if isinstance(value, list | tuple):
        return _EscapedList(value)
    return value


class _EscapedMapping(Mapping):
    """A dict seen through `escaped` (the sandbox keeps a template off `_data`: it starts with `_`)."""

    def __init__(self, data: dict, quoted: dict[str, str] | None = None):
        self._data, self._quoted = data, quoted or {}  # `quoted`: parameter values, already quoted by param()

    def __getitem__(self, key):
        return self._quoted[key] if key in self._quoted else escaped(self._data[key])

    def __iter__(self):
        return iter(dict.fromkeys([*self._data, *self._quoted]))  # in the agenda's order

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._data, *self._quoted]))


class _EscapedList(Sequence):
    """A list seen through `escaped`."""

    def __init__(self, data: list | tuple):
        self._data = data

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [escaped(v) for v in self._data[index]]
        return escaped(self._data[index])

    def __len__(self) -> int:
        return len(self._data)


def fold(calendar: str) -> str:
    """CRLF line ends, no empty line, each line at most 75 octets (continuations start with a space)."""
    out = []
    for line in calendar.splitlines():
        if not line.strip():
            continue
        if len(line.encode("utf-8")) <= LIMIT:
            out.append(line)
            continue
        chunk, size = "", 0
        for ch in line:
            width = len(ch.encode("utf-8"))
            if size + width > LIMIT:
                out.append(chunk)
                chunk, size = " ", 1
            chunk += ch
            size += width
        out.append(chunk)
    return "\r\n".join(out) + "\r\n"


def view(agenda) -> Mapping:
    """What agenda.ics.j2 sees: the agenda with every string escaped, and the CN parameters quoted."""
    return _EscapedMapping(
        agenda.model_dump(),
        {"organizer_cn": param(agenda.sender_name), "attendee_cn": param(agenda.agency_name)},
    )
