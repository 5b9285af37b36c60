"""The resource directory of 参加支援 (configs/resources.yaml) and its matching rules
(configs/matching_rules.yaml): the places a municipality keeps, checked like the rules.

A place follows Open Referral HSDS (organisation → service at a location): its category, the area
(and 小学校区) it serves, the place's own address (never a person's), whom it is for (ages, needs,
indicators), its schedule as an iCal RRULE, its capacity with the day it was counted, whether the
person's consent is needed before it is told of them, whether it is a registered member of the
支援会議, and the day the listing was last verified (HSDS assured_date). docs/participation.md.

Both files are optional: without resources.yaml the engine proposes no places.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
from datetime import date
from typing import TYPE_CHECKING, Annotated, Literal

from dateutil.rrule import rrulestr
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from engine.rules.loader import ID_PATTERN
from engine.support.business_days import add_months
from engine.support.dates import Day
from engine.support.errors import did_you_mean
from engine.support.vocabulary import NEED_LABELS, PLACE_CATEGORY_LABELS, code_of

if TYPE_CHECKING:
    from engine.config import Config

ALL_AREAS = "全域"
WEEKDAY_JA = {"MO": "月", "TU": "火", "WE": "水", "TH": "木", "FR": "金", "SA": "土", "SU": "日"}


def _category(v):
    return code_of(v, PLACE_CATEGORY_LABELS)


def _need(v):
    return code_of(v, NEED_LABELS)


def _known(v: str, labels: dict[str, str], what: str) -> str:
    """`v` if it is a code of `labels`; else a refusal with did-you-mean and the list."""
    if v not in labels:
        hint = did_you_mean(v, [*labels, *labels.values()])
        raise ValueError(
            f"unknown {what} '{v}'"
            + (f" — {hint}" if hint else "")
            + " (one of "
            + ", ".join(f"{c} {label}" for c, label in labels.items())
            + ")"
        )
    return v


def _check_category(v: str) -> str:
    return _known(v, PLACE_CATEGORY_LABELS, "category")


def _check_need(v: str) -> str:
    return _known(v, NEED_LABELS, "need")


Category = Annotated[str, BeforeValidator(_category)]
Need = Annotated[str, BeforeValidator(_need)]


def _hhmm(v):
    if isinstance(v, int) and not isinstance(v, bool):  # YAML 1.1 reads 14:00 as the number 840
        if not 0 <= v < 24 * 60:
            raise ValueError('not a time of day; write HH:MM in quotes, e.g. "14:00"')
        return dt.time(v // 60, v % 60)
    return v


def _one_line(v: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in v) or len(v.splitlines()) > 1:
        raise ValueError("must be one line without control characters (it is printed in e-mails)")
    return v


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Schedule(Strict):
    """When the place is open: an RFC 5545 RRULE (FREQ=MONTHLY;BYDAY=2MO) and the hours."""

    rrule: str
    start: dt.time
    end: dt.time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, v):
        return _hhmm(v)

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, v: str) -> str:
        text = v.strip().removeprefix("RRULE:")
        try:
            rrulestr(text, dtstart=dt.datetime(2026, 1, 1))
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"not an iCal RRULE ({err}); write e.g. FREQ=WEEKLY;BYDAY=TU or FREQ=MONTHLY;BYDAY=2MO"
            ) from None
        if "COUNT=" in text.upper() or "UNTIL=" in text.upper():
            raise ValueError(
                "a listing's schedule repeats without end: remove COUNT/UNTIL (mark the place inactive instead)"
            )
        return text

    @model_validator(mode="after")
    def _hours(self):
        if self.end <= self.start:
            raise ValueError(f"end {self.end:%H:%M} is not after start {self.start:%H:%M}")
        return self

    def next_on(self, on: date) -> date | None:
        """The first day the place is open on or after `on`."""
        return _next_on(self.rrule, on)

    def text(self) -> str:
        """In Japanese: 毎月第2月曜 14:00〜16:00, 毎週火・木 10:00〜12:00."""
        parts = dict(p.split("=", 1) for p in self.rrule.upper().split(";") if "=" in p)
        freq, days, interval = parts.get("FREQ"), parts.get("BYDAY", ""), parts.get("INTERVAL", "1")
        hours = f"{self.start:%H:%M}〜{self.end:%H:%M}"
        named = []
        for d in filter(None, days.split(",")):
            n, wd = d[:-2], d[-2:]
            if wd not in WEEKDAY_JA:
                return f"{self.rrule} {hours}"
            named.append((f"第{n}" if n and n != "-1" else "最終" if n == "-1" else "") + WEEKDAY_JA[wd])
        if freq == "WEEKLY" and named:
            every = "毎週" if interval == "1" else f"{interval}週ごと"
            return f"{every}{'・'.join(named)}曜 {hours}"
        if freq == "MONTHLY" and named:
            return f"毎月{'・'.join(named)}曜 {hours}"
        if freq == "DAILY":
            return f"毎日 {hours}"
        return f"{self.rrule} {hours}"


@functools.lru_cache(maxsize=4096)
def _next_on(rrule: str, on: date) -> date | None:
    """The rule's first day on or after `on`, counted from the first of its month (counting from a
    year back iterated ~70 occurrences a call: 90% of a nightly cycle's time at 5,000 households)."""
    rule = rrulestr(rrule, dtstart=dt.datetime(on.year, on.month, 1))
    found = rule.after(dt.datetime.combine(on, dt.time(0, 0)), inc=True)
    return found.date() if found else None


