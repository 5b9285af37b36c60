"""The building blocks every configuration model uses: strict frozen models, one-line texts
(printed in e-mail headers and .ics), e-mail addresses and times of day as YAML writes them."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

ALL_AREAS = "全域"
EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
ConferenceType = Literal["support", "multi"]  # 支援会議 | 重層的支援会議


def _email(v: str) -> str:
    if not EMAIL.fullmatch(v):
        raise ValueError(f"'{v}' is not an e-mail address like soudan@city.example.lg.jp")
    return v


def _hhmm(v):
    if isinstance(v, int) and not isinstance(v, bool):  # YAML 1.1 reads 14:00 as the sexagesimal number 840
        if not 0 <= v < 24 * 60:
            raise ValueError(f'{v // 60}:{v % 60:02d} is not a time of day; write HH:MM in quotes, e.g. "14:00"')
        return dt.time(v // 60, v % 60)
    return v


def _one_line(v: str) -> str:
    # control characters, and the Unicode line breaks (U+2028, U+2029, U+0085) that e-mail
    # headers also refuse
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in v) or len(v.splitlines()) > 1:
        raise ValueError(
            "must be one line without control characters (it goes into e-mail subjects and calendar invitations); remove the line break"
        )
    return v


OneLine = Annotated[str, AfterValidator(_one_line)]  # names and places printed in e-mail headers and .ics


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LeadTarget(Strict):
    """An agency named by kind, silo and/or id (a lead rule's lead, a triage rule's assessor)."""

    kind: str | None = None
    silo: str | None = None
    agency: str | None = None

    @model_validator(mode="after")
    def _some(self):
        if not (self.kind or self.silo or self.agency):
            raise ValueError("name the agency by kind, silo and/or agency")
        return self
