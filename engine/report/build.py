"""A report: the chosen figures counted for a period, each per 100,000 residents, against its
target (目安値), with a warning when it is zero and a note when it is below its target."""

from __future__ import annotations

import re
from datetime import date, timedelta

from pydantic import BaseModel

from engine.report.figures import BY_ID, Context, Period
from engine.report.model import FigureChoice, ReportSettings
from engine.support.dates import era_of
from engine.support.errors import EngineError

ZERO_WARNING = "0件です。取組の有無と記録を確認してください"
NO_POPULATION = "人口未設定"
PER = 100_000


class PeriodRefused(EngineError):
    """--month or --year is not a month (2027-03) or a fiscal year (2026)."""


def _era_year(d: date) -> str:
    era = era_of(d)
    n = d.year - era.first.year + 1
    return f"{era.name}{'元' if n == 1 else n}年"


def month_period(text: str) -> Period:
    """'2027-03' → 2027-03-01 … 2027-03-31, 令和9年3月分."""
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
    if not m or not 1 <= int(m[2]) <= 12 or not 1900 <= int(m[1]) <= 2199:
        raise PeriodRefused(f"--month {text!r}: write the month as YYYY-MM, e.g. 2027-03")
    start = date(int(m[1]), int(m[2]), 1)
    end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return Period(start, end, f"{_era_year(start)}{start.month}月分", "month")


def year_period(text: str | int) -> Period:
    """2026 → 2026-04-01 … 2027-03-31, 令和8年度."""
    text = str(text).strip()
    if not re.fullmatch(r"\d{4}", text) or not 1900 <= int(text) <= 2198:
        raise PeriodRefused(f"--year {text!r}: write the fiscal year (年度) as its first calendar year, e.g. 2026")
    start = date(int(text), 4, 1)
    label = _era_year(start).removesuffix("年") + "年度"
    return Period(start, date(start.year + 1, 3, 31), label, "year")


class Line(BaseModel):
    """One figure of a report."""

    id: str
    label: str
    unit: str
    count: int
    per_100k: float | None  # None: population not set
    target: float | None = None  # for this period, in the target's basis
    target_basis: str | None = None  # per_100k | count
    below_target: bool = False
    warnings: list[str] = []


class Report(BaseModel):
    form: str
    period: str
    kind: str
    start: date
    end: date
    population: int | None
    population_as_of: date | None
    lines: list[Line]


def _target(choice: FigureChoice, period: Period) -> float | None:
    t = choice.target
    if t is None:
        return None
    if period.kind == "year" and t.year is not None:
        return t.year
    return round(t.value * period.months, 6)  # 0.2 × 12 is 2.4, not 2.4000000000000004


def per_100k(count: int, population: int | None) -> float | None:
    return None if not population else round(count * PER / population, 1)


def build_report(ctx: Context, settings: ReportSettings, period: Period) -> Report:
    population = settings.population.count if settings.population else None
    lines = []
    for choice in settings.figures:
        figure = BY_ID[choice.id]
        count = len(figure.rows(ctx, period))
        rate = per_100k(count, population)
        line = Line(
            id=figure.id,
            label=choice.label or figure.label,
            unit=figure.unit,
            count=count,
            per_100k=rate,
            target=_target(choice, period),
            target_basis=choice.target.basis if choice.target else None,
        )
        if count == 0:
            line.warnings.append(ZERO_WARNING)
        if line.target is not None:
            # the true rate, not the one rounded for display: 19.998 is below a target of 20
            measured = count if line.target_basis == "count" else (count * PER / population if population else None)
            if measured is None:
                line.warnings.append(f"目安値は人口10万人あたりの値です。{NO_POPULATION}のため比べられません")
            elif measured < line.target:
                line.below_target = True
                line.warnings.append(f"目安値（{target_text(line)}）を下回っています")
        lines.append(line)
    return Report(
        form=settings.form,
        period=period.label,
        kind=period.kind,
        start=period.start,
        end=period.end,
        population=population,
        population_as_of=settings.population.as_of if settings.population else None,
        lines=lines,
    )


def number(v: float) -> str:
    return f"{v:,.1f}" if v != int(v) else f"{int(v):,}"


def target_text(line: Line) -> str:
    if line.target is None:
        return ""
    if line.target_basis == "count":
        return f"{number(line.target)}{line.unit}"
    return f"人口10万人あたり {number(line.target)}"


def trace(ctx: Context, figure_id: str, period: Period) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The columns and rows (ids only) that make up one figure for the period."""
    figure = BY_ID[figure_id]
    return figure.columns, figure.rows(ctx, period)
