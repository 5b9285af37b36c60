"""The parsed rule language: person conditions, household conditions, indicators and flags.

Coordinators write YAML (see configs/rules/ and docs/rules.md); engine.rules.loader turns it
into these models after checking every name. Two levels:
- an *indicator* is a named condition on one person (``withdrawn_adult``);
- a *flag* is a condition on a household, combining indicators across its members (``8050``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.support.vocabulary import SEVERITY_JA  # noqa: F401  (a severity as read; kept with the other names)

Severity = Literal["low", "medium", "high", "urgent"]
FOREIGN_EXCLUDED = ("日本", "日本国", "JP", "JPN", "")


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- person conditions -------------------------------------------------------------------
class Age(_Node):
    kind: Literal["age"] = "age"
    min: int | None = None
    max: int | None = None


class Record(_Node):
    """A person has (or, with negate, has no) record matching code/value/min/max/within."""

    kind: Literal["record"] = "record"
    code: str
    values: tuple[str, ...] = ()
    min: int | None = None  # level rank, amount, or arrears months
    max: int | None = None
    min_label: str | None = None  # as written (要介護1), for explanations
    max_label: str | None = None
    within_months: int = 0  # 0 = active on the screening date
    negate: bool = False

    def atom(self) -> Record:
        """The same test without negation: what a feature counts."""
        return self.model_copy(update={"negate": False}) if self.negate else self


class Relationship(_Node):
    kind: Literal["relationship"] = "relationship"
    values: tuple[str, ...]
    negate: bool = False


class Sex(_Node):
    kind: Literal["sex"] = "sex"
    value: Literal["M", "F", "U"]
    negate: bool = False


class Foreign(_Node):
    kind: Literal["foreign_national"] = "foreign_national"
    value: bool = True


class PAll(_Node):
    kind: Literal["all"] = "all"
    items: tuple[PersonCond, ...]


class PAny(_Node):
    kind: Literal["any"] = "any"
    items: tuple[PersonCond, ...]


class PNot(_Node):
    kind: Literal["not"] = "not"
    item: PersonCond


PersonCond = Age | Record | Relationship | Sex | Foreign | PAll | PAny | PNot


# --- household conditions ----------------------------------------------------------------
class Member(_Node):
    """Some member satisfies the indicator (negate: no member does)."""

    kind: Literal["member"] = "member"
    indicator: str
    negate: bool = False


class HouseholdSize(_Node):
    kind: Literal["household_size"] = "household_size"
    min: int | None = None
    max: int | None = None


class SilosTouched(_Node):
    kind: Literal["silos_touched"] = "silos_touched"
    min: int | None = None
    max: int | None = None


class DistinctValues(_Node):
    """At least `at_least` different values among the household's records matching `record`."""

    kind: Literal["distinct_values"] = "distinct_values"
    record: Record
    at_least: int


class HAll(_Node):
    kind: Literal["all"] = "all"
    items: tuple[HouseholdCond, ...]


class HAny(_Node):
    kind: Literal["any"] = "any"
    items: tuple[HouseholdCond, ...]


class HNot(_Node):
    kind: Literal["not"] = "not"
    item: HouseholdCond


HouseholdCond = Member | HouseholdSize | SilosTouched | DistinctValues | HAll | HAny | HNot

for _m in (PAll, PAny, PNot, HAll, HAny, HNot):
    _m.model_rebuild()


def leaves(cond):
    """Every leaf condition below `cond` (person or household); a DistinctValues yields its record."""
    if isinstance(cond, (PAll, PAny, HAll, HAny)):
        for item in cond.items:
            yield from leaves(item)
    elif isinstance(cond, (PNot, HNot)):
        yield from leaves(cond.item)
    elif isinstance(cond, DistinctValues):
        yield cond.record
    else:
        yield cond


class Indicator(BaseModel):
    id: str
    title: str
    when: PersonCond
    description: str = ""
    file: str = ""
    line: int = 0


class Flag(BaseModel):
    id: str
    title: str
    severity: Severity
    silos: tuple[str, ...]
    version: int
    when: HouseholdCond
    description: str = ""
    pattern: int | None = None
    file: str = ""
    line: int = 0


class RuleSet(BaseModel):
    indicators: dict[str, Indicator]
    flags: dict[str, Flag]
    hash: str  # changes whenever any rule's meaning or version changes

    def flag_list(self) -> list[Flag]:
        return list(self.flags.values())
