"""Example households for `engine rules test`: read and check the example files.

An example file (configs/rules/examples/*.yaml) gives a screening date `on:` and a list of
households, each with the flags it must and must not get and, optionally, the lead agency the
lead rules must propose. Ages and record dates are written relative to `on:` (or as absolute
dates), so an example never ages out. Every problem is located (file, line, example id, field)
with a suggestion, as `engine rules check` reports the rule files; running the examples is
engine/rules/example_run.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.config import Config
from engine.intake.fields import RELATIONSHIP_ALIASES, SEX, SEX_HINT
from engine.rules.conditions import RELATIONSHIPS
from engine.rules.facts import months_before
from engine.rules.model import RuleSet
from engine.rules.problems import RuleProblem
from engine.support.dates import Day
from engine.support.errors import did_you_mean
from engine.support.vocabulary import CODES, check_value
from engine.support.yamlfile import YamlFile, read_yaml, validate

EXAMPLE_ID = r"^[A-Za-z0-9][A-Za-z0-9_]*$"
NO_CASE = "none"  # `lead: none`: the household must not become a case (no flag at or above min_severity)
DEFAULT_START_MONTHS = 12  # a record without a start began this many months before `on`
ALL_AREAS = "全域"
MAX_AGE = 130
MAX_MONTHS_AGO = 1200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordIn(_Strict):
    code: str
    value: str | int = ""
    start: Day | None = None  # absolute start date
    start_months_ago: int | None = None
    end: Day | None = None  # absolute end date (the record was valid up to that day)
    end_months_ago: int | None = None


class MemberIn(_Strict):
    age: int | None = None  # full years on `on`
    birth: Day | None = None  # instead of age: an absolute birth date
    relationship: str  # 続柄 as the rules write it (世帯主, 妻, 夫, 子, …) or as a register writes it (長男)
    sex: str = "U"
    nationality: str = "日本"
    records: list[RecordIn] = []


class ExampleIn(_Strict):
    id: str = Field(pattern=EXAMPLE_ID)
    title: str = Field(min_length=1)  # Japanese, shown when the example fails
    area: str = Field(min_length=1)
    members: list[MemberIn] = Field(min_length=1)
    must: list[str] = []  # flags the household must get
    must_not: list[str] = []  # flags it must not get
    lead: str | None = None  # agency id the lead rules must propose, or `none`

    @field_validator("must", "must_not", mode="before")
    @classmethod
    def _numbers_are_ids(cls, v):  # must: [8050] is the flag "8050"
        return (
            [str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v] if isinstance(v, list) else v
        )


class ExampleFileIn(_Strict):
    on: Day  # the screening date every age and relative date of the file counts from
    examples: list[Any] = Field(min_length=1)  # each validated as an ExampleIn on its own


@dataclass
class Rec:
    code: str
    value: str
    start: str
    end: str | None


@dataclass
class Member:
    birth: str
    relationship: str
    sex: str
    nationality: str
    records: list[Rec] = field(default_factory=list)


@dataclass
class Example:
    id: str
    title: str
    area: str
    on: date
    members: list[Member]
    must: tuple[str, ...]
    must_not: tuple[str, ...]
    lead: str | None
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def birth_for_age(on: date, age: int) -> str:
    """A birth date making someone `age` full years old on `on`, with the birthday the day before:
    the age holds for a whole year around `on` (a 39-year-old does not turn 40 tomorrow)."""
    return (months_before(on, 12 * age) - timedelta(days=1)).isoformat()


def example_files(examples_dir: Path) -> list[Path]:
    return sorted(list(Path(examples_dir).glob("*.yaml")) + list(Path(examples_dir).glob("*.yml")))


def read_examples(
    examples_dir: Path, rules: RuleSet, config: Config | None = None
) -> tuple[list[Example], list[RuleProblem]]:
    """Every example of the folder's files, checked against the rules (and the configuration's
    agencies and areas when given); with any problem the examples are not to be run."""
    examples_dir = Path(examples_dir)
    problems: list[RuleProblem] = []
    if not examples_dir.is_dir():
        return [], [
            RuleProblem(
                file=str(examples_dir),
                line=0,
                message="examples folder not found",
                suggestion="pass --examples DIR (default: the rules folder's examples/)",
            )
        ]
    files = example_files(examples_dir)
    if not files:
        return [], [
            RuleProblem(
                file=str(examples_dir),
                line=0,
                message="no .yaml example files in this folder",
                suggestion="add one, e.g. copy configs/rules/examples/8050.yaml",
            )
        ]
    out: list[Example] = []
    seen: dict[str, str] = {}
    for path in files:
        doc = read_yaml(path, problems)
        if doc is None:
            continue
        if not isinstance(doc.data, dict):
            problems.append(doc.problem((), "an example file is a mapping with `on:` and `examples:`"))
            continue
        parsed = validate(doc, ExampleFileIn, problems)
        if parsed is None:
            continue
        for i in range(len(parsed.examples)):
            at = ("examples", i)
            ex = validate(doc, ExampleIn, problems, path=at)
            if ex is None:
                continue
            if ex.id in seen:
                problems.append(
                    doc.problem(
                        at + ("id",),
                        f"duplicate example id '{ex.id}' (also at {seen[ex.id]})",
                        suggestion="give each example its own id",
                        entry_id=ex.id,
                    )
                )
                continue
            seen[ex.id] = f"{doc.file}:{doc.line(at)}"
            example = _check_example(doc, at, ex, parsed.on, rules, config, problems)
            if example is not None:
                out.append(example)
    return out, problems  # each names its example (`example e8050_father_son`): support/yamlfile.py


def _check_example(
    doc: YamlFile,
    at: tuple,
    ex: ExampleIn,
    on: date,
    rules: RuleSet,
    config: Config | None,
    problems: list[RuleProblem],
) -> Example | None:
    before = len(problems)

    def problem(path: tuple, message: str, suggestion: str | None = None) -> None:
        problems.append(doc.problem(at + path, message, suggestion=suggestion, entry_id=ex.id))

    for key in ("must", "must_not"):
        for j, flag_id in enumerate(getattr(ex, key)):
            if flag_id not in rules.flags:
                problem(
                    (key, j),
                    f"unknown flag '{flag_id}'",
                    did_you_mean(flag_id, rules.flags) or f"flags: {', '.join(rules.flags)}",
                )
    for flag_id in sorted(set(ex.must) & set(ex.must_not)):
        problem(("must_not",), f"flag '{flag_id}' is both in must and must_not", "keep it in one of them")
    if not ex.must and not ex.must_not and ex.lead is None:
        problem(("must",), "the example expects nothing", "list flags under must: and/or must_not:, or give lead:")
    if config is not None:
        _check_config(ex, config, problem)
    members = [_member(m, (("members", k)), on, problem) for k, m in enumerate(ex.members)]
    if len(problems) > before:
        return None
    return Example(
        id=ex.id,
        title=ex.title,
        area=ex.area,
        on=on,
        members=[m for m in members if m is not None],
        must=tuple(ex.must),
        must_not=tuple(ex.must_not),
        lead=ex.lead,
        file=doc.file,
        line=doc.line(at),
    )


def _check_config(ex: ExampleIn, config: Config, problem) -> None:
    if ex.lead is not None and ex.lead != NO_CASE and ex.lead not in config.agencies:
        problem(
            ("lead",),
            f"unknown agency '{ex.lead}'",
            did_you_mean(ex.lead, config.agencies)
            or f"use an id of agencies.yaml ({', '.join(config.agencies)}) or '{NO_CASE}'",
        )
    areas = {area for a in config.agencies.values() for area in a.areas if area != ALL_AREAS}
    if areas and ex.area not in areas:
        problem(
            ("area",),
            f"no agency serves area '{ex.area}'",
            did_you_mean(ex.area, areas) or f"areas in agencies.yaml: {', '.join(sorted(areas))}",
        )


def _member(m: MemberIn, at: tuple, on: date, problem) -> Member | None:
    ok = True
    if m.age is not None and not 0 <= m.age <= MAX_AGE:
        problem(at + ("age",), f"age {m.age} is not between 0 and {MAX_AGE}", "write full years on the file's on: date")
        ok = False
    elif (m.age is None) == (m.birth is None):
        problem(
            at, "give the member's age or birth: one of the two", "e.g. age: 52 (full years on the file's on: date)"
        )
        ok = False
    elif m.birth is not None and m.birth > on:
        problem(
            at + ("birth",), f"born after the screening date {on.isoformat()}", "give a birth date on or before on:"
        )
        ok = False
    relationship = RELATIONSHIP_ALIASES.get(m.relationship.strip())
    if relationship is None:
        problem(
            at + ("relationship",),
            f"unknown 続柄 '{m.relationship}'",
            did_you_mean(m.relationship, RELATIONSHIPS) or f"use one of {', '.join(RELATIONSHIPS)}",
        )
        ok = False
    sex = SEX.get(m.sex.strip())
    if sex is None:
        problem(at + ("sex",), f"unknown sex '{m.sex}'", SEX_HINT)
        ok = False
    records = []
    keys: set[tuple] = set()
    for k, r in enumerate(m.records):
        rec = _record(r, at + ("records", k), on, problem)
        if rec is None:
            ok = False
        elif (rec.code, rec.value, rec.start) in keys:
            problem(at + ("records", k), f"the same {rec.code} record twice", "remove one, or give another start")
            ok = False
        else:
            keys.add((rec.code, rec.value, rec.start))
            records.append(rec)
    if not ok:
        return None
    birth = m.birth.isoformat() if m.birth is not None else birth_for_age(on, m.age)
    return Member(birth, relationship, sex, m.nationality.strip(), records)


def _record(r: RecordIn, at: tuple, on: date, problem) -> Rec | None:
    if r.code not in CODES:
        problem(
            at + ("code",),
            f"unknown record code '{r.code}'",
            did_you_mean(r.code, CODES) or "see `engine rules vocabulary`",
        )
        return None
    value = str(r.value).strip()
    spec = CODES[r.code]
    if spec.value_type != "flag" and (value or spec.values or spec.value_type != "category"):
        bad = check_value(r.code, value)
        if bad:
            hint = did_you_mean(value, spec.values) if spec.value_type in ("level", "category") else None
            problem(at + ("value",), bad, hint)
            return None
    ok = True
    for name in ("start_months_ago", "end_months_ago"):
        n = getattr(r, name)
        if n is not None and not 0 <= n <= MAX_MONTHS_AGO:
            problem(at + (name,), f"{name} {n} is not between 0 and {MAX_MONTHS_AGO}", "months before the on: date")
            ok = False
    if r.start is not None and r.start_months_ago is not None:
        problem(at + ("start",), "give start or start_months_ago, not both")
        ok = False
    if r.end is not None and r.end_months_ago is not None:
        problem(at + ("end",), "give end or end_months_ago, not both")
        ok = False
    if not ok:
        return None
    start = r.start or months_before(on, DEFAULT_START_MONTHS if r.start_months_ago is None else r.start_months_ago)
    end = r.end or (months_before(on, r.end_months_ago) if r.end_months_ago is not None else None)
    if start > on:
        problem(
            at + ("start",),
            f"starts after the screening date {on.isoformat()}: the engine does not see it",
            "give a start on or before on:",
        )
        return None
    if end is not None and end < start:
        problem(at + ("end",), f"ends ({end.isoformat()}) before it starts ({start.isoformat()})")
        return None
    return Rec(r.code, value, start.isoformat(), end.isoformat() if end else None)
