"""The shape of a rule file (configs/rules/*.yaml) as pydantic models, for its JSON Schema only.

The rule language is read by engine.rules.loader, which checks far more than a schema can (that
an indicator exists, min below max, a value of the code's list, a depth limit): these models only
describe the file so that an editor completes and checks it (`engine schema`, docs/rules.md
"Editor schemas"). Every key takes what the loader takes, Japanese names of codes included.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from engine.rules.conditions import RELATIONSHIPS
from engine.support.vocabulary import CODE_NAMES, SEVERITY_JA, SILOS, names_of

CodeName = Annotated[
    str, WithJsonSchema({"enum": names_of(CODE_NAMES), "description": "記録のコード（または日本語名）"})
]
Texts = str | Annotated[list[str], Field(min_length=1)]
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_]*$")] | int  # `id: 8050` is read as the text 8050


def _no_defaults(schema: dict) -> None:
    """An optional key is left out, never written empty: the schema shows no `default: null`."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra=_no_defaults)


class Range(_Shape):
    """min and/or max (whole numbers)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=lambda s: _no_defaults(s) or s.update(minProperties=1))
    min: int = Field(None, ge=0)
    max: int = Field(None, ge=0)


class RecordSpec(_Shape):
    """A record: its code, and optionally values, min/max (levels such as 要介護1, amounts, arrears months)
    and within_months."""

    code: CodeName
    value: Texts = None
    min: int | str = None
    max: int | str = None
    within_months: int = Field(None, ge=0, le=1200)


RecordOf = CodeName | RecordSpec


class PAll(_Shape):
    all: list[PersonCondition] = Field(min_length=1)


class PAny(_Shape):
    any: list[PersonCondition] = Field(min_length=1)


class PNot(_Shape):
    not_: PersonCondition = Field(alias="not")


class Age(_Shape):
    age: Range


class HasRecord(_Shape):
    record: RecordOf


class NoRecord(_Shape):
    no_record: RecordOf


class RelationshipIs(_Shape):
    relationship: Literal[RELATIONSHIPS] | Annotated[list[Literal[RELATIONSHIPS]], Field(min_length=1)]


class SexIs(_Shape):
    sex: Literal["M", "F", "U"]


class ForeignNational(_Shape):
    foreign_national: bool


PersonCondition = PAll | PAny | PNot | Age | HasRecord | NoRecord | RelationshipIs | SexIs | ForeignNational


class HAll(_Shape):
    all: list[HouseholdCondition] = Field(min_length=1)


class HAny(_Shape):
    any: list[HouseholdCondition] = Field(min_length=1)


class HNot(_Shape):
    not_: HouseholdCondition = Field(alias="not")


class MemberIs(_Shape):
    member: str


class NoMember(_Shape):
    no_member: str


class HouseholdSize(_Shape):
    household_size: Range


class SilosTouched(_Shape):
    silos_touched: Range


class Distinct(_Shape):
    record: RecordOf
    at_least: int = Field(ge=1)


class DistinctValues(_Shape):
    distinct_values: Distinct


HouseholdCondition = HAll | HAny | HNot | MemberIs | NoMember | HouseholdSize | SilosTouched | DistinctValues

for _m in (PAll, PAny, PNot, HAll, HAny, HNot):
    _m.model_rebuild()


class Indicator(_Shape):
    """個人の指標: a named condition on one person."""

    id: Id
    title: str = Field(min_length=1)
    when: PersonCondition
    description: str = None


class Flag(_Shape):
    """世帯のフラグ: a condition on a household, combining indicators across its members."""

    id: Id
    title: str = Field(min_length=1)
    severity: Annotated[str, WithJsonSchema({"enum": names_of(SEVERITY_JA)})]
    silos: list[Literal[SILOS]] = Field(min_length=1)
    version: int = Field(ge=1)
    when: HouseholdCondition
    description: str = None
    pattern: int = Field(None, ge=1)
    effective_from: datetime.date = Field(
        None, description="this version is in force from this screening date on (write the flag again for each version)"
    )


class RuleFile(_Shape):
    """A rule file: `indicators:` and/or `flags:` (docs/rules.md)."""

    indicators: list[Indicator] = None
    flags: list[Flag] = None
