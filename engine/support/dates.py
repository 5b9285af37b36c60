"""Dates as silo extracts write them: ISO, slashes, 8 digits, and 和暦 (Japanese eras).

`parse_date` accepts

- Gregorian: 2024-04-01, 2024/4/1, 2024.4.1, 20240401, 2024年4月1日
- 和暦 in kanji: 令和6年4月1日, 平成31年4月30日, 令和元年5月1日 (元年 = year 1)
- 和暦 abbreviated: R6.4.1, H31.4.30, S64.1.7, T15.12.24, M45.7.29 (also R06.04.01, R6/4/1,
  R6-4-1, r6.4.1)

Full-width digits and letters, spaces and the one-character era signs (㋿ ㍻ ㍼ ㍽ ㍾) are
normalised first. An era date must lie inside its era (H31.5.1 does not exist: 令和 began on
2019-05-01).

Error messages never repeat the input text, so a caller may show them for private fields
(a birth date) and add the value itself where that is allowed.

`Day` is a date field of a YAML file (configuration, example households, outcome files): every
form above, as text or as the date or 8-digit number YAML reads unquoted.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Annotated, Literal, NamedTuple

from pydantic import BeforeValidator

from engine.support.errors import EngineError


class DateError(EngineError, ValueError):
    """A text that is not a date we accept. The message never contains the text itself."""


class Era(NamedTuple):
    name: str  # 令和
    letter: str  # R
    first: date
    last: date | None  # None: the current era


ERAS: tuple[Era, ...] = (
    Era("明治", "M", date(1868, 1, 25), date(1912, 7, 29)),
    Era("大正", "T", date(1912, 7, 30), date(1926, 12, 24)),
    Era("昭和", "S", date(1926, 12, 25), date(1989, 1, 7)),
    Era("平成", "H", date(1989, 1, 8), date(2019, 4, 30)),
    Era("令和", "R", date(2019, 5, 1), None),
)
_ERA_BY_KEY = {key: era for era in ERAS for key in (era.name, era.letter)}

ACCEPTED_FORMATS = (
    "accepted formats: 2024-04-01, 2024/4/1, 2024.4.1, 20240401, 令和6年4月1日 (元年 = year 1), "
    "R6.4.1 (M/T/S/H/R = 明治/大正/昭和/平成/令和)"
)

_ISO_LIKE = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})")
_DIGITS8 = re.compile(r"(\d{4})(\d{2})(\d{2})")
_KANJI_GREGORIAN = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?")
_ERA_DATE = re.compile(
    r"(明治|大正|昭和|平成|令和|[MTSHR])(元|\d{1,2})"
    r"(?:年(\d{1,2})月(\d{1,2})日?|([-/.])(\d{1,2})\5(\d{1,2}))"
)


def era_range(era: Era) -> str:
    """'1989-01-08 to 2019-04-30' (or 'from 2019-05-01' for the current era)."""
    if era.last is None:
        return f"from {era.first.isoformat()}"
    return f"{era.first.isoformat()} to {era.last.isoformat()}"


def _calendar_date(year: int, month: int, day: int) -> date:
    if not 1 <= year <= 9999:
        raise DateError("not a calendar date: the year must be 1 to 9999")
    try:
        return date(year, month, day)
    except ValueError:
        if not 1 <= month <= 12:
            raise DateError("not a calendar date: the month must be 1 to 12") from None
        raise DateError("not a calendar date: that month has no such day (check month and day)") from None


def _normalise(text: str) -> str:
    # NFKC turns full-width digits/letters into ASCII and ㋿ into 令和; then drop all spaces.
    return "".join(unicodedata.normalize("NFKC", text).split()).upper()


def parse_date(text: str) -> date:
    """Parse a Gregorian or 和暦 date; raise DateError (saying what is accepted) otherwise."""
    if len(text) == 10 and text[4] == "-" and text[7] == "-":  # fast path: ISO
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass  # fall through for a precise message
    s = _normalise(text)
    if not s:
        raise DateError(f"empty date; {ACCEPTED_FORMATS}")
    m = _ISO_LIKE.fullmatch(s) or _DIGITS8.fullmatch(s) or _KANJI_GREGORIAN.fullmatch(s)
    if m:
        groups = [g for g in m.groups() if g.isdigit()]
        return _calendar_date(*map(int, groups))
    m = _ERA_DATE.fullmatch(s)
    if not m:
        raise DateError(f"not a recognised date; {ACCEPTED_FORMATS}")
    era = _ERA_BY_KEY[m[1]]
    year_in_era = 1 if m[2] == "元" else int(m[2])
    if year_in_era == 0:
        raise DateError(f"{era.name} year 0 does not exist: the first year is 元年 (1)")
    month, day = (m[3], m[4]) if m[3] else (m[6], m[7])
    d = _calendar_date(era.first.year + year_in_era - 1, int(month), int(day))
    if d < era.first or (era.last is not None and d > era.last):
        raise DateError(f"date is outside the {era.name} ({era.letter}) era, which runs {era_range(era)}")
    return d


def _day(v):
    # an unquoted 20261127 is a number to YAML, which pydantic would read as seconds since 1970
    if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
        try:
            return parse_date(str(v).strip())
        except DateError as err:
            raise ValueError(str(err)) from None
    return v


Day = Annotated[date, BeforeValidator(_day)]


def era_of(d: date) -> Era:
    """The era a Gregorian date falls in; ValueError before 明治 (1868-01-25)."""
    for era in reversed(ERAS):
        if d >= era.first:
            return era
    raise ValueError(f"{d.isoformat()} is before 明治 (1868-01-25): no 和暦 for it")


def wareki_with_weekday(d: date | str) -> str:
    """date(2026, 12, 4) (or '2026-12-04') -> '令和8年12月4日（金）'."""
    d = date.fromisoformat(d) if isinstance(d, str) else d
    return to_wareki(d) + f"（{'月火水木金土日'[d.weekday()]}）"


def to_wareki(d: date, style: Literal["kanji", "abbr"] = "kanji") -> str:
    """date(2019, 5, 1) -> '令和元年5月1日' (kanji) or 'R1.5.1' (abbr)."""
    era = era_of(d)
    year_in_era = d.year - era.first.year + 1
    if style == "kanji":
        year = "元" if year_in_era == 1 else str(year_in_era)
        return f"{era.name}{year}年{d.month}月{d.day}日"
    if style == "abbr":
        return f"{era.letter}{year_in_era}.{d.month}.{d.day}"
    raise ValueError(f"unknown style {style!r}: use 'kanji' or 'abbr'")
