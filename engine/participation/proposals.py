"""What 参加支援's proposals are made of (engine/participation/matching.py makes them): a member of
the household as the papers name them, each place proposed with its criteria, the matching rules
that fired, by category and member."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from engine.participation import matching_explain as words
from engine.participation.place_day import Record


class Member(BaseModel):
    person_id: str
    label: str  # 世帯員2（50代・子）, numbered as the agendas number them
    age: int
    indicators: list[str]  # ids of the indicators that hold for the member on the day
    flags: list[str]  # the household's flags open on the case (rule ids)
    consent: bool  # a consent record counts on the day


class Criterion(BaseModel):
    ok: bool
    text: str  # one line in Japanese, without the mark

    def line(self) -> str:
        return f"{'✔' if self.ok else '✘'} {self.text}"


class ProposedPlace(BaseModel):
    place_id: str
    name: str
    organisation: str
    category: str
    category_label: str
    area: str
    schedule: str  # 毎週火・木 13:00〜16:00
    next_open: date | None
    capacity_now: int
    capacity_max: int
    eligible: bool
    in_area: bool
    consent_ok: bool
    fresh: bool
    record: Record
    criteria: list[Criterion]  # empty when proposed without `explain` (the papers' one line a place)
    reasons: list[str]  # the matching rules' reasons

    @property
    def suitable(self) -> bool:
        return self.eligible and self.in_area and self.consent_ok

    def lines(self) -> list[str]:
        return [c.line() for c in self.criteria]

    def one_line(self) -> str:
        """For the agenda: name, area, schedule, capacity state."""
        return words.one_line(self)


class FiredRule(BaseModel):
    rule_id: str
    reason: str
    because: list[str]  # in Japanese: what made it fire for the member


class CategoryProposals(BaseModel):
    category: str
    category_label: str
    rules: list[FiredRule]
    places: list[ProposedPlace]


class MemberProposals(BaseModel):
    member: Member
    needs: list[str]  # codes recorded for the member
    categories: list[CategoryProposals]
