"""report.yaml: which national figures a municipality's reporting form asks for, in its order and
under its labels, the population they are reckoned per 100,000 residents against, and a target
(目安値) per figure. Read with every problem located (file, line, field, did-you-mean), as
engine/participation/load.py reads resources.yaml. The file is optional: without it every figure
is shown under its own label, with no population (「人口未設定」) and no targets. docs/report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from engine.config.fields import Strict
from engine.participation.directory import Category, _check_category
from engine.report.figures import BY_ID, FIGURES
from engine.rules.problems import RuleProblem
from engine.support.dates import Day
from engine.support.errors import EngineError, did_you_mean
from engine.support.yamlfile import read_yaml, validate

REPORT = "report.yaml"


class ReportInvalid(EngineError):
    """report.yaml has problems (each with file, line, field); no report is made until they are fixed."""

    exit_code = 2

    def __init__(self, problems: list[RuleProblem]):
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{REPORT} has {len(problems)} problem(s); no report was made:\n{lines}", problems)


class Target(Strict):
    """目安値: a number per month, either per 100,000 residents (生活困窮's 目安値) or a count.
    A fiscal year's target is `year` when given, else the monthly value times 12."""

    value: float = Field(ge=0, le=1_000_000)
    basis: Literal["per_100k", "count"] = "per_100k"
    year: float | None = Field(default=None, ge=0, le=12_000_000)


class FigureChoice(Strict):
    """One line of the form: a figure of the registry (engine/report/figures.py), its label on the form."""

    id: str
    label: str | None = Field(default=None, min_length=1, max_length=80)
    target: Target | None = None


class Population(Strict):
    """住民基本台帳人口 and the day it was counted."""

    count: int = Field(ge=1, le=50_000_000)
    as_of: Day | None = None


class ReportSettings(Strict):
    form: str = Field(default="重層的支援体制整備事業 実施状況", min_length=1, max_length=80)  # the form's title
    population: Population | None = None
    community_categories: tuple[Category, ...] = ("ibasho", "salon")  # 地域づくりの拠点 (resources.yaml categories)
    figures: tuple[FigureChoice, ...] = Field(default=tuple(FigureChoice(id=f.id) for f in FIGURES), min_length=1)

    @field_validator("community_categories", mode="after")
    @classmethod
    def _categories(cls, v):
        return tuple(_check_category(c) for c in v)


def load_report(config_dir: Path) -> ReportSettings:
    """The settings of `config_dir`/report.yaml (defaults without the file); ReportInvalid lists
    every problem, located."""
    path = Path(config_dir) / REPORT
    if not path.exists():
        return ReportSettings()
    problems: list[RuleProblem] = []
    doc = read_yaml(path, problems)
    settings = validate(doc, ReportSettings, problems) if doc else None
    if settings is not None:
        seen: dict[str, int] = {}
        for i, choice in enumerate(settings.figures):
            where = ("figures", i, "id")
            if choice.id not in BY_ID:
                problems.append(
                    doc.problem(
                        where,
                        f"unknown figure '{choice.id}'",
                        entry_id=choice.id,
                        suggestion=did_you_mean(choice.id, BY_ID) or "figure ids are in docs/report.md",
                    )
                )
            elif choice.id in seen:
                problems.append(
                    doc.problem(where, f"figure '{choice.id}' is listed twice (also line {seen[choice.id]})")
                )
            seen.setdefault(choice.id, doc.line(where))
    if problems:
        raise ReportInvalid(problems)
    return settings