class Capacity(Strict):
    """HSDS service_capacity: free places now, the most it takes, and when that was counted."""

    available: int = Field(ge=0, le=10_000)
    maximum: int = Field(ge=1, le=10_000)
    updated_on: Day

    @model_validator(mode="after")
    def _within(self):
        if self.available > self.maximum:
            raise ValueError(f"available {self.available} is more than maximum {self.maximum}")
        return self


class Ages(Strict):
    min: int | None = Field(default=None, ge=0, le=120)
    max: int | None = Field(default=None, ge=0, le=120)

    @model_validator(mode="after")
    def _order(self):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is more than max {self.max}")
        return self

    def holds(self, age: int) -> bool:
        return (self.min is None or age >= self.min) and (self.max is None or age <= self.max)

    def text(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{self.min}〜{self.max}歳"
        if self.min is not None:
            return f"{self.min}歳以上"
        if self.max is not None:
            return f"{self.max}歳以下"
        return "年齢を問わない"


class Eligibility(Strict):
    """Whom the place is for: ages, needs (NEED_LABELS), indicators of the rules. Empty: anyone."""

    ages: Ages = Ages()
    needs: tuple[Need, ...] = ()
    indicators: tuple[str, ...] = ()
    description: str | None = Field(default=None, max_length=300)  # HSDS eligibility_description, Japanese

    @field_validator("needs", mode="after")
    @classmethod
    def _needs(cls, v):
        return tuple(_check_need(n) for n in v)


class Place(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: Annotated[str, Field(min_length=1, max_length=100)]
    organisation: Annotated[str, Field(min_length=1, max_length=100)]
    category: Category
    area: str  # an area of the town (as in households.csv), or 全域
    school_district: str | None = Field(default=None, max_length=50)  # 小学校区, when known
    address: Annotated[str, Field(min_length=1, max_length=200)]  # the place's address, never a person's
    eligibility: Eligibility = Field(default=Eligibility(), alias="for")
    schedule: Schedule
    capacity: Capacity
    email: str
    # the place takes a person only with their consent to share what it needs (registration, a
    # 就労体験's 同意書); false: a drop-in place the lead can accompany them to. Either way a place
    # that is not a member is never told of a person without consent (engine/policy/members.py)
    consent_required: bool = True
    member: bool = False  # a registered member of the 支援会議 (bound to secrecy by 社会福祉法106条の6)
    assured_on: Day  # last verified (HSDS assured_date)
    status: Literal["active", "temporarily_closed", "inactive"] = "active"

    @field_validator("category", mode="after")
    @classmethod
    def _category(cls, v: str) -> str:
        return _check_category(v)

    @field_validator("name", "organisation", "address", "school_district", "area")
    @classmethod
    def _line(cls, v):
        return _one_line(v) if isinstance(v, str) else v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        from engine.config.fields import EMAIL

        if not EMAIL.fullmatch(v):
            raise ValueError(f"'{v}' is not an e-mail address like ibasho@example.org")
        return v

    @property
    def category_label(self) -> str:
        return PLACE_CATEGORY_LABELS[self.category]

    def serves(self, area: str) -> bool:
        return self.area in (ALL_AREAS, area)

    def stale(self, on: date, months: int) -> bool:
        """Not verified for `months` months on `on` (a listing nobody keeps up)."""
        return add_months(self.assured_on, months) < on


class Settings(Strict):
    """How the referral loop runs (resources.yaml `settings:`); business days throughout."""

    stale_months: int = Field(default=12, ge=1, le=60)  # a listing not verified this long is stale
    answer_business_days: int = Field(default=10, ge=1, le=60)  # the place answers a referral within this
    escalation_business_days: int = Field(
        default=3, ge=0, le=30
    )  # after the answer date: reminder, then this → escalation
    followup_business_days: tuple[int, ...] = Field(default=(10, 20, 60), min_length=1)  # after acceptance
    followup_answer_business_days: int = Field(default=5, ge=1, le=30)

    @field_validator("followup_business_days")
    @classmethod
    def _increasing(cls, v):
        if any(d < 1 for d in v) or list(v) != sorted(set(v)):
            raise ValueError("follow-ups are increasing whole numbers of business days, e.g. [10, 20, 60]")
        return v


class When(Strict):
    """A matching rule fires for a member with any of these (indicators and needs are the member's,
    flags the household's)."""

    indicators: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    needs: tuple[Need, ...] = ()

    @field_validator("needs", mode="after")
    @classmethod
    def _needs(cls, v):
        return tuple(_check_need(n) for n in v)

    @model_validator(mode="after")
    def _something(self):
        if not (self.indicators or self.flags or self.needs):
            raise ValueError("`when:` names nothing: list indicators, flags or needs")
        return self


class MatchRule(Strict):
    id: str = Field(pattern=ID_PATTERN)
    when: When
    ages: Ages = Ages()  # the member's age on the day
    categories: tuple[Category, ...] = Field(min_length=1)
    reason: Annotated[str, Field(min_length=1, max_length=200)]  # Japanese, shown with each proposal

    @field_validator("categories", mode="after")
    @classmethod
    def _categories(cls, v):
        return tuple(_check_category(c) for c in v)


class Directory(BaseModel):
    """The places (by id), the loop's settings and the matching rules; empty without resources.yaml."""

    model_config = ConfigDict(frozen=True)
    places: dict[str, Place] = {}
    settings: Settings = Settings()
    match_rules: tuple[MatchRule, ...] = ()

    @property
    def present(self) -> bool:
        return bool(self.places)


# --- checks -----------------------------------------------------------------------------------
def check_areas(conn: sqlite3.Connection, config: Config) -> list[str]:
    """Places whose area is none of the workspace's households' areas (nor 全域)."""
    areas = {a for (a,) in conn.execute("SELECT DISTINCT area FROM households") if a}
    if not areas:
        return []
    out = []
    for p in config.participation.places.values():
        if p.area != ALL_AREAS and p.area not in areas:
            hint = did_you_mean(p.area, sorted(areas)) or f"areas: {', '.join(sorted(areas))}, or {ALL_AREAS}"
            out.append(
                f"resources.yaml: place '{p.id}' ({p.name}): area '{p.area}' is not an area of the "
                f"workspace's households — {hint}"
            )
    return out


def stale_places(config: Config, on: date) -> list[Place]:
    """The listings (not inactive) not verified for settings.stale_months months on `on`, oldest first."""
    months = config.participation.settings.stale_months
    return sorted(
        (p for p in config.participation.places.values() if p.status != "inactive" and p.stale(on, months)),
        key=lambda p: (p.assured_on, p.id),
    )
