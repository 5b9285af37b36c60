"""What to write instead when a field refuses a YAML value for a typing trap of YAML, and which of
pydantic's errors on a union are worth telling: used by support/yamlfile.py `validate`, the one
place a configuration file's validation errors become messages.

- YAML reads an unquoted 8050 as a number, no / yes / off / on as false / true and 2026-04-01 as a
  date; where the field wants text the hint says to quote the value as written ("8050", "no").
- Full-width digits (４０) are text to YAML; where the field wants a number the hint says to write
  half-width digits (40). They are not silently accepted: a number in a configuration file is
  written one way, as every file the engine ships writes it.
- A union field (`flags: [..] | any`) gets an error from each member pydantic tried. When one
  member got inside the value (an item of the list is wrong), the others' errors about the value
  as a whole ("Input should be 'any'") only confuse, and are left out.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

NUMBER_ERRORS = ("int_parsing", "float_parsing", "decimal_parsing")


def is_type_tag(p) -> bool:
    """pydantic adds the union member it tried to the location ('tuple[str, ...]', "literal['any']")."""
    return isinstance(p, str) and ("[" in p or p.startswith(("function-", "literal")))


def hint(error: dict, written: str | None) -> str | None:
    """A suggestion for one pydantic error; `written` is the value's text in the file, when YAML
    read it as something other than text."""
    kind, value = error["type"], error.get("input")
    if kind == "string_type" and isinstance(value, (bool, int, float, dt.date)):
        written = written or (str(value).lower() if isinstance(value, bool) else str(value))
        read_as = (
            ("true" if value else "false")
            if isinstance(value, bool)
            else "a date"
            if isinstance(value, dt.date)
            else "a number"
        )
        return f'YAML reads {written} as {read_as}, not as text: write it in quotes, "{written}"'
    if kind in NUMBER_ERRORS and isinstance(value, str):
        half = unicodedata.normalize("NFKC", value).strip()
        if half != value.strip() and _is_number(half):
            return f"write the number in half-width digits: {half}"
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _branch(data: Any, loc: tuple) -> tuple[tuple, str, int] | None:
    """(location before the union tag, the tag, how many steps the location goes past it), or None
    outside a union. An element that is a real key of the data is never a tag."""
    for i, p in enumerate(loc):
        if isinstance(data, dict) and p in data:
            data = data[p]
        elif isinstance(data, list) and isinstance(p, int) and not isinstance(p, bool) and -len(data) <= p < len(data):
            data = data[p]
        elif is_type_tag(p):
            return tuple(loc[:i]), p, len(loc) - i - 1
        else:
            data = None
    return None


def worth_telling(data: Any, errors: list[dict]) -> list[dict]:
    """`errors` without those of a union member about the whole value when another member of the
    same union got inside it."""
    branches = [_branch(data, tuple(e["loc"])) for e in errors]
    inside = {(b[0], b[1]) for b in branches if b and b[2] > 0}
    unions = {prefix for prefix, _ in inside}
    return [
        e
        for e, b in zip(errors, branches, strict=True)
        if not (b and b[2] == 0 and b[0] in unions and (b[0], b[1]) not in inside)
    ]
